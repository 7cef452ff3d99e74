import Dispatch
import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Runs loops over a fixed number of threads with a fixed partition of the work, so a result
/// computed in parallel is bit-identical from run to run for a given thread count (each index is
/// always handled by the same chunk, and chunks never share an output element).
///
/// The workers are persistent: they spin briefly between jobs, then sleep. Starting a chunk on a
/// spinning worker takes about a microsecond, against ≈50 µs for `DispatchQueue.concurrentPerform`
/// here, which matters for decoding, where one token is hundreds of small matrix-vector products.
public struct ThreadPool: Sendable {
    /// Number of threads (≥ 1), the calling thread included.
    public let threads: Int

    /// `threads` defaults to `FINCH_THREADS` or the number of active processors. A pool of more
    /// than one thread makes BLAS single-threaded process-wide (`BLAS.callerThreadsOnly`).
    public init(threads: Int? = nil) {
        if let threads {
            self.threads = max(1, threads)
        } else if let env = getenv("FINCH_THREADS"), let n = Int(String(cString: env)), n > 0 {
            self.threads = n
        } else {
            self.threads = max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))))
        }
        if self.threads > 1 { BLAS.callerThreadsOnly }
    }

    /// A pool that runs everything on the calling thread.
    public static let serial = ThreadPool(threads: 1)

    /// Calls `body` once per chunk of `0..<count`, chunks of equal size (the last may be shorter),
    /// at most `threads` chunks, each at least `grain` long. Returns when all chunks are done.
    /// A call made while the workers are busy (nested, or from another thread) runs inline.
    public func parallelFor(_ count: Int, grain: Int = 1, _ body: (Range<Int>) -> Void) {
        guard count > 0 else { return }
        let chunks = min(threads, max(1, count / max(grain, 1)))
        let size = (count + chunks - 1) / chunks
        if chunks == 1 {
            body(0..<count)
            return
        }
        let group = WorkerGroup.shared(workers: threads - 1)
        withoutActuallyEscaping(body) { body in
            let ran = group.run(chunks: chunks) { chunk in
                let start = chunk * size
                let end = min(count, start + size)
                if start < end { body(start..<end) }
            }
            if !ran {
                for chunk in 0..<chunks {
                    let start = chunk * size
                    let end = min(count, start + size)
                    if start < end { body(start..<end) }
                }
            }
        }
    }
}

/// Persistent worker threads shared by every pool of the same size.
final class WorkerGroup: @unchecked Sendable {
    // @unchecked: `job` is written only by the thread holding `busy`, before `generation` is
    // published with release ordering, and read by workers after an acquiring load of it.
    let workers: Int
    private let generation = Atomic<Int>(0)
    private let remaining = Atomic<Int>(0)
    private let busy = Atomic<Bool>(false)
    private var job: ((Int) -> Void)?
    private var chunks = 0
    private let asleep: [Flag]
    private let wake: [DispatchSemaphore]

    private static let groups = Mutex<[Int: WorkerGroup]>([:])

    static func shared(workers: Int) -> WorkerGroup {
        groups.withLock { groups in
            if let g = groups[workers] { return g }
            let g = WorkerGroup(workers: workers)
            groups[workers] = g
            return g
        }
    }

    private init(workers: Int) {
        self.workers = workers
        asleep = (0..<workers).map { _ in Flag() }
        wake = (0..<workers).map { _ in DispatchSemaphore(value: 0) }
        for i in 0..<workers {
            let thread = Thread { [self] in self.loop(worker: i) }
            thread.stackSize = 1 << 20
            thread.start()
        }
    }

    /// Runs chunk 0 on the caller and chunk i on worker i − 1; false if the group was busy.
    func run(chunks: Int, _ body: @escaping (Int) -> Void) -> Bool {
        guard chunks - 1 <= workers, busy.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged else {
            return false
        }
        job = body
        self.chunks = chunks
        remaining.store(chunks - 1, ordering: .relaxed)
        generation.add(1, ordering: .sequentiallyConsistent)
        for i in 0..<(chunks - 1) where asleep[i].value.exchange(false, ordering: .sequentiallyConsistent) {
            wake[i].signal()
        }
        body(0)
        while remaining.load(ordering: .acquiring) > 0 {}
        job = nil
        busy.store(false, ordering: .releasing)
        return true
    }

    private func loop(worker i: Int) {
        var seen = 0
        let clock = ContinuousClock()
        while true {
            // Spin for up to ~200 µs (the gap between two products of a decode step), then sleep.
            var spins = 0
            var deadline: ContinuousClock.Instant?
            while generation.load(ordering: .acquiring) == seen {
                spins += 1
                if spins & 1023 == 0 {
                    let now = clock.now
                    if deadline == nil { deadline = now + .microseconds(200) }
                    if let d = deadline, now > d {
                        // Store then load, against the submitter's add then exchange: both sides
                        // need sequential consistency, or (x86 lets a store pass a later load)
                        // the worker can sleep on a stale generation while the submitter sees
                        // the flag still false and never signals — a hang seen in decoding.
                        asleep[i].value.store(true, ordering: .sequentiallyConsistent)
                        if generation.load(ordering: .sequentiallyConsistent) == seen {
                            wake[i].wait()
                        } else if !asleep[i].value.exchange(false, ordering: .acquiringAndReleasing) {
                            wake[i].wait() // the submitter already signalled: consume it
                        }
                        deadline = nil
                        spins = 0
                    }
                }
            }
            seen = generation.load(ordering: .acquiring)
            if i + 1 < chunks, let job { job(i + 1) }
            if i + 1 < chunks { remaining.subtract(1, ordering: .releasing) }
        }
    }
}

/// A boolean that can live in an array (Atomic itself cannot be copied into one).
final class Flag: Sendable {
    let value = Atomic<Bool>(false)
}
