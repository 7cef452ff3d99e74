/// Which end of a too-long sequence `max_length` keeps (TRL's `truncation_mode`).
public enum DPOTruncationMode: String, Sendable, Equatable, Codable {
    /// Keep the first `max_length` tokens: the completion's tail goes first (TRL's default).
    case keepStart = "keep_start"
    /// Keep the last `max_length` tokens: the prompt's head goes first (deprecated in TRL).
    case keepEnd = "keep_end"
}

/// One tokenized preference pair, ready for a trainer: the chosen sequence is
/// `prompt[chosenPromptStart...] + chosen` and its completion mask is 0 over the prompt part and 1
/// over `chosen` (the same for rejected).
///
/// `chosenPromptStart` and `rejectedPromptStart` are 0 except with `keep_end` truncation, which
/// cuts the head of each sequence independently (TRL truncates chosen and rejected separately, so
/// they can keep different parts of the prompt).
public struct TokenizedPair: Sendable, Equatable {
    public var prompt: [Int]
    public var chosen: [Int]
    public var rejected: [Int]
    public var location: String
    /// The prompt was shortened (`max_prompt_length`, or `max_length` with keep_start when the
    /// prompt alone is longer).
    public var promptTruncated = false
    /// The chosen sequence lost tokens (`max_completion_length` or `max_length`).
    public var chosenTruncated = false
    /// The rejected sequence lost tokens (`max_completion_length` or `max_length`).
    public var rejectedTruncated = false
    /// First prompt token of the chosen sequence (keep_end only).
    public var chosenPromptStart = 0
    /// First prompt token of the rejected sequence (keep_end only).
    public var rejectedPromptStart = 0

    public init(prompt: [Int], chosen: [Int], rejected: [Int], location: String) {
        self.prompt = prompt
        self.chosen = chosen
        self.rejected = rejected
        self.location = location
    }

    /// prompt + chosen, as the model reads it.
    public var chosenInputIDs: [Int] { Array(prompt[chosenPromptStart...]) + chosen }
    /// prompt + rejected, as the model reads it.
    public var rejectedInputIDs: [Int] { Array(prompt[rejectedPromptStart...]) + rejected }
    /// Number of leading prompt (not trained) tokens in `chosenInputIDs`.
    public var chosenPromptLength: Int { prompt.count - chosenPromptStart }
    /// Number of leading prompt (not trained) tokens in `rejectedInputIDs`.
    public var rejectedPromptLength: Int { prompt.count - rejectedPromptStart }
    /// True if any part was truncated.
    public var isTruncated: Bool { promptTruncated || chosenTruncated || rejectedTruncated }

    /// The pair with each sequence cut to `maxLength` tokens, as TRL 1.16's
    /// `DataCollatorForPreference` does (reference/trl-dpo.md §2.1): chosen and rejected
    /// independently, keep_start keeping the first tokens and keep_end the last. Idempotent.
    public func truncated(maxLength: Int, mode: DPOTruncationMode) -> TokenizedPair {
        precondition(maxLength > 0, "max_length must be positive")
        var pair = self
        switch mode {
        case .keepStart:
            if prompt.count > maxLength {
                // Only reachable when the pre-filter (prompt ≥ max_length is dropped) did not run.
                pair.prompt = Array(prompt.prefix(maxLength))
                pair.promptTruncated = true
            }
            let room = maxLength - pair.prompt.count
            if chosen.count > room { pair.chosen = Array(chosen.prefix(room)); pair.chosenTruncated = true }
            if rejected.count > room { pair.rejected = Array(rejected.prefix(room)); pair.rejectedTruncated = true }
        case .keepEnd:
            func cut(_ start: inout Int, _ completion: inout [Int], _ flag: inout Bool) {
                let excess = prompt.count - start + completion.count - maxLength
                guard excess > 0 else { return }
                let fromPrompt = min(excess, prompt.count - start)
                start += fromPrompt
                completion.removeFirst(excess - fromPrompt)
                flag = true
            }
            cut(&pair.chosenPromptStart, &pair.chosen, &pair.chosenTruncated)
            cut(&pair.rejectedPromptStart, &pair.rejected, &pair.rejectedTruncated)
        }
        return pair
    }
}

/// A right-padded batch of pairs in TRL 1.16's `DataCollatorForPreference` layout
/// (reference/trl-dpo.md §2.1): rows 0..<B are the chosen sequences and rows B..<2B the rejected
/// ones, in pair order, all padded to the longest row (rounded up to `padToMultipleOf`).
///
/// Finch's trainer packs sequences without padding; this layout is for comparisons with TRL.
public struct PaddedPreferenceBatch: Sendable, Equatable {
    public var inputIDs: [[Int]]
    public var attentionMask: [[Int]]
    public var completionMask: [[Int]]

    /// - Parameter maxLength: apply ``TokenizedPair/truncated(maxLength:mode:)`` first (nil: no cut).
    public init(pairs: [TokenizedPair], padTokenID: Int, maxLength: Int? = nil, truncationMode: DPOTruncationMode = .keepStart,
                padToMultipleOf: Int? = nil) {
        let cut = maxLength.map { length in pairs.map { $0.truncated(maxLength: length, mode: truncationMode) } } ?? pairs
        var rows: [(ids: [Int], promptLength: Int)] = cut.map { ($0.chosenInputIDs, $0.chosenPromptLength) }
        rows += cut.map { ($0.rejectedInputIDs, $0.rejectedPromptLength) }
        var width = rows.map(\.ids.count).max() ?? 0
        if let multiple = padToMultipleOf, multiple > 0, width % multiple != 0 { width += multiple - width % multiple }
        inputIDs = rows.map { $0.ids + Array(repeating: padTokenID, count: width - $0.ids.count) }
        attentionMask = rows.map { Array(repeating: 1, count: $0.ids.count) + Array(repeating: 0, count: width - $0.ids.count) }
        completionMask = rows.map { row in
            Array(repeating: 0, count: row.promptLength) + Array(repeating: 1, count: row.ids.count - row.promptLength)
                + Array(repeating: 0, count: width - row.ids.count)
        }
    }
}
