import Dispatch

/// Runs loops over a fixed number of threads with a fixed partition of the work, so a result
/// computed in parallel is bit-identical from run to run for a given thread count (each index is
/// always handled by the same chunk, and chunks never share an output element).
public struct ThreadPool: Sendable {
    /// Number of worker threads (≥ 1).
    public let threads: Int

    /// `threads` defaults to `FINCH_THREADS` or the number of active processors.
    public init(threads: Int? = nil) {
        if let threads {
            self.threads = max(1, threads)
        } else if let env = getenv("FINCH_THREADS"), let n = Int(String(cString: env)), n > 0 {
            self.threads = n
        } else {
            self.threads = max(1, ProcessInfo_activeProcessorCount())
        }
    }

    /// A pool that runs everything on the calling thread.
    public static let serial = ThreadPool(threads: 1)

    /// Calls `body` once per chunk of `0..<count`, chunks of equal size (the last may be shorter),
    /// at most `threads` chunks, each at least `grain` long. Returns when all chunks are done.
    public func parallelFor(_ count: Int, grain: Int = 1, _ body: (Range<Int>) -> Void) {
        guard count > 0 else { return }
        let chunks = min(threads, max(1, count / max(grain, 1)))
        if chunks == 1 {
            body(0..<count)
            return
        }
        let size = (count + chunks - 1) / chunks
        withoutActuallyEscaping(body) { body in
            // The chunks write disjoint outputs by contract; the closure itself is only read.
            nonisolated(unsafe) let run = body
            DispatchQueue.concurrentPerform(iterations: chunks) { chunk in
                let start = chunk * size
                let end = min(count, start + size)
                if start < end { run(start..<end) }
            }
        }
    }
}

#if canImport(Glibc)
import Glibc
private func ProcessInfo_activeProcessorCount() -> Int { Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))) }
#elseif canImport(Darwin)
import Darwin
private func ProcessInfo_activeProcessorCount() -> Int { Int(sysconf(_SC_NPROCESSORS_ONLN)) }
#endif
