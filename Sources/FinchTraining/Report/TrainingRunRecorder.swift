import FinchCore
import FinchFormats
import Foundation

/// What a training process adds to its run folder besides `metrics.jsonl` and checkpoints: the
/// TensorBoard event file, `run.json` (its session: steps, timing, tokens, peak memory, how it
/// ended) and `report.html`. `finch dpo`/`finch sft` create one when the training loop starts,
/// pass it every logged record, and end it with the run's status.
public final class TrainingRunRecorder {
    public let folder: String
    public private(set) var record: TrainingRunRecord
    public let events: TensorBoardEventWriter
    private let startTokens: Int
    private let loopStart = Date()

    /// Starts a session at `startStep` (0, or the checkpoint step a resumed run continues from).
    /// A run starting from step 0 replaces the folder's earlier event files and sessions, as
    /// `metrics.jsonl` is replaced; a resumed run keeps them and opens a new event file.
    ///
    /// - Parameters:
    ///   - run: the run's kind, model, data, plan and dataset statistics (its sessions are ignored).
    ///   - started: when the process started (model load included in the wall time).
    ///   - tokensSeen: the trainer's `num_tokens` at the start.
    public init(folder: String, run: TrainingRunRecord, started: Date, startStep: Int, tokensSeen: Int) throws {
        self.folder = folder
        startTokens = tokensSeen
        var record = run
        record.sessions = []
        let path = (folder as NSString).appendingPathComponent(TrainingRunRecord.fileName)
        if startStep > 0, let previous = try? TrainingRunRecord(contentsOf: path) {
            // Sessions that reached past the checkpoint keep their counts; the report shows them all.
            record.sessions = previous.sessions
        }
        if startStep == 0 {
            for file in TensorBoardEventWriter.eventFiles(in: folder) { try? FileManager.default.removeItem(atPath: file) }
        }
        record.sessions.append(.init(started: started, startStep: startStep, host: TensorBoardEventWriter.hostname(), pid: Int(getpid())))
        self.record = record
        events = try TensorBoardEventWriter(directory: folder, resumingAfterStep: startStep > 0 ? startStep : nil)
        try record.write(toFolder: folder)
    }

    /// Logs one record (training or evaluation) to the event file and updates `run.json`.
    ///
    /// - Parameters:
    ///   - tokensSeen: the trainer's `num_tokens` now.
    ///   - examples: examples trained on in this session so far.
    public func log(_ entry: TrainingLogRecord, step: Int, tokensSeen: Int, examples: Int) throws {
        try events.append(entry)
        try update(step: step, tokensSeen: tokensSeen, examples: examples)
    }

    /// Updates this session's counters, timing and peak memory in `run.json`.
    public func update(step: Int, tokensSeen: Int, examples: Int, status: TrainingRunRecord.Status? = nil, error: String? = nil) throws {
        var session = record.sessions[record.sessions.count - 1]
        session.updated = Date()
        session.step = step
        session.trainingSeconds = Date().timeIntervalSince(loopStart)
        session.tokens = tokensSeen - startTokens
        session.examples = examples
        session.peakResidentBytes = ProcessMemory.peakResidentBytes()
        if let status { session.status = status }
        if let error { session.error = error }
        record.sessions[record.sessions.count - 1] = session
        try record.write(toFolder: folder)
    }

    /// Writes `report.html` if the folder has at least one logged training step; returns its
    /// path, or nil when there is nothing to report yet.
    @discardableResult
    public func writeReport() throws -> String? {
        let report = try TrainingReport(runFolder: folder)
        guard !report.trainingRecords.isEmpty else { return nil }
        let path = (folder as NSString).appendingPathComponent(TrainingReport.fileName)
        try AtomicFile.write(Array(report.html().utf8), to: path)
        return path
    }
}
