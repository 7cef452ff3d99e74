import Foundation

/// What tokenization did to an SFT dataset: sequences kept, dropped and truncated, token lengths
/// and how many tokens take loss (printed by `finch sft --dry-run`).
public struct SFTDatasetStatistics: Sendable, Equatable {
    public typealias LengthSummary = DPODatasetStatistics.LengthSummary

    /// Sequences kept.
    public var sequences: Int
    /// Examples dropped because truncation left no token with a label (TRL 1.16 filters them).
    public var droppedLocations: [String]
    /// Kept sequences cut to `max_length`.
    public var truncated: Int
    /// Tokens per sequence after truncation.
    public var length: LengthSummary
    /// Tokens with a label per sequence.
    public var labeled: LengthSummary
    public var totalTokens: Int
    public var labeledTokens: Int
    /// The loss masks in effect: TRL's `completion_only_loss` as resolved for this dataset, and
    /// `assistant_only_loss`.
    public var completionOnlyLoss: Bool
    public var assistantOnlyLoss: Bool

    public var dropped: Int { droppedLocations.count }

    public init(sequences: [SFTSequence], droppedLocations: [String], completionOnlyLoss: Bool, assistantOnlyLoss: Bool) {
        self.sequences = sequences.count
        self.droppedLocations = droppedLocations
        truncated = sequences.filter(\.isTruncated).count
        length = LengthSummary(sequences.map(\.count))
        labeled = LengthSummary(sequences.map(\.labeledTokenCount))
        totalTokens = sequences.reduce(0) { $0 + $1.count }
        labeledTokens = sequences.reduce(0) { $0 + $1.labeledTokenCount }
        self.completionOnlyLoss = completionOnlyLoss
        self.assistantOnlyLoss = assistantOnlyLoss
    }

    public var description: String {
        let masks = [completionOnlyLoss ? "completion only" : nil, assistantOnlyLoss ? "assistant only" : nil].compactMap { $0 }
        var lines = ["\(sequences) sequences, \(dropped) dropped (no labeled token left), \(truncated) truncated; "
                     + "loss on \(masks.isEmpty ? "every token" : masks.joined(separator: ", "))",
                     "tokens (min / median / max): sequence \(length), labeled \(labeled); \(totalTokens) tokens, \(labeledTokens) labeled "
                     + "(\(totalTokens == 0 ? "0" : String(format: "%.1f", 100 * Double(labeledTokens) / Double(totalTokens)))%)"]
        if !droppedLocations.isEmpty {
            let shown = droppedLocations.prefix(5).joined(separator: ", ")
            lines.append("dropped: \(shown)\(droppedLocations.count > 5 ? ", …" : "")")
        }
        return lines.joined(separator: "\n")
    }
}
