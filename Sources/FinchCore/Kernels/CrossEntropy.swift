import Foundation

/// Per-token log-probabilities of target tokens (log-softmax + gather) and their gradient, the
/// shared core of the SFT loss (mean of −log p over unmasked tokens) and of DPO's sequence
/// log-probabilities (sum of log p over completion tokens, reference/trl-dpo.md §3).
///
/// Float32 throughout, as TRL computes Float32 logits: `log p = z[target] − logsumexp(z)` with the
/// row maximum subtracted inside the logsumexp. Targets below zero (e.g. −100, PyTorch's
/// `ignore_index`) mark masked tokens: their log-probability is 0 and their gradient row is 0, as
/// TRL zeroes masked positions.
public enum CrossEntropy {
    /// Per row t of `logits`: `logSumExp[t] = m + log Σ_v exp(z_v − m)` (m = the row maximum) and
    /// `logProbabilities[t] = z[targets[t]] − logSumExp[t]` (0 where `targets[t] < 0`).
    ///
    /// The caller aligns targets with rows: for next-token prediction row t's target is token t + 1
    /// (TRL's `logits[:, :-1]` against `labels[:, 1:]`), and the last row of a sequence is masked.
    ///
    /// Shapes: `logits: (T, V)` row-major, `targets: (T)` in `0..<V` or negative (masked),
    /// `logProbabilities: (T)`, `logSumExp: (T)` (kept for `backward`; computed for masked rows too).
    /// Rows are independent (the pool splits rows), and each row's sum runs in a fixed order (16
    /// lanes, then the lanes added), so the result does not depend on the thread count.
    public static func logProbabilities(logits: UnsafePointer<Float>, targets: UnsafePointer<Int>, tokens: Int, vocabularySize: Int,
                                        into logProbabilities: UnsafeMutablePointer<Float>, logSumExp: UnsafeMutablePointer<Float>,
                                        pool: ThreadPool = .serial) {
        let V = vocabularySize
        precondition(V > 0 && tokens >= 0)
        for t in 0..<tokens {
            precondition(targets[t] < V, "CrossEntropy: target \(targets[t]) is outside 0..<\(V)")
        }
        pool.parallelFor(tokens, grain: max(1, (1 << 14) / V)) { rows in
            for t in rows {
                let z = logits + t * V
                let lse = rowLogSumExp(z, count: V)
                logSumExp[t] = lse
                logProbabilities[t] = targets[t] < 0 ? 0 : z[targets[t]] - lse
            }
        }
    }

    /// Gradient of `logProbabilities`: given `g[t] = ∂L/∂ log p_t`,
    /// `dlogits[t, v] = g[t] · (onehot(target_t)[v] − softmax(z_t)[v])`, with
    /// `softmax(z_t)[v] = exp(z_v − logSumExp[t])` (PyTorch's `log_softmax_backward` followed by the
    /// gather's scatter). For a cross-entropy loss `CE_t = −log p_t` this is the familiar
    /// `(softmax − onehot) · ∂L/∂CE_t`: pass `g = −∂L/∂CE_t` (SFT mean: `g = −1/N` on the N
    /// unmasked tokens; DPO: `g = ∂L/∂S` of the sequence sum S the token belongs to).
    ///
    /// Rows whose target is negative (masked) or whose `g` is 0 are written as zeros without reading
    /// the logits. Shapes: `logits`, `logitGradient: (T, V)`; `targets`, `logSumExp`,
    /// `logProbabilityGradient: (T)`. `logitGradient` may alias `logits` (each element is read
    /// before it is written), which saves a (T, V) buffer. Rows are independent.
    public static func backward(logits: UnsafePointer<Float>, targets: UnsafePointer<Int>, logSumExp: UnsafePointer<Float>,
                                logProbabilityGradient g: UnsafePointer<Float>, tokens: Int, vocabularySize: Int,
                                into logitGradient: UnsafeMutablePointer<Float>, pool: ThreadPool = .serial) {
        let V = vocabularySize
        precondition(V > 0 && tokens >= 0)
        for t in 0..<tokens {
            precondition(targets[t] < V, "CrossEntropy: target \(targets[t]) is outside 0..<\(V)")
        }
        pool.parallelFor(tokens, grain: max(1, (1 << 14) / V)) { rows in
            for t in rows {
                let z = logits + t * V, dz = logitGradient + t * V
                let target = targets[t], scale = g[t]
                if target < 0 || scale == 0 {
                    dz.update(repeating: 0, count: V)
                    continue
                }
                let lse = logSumExp[t]
                let minusScale = -scale
                VectorMath.scaledExp(z, minus: lse, scale: minusScale, count: V, into: dz)
                dz[target] += scale
            }
        }
    }

    /// `m + log Σ exp(z − m)` over one row, m = max(z). Sixteen partial sums (fixed order) keep the
    /// rounding error of a 50 000-term sum small.
    static func rowLogSumExp(_ z: UnsafePointer<Float>, count V: Int) -> Float {
        let m = VectorMath.maximum(z, count: V)
        guard m.isFinite else { return m == -.infinity ? -.infinity : .nan }
        return m + logf(VectorMath.sumOfExp(z, minus: m, count: V))
    }
}
