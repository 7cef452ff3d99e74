import FinchCore
import FinchFormats
import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A training run as its folder records it — `metrics.jsonl`, `config.json`, `run.json`, the
/// checkpoints' `trainer_state.json` and, when an evaluation ran, `evaluation.json` — and the
/// self-contained `report.html` made from it (`TrainingReport+HTML.swift`).
///
/// `finch dpo`/`finch sft` write the report at every checkpoint and when the run ends (finished,
/// failed or interrupted); `finch report` and anything that adds to the folder afterwards (the
/// quickstart's evaluation) call ``write(runFolder:to:)`` again.
public struct TrainingReport: Sendable {
    /// The page's name in the run folder, and the files it reads besides `run.json`,
    /// `evaluation.json` and the checkpoints.
    public static let fileName = "report.html"
    public static let metricsFile = "metrics.jsonl"
    public static let configFile = "config.json"

    /// What became of a run, as `finch runs` shows it.
    public enum Status: String, Sendable {
        /// Trained to the end (the adapter is in the folder).
        case finished
        /// A live process on this machine is training it.
        case running
        /// Stopped before the end with a checkpoint to continue from (`--resume`).
        case resumable
        /// Stopped before the end with no checkpoint.
        case interrupted
        /// Stopped by an error (the record says which).
        case failed
    }

    /// The trainer: `finch dpo` or `finch sft`.
    public enum Kind: String, Sendable { case dpo, sft }

    /// The run folder.
    public var folder: String
    /// From `run.json`; for older folders, DPO when the config has `beta` or the metrics have rewards.
    public var kind: Kind
    /// Every logged record, training and evaluation (`eval_*` keys), in file order.
    public var metrics: [TrainingLogRecord]
    /// `config.json` (the resolved settings), if present.
    public var config: JSONValue?
    /// `run.json`, if present (runs written before it existed have none).
    public var record: TrainingRunRecord?
    /// `evaluation.json`, if present.
    public var evaluation: EvaluationSummary?
    /// Complete checkpoints, oldest first.
    public var checkpoints: [(step: Int, path: String)]
    /// The plan's total steps (from `run.json`, else the newest `trainer_state.json`, else `config.json`'s `max_steps` when positive).
    public var maxSteps: Int?
    /// What became of the run (see ``Status``).
    public var status: Status
    /// TensorBoard event files in the folder.
    public var eventFiles: [String]

    /// Reads a run folder. Throws when the folder or its metrics are missing, and when a file that
    /// is present cannot be read; every message names the file (and line or field).
    public init(runFolder: String) throws {
        folder = runFolder
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: runFolder, isDirectory: &isDirectory) else {
            throw TrainingError(runFolder, "no such run folder")
        }
        guard isDirectory.boolValue else { throw TrainingError(runFolder, "not a folder (a run folder holds metrics.jsonl, config.json, run.json)") }
        func file(_ name: String) -> String { (runFolder as NSString).appendingPathComponent(name) }
        func exists(_ name: String) -> Bool { FileManager.default.fileExists(atPath: file(name)) }

        checkpoints = LoRATrainer.checkpoints(in: runFolder)
        eventFiles = TensorBoardEventWriter.eventFiles(in: runFolder)
        record = exists(TrainingRunRecord.fileName) ? try TrainingRunRecord(contentsOf: file(TrainingRunRecord.fileName)) : nil
        config = exists(Self.configFile) ? try JSONValue.parse(contentsOf: file(Self.configFile)) : nil
        if let config, config.objectValue == nil { throw TrainingError(file(Self.configFile), "expected a JSON object") }
        evaluation = exists(EvaluationSummary.fileName) ? try EvaluationSummary(contentsOf: file(EvaluationSummary.fileName)) : nil

        var state: JSONValue?
        if let newest = checkpoints.last {
            let path = (newest.path as NSString).appendingPathComponent(LoRATrainer.stateFile)
            state = try JSONValue.parse(contentsOf: path)
        }
        if exists(Self.metricsFile) {
            metrics = try Self.readMetrics(file(Self.metricsFile))
        } else if let history = state?["log_history"]?.arrayValue {
            metrics = history.compactMap(Self.logRecord)
        } else {
            throw TrainingError(file(Self.metricsFile), "missing: \(runFolder) is not a Finch run folder (no metrics.jsonl, no checkpoint)")
        }
        let configSteps = config?["max_steps"]?.intValue.flatMap { $0 > 0 ? $0 : nil }
        let plannedSteps = record?.maxSteps ?? state?["max_steps"]?.intValue ?? configSteps
        maxSteps = plannedSteps

        if let k = record.flatMap({ Kind(rawValue: $0.kind) }) {
            kind = k
        } else if config?["beta"] != nil || metrics.contains(where: { $0["rewards/margins"] != nil }) {
            kind = .dpo
        } else {
            kind = .sft
        }

        let lastTrainingStep = metrics.last(where: { $0["loss"] != nil })?.step ?? 0
        let adapterSaved = exists(PEFTAdapterFolder.weightsFile)
        let newestCheckpoint = checkpoints.last?.step
        let resumable = newestCheckpoint.map { step in plannedSteps.map { step < $0 } ?? true } ?? false
        switch record?.sessions.last {
        case let session? where session.status == .finished: status = .finished
        case let session? where session.status == .running && Self.isAlive(session): status = .running
        case let session? where session.status == .failed: status = resumable ? .resumable : .failed
        case .some: status = resumable ? .resumable : .interrupted
        case nil:
            // No run.json: judge by the files.
            if adapterSaved, plannedSteps.map({ lastTrainingStep >= $0 }) ?? true { status = .finished } else { status = resumable ? .resumable : .interrupted }
        }
    }

    /// Whether the session's process still runs here.
    static func isAlive(_ session: TrainingRunRecord.Session) -> Bool {
        guard session.pid > 0, session.host == TensorBoardEventWriter.hostname() else { return false }
        if session.pid == Int(getpid()) { return true }
        return kill(pid_t(session.pid), 0) == 0 || errno == EPERM
    }

    /// The records of a `metrics.jsonl` file; a bad line is an error naming the file and line.
    public static func readMetrics(_ path: String) throws -> [TrainingLogRecord] {
        guard let data = FileManager.default.contents(atPath: path) else { throw TrainingError(path, "cannot read the file") }
        guard let text = String(data: data, encoding: .utf8) else { throw TrainingError(path, "not valid UTF-8") }
        var records: [TrainingLogRecord] = []
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        for (i, line) in lines.enumerated() {
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if trimmed.isEmpty { continue }
            let location = "\(path):\(i + 1)"
            let value: JSONValue
            do {
                value = try JSONValue.parse(trimmed, path: location)
            } catch {
                // The last line of a killed run may be cut short; anything else is damage.
                if i == lines.count - 1, !text.hasSuffix("\n") { break }
                throw TrainingError(location, "not a JSON object: \(error)")
            }
            guard value.objectValue != nil else { throw TrainingError(location, "expected a JSON object") }
            guard let record = logRecord(value) else { throw TrainingError(location, "'step' is missing or not an integer") }
            records.append(record)
        }
        return records
    }

    static func logRecord(_ value: JSONValue) -> TrainingLogRecord? {
        guard let members = value.objectValue, let step = value["step"]?.intValue else { return nil }
        return TrainingLogRecord(step: step, values: members.compactMap { key, v in
            guard key != "step" else { return nil }
            if v.isNull { return (key, .nan) }
            return v.doubleValue.map { (key, $0) }
        })
    }

    /// Training records (those with a `loss`), and evaluation records (with `eval_loss`).
    public var trainingRecords: [TrainingLogRecord] { metrics.filter { $0["loss"] != nil } }
    public var evaluationRecords: [TrainingLogRecord] { metrics.filter { $0.values.contains { $0.0.hasPrefix("eval_") } } }

    /// The last logged value of `key` (non-finite values skipped).
    public func last(_ key: String) -> Double? {
        for r in metrics.reversed() { if let v = r[key], v.isFinite { return v } }
        return nil
    }

    /// The last step any record logged.
    public var lastStep: Int { metrics.map(\.step).max() ?? 0 }

    /// When the run started (the first session), else the folder's metrics file date.
    public var startDate: Date? {
        if let s = record?.sessions.first?.started { return s }
        let path = (folder as NSString).appendingPathComponent(Self.metricsFile)
        return (try? FileManager.default.attributesOfItem(atPath: path))?[.modificationDate] as? Date
    }

    /// Writes `report.html` for `runFolder` (atomically) and returns its path; `path` overrides
    /// where it goes.
    @discardableResult
    public static func write(runFolder: String, to path: String? = nil) throws -> String {
        let report = try TrainingReport(runFolder: runFolder)
        let destination = path ?? (runFolder as NSString).appendingPathComponent(fileName)
        try AtomicFile.write(Array(report.html().utf8), to: destination)
        return destination
    }
}

extension TrainingReport {
    /// The run folders at or under `directory` (folders holding `metrics.jsonl` or `run.json`),
    /// searched `depth` levels deep, skipping checkpoints and hidden folders; sorted by path.
    public static func runFolders(under directory: String, depth: Int = 3) -> [String] {
        let fm = FileManager.default
        func isRun(_ path: String) -> Bool {
            fm.fileExists(atPath: (path as NSString).appendingPathComponent(metricsFile))
                || fm.fileExists(atPath: (path as NSString).appendingPathComponent(TrainingRunRecord.fileName))
        }
        if isRun(directory) { return [directory] }
        guard depth > 0 else { return [] }
        let names = ((try? fm.contentsOfDirectory(atPath: directory)) ?? []).sorted()
        return names.flatMap { name -> [String] in
            guard !name.hasPrefix("."), !name.hasPrefix("checkpoint-") else { return [] }
            let path = (directory as NSString).appendingPathComponent(name)
            var isDirectory: ObjCBool = false
            guard fm.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue else { return [] }
            return runFolders(under: path, depth: depth - 1)
        }
    }

    /// The final values `finch runs` shows for this kind of run (DPO: reward accuracy and
    /// margin; SFT: mean token accuracy), with their keys.
    public var keyMetrics: [(key: String, value: Double)] {
        let keys = kind == .dpo ? ["rewards/accuracies", "rewards/margins"] : ["mean_token_accuracy"]
        return keys.compactMap { k in trainingRecords.last?[k].map { (k, $0) } }
    }
}
