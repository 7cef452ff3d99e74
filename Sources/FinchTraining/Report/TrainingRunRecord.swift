import FinchFormats
import Foundation

/// `run.json` in a run folder: what the report and `finch runs` need beyond `config.json` and
/// `metrics.jsonl` — the kind of run, the dataset statistics, and one session per process that
/// trained in the folder (the first run, then each `--resume`) with its steps, timing, tokens,
/// peak memory and how it ended. The trainer rewrites it (atomically) at every logged step, so
/// a killed run's record is at most one logging window old.
public struct TrainingRunRecord: Sendable {
    public static let fileName = "run.json"

    /// How a session ended (`running` while it trains, and forever if it was killed).
    public enum Status: String, Sendable, CaseIterable {
        case running, finished, interrupted, failed
    }

    /// One process's part of the run.
    public struct Session: Sendable {
        /// When the process started (model load included) and when the record was last written.
        public var started: Date
        public var updated: Date
        /// The optimizer step the session started at (0, or the checkpoint it resumed from) and
        /// the last step it reached.
        public var startStep: Int
        public var step: Int
        /// Seconds in the training loop (steps, evaluations, checkpoints), tokens read and
        /// examples (pairs or sequences) trained on in them.
        public var trainingSeconds: Double
        public var tokens: Int
        public var examples: Int
        /// `VmHWM` of the process at the last update.
        public var peakResidentBytes: Int?
        public var host: String
        public var pid: Int
        public var status: Status
        /// The one-line error of a failed session.
        public var error: String?

        public init(started: Date, startStep: Int, host: String, pid: Int) {
            self.started = started
            updated = started
            self.startStep = startStep
            step = startStep
            trainingSeconds = 0
            tokens = 0
            examples = 0
            self.host = host
            self.pid = pid
            status = .running
        }
    }

    /// `dpo` or `sft`.
    public var kind: String
    /// The model argument as given (a path or a known name).
    public var model: String
    /// The training file.
    public var dataset: String
    /// Optimizer steps of the whole plan.
    public var maxSteps: Int
    /// What an example is: `pairs` (DPO) or `sequences` (SFT).
    public var unit: String
    /// Dataset statistics (files read, tokenization counts and lengths), shown as a table.
    public var datasetStatistics: JSONValue
    public var sessions: [Session]

    public init(kind: String, model: String, dataset: String, maxSteps: Int, unit: String, datasetStatistics: JSONValue,
                sessions: [Session] = []) {
        self.kind = kind
        self.model = model
        self.dataset = dataset
        self.maxSteps = maxSteps
        self.unit = unit
        self.datasetStatistics = datasetStatistics
        self.sessions = sessions
    }

    /// The last session's status.
    public var status: Status? { sessions.last?.status }

    static func timestamp(_ date: Date) -> String {
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return f.string(from: date)
    }

    static func date(_ text: String) -> Date? {
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        if let d = f.date(from: text) { return d }
        f.formatOptions = [.withInternetDateTime]
        return f.date(from: text)
    }

    /// The file's JSON, as ``init(contentsOf:)`` reads it back.
    public var json: JSONValue {
        func session(_ s: Session) -> JSONValue {
            var m: [(String, JSONValue)] = [
                ("started", .string(Self.timestamp(s.started))), ("updated", .string(Self.timestamp(s.updated))),
                ("start_step", .number(String(s.startStep))), ("step", .number(String(s.step))),
                ("training_seconds", .number(String(s.trainingSeconds.isFinite ? s.trainingSeconds : 0))),
                ("tokens", .number(String(s.tokens))), ("examples", .number(String(s.examples))),
                ("peak_rss_bytes", s.peakResidentBytes.map { .number(String($0)) } ?? .null),
                ("host", .string(s.host)), ("pid", .number(String(s.pid))), ("status", .string(s.status.rawValue)),
            ]
            if let e = s.error { m.append(("error", .string(e))) }
            return .object(m)
        }
        return .object([
            ("kind", .string(kind)), ("model", .string(model)), ("dataset", .string(dataset)),
            ("max_steps", .number(String(maxSteps))), ("unit", .string(unit)),
            ("dataset_statistics", datasetStatistics), ("sessions", .array(sessions.map(session))),
        ])
    }

    /// Reads `run.json`; errors name the file and the field.
    public init(contentsOf path: String) throws {
        let json = try JSONValue.parse(contentsOf: path)
        func fail(_ field: String, _ what: String) -> TrainingError { TrainingError(path, "\(field): \(what)") }
        func string(_ v: JSONValue?, _ field: String) throws -> String {
            guard let s = v?.stringValue else { throw fail(field, "expected a string") }
            return s
        }
        func int(_ v: JSONValue?, _ field: String) throws -> Int {
            guard let i = v?.intValue else { throw fail(field, "expected an integer") }
            return i
        }
        guard json.objectValue != nil else { throw TrainingError(path, "expected a JSON object") }
        kind = try string(json["kind"], "kind")
        model = try string(json["model"], "model")
        dataset = try string(json["dataset"], "dataset")
        maxSteps = try int(json["max_steps"], "max_steps")
        unit = try string(json["unit"], "unit")
        datasetStatistics = json["dataset_statistics"] ?? .null
        guard let list = json["sessions"]?.arrayValue else { throw fail("sessions", "expected a list") }
        sessions = try list.enumerated().map { i, s in
            let field = "sessions[\(i)]"
            guard let started = Self.date(try string(s["started"], field + ".started")) else { throw fail(field + ".started", "not an ISO 8601 time") }
            let statusText = try string(s["status"], field + ".status")
            guard let status = Status(rawValue: statusText) else {
                throw fail(field + ".status", "'\(statusText)' is not one of \(Status.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            var session = Session(started: started, startStep: try int(s["start_step"], field + ".start_step"),
                                  host: s["host"]?.stringValue ?? "", pid: s["pid"]?.intValue ?? 0)
            session.updated = s["updated"]?.stringValue.flatMap(Self.date) ?? started
            session.step = try int(s["step"], field + ".step")
            session.trainingSeconds = s["training_seconds"]?.doubleValue ?? 0
            session.tokens = s["tokens"]?.intValue ?? 0
            session.examples = s["examples"]?.intValue ?? 0
            session.peakResidentBytes = s["peak_rss_bytes"]?.intValue
            session.status = status
            session.error = s["error"]?.stringValue
            return session
        }
    }

    /// Writes `run.json` into `folder` atomically.
    public func write(toFolder folder: String) throws {
        try AtomicFile.write(Array((json.compactText + "\n").utf8), to: (folder as NSString).appendingPathComponent(Self.fileName))
    }
}
