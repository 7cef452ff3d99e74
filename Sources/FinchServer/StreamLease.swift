/// Ties a streamed response's generation to the life of its response body. The body closure runs
/// only once the response head is written; if the connection fails before that, Hummingbird drops
/// the body unrun, and this lease's deinit still cancels the generation (which would otherwise
/// hold the model until its timeout) and writes the request's log line.
final class StreamLease: @unchecked Sendable {
    // @unchecked: `record` and `status` are used by the body closure, one step at a time, and
    // then by deinit, never at once.
    let server: ModelServer
    let job: GenerationJob
    let timer: Task<Void, Never>
    var record: RequestRecord
    /// 499 until the body starts (the client went away before the response head was written).
    var status = 499

    init(server: ModelServer, job: GenerationJob, timer: Task<Void, Never>, record: RequestRecord) {
        self.server = server
        self.job = job
        self.timer = timer
        self.record = record
        self.record.note = "client gone before the response began"
    }

    /// Called when the body closure starts writing.
    func begin() {
        status = 200
        record.note = nil
    }

    deinit {
        server.queue.cancel(job, .clientGone) // nothing happens if the job has finished
        timer.cancel()
        server.logRequest(record, status: status)
    }
}
