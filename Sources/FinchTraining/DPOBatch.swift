import FinchModels

/// One preference pair as the trainer consumes it: the two token sequences (prompt + completion,
/// already truncated) and where each completion starts. With keep_start truncation both prompts
/// are the same; with keep_end they can differ, which is why each sequence carries its own.
public struct DPOSequencePair: Sendable, Equatable, Codable {
    /// `prompt ++ chosen completion`.
    public var chosen: [Int]
    public var chosenPromptLength: Int
    /// `prompt ++ rejected completion`.
    public var rejected: [Int]
    public var rejectedPromptLength: Int

    public init(chosen: [Int], chosenPromptLength: Int, rejected: [Int], rejectedPromptLength: Int) {
        precondition(chosenPromptLength <= chosen.count && rejectedPromptLength <= rejected.count,
                     "DPOSequencePair: a prompt longer than its sequence")
        self.chosen = chosen
        self.chosenPromptLength = chosenPromptLength
        self.rejected = rejected
        self.rejectedPromptLength = rejectedPromptLength
    }

    /// A pair with one prompt and two completions (no further truncation).
    public init(prompt: [Int], chosen: [Int], rejected: [Int]) {
        self.init(chosen: prompt + chosen, chosenPromptLength: prompt.count, rejected: prompt + rejected,
                  rejectedPromptLength: prompt.count)
    }

    /// Completion tokens of each side (TRL's unshifted `completion_mask` sums).
    public var chosenCompletionCount: Int { chosen.count - chosenPromptLength }
    public var rejectedCompletionCount: Int { rejected.count - rejectedPromptLength }
}

/// A micro-batch of B pairs packed for one forward pass: sequences `[chosen_0 … chosen_{B−1},
/// rejected_0 … rejected_{B−1}]` (TRL's row order, trl-dpo.md §2.1), each row's target the next
/// token of the completion (the last prompt position predicts the first completion token; prompt
/// positions are masked), no padding.
public struct DPOMicroBatch: Sendable {
    public let pairs: [DPOSequencePair]
    public let batch: PackedBatch

    public init(_ pairs: [DPOSequencePair]) throws {
        precondition(!pairs.isEmpty, "DPOMicroBatch: no pairs")
        self.pairs = pairs
        let sequences = pairs.map(\.chosen) + pairs.map(\.rejected)
        let prompts = pairs.map(\.chosenPromptLength) + pairs.map(\.rejectedPromptLength)
        let labels = zip(sequences, prompts).map { sequence, prompt in
            sequence.enumerated().map { $0.offset < prompt ? -100 : $0.element }
        }
        batch = try PackedBatch(sequences: sequences, labels: labels)
    }

    public var pairCount: Int { pairs.count }
    /// TRL's `num_tokens` increment: every token of all 2B rows (the prompt counted twice).
    public var tokenCount: Int { batch.tokenCount }

    /// Sequence sums (in Double) of per-token values: (chosen, rejected), B each.
    public func sums(_ values: [Float]) -> (chosen: [Double], rejected: [Double]) {
        let B = pairCount
        var sums = [Double](repeating: 0, count: 2 * B)
        for s in 0..<(2 * B) {
            for t in batch.cumulativeLengths[s]..<batch.cumulativeLengths[s + 1] where batch.targets[t] >= 0 {
                sums[s] += Double(values[t])
            }
        }
        return (Array(sums[0..<B]), Array(sums[B...]))
    }

    /// Σ of per-token values over the scored rows of the chosen (first B) and rejected sequences,
    /// with the row counts.
    public func totals(_ values: [Float]) -> (chosen: Double, chosenRows: Int, rejected: Double, rejectedRows: Int) {
        let split = batch.cumulativeLengths[pairCount]
        var c = 0.0, r = 0.0, nc = 0, nr = 0
        for t in 0..<batch.tokenCount where batch.targets[t] >= 0 {
            if t < split { c += Double(values[t]); nc += 1 } else { r += Double(values[t]); nr += 1 }
        }
        return (c, nc, r, nr)
    }

    /// `∂L/∂log p` per packed row from the per-pair gradients of the sequence sums, plus a
    /// gradient shared by every chosen completion token (`sft`).
    public func tokenGradient(chosen: [Double], rejected: [Double], chosenToken: Double) -> [Float] {
        let B = pairCount
        var g = [Float](repeating: 0, count: batch.tokenCount)
        for s in 0..<(2 * B) {
            let value = s < B ? chosen[s] + chosenToken : rejected[s - B]
            for t in batch.cumulativeLengths[s]..<batch.cumulativeLengths[s + 1] where batch.targets[t] >= 0 { g[t] = Float(value) }
        }
        return g
    }

    /// The per-pair loss inputs from policy and reference per-token log p.
    public func pairValues(policy: [Float], reference: (chosen: [Double], rejected: [Double])) -> DPOPairValues {
        let p = sums(policy)
        let t = totals(policy)
        return DPOPairValues(policyChosen: p.chosen, policyRejected: p.rejected, referenceChosen: reference.chosen,
                             referenceRejected: reference.rejected, chosenTokens: pairs.map(\.chosenCompletionCount),
                             rejectedTokens: pairs.map(\.rejectedCompletionCount), chosenTokenLogProbabilitySum: t.chosen,
                             chosenTokenCount: t.chosenRows)
    }
}
