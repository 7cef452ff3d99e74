import FinchFormats

/// A before/after evaluation as `evaluation.json` in a run folder (issue 11), which the training
/// report renders:
///
/// ```json
/// {"split": "test",
///  "metrics": [{"name": "preference accuracy", "before": 0.41, "after": 0.83, "format": "percent"}, …],
///  "samples": [{"prompt": "…", "before": "…", "after": "…"}]}
/// ```
///
/// `format` is `percent` for a share in [0, 1] and `number` for anything else.
public struct EvaluationSummary: Sendable, Equatable {
    /// How a metric's values are shown.
    public enum Format: String, Sendable {
        case percent, number
    }

    /// One row of the before/after table.
    public struct Metric: Sendable, Equatable {
        public var name: String
        public var before: Double
        public var after: Double
        public var format: Format

        public init(name: String, before: Double, after: Double, format: Format) {
            self.name = name
            self.before = before
            self.after = after
            self.format = format
        }
    }

    /// One prompt with the replies before and after training.
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

    /// The data split evaluated ("test").
    public var split: String
    public var metrics: [Metric]
    public var samples: [Sample]

    public init(split: String = "test", metrics: [Metric], samples: [Sample]) {
        self.split = split
        self.metrics = metrics
        self.samples = samples
    }

    /// The JSON document (keys in the schema's order).
    public var json: JSONValue {
        func number(_ x: Double) -> JSONValue { x.isFinite ? .number("\(x)") : .null }
        return .object([
            ("split", .string(split)),
            ("metrics", .array(metrics.map {
                .object([("name", .string($0.name)), ("before", number($0.before)), ("after", number($0.after)),
                         ("format", .string($0.format.rawValue))])
            })),
            ("samples", .array(samples.map {
                .object([("prompt", .string($0.prompt)), ("before", .string($0.before)), ("after", .string($0.after))])
            })),
        ])
    }

    /// Reads the document back; errors name `path` and the field.
    public init(json: JSONValue, path: String) throws {
        func fail(_ what: String) -> FormatError { FormatError(path, what) }
        guard let split = json["split"]?.stringValue else { throw fail("'split' must be a string") }
        guard let metrics = json["metrics"]?.arrayValue else { throw fail("'metrics' must be an array") }
        guard let samples = json["samples"]?.arrayValue else { throw fail("'samples' must be an array") }
        self.split = split
        self.metrics = try metrics.enumerated().map { i, m in
            guard let name = m["name"]?.stringValue, let before = m["before"]?.doubleValue, let after = m["after"]?.doubleValue,
                  let format = m["format"]?.stringValue.flatMap(Format.init(rawValue:)) else {
                throw fail("metrics[\(i)] needs a string 'name', numbers 'before' and 'after', and 'format' percent or number")
            }
            return Metric(name: name, before: before, after: after, format: format)
        }
        self.samples = try samples.enumerated().map { i, s in
            guard let prompt = s["prompt"]?.stringValue, let before = s["before"]?.stringValue, let after = s["after"]?.stringValue else {
                throw fail("samples[\(i)] needs strings 'prompt', 'before' and 'after'")
            }
            return Sample(prompt: prompt, before: before, after: after)
        }
    }
}
