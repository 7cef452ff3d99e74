import FinchCore
import Foundation

/// AdamW (Loshchilov & Hutter, "Decoupled Weight Decay Regularization", arXiv:1711.05101) exactly
/// as `torch.optim.AdamW(fused=True)` computes it on the CPU in torch 2.15 — transformers 5.24's
/// default `optim="adamw_torch_fused"` — bit for bit on Float32 parameters.
///
/// Step k = 1, 2, … of a parameter slice with gradient g (after clipping), learning rate lr and
/// weight decay wd (0 for slices outside the decay group), as trl-dpo.md §7.2:
///
///     θ ← θ·(1 − lr·wd)
///     m ← m + (1−β1)·(g − m)                     (= β1·m + (1−β1)·g, written as torch's lerp)
///     v ← β2·v + (1−β2)·g²
///     θ ← θ − (lr / (1−β1^k)) · m / (√v / √(1−β2^k) + ε)
///
/// The Float32 rounding follows the fused CPU kernel (`aten/src/ATen/native/cpu/FusedAdamKernel.cpp`,
/// `adam_math`), verified element by element against torch 2.15 here:
/// - the scalars are computed in Double (`step_size = lr/(1−β1^k)`, `√(1−β2^k)`, `1 − lr·wd`,
///   `1 − β1`, `1 − β2`) and rounded to Float once;
/// - each tensor runs an 8-wide vector body over its first `count − count % 8` elements and a scalar
///   tail over the rest (8 is the `Vectorized<float>` width torch 2.15 dispatched on this AVX-512
///   machine; a torch build whose kernel ran 16 wide would move the tail boundary), and the two
///   round `v` differently because GCC contracted their multiply-adds differently: body
///   `v = fma((1−β2)·g, g, v·β2)`, tail `v = fma(v, β2, ((1−β2)·g)·g)`; `m` is
///   `fma(1−β1, g − m, m)` in both (torch's lerp; for 1−β1 ≥ ½ the lerp's other branch,
///   `fma((1−β1) − 1, g − m, g)`);
/// - the update is `θ + (−step_size·m) / (√v / √(1−β2^k) + ε)` with a correctly rounded √.
///
/// `optim="adamw_torch"` (the unfused `_single_tensor_adam`) uses the body formulas everywhere but
/// takes `√v` from `Tensor.sqrt()`, which on this torch build is not correctly rounded (≈20 % of
/// float32 results are one ulp off), so it is reproduced to a few ulps, not bit for bit.
///
/// ``TrainingOptimizer`` picks this or ``BitsAndBytesAdamW`` from transformers' `optim` name.
///
/// Like torch, a slice whose gradient is all zero still steps (its moments decay, its values
/// decay by `1 − lr·wd`); torch would skip a tensor whose `.grad` is `None`, which has no
/// equivalent in the arena.
public struct AdamW: Sendable, Equatable {
    /// β1 (`adam_beta1`).
    public var beta1: Double
    /// β2 (`adam_beta2`).
    public var beta2: Double
    /// ε (`adam_epsilon`), added to `√v / √(1−β2^k)`.
    public var epsilon: Double
    /// Decoupled weight decay (`weight_decay`), applied to slices whose
    /// ``ParameterSlice/appliesWeightDecay`` is true.
    public var weightDecay: Double
    /// Optimizer steps taken so far (torch's per-parameter `state["step"]`; the same for every
    /// slice here).
    public private(set) var stepCount: Int = 0

    /// Sets the step count after the moments were restored from a checkpoint.
    mutating func restore(stepCount: Int) { self.stepCount = stepCount }

    public init(beta1: Double = 0.9, beta2: Double = 0.999, epsilon: Double = 1e-8, weightDecay: Double = 0) {
        self.beta1 = beta1
        self.beta2 = beta2
        self.epsilon = epsilon
        self.weightDecay = weightDecay
    }

    /// The optimizer a transformers Trainer builds from these arguments.
    public init(_ arguments: TrainingArguments) {
        self.init(beta1: arguments.adamBeta1, beta2: arguments.adamBeta2, epsilon: arguments.adamEpsilon,
                  weightDecay: arguments.weightDecay)
    }

    /// Takes one step on every slice of `arena` with the current gradients, at `learningRate`
    /// (the scheduler's value for this step, ``LearningRateSchedule/learningRate(forStep:)``).
    ///
    /// Elementwise, so the result does not depend on `pool`'s thread count.
    public mutating func step(_ arena: ParameterArena, learningRate lr: Double, pool: ThreadPool = .serial) {
        stepCount += 1
        let k = Double(stepCount)
        let biasCorrection1 = 1 - pow(beta1, k)
        let biasCorrection2 = 1 - pow(beta2, k)
        let stepSize = lr / biasCorrection1
        let c = Constants(
            negativeStepSize: Float(-stepSize),
            biasCorrection2Sqrt: Float(biasCorrection2.squareRoot()),
            epsilon: Float(epsilon),
            lerpWeight: Float(1 - beta1),
            beta2: Float(beta2),
            oneMinusBeta2: Float(1 - beta2),
            decayFactor: Float(1 - lr * weightDecay))
        let decays = weightDecay != 0
        let (theta, grad, m, v) = (arena.values, arena.gradients, arena.firstMoments, arena.secondMoments)
        arena.chunks.withUnsafeBufferPointer { chunks in
            pool.parallelFor(chunks.count) { range in
                for (s, elements) in chunks[range] {
                    let slice = arena.slices[s]
                    let bodyEnd = slice.count - slice.count % 8
                    Self.update(theta, grad, m, v, slice.offset, elements, bodyEnd: bodyEnd,
                                decay: decays && slice.appliesWeightDecay, c)
                }
            }
        }
    }

    /// The Float32 scalars of one step.
    struct Constants {
        var negativeStepSize, biasCorrection2Sqrt, epsilon, lerpWeight, beta2, oneMinusBeta2, decayFactor: Float
    }

    /// Updates elements `elements` (relative to the slice at `offset`); those at or after
    /// `bodyEnd` take the fused kernel's scalar-tail rounding of `v`.
    static func update(
        _ theta: UnsafeMutableBufferPointer<Float>, _ grad: UnsafeMutableBufferPointer<Float>,
        _ m: UnsafeMutableBufferPointer<Float>, _ v: UnsafeMutableBufferPointer<Float>,
        _ offset: Int, _ elements: Range<Int>, bodyEnd: Int, decay: Bool, _ c: Constants
    ) {
        // torch's lerp(m, g, w): m + w·(g − m) when |w| < ½, else g − (g − m)·(1 − w); both fused.
        let smallWeight = abs(c.lerpWeight) < 0.5
        let lerpCoefficient = smallWeight ? c.lerpWeight : c.lerpWeight - 1
        for e in elements {
            let i = offset + e
            let g = grad[i]
            var p = theta[i]
            if decay { p = p * c.decayFactor }
            let mi = (smallWeight ? m[i] : g).addingProduct(lerpCoefficient, g - m[i])
            let vi = e < bodyEnd
                ? (v[i] * c.beta2).addingProduct(c.oneMinusBeta2 * g, g)
                : ((c.oneMinusBeta2 * g) * g).addingProduct(v[i], c.beta2)
            let denominator = vi.squareRoot() / c.biasCorrection2Sqrt + c.epsilon
            theta[i] = p + (c.negativeStepSize * mi) / denominator
            m[i] = mi
            v[i] = vi
        }
    }
}
