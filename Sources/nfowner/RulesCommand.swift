import ArgumentParser
import NetfilterSystem
import Rules

struct RulesCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rules",
        abstract: "Show, install, remove or check nfowner's own nftables table.",
        discussion: """
            nfowner keeps everything in one table, `table inet nfowner`; install replaces it in one \
            nft transaction and remove deletes it. No other table or chain is ever touched. The same \
            options describe the ruleset in every subcommand, so `rules status` can tell whether the \
            installed table is the one these options would generate.
            """,
        subcommands: [Show.self, Install.self, Remove.self, Status.self])

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print the nft script `rules install` would apply (changes nothing).")
        @OptionGroup(title: "Ruleset") var ruleset: RulesetOptions

        func run() throws {
            let spec = try ruleset.spec()
            do { print(try NftScriptRenderer.install(spec), terminator: "") } catch {
                throw UserFacingError(error.description)
            }
        }
    }

    struct Install: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Install (or atomically replace) nfowner's table.")
        @OptionGroup(title: "Ruleset") var ruleset: RulesetOptions
        @OptionGroup var namespace: NamespaceOption

        func run() throws {
            let spec = try ruleset.spec()
            try enterNamespace(namespace)
            do { try NftRunner().install(spec) } catch { throw UserFacingError(error.description) }
            note("installed table inet \(spec.tableName): logging the OUTPUT hook to NFLOG group \(spec.group)")
        }
    }

    struct Remove: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Delete nfowner's table (nothing else). Not an error when it is absent.")
        @OptionGroup var namespace: NamespaceOption

        func run() throws {
            try enterNamespace(namespace)
            let spec = RulesetSpec()
            do {
                let removed = try NftRunner().remove(spec)
                note(removed ? "removed table inet \(spec.tableName)" : "table inet \(spec.tableName) was not installed")
            } catch {
                throw UserFacingError(error.description)
            }
        }
    }

    struct Status: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Is the table installed, is it current, what did it count, who reads the group?")
        @OptionGroup(title: "Ruleset") var ruleset: RulesetOptions
        @OptionGroup var namespace: NamespaceOption

        func run() throws {
            let spec = try ruleset.spec()
            try enterNamespace(namespace)
            do {
                let status = try NftRunner().status(spec)
                print(status.description)
            } catch {
                throw UserFacingError(error.description)
            }
        }
    }
}

func enterNamespace(_ option: NamespaceOption) throws {
    guard let name = option.name else { return }
    do { try NetworkNamespace.enter(named: name) } catch { throw UserFacingError(error.description) }
}
