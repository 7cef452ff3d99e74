import Foundation

/// transformers' `lr_scheduler_type` values that Finch implements (`SchedulerType` in
/// `transformers/trainer_utils.py`); the raw values are the strings a TRL recipe uses.
public enum LearningRateSchedulerType: String, Codable, Sendable, CaseIterable {
    case constant
    case constantWithWarmup = "constant_with_warmup"
    case linear
    case cosine
    case cosineWithMinLR = "cosine_with_min_lr"
}

/// A learning-rate schedule as transformers 5.24 builds it (`transformers/optimization.py`,
/// `get_scheduler`): a `torch.optim.lr_scheduler.LambdaLR` whose rate after `s` scheduler steps is
/// `learning_rate · λ(s)` (trl-dpo.md §7.4), computed in Double with the same operations as the
/// Python lambdas, so the values are bit-identical.
///
/// With W warmup steps, N training steps and p = (s − W) / max(1, N − W):
/// - `constant`: λ = 1 (warmup ignored, as `get_scheduler` ignores it)
/// - `constant_with_warmup`: s / max(1, W) while s < W, then 1
/// - `linear`: s / max(1, W) while s < W, then max(0, (N − s) / max(1, N − W))
/// - `cosine`: s / max(1, W) while s < W, then max(0, ½(1 + cos(π · num_cycles · 2 · p)))
/// - `cosine_with_min_lr`: as cosine, then λ·(1 − r) + r with r = `min_lr_rate`
///   (or `min_lr / learning_rate`)
///
/// Which λ an update uses: the Trainer calls `optimizer.step()` and then `scheduler.step()`, so
/// optimizer step k (1-based) runs at `learningRate(at: k − 1)` (``learningRate(forStep:)``) — the
/// first update uses λ(0), which is 0 whenever W > 0. transformers 5.24 reads the rate between the
/// two calls, so the `learning_rate` it logs at `global_step` k is that same value, the rate
/// *used* by step k (older versions logged the rate after the scheduler step, λ(k)).
public struct LearningRateSchedule: Sendable, Equatable {
    /// The schedule's shape.
    public let type: LearningRateSchedulerType
    /// The peak rate (`learning_rate`, the optimizer's initial rate).
    public let learningRate: Double
    /// W, already resolved (see ``resolvedWarmupSteps(_:trainingSteps:)``).
    public let warmupSteps: Int
    /// N, the optimizer steps of the run (`max_steps`).
    public let trainingSteps: Int
    /// The floor of `cosine_with_min_lr` as a fraction of ``learningRate``; 0 for other types.
    public let minLRRate: Double
    /// Cosine waves (`num_cycles`; 0.5 is a single half-cosine down to 0).
    public let numCycles: Double

    /// A schedule of `type` over `trainingSteps` optimizer steps.
    ///
    /// - Parameters:
    ///   - minLR, minLRRate: `cosine_with_min_lr` needs exactly one (transformers'
    ///     `lr_scheduler_kwargs`); `min_lr` becomes the rate `min_lr / learning_rate`.
    /// - Throws: ``TrainingError`` naming `lr_scheduler_kwargs`, `warmup_steps` or
    ///   `learning_rate` when a value is missing, extra or out of range.
    public init(type: LearningRateSchedulerType, learningRate: Double, warmupSteps: Int, trainingSteps: Int,
                minLR: Double? = nil, minLRRate: Double? = nil, numCycles: Double = 0.5) throws {
        guard warmupSteps >= 0 else { throw TrainingError("warmup_steps", "must be ≥ 0, got \(warmupSteps)") }
        guard learningRate.isFinite, learningRate >= 0 else {
            throw TrainingError("learning_rate", "must be a finite number ≥ 0, got \(learningRate)")
        }
        var rate = 0.0
        if type == .cosineWithMinLR {
            switch (minLR, minLRRate) {
            case (.some, .some):
                throw TrainingError("lr_scheduler_kwargs", "set only one of min_lr and min_lr_rate for cosine_with_min_lr")
            case (.some(let minLR), nil):
                rate = minLR / learningRate  // transformers: min_lr / optimizer.defaults["lr"]
            case (nil, .some(let minLRRate)):
                rate = minLRRate
            case (nil, nil):
                throw TrainingError("lr_scheduler_kwargs", "cosine_with_min_lr needs min_lr or min_lr_rate")
            }
        } else if minLR != nil || minLRRate != nil {
            throw TrainingError("lr_scheduler_kwargs", "min_lr and min_lr_rate only apply to cosine_with_min_lr, not \(type.rawValue)")
        }
        self.type = type
        self.learningRate = learningRate
        self.warmupSteps = warmupSteps
        self.trainingSteps = trainingSteps
        self.minLRRate = rate
        self.numCycles = numCycles
    }

    /// The schedule a transformers Trainer builds from `arguments` for a run of `trainingSteps`
    /// optimizer steps (`Trainer.create_scheduler`).
    public init(_ arguments: TrainingArguments, trainingSteps: Int) throws {
        try self.init(type: arguments.lrSchedulerType, learningRate: arguments.learningRate,
                      warmupSteps: Self.resolvedWarmupSteps(arguments.warmupSteps, trainingSteps: trainingSteps),
                      trainingSteps: trainingSteps, minLR: arguments.lrSchedulerKwargs.minLR,
                      minLRRate: arguments.lrSchedulerKwargs.minLRRate,
                      numCycles: arguments.lrSchedulerKwargs.numCycles ?? 0.5)
    }

    /// W from `warmup_steps` as transformers 5.24 resolves it (`TrainingArguments.get_warmup_steps`):
    /// a value ≥ 1 is a step count, truncated (`int(2.7)` = 2); a value in [0, 1) is a ratio of the
    /// run, `ceil(N · warmup_steps)`. transformers 4.x had a separate `warmup_ratio` with the same
    /// `ceil(N · ratio)`, used when `warmup_steps` was 0.
    public static func resolvedWarmupSteps(_ warmupSteps: Double, trainingSteps: Int) -> Int {
        warmupSteps >= 1 ? Int(warmupSteps) : Int((Double(trainingSteps) * warmupSteps).rounded(.up))
    }

    /// λ(s), the multiplier after `s` scheduler steps (LambdaLR's `last_epoch`).
    public func multiplier(at s: Int) -> Double {
        let (w, n) = (warmupSteps, trainingSteps)
        switch type {
        case .constant:
            return 1
        case .constantWithWarmup:
            return s < w ? Double(s) / max(1.0, Double(w)) : 1.0
        case .linear:
            if s < w { return Double(s) / Double(max(1, w)) }
            return max(0.0, Double(n - s) / Double(max(1, n - w)))
        case .cosine, .cosineWithMinLR:
            if s < w { return Double(s) / Double(max(1, w)) }
            let progress = Double(s - w) / Double(max(1, n - w))
            // Same operation order as `0.5 * (1.0 + math.cos(math.pi * float(num_cycles) * 2.0 * progress))`.
            let factor = 0.5 * (1.0 + cos(Double.pi * numCycles * 2.0 * progress))
            if type == .cosine { return max(0.0, factor) }
            return max(0.0, factor * (1 - minLRRate) + minLRRate)
        }
    }

    /// `learning_rate · λ(s)`: the rate after `s` scheduler steps, used by optimizer step `s + 1`
    /// and logged by transformers 5.24 at `global_step` `s + 1`.
    public func learningRate(at s: Int) -> Double { learningRate * multiplier(at: s) }

    /// The rate optimizer step `step` (1-based, transformers' `global_step` after it) runs at, and
    /// the `learning_rate` transformers 5.24 logs for it: `learningRate(at: step − 1)`.
    public func learningRate(forStep step: Int) -> Double { learningRate(at: step - 1) }
}
