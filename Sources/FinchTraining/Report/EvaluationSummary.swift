import FinchFormats
import Foundation

/// `evaluation.json` in a run folder: the held-out evaluation before and after training (written
/// by `finch quickstart`), shown by the report as a before/after table and sample generations.
///
/// ```json
/// {"split": "test",
///  "metrics": [{"name": "preference accuracy", "before": 0.41, "after": 0.83, "format": "percent"}],
///  "samples": [{"prompt": "…", "before": "…", "after": "…"}]}
/// ```
/// `format` is `percent` (a fraction shown as a percentage; the change in points) or `number`
/// (the default). A `before` or `after` of `null` shows as a dash. Other keys are ignored.
public struct EvaluationSummary: Sendable, Equatable {
    public static let fileName = "evaluation.json"

    /// One row of the before/after table.
    public struct Metric: Sendable, Equatable {
        /// How the values show: `percent` (a fraction as a percentage) or `number`.
        public enum Format: String, Sendable { case percent, number }
        public var name: String
        public var before: Double?
        public var after: Double?
        public var format: Format

        public init(name: String, before: Double?, after: Double?, format: Format = .number) {
            self.name = name
            self.before = before
            self.after = after
            self.format = format
        }
    }

    /// One prompt with the base model's and the tuned model's generations.
    public struct Sample: Sendable, Equatable {
        public var prompt: String
        public var before: String
        public var after: String

        public init(prompt: String, before: String, after: String) {
            self.prompt = prompt
            self.before = before
            self.after = after
        }
    }

    /// The split evaluated (`test`).
    public var split: String?
    public var metrics: [Metric]
    public var samples: [Sample]

    public init(split: String? = "test", metrics: [Metric], samples: [Sample]) {
        self.split = split
        self.metrics = metrics
        self.samples = samples
    }

    /// Reads `evaluation.json`; errors name the file and the field (`metrics[1].after`).
    public init(contentsOf path: String) throws {
        try self.init(json: try JSONValue.parse(contentsOf: path), path: path)
    }

    /// Reads the document `json`; errors name `path` and the field.
    public init(json: JSONValue, path: String) throws {
        func fail(_ field: String, _ what: String) -> TrainingError { TrainingError(path, "\(field): \(what)") }
        guard json.objectValue != nil else { throw TrainingError(path, "expected a JSON object") }
        if let s = json["split"], !s.isNull {
            guard let text = s.stringValue else { throw fail("split", "expected a string") }
            split = text
        }
        let metricList = json["metrics"] ?? .array([])
        guard let metricItems = metricList.arrayValue else { throw fail("metrics", "expected a list") }
        metrics = try metricItems.enumerated().map { i, item in
            let field = "metrics[\(i)]"
            guard item.objectValue != nil else { throw fail(field, "expected an object") }
            guard let name = item["name"]?.stringValue else { throw fail(field + ".name", "expected a string") }
            func value(_ key: String) throws -> Double? {
                guard let v = item[key], !v.isNull else { return nil }
                guard let d = v.doubleValue else { throw fail("\(field).\(key)", "expected a number or null, got \(v.compactText)") }
                return d
            }
            var format = Metric.Format.number
            if let f = item["format"], !f.isNull {
                guard let text = f.stringValue, let parsed = Metric.Format(rawValue: text) else {
                    throw fail(field + ".format", "expected \"percent\" or \"number\", got \(f.compactText)")
                }
                format = parsed
            }
            return Metric(name: name, before: try value("before"), after: try value("after"), format: format)
        }
        let sampleList = json["samples"] ?? .array([])
        guard let sampleItems = sampleList.arrayValue else { throw fail("samples", "expected a list") }
        samples = try sampleItems.enumerated().map { i, item in
            let field = "samples[\(i)]"
            guard item.objectValue != nil else { throw fail(field, "expected an object") }
            func text(_ key: String) throws -> String {
                guard let s = item[key]?.stringValue else { throw fail("\(field).\(key)", "expected a string") }
                return s
            }
            return Sample(prompt: try text("prompt"), before: try text("before"), after: try text("after"))
        }
    }

    /// The file's JSON, as ``init(contentsOf:)`` reads it back.
    public var json: JSONValue {
        func number(_ x: Double?) -> JSONValue { x.map { $0.isFinite ? .number("\($0)") : .null } ?? .null }
        var members: [(String, JSONValue)] = []
        if let split { members.append(("split", .string(split))) }
        members.append(("metrics", .array(metrics.map {
            .object([("name", .string($0.name)), ("before", number($0.before)), ("after", number($0.after)), ("format", .string($0.format.rawValue))])
        })))
        members.append(("samples", .array(samples.map {
            .object([("prompt", .string($0.prompt)), ("before", .string($0.before)), ("after", .string($0.after))])
        })))
        return .object(members)
    }

    /// Writes `evaluation.json` into `folder` atomically.
    public func write(toFolder folder: String) throws {
        try AtomicFile.write(Array((json.compactText + "\n").utf8), to: (folder as NSString).appendingPathComponent(Self.fileName))
    }
}
