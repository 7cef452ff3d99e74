/// The SFT loss over a packed batch's per-token log-probabilities (`TrainingPass.Output`).
public enum CausalLMLoss {
    /// transformers' causal-LM loss: the mean of `−log p` over the rows whose target is not masked
    /// (labels −100 ignored, `ForCausalLMLoss` with `reduction="mean"`), and its gradient with
    /// respect to each row's log p — `−1/N` on the N scored rows, 0 elsewhere — ready for
    /// `TrainingPass.backward`.
    ///
    /// - Parameter normalizer: divide by this token count instead of N: with gradient accumulation,
    ///   transformers (≥ 4.46) divides every micro-batch's summed loss by the number of scored
    ///   tokens of the whole optimizer step (`num_items_in_batch`), so the micro-batches' losses
    ///   and gradients add up to the step's mean.
    /// - Returns: loss 0 and a zero gradient when nothing is scored (PyTorch would return NaN).
    ///   The sum runs in Double.
    public static func meanCrossEntropy(logProbabilities: [Float], targets: [Int], normalizer: Int? = nil)
        -> (loss: Float, logProbabilityGradient: [Float]) {
        precondition(logProbabilities.count == targets.count, "CausalLMLoss: \(logProbabilities.count) log-probabilities for \(targets.count) targets")
        var sum: Double = 0, scored = 0
        for (lp, target) in zip(logProbabilities, targets) where target >= 0 {
            sum -= Double(lp)
            scored += 1
        }
        let n = normalizer ?? scored
        guard n > 0, scored > 0 else { return (0, [Float](repeating: 0, count: targets.count)) }
        let g = -1 / Float(n)
        return (Float(sum / Double(n)), targets.map { $0 >= 0 ? g : 0 })
    }
}
