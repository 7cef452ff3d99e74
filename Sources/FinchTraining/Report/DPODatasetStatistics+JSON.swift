import FinchFormats

/// The statistics as JSON for `run.json` (the report's dataset table).
extension DPODatasetStatistics {
    /// Counts, mean tokens per pair and `{min, median, max}` token lengths.
    public var jsonValue: JSONValue {
        .object([
            ("pairs", .number(String(pairs))), ("dropped", .number(String(dropped))), ("truncated", .number(String(truncated))),
            ("mean_tokens_per_pair", .number(String(format: "%.1f", meanTokensPerPair))),
            ("tokens", .object([("prompt", prompt.jsonValue), ("chosen", chosen.jsonValue), ("rejected", rejected.jsonValue),
                                ("sequence", sequence.jsonValue)])),
        ])
    }
}

extension DPODatasetStatistics.LengthSummary {
    /// `{"min", "median", "max"}`.
    public var jsonValue: JSONValue {
        .object([("min", .number(String(min))), ("median", .number(median.rounded() == median ? String(Int(median)) : String(median))),
                 ("max", .number(String(max)))])
    }
}

extension DataLoadReport {
    /// The file, its format and row counts.
    public var jsonValue: JSONValue {
        .object([("path", .string(path)), ("format", .string("\(format.rawValue), \(schema.rawValue)")), ("rows", .number(String(rows))),
                 ("skipped", .number(String(skipped.count))), ("identical_chosen_rejected", .number(String(identicalPairs.count)))])
    }
}
