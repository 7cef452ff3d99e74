import FinchFormats

/// The statistics as JSON for `run.json` (the report's dataset table).
extension SFTDatasetStatistics {
    /// Counts, loss masks and `{min, median, max}` token lengths.
    public var jsonValue: JSONValue {
        .object([
            ("sequences", .number(String(sequences))), ("dropped", .number(String(dropped))), ("truncated", .number(String(truncated))),
            ("loss_on", .string([completionOnlyLoss ? "completion only" : nil, assistantOnlyLoss ? "assistant only" : nil]
                .compactMap { $0 }.joined(separator: ", ").nonEmpty ?? "every token")),
            ("tokens", .object([("sequence", length.jsonValue), ("labeled", labeled.jsonValue)])),
            ("total_tokens", .number(String(totalTokens))), ("labeled_tokens", .number(String(labeledTokens))),
        ])
    }
}

extension SFTDataLoadReport {
    /// The file, its format and row counts.
    public var jsonValue: JSONValue {
        .object([("path", .string(path)), ("format", .string("\(fileFormat.rawValue), \(format.rawValue)")), ("rows", .number(String(rows))),
                 ("skipped", .number(String(skipped.count)))])
    }
}

private extension String {
    var nonEmpty: String? { isEmpty ? nil : self }
}
