import FinchGeneration
import Foundation
import Synchronization

/// One request's turn at the model: it waits in the ``GenerationQueue``, runs on the worker
/// thread, and streams ``Event``s to the HTTP handler. Cancelling it (client gone, timeout,
/// shutdown) stops the generation before the next forward pass, or drops it from the queue.
final class GenerationJob: Sendable {
    enum CancelReason: Int, Sendable {
        case clientGone = 1, timeout, shutdown
    }

    enum Event: Sendable {
        /// The job reached the model (the queue wait is over).
        case started
        case text(String)
        case finished(GenerationSummary)
        case failed(String)
    }

    /// The blocking work, run on the worker thread; it streams text through `emit` and should
    /// stop when `job.isCancelled`.
    typealias Work = @Sendable (_ job: GenerationJob, _ emit: (String) -> Void) throws -> GenerationSummary

    let events: AsyncStream<Event>
    private let continuation: AsyncStream<Event>.Continuation
    private let work: Work
    private let reason = Atomic<Int>(0)
    private let cancelledAt = Mutex<ContinuousClock.Instant?>(nil)
    /// Seconds from the cancellation to the model being free again (nil if not cancelled while running).
    let releaseDelay = Mutex<Double?>(nil)

    init(work: @escaping Work) {
        (events, continuation) = AsyncStream.makeStream(of: Event.self, bufferingPolicy: .unbounded)
        self.work = work
    }

    var isCancelled: Bool { reason.load(ordering: .relaxed) != 0 }
    var cancelReason: CancelReason? { CancelReason(rawValue: reason.load(ordering: .relaxed)) }

    /// Marks the job cancelled (the first reason wins); the queue drops it if it is still waiting.
    /// Returns true if this call cancelled it.
    @discardableResult
    func markCancelled(_ why: CancelReason) -> Bool {
        let (exchanged, _) = reason.compareExchange(expected: 0, desired: why.rawValue, ordering: .relaxed)
        if exchanged { cancelledAt.withLock { $0 = ContinuousClock.now } }
        return exchanged
    }

    /// Runs the work on the calling (worker) thread and ends the event stream.
    func run() {
        continuation.yield(.started)
        do {
            let summary = try work(self) { continuation.yield(.text($0)) }
            if let at = cancelledAt.withLock({ $0 }) {
                let delay = ContinuousClock.now - at
                releaseDelay.withLock { $0 = Double(delay.components.seconds) + Double(delay.components.attoseconds) * 1e-18 }
            }
            continuation.yield(.finished(summary))
        } catch {
            continuation.yield(.failed("\(error)"))
        }
        continuation.finish()
    }

    /// Ends the event stream of a job that never ran (cancelled while queued).
    func abandon() {
        continuation.finish()
    }
}
