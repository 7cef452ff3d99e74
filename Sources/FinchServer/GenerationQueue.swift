import Foundation
import Hummingbird

/// First-come, first-served access to the model: one generation at a time (no continuous
/// batching), on one dedicated thread, so the blocking decode loop never runs on an event loop or
/// on Swift's cooperative pool. At most `capacity` jobs wait behind the running one.
final class GenerationQueue: @unchecked Sendable {
    // @unchecked: every mutable member is guarded by `condition`.
    private let condition = NSCondition()
    private var waiting: [GenerationJob] = []
    private var running: GenerationJob?
    private var stopping = false
    /// Jobs that may wait behind the running one.
    let capacity: Int

    init(capacity: Int) {
        self.capacity = capacity
        let thread = Thread { [self] in self.workLoop() }
        thread.name = "finch-generation"
        thread.stackSize = 8 << 20
        thread.start()
    }

    /// What the queue holds now.
    struct Status: Sendable, Equatable {
        var generating: Bool
        var waiting: Int
        var stopping: Bool
    }

    var status: Status {
        condition.lock()
        defer { condition.unlock() }
        return Status(generating: running != nil, waiting: waiting.count, stopping: stopping)
    }

    /// Queues `job` behind the others; throws 429 when `capacity` jobs already wait, 503 when
    /// the server is stopping.
    func submit(_ job: GenerationJob) throws(APIError) {
        condition.lock()
        defer { condition.unlock() }
        guard !stopping else {
            throw APIError(.serviceUnavailable, "The server is shutting down.", type: "server_error", code: "shutting_down")
        }
        // A job arriving at an idle model does not wait; otherwise it takes a waiting place.
        let idle = running == nil && waiting.isEmpty
        guard idle || waiting.count < capacity else {
            throw APIError(.tooManyRequests, "The server is busy: \(waiting.count) requests are already waiting for the model (--max-queue \(capacity)). Retry later.",
                           type: "rate_limit_error", code: "queue_full", headers: [.retryAfter: "1"])
        }
        waiting.append(job)
        condition.signal()
    }

    /// Cancels `job`: a waiting job leaves the queue at once (its stream ends), a running one
    /// stops before its next forward pass.
    func cancel(_ job: GenerationJob, _ reason: GenerationJob.CancelReason) {
        guard job.markCancelled(reason) else { return }
        condition.lock()
        let index = waiting.firstIndex { $0 === job }
        if let index { waiting.remove(at: index) }
        condition.unlock()
        if index != nil { job.abandon() }
    }

    /// Refuses new jobs and cancels every queued and running one (SIGINT/SIGTERM).
    func shutdown() {
        condition.lock()
        stopping = true
        let all = waiting + (running.map { [$0] } ?? [])
        condition.unlock()
        for job in all { cancel(job, .shutdown) }
    }

    private func workLoop() {
        while true {
            condition.lock()
            while waiting.isEmpty { condition.wait() }
            let job = waiting.removeFirst()
            running = job
            condition.unlock()
            job.run()
            condition.lock()
            running = nil
            condition.unlock()
        }
    }
}
