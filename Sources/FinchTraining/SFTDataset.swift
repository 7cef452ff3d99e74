import FinchFormats
import Foundation

/// Which file columns hold each part of an SFT row (`--columns text=content,completion=answer`).
public struct SFTColumns: Sendable, Equatable {
    /// TRL's `dataset_text_field`.
    public var text = "text"
    public var prompt = "prompt"
    public var completion = "completion"
    /// A conversation; when the file has no such column, ShareGPT's `conversations` is read instead.
    public var messages = "messages"
    public var instruction = "instruction"
    public var input = "input"
    public var output = "output"

    public init() {}

    /// Columns renamed by `mapping` (role → file column): text, prompt, completion, messages,
    /// instruction, input, output; any other role is an error.
    public init(mapping: [String: String]) throws {
        try applyColumnMapping(mapping, to: &self, example: "text=content", roles: [
            ("text", \.text), ("prompt", \.prompt), ("completion", \.completion), ("messages", \.messages),
            ("instruction", \.instruction), ("input", \.input), ("output", \.output),
        ])
        explicitMessages = mapping["messages"] != nil
    }

    /// Parses `text=content,completion=answer` (the `--columns` flag).
    public init(parsing spec: String) throws {
        try self.init(mapping: try columnMapping(parsing: spec))
    }

    /// True when `messages` was renamed (then `conversations` is not tried).
    var explicitMessages = false
}

/// What loading an SFT dataset found: row counts, rows skipped (with `skipInvalid`), columns
/// nothing reads.
public struct SFTDataLoadReport: Sendable {
    public var path: String
    public var fileFormat: PreferenceFileFormat
    public var format: SFTExampleFormat
    /// Rows read (blank lines excluded), valid or not.
    public var rows: Int
    /// Rows left out because they are invalid (only with `skipInvalid`), with the reason.
    public var skipped: [(location: String, reason: String)] = []
    /// Columns of the file's first row that no part of the example reads (e.g. `id`, `tools`).
    public var ignoredColumns: [String] = []

    /// Rows that became examples.
    public var examples: Int { rows - skipped.count }

    /// A few lines for a person: counts, then the first skipped rows.
    public var description: String {
        var lines = ["\(path): \(rows) rows (\(fileFormat.rawValue), \(format.rawValue)), \(examples) examples, \(skipped.count) skipped"]
        lines += DataLoadReport.skippedLines(skipped)
        if !ignoredColumns.isEmpty { lines.append("  ignored columns: \(ignoredColumns.joined(separator: ", "))") }
        return lines.joined(separator: "\n")
    }
}

/// Reading SFT datasets (issue 8) from JSONL, JSON, CSV or TSV files with the readers of
/// ``PreferenceDataset`` (same line-numbered errors, same `skipInvalid`), and splitting them.
public enum SFTDataset {
    /// Reads the SFT examples of a file.
    ///
    /// The form comes from the first row (or from `format`), in the order TRL 1.16's `SFTTrainer`
    /// tests the columns: a `prompt` column means prompt-completion rows (strings, or message
    /// lists for conversations; `completion` required); else a `messages` column (or ShareGPT's
    /// `conversations`) means conversations; else a `text` column means plain text (so a
    /// tatsu-lab/alpaca file, which has `text` beside `instruction`/`input`/`output`, trains on
    /// its `text` as TRL would; pass `format: .alpaca` to read the instruction columns instead);
    /// else `instruction` and `output` (with `input` optional, null or "" for none) mean an
    /// Alpaca row. Every row must then have the same form.
    ///
    /// Messages are `{role, content}` objects with string values; ShareGPT's `{from, value}` is
    /// read as TRL's `maybe_convert_to_chatml` converts it (`from` → role, `value` → content;
    /// names like "human"/"gpt" are kept). Other message keys are not passed to the template.
    ///
    /// Invalid rows: malformed JSON/CSV, a missing field, an empty text/completion/output/
    /// instruction or message list, a value of the wrong type, invalid UTF-8. Without
    /// `skipInvalid` the first throws a ``TrainingError`` whose subject is `file:line` and whose
    /// reason starts with the field; with it they are left out and listed in the report.
    ///
    /// - Parameters:
    ///   - columns: role → column renames (`text`, `prompt`, `completion`, `messages`,
    ///     `instruction`, `input`, `output`); an unknown role is an error.
    ///   - format: the form to read, instead of deciding it from the first row.
    public static func load(path: String, columns: [String: String] = [:], format: SFTExampleFormat? = nil,
                            skipInvalid: Bool = false) throws -> (examples: [SFTExample], report: SFTDataLoadReport) {
        let columns = try SFTColumns(mapping: columns)
        let rowKeys = [columns.text, columns.prompt, columns.messages, "conversations", columns.instruction]
        let (fileFormat, rows) = try PreferenceFileReader.read(path: path, rowKeys: rowKeys)
        var builder = SFTRowBuilder(columns: columns, format: format)
        var report = SFTDataLoadReport(path: path, fileFormat: fileFormat, format: format ?? .text, rows: rows.count)
        let examples = try PreferenceFileReader.examples(of: rows, skipInvalid: skipInvalid, skipped: &report.skipped) { fields, location in
            try builder.example(fields, location: location)
        }
        report.format = builder.format ?? format ?? .text
        report.ignoredColumns = builder.ignoredColumns
        try PreferenceFileReader.requireExamples(examples.count, rows: rows.count, skipped: report.skipped, path: path, noun: "SFT examples")
        return (examples, report)
    }

    /// Splits examples into train and eval as ``PreferenceDataset/split(_:evalFraction:seed:)``
    /// does: `ceil(evalFraction · n)` examples drawn by a seeded shuffle go to eval, at least one
    /// stays in train, each split keeps the file order.
    public static func split(_ examples: [SFTExample], evalFraction: Double,
                             seed: UInt64) -> (train: [SFTExample], eval: [SFTExample]) {
        seededSplit(examples, evalFraction: evalFraction, seed: seed)
    }
}

/// Turns raw rows into SFT examples, holding the form the first row decided.
struct SFTRowBuilder {
    let columns: SFTColumns
    var format: SFTExampleFormat?
    /// The column read for conversations (`messages`, or `conversations` when only that exists).
    var messagesColumn: String
    var ignoredColumns: [String] = []
    var decided = false

    init(columns: SFTColumns, format: SFTExampleFormat?) {
        self.columns = columns
        self.format = format
        messagesColumn = columns.messages
    }

    mutating func example(_ fields: [(String, JSONValue)], location: String) throws -> SFTExample {
        func value(_ column: String) -> JSONValue? { fields.first { $0.0 == column }?.1 }
        func fail(_ field: String, _ problem: String) -> TrainingError { TrainingError(location, "\(field): \(problem)") }
        if !decided {
            try decide(fields, location: location)
            decided = true
        }
        guard let format else { throw fail("row", "no format") }
        if format != .promptCompletion, format != .conversationalPromptCompletion, value(columns.prompt).map({ !$0.isNull }) == true {
            throw fail(columns.prompt, "present on this row but not on the first row: a file holds one form (the first row is \(format.rawValue))")
        }
        func string(_ column: String, required: Bool = true, allowEmpty: Bool = false) throws -> String {
            guard let raw = value(column), !raw.isNull else {
                if !required { return "" }
                if value(column) != nil { throw fail(column, "null: expected a string") }
                throw fail(column, "missing (the first row has it; every row needs \(column))")
            }
            guard case .string(let s) = raw else { throw fail(column, "expected a string, found \(raw.typeName)") }
            if s.isEmpty, !allowEmpty {
                throw fail(column, "empty: every example needs a non-empty \(column) (or skip such rows with --skip-invalid)")
            }
            return s
        }
        func messages(_ column: String) throws -> [ChatMessage] {
            guard let raw = value(column), !raw.isNull else {
                if value(column) != nil { throw fail(column, "null: expected a list of {role, content} messages") }
                throw fail(column, "missing (the first row has it; every row needs \(column))")
            }
            guard let items = raw.arrayValue else {
                throw fail(column, "expected a list of {role, content} messages, found \(raw.typeName)"
                           + (format == .conversationalPromptCompletion ? " (the file's first row holds conversations)" : ""))
            }
            let list = try ChatMessage.list(items, field: column, location: location, shareGPT: true)
            if list.isEmpty { throw fail(column, "empty message list") }
            return list
        }
        switch format {
        case .text:
            return SFTExample(.text(try string(columns.text)), location: location)
        case .promptCompletion:
            if value(columns.prompt)?.arrayValue != nil {
                throw fail(columns.prompt, "is a list of messages, but the file's first row holds strings")
            }
            if value(columns.completion)?.arrayValue != nil {
                throw fail(columns.completion, "is a list of messages, but the prompt is a string (both must be strings or both conversations)")
            }
            return SFTExample(.promptCompletion(prompt: try string(columns.prompt, allowEmpty: true), completion: try string(columns.completion)),
                              location: location)
        case .conversationalPromptCompletion:
            if case .string? = value(columns.prompt) {
                throw fail(columns.prompt, "is a string, but the file's first row holds conversations (lists of {role, content} messages)")
            }
            let prompt = try messages(columns.prompt)
            if case .string? = value(columns.completion) {
                throw fail(columns.completion, "is a string, but the prompt is a list of messages (both must be strings or both conversations)")
            }
            return SFTExample(.conversationalPromptCompletion(prompt: prompt, completion: try messages(columns.completion)), location: location)
        case .messages:
            return SFTExample(.messages(try messages(messagesColumn)), location: location)
        case .alpaca:
            return SFTExample(.alpaca(instruction: try string(columns.instruction), input: try string(columns.input, required: false, allowEmpty: true),
                                      output: try string(columns.output)), location: location)
        }
    }

    /// Decides the form from the first row (unless given) and which columns nothing reads.
    mutating func decide(_ fields: [(String, JSONValue)], location: String) throws {
        let names = fields.map(\.0)
        if !columns.explicitMessages, !names.contains(columns.messages), names.contains("conversations") {
            messagesColumn = "conversations"
        }
        if format == nil {
            let prompt = fields.first { $0.0 == columns.prompt }?.1
            if let prompt {
                format = prompt.arrayValue != nil ? .conversationalPromptCompletion : .promptCompletion
            } else if names.contains(messagesColumn) {
                format = .messages
            } else if names.contains(columns.text) {
                format = .text
            } else if names.contains(columns.instruction) {
                format = .alpaca
            } else {
                throw TrainingError(location, "no SFT columns: expected text, prompt + completion, messages (or conversations), or "
                                    + "instruction + output (found columns: \(names.joined(separator: ", "))); rename with --columns, e.g. text=content")
            }
        } else if format == .promptCompletion || format == .conversationalPromptCompletion,
                  let prompt = fields.first(where: { $0.0 == columns.prompt })?.1 {
            // A forced prompt-completion form still follows the first row's strings or messages.
            format = prompt.arrayValue != nil ? .conversationalPromptCompletion : .promptCompletion
        }
        let used: Set<String> = switch format ?? .text {
        case .text: [columns.text]
        case .promptCompletion, .conversationalPromptCompletion: [columns.prompt, columns.completion]
        case .messages: [messagesColumn]
        case .alpaca: [columns.instruction, columns.input, columns.output]
        }
        ignoredColumns = names.filter { !used.contains($0) }
    }
}
