import FinchCore
import FinchFormats
import Foundation

/// Which file columns hold each part of a preference row (`--columns prompt=question,chosen=best`).
public struct PreferenceColumns: Sendable, Equatable {
    public var prompt = "prompt"
    public var chosen = "chosen"
    public var rejected = "rejected"
    /// The system prompt of Intel/orca_dpo_pairs-style rows.
    public var system = "system"
    /// The user question of Intel/orca_dpo_pairs-style rows (used when there is no prompt column).
    public var question = "question"

    public init() {}

    /// Columns renamed by `mapping` (role → file column); roles are `prompt`, `chosen`, `rejected`,
    /// `system` and `question`, any other key is an error.
    public init(mapping: [String: String]) throws {
        try applyColumnMapping(mapping, to: &self, example: "prompt=question,chosen=best", roles: [
            ("prompt", \.prompt), ("chosen", \.chosen), ("rejected", \.rejected), ("system", \.system), ("question", \.question),
        ])
    }

    /// Parses `prompt=question,chosen=best` (the `--columns` flag).
    public init(parsing spec: String) throws {
        try self.init(mapping: try columnMapping(parsing: spec))
    }
}

/// The shape of a dataset's rows, decided by its first row as TRL decides it.
public enum PreferenceSchema: String, Sendable, Equatable {
    /// prompt, chosen, rejected as strings.
    case standard
    /// prompt, chosen, rejected as message lists.
    case conversational
    /// chosen and rejected strings only; the prompt is their common prefix.
    case implicitStandard
    /// chosen and rejected conversations only; the prompt is their common first messages.
    case implicitConversational
    /// Intel/orca_dpo_pairs: system, question, chosen, rejected strings.
    case question
}

/// What loading a dataset found: row counts, rows skipped (with `skipInvalid`), pairs whose chosen
/// and rejected are identical, columns nothing reads.
public struct DataLoadReport: Sendable {
    public var path: String
    public var format: PreferenceFileFormat
    public var schema: PreferenceSchema
    /// Rows read (blank lines excluded), valid or not.
    public var rows: Int
    /// Rows left out because they are invalid (only with `skipInvalid`), with the reason.
    public var skipped: [(location: String, reason: String)] = []
    /// Rows whose chosen and rejected are identical. They are kept (TRL keeps them) but teach nothing.
    public var identicalPairs: [String] = []
    /// Columns of the file that no part of the pair reads (e.g. `id`, `tools`).
    public var ignoredColumns: [String] = []

    /// Rows that became examples.
    public var examples: Int { rows - skipped.count }

    /// A few lines for a person: counts, then the first skipped rows and identical pairs.
    public var description: String {
        var lines = ["\(path): \(rows) rows (\(format.rawValue), \(schema.rawValue)), \(examples) pairs, \(skipped.count) skipped, "
                     + "\(identicalPairs.count) with identical chosen and rejected"]
        lines += Self.skippedLines(skipped)
        if !identicalPairs.isEmpty {
            let shown = identicalPairs.prefix(5).joined(separator: ", ")
            lines.append("  identical chosen and rejected: \(shown)\(identicalPairs.count > 5 ? ", …" : "")")
        }
        if !ignoredColumns.isEmpty { lines.append("  ignored columns: \(ignoredColumns.joined(separator: ", "))") }
        return lines.joined(separator: "\n")
    }

    /// The first five skipped rows with their reasons, and how many more.
    static func skippedLines(_ skipped: [(location: String, reason: String)]) -> [String] {
        var lines = skipped.prefix(5).map { "  skipped \($0.location): \($0.reason)" }
        if skipped.count > 5 { lines.append("  … and \(skipped.count - 5) more skipped") }
        return lines
    }
}

/// Reading preference datasets (issue 7, item 1) and splitting them into train and eval.
public enum PreferenceDataset {
    /// Reads the preference pairs of a JSONL, JSON, CSV or TSV file.
    ///
    /// The schema comes from the first row, as in TRL: a `prompt` column means explicit prompts
    /// (strings, or message lists for conversations); else a `question` column means
    /// Intel/orca_dpo_pairs rows (`system` optional); else chosen and rejected alone, with an
    /// implicit prompt. Every row must then have the same schema and form.
    ///
    /// - Parameter skipInvalid: skip rows that are malformed, miss a field, have an empty chosen or
    ///   rejected, a value of the wrong type or invalid UTF-8, and list them in the report;
    ///   otherwise the first such row throws a ``TrainingError`` whose subject is `file:line` and
    ///   whose reason starts with the field.
    /// - Throws: ``TrainingError`` for an unreadable or malformed file, an invalid row (without
    ///   `skipInvalid`), or a dataset with no valid rows.
    public static func load(path: String, columns: PreferenceColumns = .init(),
                            skipInvalid: Bool = false) throws -> (examples: [PreferenceExample], report: DataLoadReport) {
        let (format, rows) = try PreferenceFileReader.read(path: path, rowKeys: [columns.chosen])
        var builder = ExampleBuilder(columns: columns)
        var report = DataLoadReport(path: path, format: format, schema: .standard, rows: rows.count)
        var identical: [String] = []
        let examples = try PreferenceFileReader.examples(of: rows, skipInvalid: skipInvalid, skipped: &report.skipped) { fields, location in
            let example = try builder.example(fields, location: location)
            if example.hasIdenticalCompletions { identical.append(location) }
            return example
        }
        report.identicalPairs = identical
        report.schema = builder.schema ?? .standard
        report.ignoredColumns = builder.ignoredColumns
        try PreferenceFileReader.requireExamples(examples.count, rows: rows.count, skipped: report.skipped, path: path, noun: "preference pairs")
        return (examples, report)
    }

    /// Splits examples into train and eval: `ceil(evalFraction · n)` examples drawn by a seeded
    /// shuffle (SplitMix64, Fisher–Yates) go to eval, at least one stays in train, and each
    /// split keeps the file order. `evalFraction ≤ 0` puts everything in train.
    public static func split(_ examples: [PreferenceExample], evalFraction: Double,
                             seed: UInt64) -> (train: [PreferenceExample], eval: [PreferenceExample]) {
        seededSplit(examples, evalFraction: evalFraction, seed: seed)
    }
}

/// Splits items into train and eval: `ceil(evalFraction · n)` items drawn by a seeded shuffle
/// (SplitMix64, Fisher–Yates) go to eval, at least one stays in train, and each split keeps the
/// input order. `evalFraction ≤ 0` puts everything in train.
func seededSplit<Item>(_ items: [Item], evalFraction: Double, seed: UInt64) -> (train: [Item], eval: [Item]) {
    let n = items.count
    guard evalFraction > 0, n > 1 else { return (items, []) }
    let evalCount = min(Int((evalFraction * Double(n)).rounded(.up)), n - 1)
    var order = Array(0..<n)
    var random = SplitMix64(seed: seed)
    for i in stride(from: n - 1, to: 0, by: -1) {
        let j = Int(random.next().multipliedFullWidth(by: UInt64(i + 1)).high)
        order.swapAt(i, j)
    }
    let evalIndices = Set(order.prefix(evalCount))
    var train: [Item] = [], eval: [Item] = []
    for (i, item) in items.enumerated() {
        if evalIndices.contains(i) { eval.append(item) } else { train.append(item) }
    }
    return (train, eval)
}

/// Turns raw rows into examples, holding the schema the first row decided.
struct ExampleBuilder {
    let columns: PreferenceColumns
    var schema: PreferenceSchema?
    var ignoredColumns: [String] = []

    init(columns: PreferenceColumns) { self.columns = columns }

    mutating func example(_ fields: [(String, JSONValue)], location: String) throws -> PreferenceExample {
        func value(_ column: String) -> JSONValue? { fields.first { $0.0 == column }?.1 }
        func fail(_ field: String, _ problem: String) -> TrainingError { TrainingError(location, "\(field): \(problem)") }
        let hasPrompt = value(columns.prompt) != nil
        let hasQuestion = value(columns.question) != nil
        let schema = try self.schema ?? Self.schema(fields, columns: columns, hasPrompt: hasPrompt, hasQuestion: hasQuestion, location: location)
        if self.schema == nil {
            self.schema = schema
            let used: Set<String> = switch schema {
            case .standard, .conversational: [columns.prompt, columns.chosen, columns.rejected]
            case .implicitStandard, .implicitConversational: [columns.chosen, columns.rejected]
            case .question: [columns.system, columns.question, columns.chosen, columns.rejected]
            }
            ignoredColumns = fields.map(\.0).filter { !used.contains($0) }
        }
        let conversational = schema == .conversational || schema == .implicitConversational
        func text(_ column: String, required: Bool = true) throws -> PreferenceText? {
            guard let raw = value(column) else {
                if required { throw fail(column, "missing (the first row has it; every row needs \(column))") }
                return nil
            }
            let parsed = try Self.preferenceText(raw, field: column, location: location)
            if parsed.isConversational != conversational {
                throw fail(column, conversational ? "is a string, but the file's first row holds conversations (lists of {role, content} messages)"
                                                  : "is a list of messages, but the file's first row holds strings")
            }
            return parsed
        }
        switch schema {
        case .standard, .conversational:
            let prompt = try text(columns.prompt)
            if case .messages(let m)? = prompt, m.isEmpty { throw fail(columns.prompt, "empty message list") }
            return try completions(prompt: prompt, system: nil, text: text, fail: fail, location: location)
        case .implicitStandard, .implicitConversational:
            if hasPrompt { throw fail(columns.prompt, "present on this row but not on the first row: a file holds one schema") }
            return try completions(prompt: nil, system: nil, text: text, fail: fail, location: location)
        case .question:
            if hasPrompt { throw fail(columns.prompt, "present on this row but not on the first row: a file holds one schema") }
            guard case .text(let question)? = try text(columns.question) else { throw fail(columns.question, "missing") }
            var system = ""
            if let raw = value(columns.system), !raw.isNull {
                guard case .string(let s) = raw else { throw fail(columns.system, "expected a string, found \(raw.typeName)") }
                system = s
            }
            return try completions(prompt: .text(question), system: system, text: text, fail: fail, location: location)
        }
    }

    func completions(prompt: PreferenceText?, system: String?, text: (String, Bool) throws -> PreferenceText?,
                     fail: (String, String) -> TrainingError, location: String) throws -> PreferenceExample {
        var parts: [PreferenceText] = []
        for column in [columns.chosen, columns.rejected] {
            guard let part = try text(column, true) else { throw fail(column, "missing") }
            if part.isEmpty {
                throw fail(column, "empty: every pair needs a non-empty chosen and rejected (or skip such rows with --skip-invalid)")
            }
            parts.append(part)
        }
        return PreferenceExample(prompt: prompt, chosen: parts[0], rejected: parts[1], system: system, location: location)
    }

    static func schema(_ fields: [(String, JSONValue)], columns: PreferenceColumns, hasPrompt: Bool, hasQuestion: Bool,
                       location: String) throws -> PreferenceSchema {
        let chosen = fields.first { $0.0 == columns.chosen }?.1
        guard let chosen else {
            throw TrainingError(location, "\(columns.chosen): missing (found columns: \(fields.map(\.0).joined(separator: ", ")); "
                                + "rename with --columns, e.g. chosen=best)")
        }
        let conversational = chosen.arrayValue != nil
        if hasPrompt { return conversational ? .conversational : .standard }
        if hasQuestion { return .question }
        return conversational ? .implicitConversational : .implicitStandard
    }

    /// A field's value as text or as a message list; `field` names it in errors.
    static func preferenceText(_ value: JSONValue, field: String, location: String) throws -> PreferenceText {
        func fail(_ field: String, _ problem: String) -> TrainingError { TrainingError(location, "\(field): \(problem)") }
        switch value {
        case .string(let s):
            return .text(s)
        case .array(let items):
            return .messages(try ChatMessage.list(items, field: field, location: location))
        case .null:
            throw fail(field, "null: expected a string or a list of {role, content} messages")
        default:
            throw fail(field, "expected a string or a list of {role, content} messages, found \(value.typeName)")
        }
    }
}

/// Sets the columns `mapping` names (role → file column) through `roles`; an empty column or a
/// role `roles` lacks is an error (`example` shows a valid mapping).
func applyColumnMapping<Columns>(_ mapping: [String: String], to columns: inout Columns, example: String,
                                 roles: [(String, WritableKeyPath<Columns, String>)]) throws {
    for (role, column) in mapping.sorted(by: { $0.key < $1.key }) {
        guard !column.isEmpty else { throw TrainingError("columns", "\(role)= needs a column name") }
        guard let path = roles.first(where: { $0.0 == role })?.1 else {
            let names = roles.map(\.0)
            throw TrainingError("columns", "unknown role \"\(role)\": use \(names.dropLast().joined(separator: ", ")) or \(names.last ?? "") (e.g. \(example))")
        }
        columns[keyPath: path] = column
    }
}

/// Parses `role=column,role=column` (the `--columns` flag of `finch dpo` and `finch sft`).
func columnMapping(parsing spec: String) throws -> [String: String] {
    var mapping: [String: String] = [:]
    for item in spec.split(separator: ",", omittingEmptySubsequences: true) {
        let parts = item.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
        guard parts.count == 2 else {
            throw TrainingError("columns", "\"\(item)\" is not role=column (e.g. prompt=question,chosen=best)")
        }
        let role = parts[0].trimmingCharacters(in: .whitespaces)
        guard mapping[role] == nil else { throw TrainingError("columns", "\(role) is mapped twice") }
        mapping[role] = parts[1].trimmingCharacters(in: .whitespaces)
    }
    return mapping
}

extension ChatMessage {
    /// The messages of a JSON array of `{role, content}` objects (string values; other keys are
    /// ignored). With `shareGPT`, `{from, value}` is accepted too and wins over role/content, as
    /// TRL's `maybe_convert_to_chatml` renames them. `field` names the array in errors.
    static func list(_ items: [JSONValue], field: String, location: String, shareGPT: Bool = false) throws -> [ChatMessage] {
        func fail(_ field: String, _ problem: String) -> TrainingError { TrainingError(location, "\(field): \(problem)") }
        var messages: [ChatMessage] = []
        for (i, item) in items.enumerated() {
            guard case .object = item else {
                throw fail("\(field)[\(i)]", "expected a {role, content} message, found \(item.typeName)")
            }
            var parts: [String] = []
            for (key, alias) in [("role", "from"), ("content", "value")] {
                let name = shareGPT && item[alias] != nil ? alias : key
                guard let part = item[name] else { throw fail("\(field)[\(i)].\(key)", "missing") }
                guard case .string(let s) = part else {
                    throw fail("\(field)[\(i)].\(name)", "expected a string, found \(part.typeName)")
                }
                parts.append(s)
            }
            messages.append(ChatMessage(role: parts[0], content: parts[1]))
        }
        return messages
    }
}
