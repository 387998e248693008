extension UnsafeMutableRawBufferPointer {
    /// The alignment of memory the kernel copies into or out of (recv(2), send(2), write(2)).
    ///
    /// Why a cache line: the kernel copies with `rep movsb`, which on this machine's AMD EPYC ran
    /// far slower into a destination 16 bytes past a line (where an 8-aligned heap allocation of
    /// this size starts) than into an aligned one. The receive buffer alone moved `monitor
    /// --format none` from 399–472 to 332–357 ns of CPU per message (bench/nflog.sh's 64 B load,
    /// receive thread and sender on different CPUs); a page alignment measured the same as 64.
    public static let kernelCopyAlignment = 64

    /// Uninitialized memory for the kernel to copy into or out of, aligned to a cache line
    /// (see `kernelCopyAlignment`). Deallocate it with `deallocate()`.
    public static func allocateForKernelCopies(byteCount: Int) -> UnsafeMutableRawBufferPointer {
        .allocate(byteCount: byteCount, alignment: kernelCopyAlignment)
    }
}
