/// A micro-batch of variable-length sequences packed end to end without padding (DESIGN.md §3),
/// with one target per token.
///
/// **Targets are already shifted.** Row t's target is the token whose log-probability the logits
/// at row t score: for next-token prediction, token t + 1 of the same sequence. A negative target
/// (−100, PyTorch's `ignore_index`) masks the row: the last row of every sequence, prompt rows in
/// SFT and DPO, padding. `init(sequences:labels:)` does the shift from transformers' convention,
/// where `labels` are aligned with the input ids and the model shifts inside its loss
/// (`logits[:, :-1]` against `labels[:, 1:]`).
///
/// Positions restart at 0 for every sequence, and attention is causal within a sequence, so the
/// batch computes exactly what running each sequence alone would.
public struct PackedBatch: Sendable, Equatable {
    /// The token ids of all sequences, end to end (T).
    public let tokens: [Int]
    /// `[0, L₀, L₀+L₁, …, T]` (FlashAttention's `cu_seqlens`).
    public let cumulativeLengths: [Int]
    /// One target per token (T); negative = masked.
    public let targets: [Int]
    /// Each token's position within its sequence (T).
    public let positions: [Int]

    public var tokenCount: Int { tokens.count }
    public var sequenceCount: Int { cumulativeLengths.count - 1 }
    /// Rows whose target is not masked.
    public var scoredTokenCount: Int { targets.reduce(0) { $0 + ($1 >= 0 ? 1 : 0) } }

    /// Sequences with per-token targets given in Finch's (shifted) convention: `targets[s][t]` is
    /// what row t of sequence s predicts, or negative.
    public init(sequences: [[Int]], targets: [[Int]]) throws {
        guard !sequences.isEmpty else { throw ModelError("PackedBatch", "a batch needs at least one sequence") }
        guard targets.count == sequences.count else {
            throw ModelError("PackedBatch", "\(targets.count) target lists for \(sequences.count) sequences")
        }
        var cumulative = [0], positions: [Int] = [], total = 0
        for (s, sequence) in sequences.enumerated() {
            guard !sequence.isEmpty else { throw ModelError("PackedBatch", "sequence \(s) is empty") }
            guard targets[s].count == sequence.count else {
                throw ModelError("PackedBatch", "sequence \(s) has \(sequence.count) tokens but \(targets[s].count) targets")
            }
            total += sequence.count
            cumulative.append(total)
            positions += 0..<sequence.count
        }
        self.tokens = sequences.flatMap { $0 }
        self.targets = targets.flatMap { $0 }
        self.cumulativeLengths = cumulative
        self.positions = positions
    }

    /// Sequences with transformers-style `labels` (aligned with the ids, −100 = ignored): row t's
    /// target becomes `labels[t + 1]`, and the last row of each sequence is masked.
    public init(sequences: [[Int]], labels: [[Int]]) throws {
        guard labels.count == sequences.count else {
            throw ModelError("PackedBatch", "\(labels.count) label lists for \(sequences.count) sequences")
        }
        for (s, l) in labels.enumerated() where l.count != sequences[s].count {
            throw ModelError("PackedBatch", "sequence \(s) has \(sequences[s].count) tokens but \(l.count) labels")
        }
        try self.init(sequences: sequences, targets: labels.map { Array($0.dropFirst()) + [-100] })
    }

    /// Every next token scored (labels = the ids themselves).
    public init(sequences: [[Int]]) throws {
        try self.init(sequences: sequences, labels: sequences)
    }

    /// Per-sequence sums of per-token values over the scored rows (masked rows count 0): with log
    /// p, DPO's sequence log-probabilities (TRL sums the completion tokens' log p, prompt and
    /// padding masked). Summed in Double, rounded once.
    public func sequenceSums(_ values: [Float]) -> [Float] {
        precondition(values.count == tokenCount, "PackedBatch: \(values.count) values for \(tokenCount) tokens")
        return (0..<sequenceCount).map { s in
            var sum: Double = 0
            for t in cumulativeLengths[s]..<cumulativeLengths[s + 1] where targets[t] >= 0 { sum += Double(values[t]) }
            return Float(sum)
        }
    }

    /// The per-token gradient for `TrainingPass.backward` of a loss that depends on the sequence
    /// sums `S_s = sequenceSums(log p)[s]`: `∂L/∂log p_t = ∂L/∂S_s` on the scored rows of sequence
    /// s, 0 on masked rows.
    public func tokenGradient(sequenceGradients: [Float]) -> [Float] {
        precondition(sequenceGradients.count == sequenceCount, "PackedBatch: \(sequenceGradients.count) gradients for \(sequenceCount) sequences")
        var g = [Float](repeating: 0, count: tokenCount)
        for s in 0..<sequenceCount {
            for t in cumulativeLengths[s]..<cumulativeLengths[s + 1] where targets[t] >= 0 { g[t] = sequenceGradients[s] }
        }
        return g
    }
}
