import Foundation

/// What tokenization did to a dataset: pairs kept, dropped and truncated, and token lengths
/// (printed by `finch dpo --dry-run`).
public struct DPODatasetStatistics: Sendable, Equatable {
    /// min / median / max of a list of lengths (the median of an even count is the mean of the
    /// two middle values, as numpy's).
    public struct LengthSummary: Sendable, Equatable, CustomStringConvertible {
        public var min: Int
        public var median: Double
        public var max: Int

        public init(_ lengths: [Int]) {
            let sorted = lengths.sorted()
            min = sorted.first ?? 0
            max = sorted.last ?? 0
            let n = sorted.count
            median = n == 0 ? 0 : n % 2 == 1 ? Double(sorted[n / 2]) : Double(sorted[n / 2 - 1] + sorted[n / 2]) / 2
        }

        public var description: String {
            let m = median.rounded() == median ? String(Int(median)) : String(median)
            return "\(min) / \(m) / \(max)"
        }
    }

    /// Pairs kept for training.
    public var pairs: Int
    /// Pairs dropped because their prompt alone reaches `max_length` (keep_start only, as TRL ≥ 1.9).
    public var dropped: Int
    /// Where the dropped pairs come from.
    public var droppedLocations: [String]
    /// Kept pairs with at least one truncated part.
    public var truncated: Int
    /// Token lengths of the kept pairs after truncation: the prompt (shared part), chosen and
    /// rejected completions, and whole sequences (prompt + completion, both sides).
    public var prompt: LengthSummary
    public var chosen: LengthSummary
    public var rejected: LengthSummary
    public var sequence: LengthSummary

    public init(pairs: [TokenizedPair], droppedLocations: [String]) {
        self.pairs = pairs.count
        dropped = droppedLocations.count
        self.droppedLocations = droppedLocations
        truncated = pairs.filter(\.isTruncated).count
        prompt = LengthSummary(pairs.map(\.prompt.count))
        chosen = LengthSummary(pairs.map(\.chosen.count))
        rejected = LengthSummary(pairs.map(\.rejected.count))
        let sequences = pairs.flatMap { [$0.chosenInputIDs.count, $0.rejectedInputIDs.count] }
        sequence = LengthSummary(sequences)
        meanTokensPerPair = pairs.isEmpty ? 0 : Double(sequences.reduce(0, +)) / Double(pairs.count)
    }

    /// Tokens the model reads per pair on average (both sequences, the prompt counted twice).
    public var meanTokensPerPair: Double

    public var description: String {
        var lines = ["\(pairs) pairs, \(dropped) dropped (prompt alone reaches max_length), \(truncated) truncated, "
                     + "\(String(format: "%.1f", meanTokensPerPair)) tokens per pair (prompt counted twice)",
                     "tokens (min / median / max): prompt \(prompt), chosen \(chosen), rejected \(rejected), sequence \(sequence)"]
        if !droppedLocations.isEmpty {
            let shown = droppedLocations.prefix(5).joined(separator: ", ")
            lines.append("dropped: \(shown)\(droppedLocations.count > 5 ? ", …" : "")")
        }
        return lines.joined(separator: "\n")
    }
}
