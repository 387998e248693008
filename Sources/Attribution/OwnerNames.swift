import NetfilterSystem

/// uid → user name and gid → group name, looked up once per id.
///
/// NSS lookups can take milliseconds (LDAP, sssd); a monitor sees the same few ids in every
/// packet, so each is resolved once and kept. Ids without an entry are cached as nil and shown
/// numerically. Not thread-safe: one cache per receive thread.
public struct OwnerNames {
    private var users: [UInt32: String?] = [:]
    private var groups: [UInt32: String?] = [:]
    /// The last id asked for and its answer: consecutive packets nearly always share their owner,
    /// and a compare is cheaper than hashing.
    private var lastUser: (id: UInt32, name: String?)?
    private var lastGroup: (id: UInt32, name: String?)?
    private let lookUpUser: (UInt32) -> String?
    private let lookUpGroup: (UInt32) -> String?

    /// Bounds memory if ids are unbounded (e.g. user-namespace ranges): past this many entries
    /// the cache is cleared and refilled.
    public static let capacity = 65_536

    public init(lookUpUser: @escaping (UInt32) -> String? = AccountDatabase.userName(of:),
                lookUpGroup: @escaping (UInt32) -> String? = AccountDatabase.groupName(of:)) {
        self.lookUpUser = lookUpUser
        self.lookUpGroup = lookUpGroup
    }

    public mutating func userName(of uid: UInt32) -> String? {
        if let lastUser, lastUser.id == uid { return lastUser.name }
        let name = lookUpUserCached(uid)
        lastUser = (uid, name)
        return name
    }

    private mutating func lookUpUserCached(_ uid: UInt32) -> String? {
        if let cached = users[uid] { return cached }
        if users.count >= Self.capacity { users.removeAll(keepingCapacity: true) }
        let name = lookUpUser(uid)
        users[uid] = .some(name)
        return name
    }

    /// Drops every cached name (on reload: accounts may have been renamed).
    public mutating func forget() {
        users.removeAll()
        groups.removeAll()
        lastUser = nil
        lastGroup = nil
    }

    public mutating func groupName(of gid: UInt32) -> String? {
        if let lastGroup, lastGroup.id == gid { return lastGroup.name }
        let name = lookUpGroupCached(gid)
        lastGroup = (gid, name)
        return name
    }

    private mutating func lookUpGroupCached(_ gid: UInt32) -> String? {
        if let cached = groups[gid] { return cached }
        if groups.count >= Self.capacity { groups.removeAll(keepingCapacity: true) }
        let name = lookUpGroup(gid)
        groups[gid] = .some(name)
        return name
    }
}

/// Interface index → name, cached; indexes are reused rarely enough that a short-lived cache
/// is right; an index without a name is looked up again next time (the device may be new).
public struct InterfaceNames {
    private var names: [UInt32: String?] = [:]
    private let lookUp: (UInt32) -> String?

    public init(lookUp: @escaping (UInt32) -> String? = InterfaceIndex.name(of:)) {
        self.lookUp = lookUp
    }

    /// The last index that had a name, and the name.
    private var last: (index: UInt32, name: String)?

    public mutating func name(of index: UInt32) -> String? {
        if let last, last.index == index { return last.name }
        if let cached = names[index], let name = cached {
            last = (index, name)
            return name
        }
        let name = lookUp(index)
        if names.count > 4096 { names.removeAll(keepingCapacity: true) }
        names[index] = .some(name)
        return name
    }

    /// Drops every cached name (on reload).
    public mutating func forget() {
        names.removeAll()
        last = nil
    }
}
