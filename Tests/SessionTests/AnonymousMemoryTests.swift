// AnonymousMemory lives in NetfilterSystem, which has no test target of its own; the flow cache
// is its user, so its tests sit here.
import Glibc
import NetfilterSystem
import Testing

@Suite struct AnonymousMemoryTests {
    let page = AnonymousMemory.pageSize

    @Test func aFreshMappingIsWholePagesOfZerosAndNotResident() throws {
        let memory = try AnonymousMemory(byteCount: 3 * page + 1)
        #expect(memory.byteCount == 4 * page)
        #expect(Int(bitPattern: memory.baseAddress) % page == 0)
        #expect(memory.backing == .mapped)
        #expect(memory.residentBytes() == 0)  // before anything reads it
        let bytes = UnsafeRawBufferPointer(start: memory.baseAddress, count: memory.byteCount)
        #expect(bytes.allSatisfy { $0 == 0 })
        #expect(try AnonymousMemory(byteCount: 0).byteCount == page)
    }

    @Test func writtenPagesBecomeResidentAndReleasedOnesLeaveAndReadAsZeros() throws {
        let memory = try AnonymousMemory(byteCount: 4 * page)
        memory.baseAddress.initializeMemory(as: UInt8.self, repeating: 0xA5, count: 3 * page)
        #expect(memory.residentBytes() == 3 * page)
        // Only the whole pages inside the range: pages 1 and 2, not the partial page 0 or 3.
        #expect(memory.release(100..<(3 * page + 7)) == 2 * page)
        #expect(memory.releasedBytes == 2 * page)
        #expect(memory.residentBytes() == page)
        let bytes = UnsafeRawBufferPointer(start: memory.baseAddress, count: memory.byteCount)
        #expect(bytes[0..<page].allSatisfy { $0 == 0xA5 })
        #expect(bytes[page..<(3 * page)].allSatisfy { $0 == 0 })
        // Still mapped and writable.
        memory.baseAddress.storeBytes(of: 7, toByteOffset: 2 * page, as: UInt64.self)
        #expect(memory.baseAddress.load(fromByteOffset: 2 * page, as: UInt64.self) == 7)
        #expect(memory.releaseAll() == 4 * page)
        #expect(memory.residentBytes() == 0)
        #expect(UnsafeRawBufferPointer(start: memory.baseAddress, count: memory.byteCount).allSatisfy { $0 == 0 })
    }

    @Test func rangesAreClampedAndLessThanAPageReleasesNothing() throws {
        let memory = try AnonymousMemory(byteCount: 2 * page)
        #expect(memory.release(1..<page) == 0)
        #expect(memory.release(-5 * page..<(10 * page)) == 2 * page)
        #expect(memory.release(3 * page..<(4 * page)) == 0)
        #expect(memory.release(page..<page) == 0)
    }

    @Test func aMappingTheKernelRefusesIsATypedError() {
        #expect(throws: SystemError(code: ENOMEM, operation: "map \(Int.max) bytes of anonymous memory")) {
            try AnonymousMemory(byteCount: .max)
        }
        // 2^62 bytes: rounded fine, beyond any address space.
        #expect(throws: SystemError.self) { try AnonymousMemory(byteCount: 1 << 62) }
    }

    @Test func zeroedMapsWhenItCan() {
        let memory = AnonymousMemory.zeroed(byteCount: 10 * page)
        #expect(memory.backing == .mapped)
        #expect(memory.byteCount == 10 * page)
    }
}
