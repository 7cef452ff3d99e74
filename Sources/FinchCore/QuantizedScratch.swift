import Synchronization

/// Reusable, 64-byte-aligned scratch memory for the linear-layer kernels, so that steady-state
/// calls (decode steps, same-shaped prefill and training micro-batches) allocate nothing.
///
/// A small lock-protected free list: `withBuffer` takes the smallest cached buffer that is large
/// enough (or grows the largest one), and puts it back afterwards. Concurrent callers — pool workers,
/// or two models running at once — each get their own buffer. At most `maximumCached` buffers are
/// kept; the lock is held only to pop or push a list entry.
final class QuantizedScratch: Sendable {
    /// The process-wide cache used by `LinearWeight`.
    static let shared = QuantizedScratch()

    private struct Buffer: @unchecked Sendable {
        let pointer: UnsafeMutableRawPointer
        let capacity: Int
    }

    private let cached = Mutex<[Buffer]>([])
    private let maximumCached = 16

    /// Calls `body` with at least `bytes` bytes of uninitialized, 64-byte-aligned memory that stays
    /// valid only for the duration of the call.
    func withBuffer<R>(bytes: Int, _ body: (UnsafeMutableRawPointer) throws -> R) rethrows -> R {
        let needed = max(bytes, 64)
        let taken: Buffer? = cached.withLock { list in
            let fitting = list.indices.filter { list[$0].capacity >= needed }
            if let best = fitting.min(by: { list[$0].capacity < list[$1].capacity }) { return list.remove(at: best) }
            // None is large enough: drop the largest so the cache does not keep growing in count.
            if let largest = list.indices.max(by: { list[$0].capacity < list[$1].capacity }) {
                list.remove(at: largest).pointer.deallocate()
            }
            return nil
        }
        let buffer = taken ?? Buffer(
            // Round up so slowly growing requests do not reallocate every time.
            pointer: UnsafeMutableRawPointer.allocate(byteCount: Self.roundedCapacity(needed), alignment: 64),
            capacity: Self.roundedCapacity(needed))
        defer {
            cached.withLock { list in
                list.append(buffer)
                if list.count > maximumCached, let smallest = list.indices.min(by: { list[$0].capacity < list[$1].capacity }) {
                    list.remove(at: smallest).pointer.deallocate()
                }
            }
        }
        return try body(buffer.pointer)
    }

    /// Calls `body` with room for `count` values of `T` (uninitialized; `T` must be trivial).
    func withBuffer<T, R>(of type: T.Type, count: Int, _ body: (UnsafeMutablePointer<T>) throws -> R) rethrows -> R {
        try withBuffer(bytes: count * MemoryLayout<T>.stride) { raw in
            try body(raw.bindMemory(to: T.self, capacity: count))
        }
    }

    private static func roundedCapacity(_ bytes: Int) -> Int {
        // Next multiple of 1/8 of the next power of two: at most 12.5% slack.
        var power = 64
        while power < bytes { power <<= 1 }
        let step = max(64, power / 8)
        return (bytes + step - 1) / step * step
    }
}
