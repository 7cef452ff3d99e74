import Foundation

/// DPO's loss types (`loss_type`, TRL 1.16 `DPOTrainer._compute_loss`; reference/trl-dpo.md §4.2).
public enum DPOLossType: String, Sendable, CaseIterable, Codable {
    case sigmoid, hinge, ipo, robust, sft
    case exoPair = "exo_pair", ncaPair = "nca_pair", bcoPair = "bco_pair", sppoHard = "sppo_hard"
    case apoZero = "apo_zero", apoDown = "apo_down", sigmoidNorm = "sigmoid_norm"
}

/// `loss_type`, `loss_weights`, `beta` and `label_smoothing`.
public struct DPOLossConfiguration: Sendable, Equatable {
    /// One or more losses, summed with `weights` (TRL: `loss = Σ_k w_k · mean_pairs(loss_k)`).
    public var types: [DPOLossType]
    /// One weight per type (`loss_weights`; default all 1).
    public var weights: [Double]
    /// β (`beta`, default 0.1); IPO's τ.
    public var beta: Double
    /// ε (`label_smoothing`, default 0): the flip probability of `robust` and `exo_pair`, and of
    /// `sigmoid` as conservative DPO (cDPO). TRL 1.16 ignores it for `sigmoid` (trl-dpo.md §4.5);
    /// Finch applies cDPO's `−(1−ε)·log σ(βΔ) − ε·log σ(−βΔ)`, as TRL ≤ 0.28 did.
    public var labelSmoothing: Double

    /// TRL's defaults: `sigmoid`, weight 1, β 0.1, no label smoothing.
    public static let trlDefault = DPOLossConfiguration(checked: [.sigmoid], weights: [1], beta: 0.1, labelSmoothing: 0)

    private init(checked types: [DPOLossType], weights: [Double], beta: Double, labelSmoothing: Double) {
        self.types = types
        self.weights = weights
        self.beta = beta
        self.labelSmoothing = labelSmoothing
    }

    public init(types: [DPOLossType] = [.sigmoid], weights: [Double]? = nil, beta: Double = 0.1, labelSmoothing: Double = 0) throws {
        guard !types.isEmpty else { throw TrainingError("loss_type", "at least one loss is needed") }
        let weights = weights ?? Array(repeating: 1, count: types.count)
        guard weights.count == types.count else {
            throw TrainingError("loss_weights", "\(weights.count) weights for \(types.count) loss types \(types.map(\.rawValue))")
        }
        guard beta > 0, beta.isFinite else { throw TrainingError("beta", "must be a positive number, got \(beta)") }
        guard labelSmoothing >= 0, labelSmoothing < 0.5 else {
            throw TrainingError("label_smoothing", "must be in [0, 0.5), got \(labelSmoothing)")
        }
        if types.contains(.exoPair), labelSmoothing == 0 {
            throw TrainingError("loss_type", "exo_pair needs label_smoothing > 0 (its loss has log ε), as TRL requires")
        }
        self.init(checked: types, weights: weights, beta: beta, labelSmoothing: labelSmoothing)
    }

    /// `rpo_alpha` (TRL ≤ 0.28): the same as adding `sft` with weight α.
    public mutating func addRPO(alpha: Double) {
        types.append(.sft)
        weights.append(alpha)
    }
}

/// The per-pair inputs of the DPO loss for one micro-batch of B pairs: summed completion
/// log-probabilities of the policy (π) and the reference, and completion token counts.
public struct DPOPairValues: Sendable {
    public var policyChosen: [Double]
    public var policyRejected: [Double]
    public var referenceChosen: [Double]
    public var referenceRejected: [Double]
    /// Completion tokens of each chosen / rejected sequence (IPO and sigmoid_norm normalize by them,
    /// clamped ≥ 1).
    public var chosenTokens: [Int]
    public var rejectedTokens: [Int]
    /// Σ of the chosen completion tokens' log p over the micro-batch and their count (for `sft`).
    public var chosenTokenLogProbabilitySum: Double
    public var chosenTokenCount: Int

    public init(policyChosen: [Double], policyRejected: [Double], referenceChosen: [Double], referenceRejected: [Double],
                chosenTokens: [Int], rejectedTokens: [Int], chosenTokenLogProbabilitySum: Double = 0, chosenTokenCount: Int = 0) {
        self.policyChosen = policyChosen
        self.policyRejected = policyRejected
        self.referenceChosen = referenceChosen
        self.referenceRejected = referenceRejected
        self.chosenTokens = chosenTokens
        self.rejectedTokens = rejectedTokens
        self.chosenTokenLogProbabilitySum = chosenTokenLogProbabilitySum
        self.chosenTokenCount = chosenTokenCount
    }

    public var pairCount: Int { policyChosen.count }
}

/// The loss of a micro-batch and its gradient with respect to the policy's log-probabilities.
public struct DPOLossResult: Sendable {
    /// `Σ_k w_k · mean_j loss_k[j]`.
    public var loss: Double
    /// ∂loss/∂π_chosen[j] and ∂loss/∂π_rejected[j] (the sequence sums).
    public var chosenGradient: [Double]
    public var rejectedGradient: [Double]
    /// ∂loss/∂log p of every chosen completion token from `sft` (the same for each token):
    /// `−w_sft / chosenTokenCount`; 0 without `sft`.
    public var chosenTokenGradient: Double
}

/// TRL 1.16's DPO losses with their analytic gradients (reference/trl-dpo.md §4.2; the formulas
/// of `DPOTrainer._compute_loss`, f-divergence `reverse_kl`: the scores are the log-ratios
/// ρ = π − π_ref). Computed in Double.
public enum DPOLoss {
    /// log σ(x), stable for large |x|.
    static func logSigmoid(_ x: Double) -> Double { x >= 0 ? -log1p(exp(-x)) : x - log1p(exp(x)) }
    static func sigmoid(_ x: Double) -> Double { x >= 0 ? 1 / (1 + exp(-x)) : exp(x) / (1 + exp(x)) }

    public static func evaluate(_ v: DPOPairValues, configuration c: DPOLossConfiguration) -> DPOLossResult {
        let B = v.pairCount
        precondition(B > 0 && [v.policyRejected.count, v.referenceChosen.count, v.referenceRejected.count,
                               v.chosenTokens.count, v.rejectedTokens.count].allSatisfy { $0 == B },
                     "DPOLoss: inconsistent pair counts")
        let beta = c.beta, eps = c.labelSmoothing
        var total = 0.0, sftGradient = 0.0
        var dChosen = [Double](repeating: 0, count: B), dRejected = [Double](repeating: 0, count: B)
        for (type, weight) in zip(c.types, c.weights) {
            if type == .sft {
                // −mean of the chosen completion tokens' log p over the micro-batch; the same value for
                // every pair, so its mean over pairs is itself.
                let n = Double(max(v.chosenTokenCount, 1))
                total += weight * (v.chosenTokenCount > 0 ? -v.chosenTokenLogProbabilitySum / n : 0)
                if v.chosenTokenCount > 0 { sftGradient += -weight / n }
                continue
            }
            var sum = 0.0
            for j in 0..<B {
                let rw = v.policyChosen[j] - v.referenceChosen[j], rl = v.policyRejected[j] - v.referenceRejected[j]
                let nw = Double(max(v.chosenTokens[j], 1)), nl = Double(max(v.rejectedTokens[j], 1))
                let z = beta * (rw - rl)
                // loss, ∂loss/∂ρw, ∂loss/∂ρl
                let (loss, gw, gl): (Double, Double, Double)
                switch type {
                case .sigmoid:
                    // −(1−ε)·log σ(z) − ε·log σ(−z); ∂/∂z = −(1−ε)σ(−z) + εσ(z)
                    let l = -(1 - eps) * logSigmoid(z) - eps * logSigmoid(-z)
                    let dz = -(1 - eps) * sigmoid(-z) + eps * sigmoid(z)
                    (loss, gw, gl) = (l, beta * dz, -beta * dz)
                case .hinge:
                    // relu(1 − z); torch's relu has gradient 0 at 0.
                    let dz: Double = 1 - z > 0 ? -1 : 0
                    (loss, gw, gl) = (max(0, 1 - z), beta * dz, -beta * dz)
                case .ipo:
                    let h = (rw / nw - rl / nl) - 1 / (2 * beta)
                    (loss, gw, gl) = (h * h, 2 * h / nw, -2 * h / nl)
                case .robust:
                    let l = (-(1 - eps) * logSigmoid(z) + eps * logSigmoid(-z)) / (1 - 2 * eps)
                    let dz = (-(1 - eps) * sigmoid(-z) - eps * sigmoid(z)) / (1 - 2 * eps)
                    (loss, gw, gl) = (l, beta * dz, -beta * dz)
                case .exoPair:
                    // q·(log q − log(1−ε)) + (1−q)·(log(1−q) − log ε), q = σ(z);
                    // ∂/∂z = q(1−q)·[(log q − log(1−ε)) − (log(1−q) − log ε)]
                    let q = sigmoid(z), logQ = logSigmoid(z), logNotQ = logSigmoid(-z)
                    let a = logQ - log1p(-eps), b = logNotQ - log(eps)
                    let dz = q * (1 - q) * (a - b)
                    (loss, gw, gl) = (q * a + (1 - q) * b, beta * dz, -beta * dz)
                case .ncaPair:
                    let cw = beta * rw, cl = beta * rl
                    let l = -logSigmoid(cw) - 0.5 * logSigmoid(-cw) - 0.5 * logSigmoid(-cl)
                    (loss, gw, gl) = (l, beta * (-sigmoid(-cw) + 0.5 * sigmoid(cw)), beta * 0.5 * sigmoid(cl))
                case .bcoPair:
                    let cw = beta * rw, cl = beta * rl
                    (loss, gw, gl) = (-logSigmoid(cw) - logSigmoid(-cl), -beta * sigmoid(-cw), beta * sigmoid(cl))
                case .sppoHard:
                    let a = rw - 0.5 / beta, b = rl + 0.5 / beta
                    (loss, gw, gl) = (a * a + b * b, 2 * a, 2 * b)
                case .apoZero:
                    let sw = sigmoid(beta * rw), sl = sigmoid(beta * rl)
                    (loss, gw, gl) = ((1 - sw) + sl, -beta * sw * (1 - sw), beta * sl * (1 - sl))
                case .apoDown:
                    let sw = sigmoid(beta * rw), sz = sigmoid(z)
                    (loss, gw, gl) = (sw + (1 - sz), beta * sw * (1 - sw) - beta * sz * (1 - sz), beta * sz * (1 - sz))
                case .sigmoidNorm:
                    let zn = beta * (rw / nw - rl / nl)
                    let dz = -sigmoid(-zn)
                    (loss, gw, gl) = (-logSigmoid(zn), beta * dz / nw, -beta * dz / nl)
                case .sft:
                    preconditionFailure("handled above")
                }
                sum += loss
                dChosen[j] += weight * gw / Double(B)
                dRejected[j] += weight * gl / Double(B)
            }
            total += weight * sum / Double(B)
        }
        return DPOLossResult(loss: total, chosenGradient: dChosen, rejectedGradient: dRejected, chosenTokenGradient: sftGradient)
    }
}

/// TRL's per-micro-batch DPO metrics (reference/trl-dpo.md §6), before averaging over a logging window.
public struct DPOMetrics: Sendable, Equatable {
    public var rewardsChosen: Double
    public var rewardsRejected: Double
    public var rewardsAccuracies: Double
    public var rewardsMargins: Double
    public var logpsChosen: Double
    public var logpsRejected: Double
    /// Mean over chosen (rejected) completion-predicting positions of the mean logit over the vocabulary.
    public var logitsChosen: Double
    public var logitsRejected: Double

    /// The metrics of one micro-batch. `logitSums`: Σ over the chosen (rejected) completion positions
    /// of the per-row mean logit, and the position counts.
    public init(_ v: DPOPairValues, beta: Double, chosenLogitSum: Double, chosenLogitCount: Int,
                rejectedLogitSum: Double, rejectedLogitCount: Int) {
        let B = Double(v.pairCount)
        var rc = 0.0, rr = 0.0, acc = 0.0, margin = 0.0
        for j in 0..<v.pairCount {
            let cw = beta * (v.policyChosen[j] - v.referenceChosen[j]), cl = beta * (v.policyRejected[j] - v.referenceRejected[j])
            rc += cw
            rr += cl
            acc += cw > cl ? 1 : 0
            margin += cw - cl
        }
        rewardsChosen = rc / B
        rewardsRejected = rr / B
        rewardsAccuracies = acc / B
        rewardsMargins = margin / B
        logpsChosen = v.policyChosen.reduce(0, +) / B
        logpsRejected = v.policyRejected.reduce(0, +) / B
        logitsChosen = chosenLogitCount > 0 ? chosenLogitSum / Double(chosenLogitCount) : 0
        logitsRejected = rejectedLogitCount > 0 ? rejectedLogitSum / Double(rejectedLogitCount) : 0
    }

    /// TRL's names and values, for `metrics.jsonl`.
    public var named: [(String, Double)] {
        [("rewards/chosen", rewardsChosen), ("rewards/rejected", rewardsRejected), ("rewards/accuracies", rewardsAccuracies),
         ("rewards/margins", rewardsMargins), ("logps/chosen", logpsChosen), ("logps/rejected", logpsRejected),
         ("logits/chosen", logitsChosen), ("logits/rejected", logitsRejected)]
    }
}
