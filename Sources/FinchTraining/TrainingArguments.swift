/// The optimizer and loop settings of a training run, with the names and defaults of transformers
/// 5.24's `TrainingArguments` (`transformers/training_args.py`), so a TRL recipe ports line by line.
///
/// Decoded from JSON/YAML with the snake_case keys (`learning_rate`, `lr_scheduler_type`, …);
/// a missing key keeps its default and an unknown key is an error. ``trlDPO`` has `DPOConfig`'s
/// overrides (TRL 1.16). The optimizer is `optim` (default `adamw_torch_fused`, the 5.24 default
/// with torch ≥ 2.8); ``TrainingOptimizer`` builds it.
public struct TrainingArguments: Codable, Sendable, Equatable {
    /// Peak learning rate (`learning_rate`; transformers 5e-5, TRL DPO 1e-6).
    public var learningRate: Double = 5e-5
    /// Schedule shape (`lr_scheduler_type`, default `linear`).
    public var lrSchedulerType: LearningRateSchedulerType = .linear
    /// Extra schedule settings (`lr_scheduler_kwargs`): `min_lr` / `min_lr_rate` for
    /// `cosine_with_min_lr`, `num_cycles` for the cosine types.
    public var lrSchedulerKwargs = LRSchedulerKwargs()
    /// Warmup (`warmup_steps`, default 0): a step count when ≥ 1, a ratio of the run in [0, 1)
    /// (see ``LearningRateSchedule/resolvedWarmupSteps(_:trainingSteps:)``).
    public var warmupSteps: Double = 0
    /// Decoupled weight decay (`weight_decay`, default 0), skipped for biases and norms
    /// (``ParameterSpec/transformersAppliesWeightDecay(to:inTorchLayerNorm:)``).
    public var weightDecay: Double = 0
    /// The optimizer (`optim`, default `adamw_torch_fused`): one of ``OptimizerName``'s values.
    public var optim: OptimizerName = .adamwTorchFused
    /// AdamW β1 (`adam_beta1`, default 0.9).
    public var adamBeta1: Double = 0.9
    /// AdamW β2 (`adam_beta2`, default 0.999).
    public var adamBeta2: Double = 0.999
    /// AdamW ε (`adam_epsilon`, default 1e-8).
    public var adamEpsilon: Double = 1e-8
    /// Global gradient-norm clipping (`max_grad_norm`, default 1.0); ≤ 0 disables clipping (the
    /// norm is still measured and logged).
    public var maxGradNorm: Double = 1.0
    /// Micro-batches per optimizer step (`gradient_accumulation_steps`, default 1).
    public var gradientAccumulationSteps: Int = 1
    /// Examples per micro-batch (`per_device_train_batch_size`, default 8).
    public var perDeviceTrainBatchSize: Int = 8
    /// Epochs when `max_steps` is not set (`num_train_epochs`, default 3; fractions allowed).
    public var numTrainEpochs: Double = 3
    /// Optimizer steps of the run when > 0 (`max_steps`, default −1: use the epochs).
    public var maxSteps: Int = -1
    /// Log every this many optimizer steps (`logging_steps`; transformers 500, TRL 10); a value in
    /// (0, 1) is a ratio of the run.
    public var loggingSteps: Double = 500
    /// Seed of the data order and of any initialization (`seed`, default 42).
    public var seed: Int = 42

    /// transformers' defaults.
    public init() {}

    /// TRL 1.16 `DPOConfig`'s values for these fields: `learning_rate` 1e-6 and `logging_steps` 10
    /// (the rest are transformers' defaults).
    public static var trlDPO: TrainingArguments {
        var arguments = TrainingArguments()
        arguments.learningRate = 1e-6
        arguments.loggingSteps = 10
        return arguments
    }

    /// `lr_scheduler_kwargs`.
    public struct LRSchedulerKwargs: Codable, Sendable, Equatable {
        /// `min_lr`: the floor of `cosine_with_min_lr`, absolute.
        public var minLR: Double?
        /// `min_lr_rate`: the floor of `cosine_with_min_lr`, as a fraction of `learning_rate`.
        public var minLRRate: Double?
        /// `num_cycles` of the cosine types (default 0.5).
        public var numCycles: Double?

        public init(minLR: Double? = nil, minLRRate: Double? = nil, numCycles: Double? = nil) {
            self.minLR = minLR
            self.minLRRate = minLRRate
            self.numCycles = numCycles
        }

        enum CodingKeys: String, CodingKey, CaseIterable {
            case minLR = "min_lr", minLRRate = "min_lr_rate", numCycles = "num_cycles"
        }

        public init(from decoder: any Decoder) throws {
            try rejectUnknownKeys(decoder, known: CodingKeys.allCases.map(\.rawValue), prefix: "lr_scheduler_kwargs.")
            let c = try decoder.container(keyedBy: CodingKeys.self)
            minLR = try c.decodeIfPresent(Double.self, forKey: .minLR)
            minLRRate = try c.decodeIfPresent(Double.self, forKey: .minLRRate)
            numCycles = try c.decodeIfPresent(Double.self, forKey: .numCycles)
        }
    }

    enum CodingKeys: String, CodingKey, CaseIterable {
        case learningRate = "learning_rate"
        case lrSchedulerType = "lr_scheduler_type"
        case lrSchedulerKwargs = "lr_scheduler_kwargs"
        case warmupSteps = "warmup_steps"
        case weightDecay = "weight_decay"
        case optim
        case adamBeta1 = "adam_beta1"
        case adamBeta2 = "adam_beta2"
        case adamEpsilon = "adam_epsilon"
        case maxGradNorm = "max_grad_norm"
        case gradientAccumulationSteps = "gradient_accumulation_steps"
        case perDeviceTrainBatchSize = "per_device_train_batch_size"
        case numTrainEpochs = "num_train_epochs"
        case maxSteps = "max_steps"
        case loggingSteps = "logging_steps"
        case seed
    }

    /// Decodes the snake_case keys; missing keys keep transformers' defaults.
    ///
    /// - Throws: ``TrainingError`` naming an unknown key (with the known ones), or the decoder's
    ///   error for a value of the wrong type.
    public init(from decoder: any Decoder) throws {
        try rejectUnknownKeys(decoder, known: CodingKeys.allCases.map(\.rawValue), prefix: "")
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = TrainingArguments()
        learningRate = try c.decodeIfPresent(Double.self, forKey: .learningRate) ?? d.learningRate
        if let name = try c.decodeIfPresent(String.self, forKey: .lrSchedulerType) {
            guard let type = LearningRateSchedulerType(rawValue: name) else {
                throw TrainingError("lr_scheduler_type", "unsupported value \"\(name)\"; use one of "
                                    + LearningRateSchedulerType.allCases.map(\.rawValue).joined(separator: ", "))
            }
            lrSchedulerType = type
        }
        lrSchedulerKwargs = try c.decodeIfPresent(LRSchedulerKwargs.self, forKey: .lrSchedulerKwargs) ?? d.lrSchedulerKwargs
        warmupSteps = try c.decodeIfPresent(Double.self, forKey: .warmupSteps) ?? d.warmupSteps
        weightDecay = try c.decodeIfPresent(Double.self, forKey: .weightDecay) ?? d.weightDecay
        if let name = try c.decodeIfPresent(String.self, forKey: .optim) {
            guard let optimizer = OptimizerName(rawValue: name) else {
                throw TrainingError("optim", "unsupported value \"\(name)\"; Finch implements these of transformers' optimizers: "
                                    + OptimizerName.allCases.map(\.rawValue).joined(separator: ", "))
            }
            optim = optimizer
        }
        adamBeta1 = try c.decodeIfPresent(Double.self, forKey: .adamBeta1) ?? d.adamBeta1
        adamBeta2 = try c.decodeIfPresent(Double.self, forKey: .adamBeta2) ?? d.adamBeta2
        adamEpsilon = try c.decodeIfPresent(Double.self, forKey: .adamEpsilon) ?? d.adamEpsilon
        maxGradNorm = try c.decodeIfPresent(Double.self, forKey: .maxGradNorm) ?? d.maxGradNorm
        gradientAccumulationSteps = try c.decodeIfPresent(Int.self, forKey: .gradientAccumulationSteps) ?? d.gradientAccumulationSteps
        perDeviceTrainBatchSize = try c.decodeIfPresent(Int.self, forKey: .perDeviceTrainBatchSize) ?? d.perDeviceTrainBatchSize
        numTrainEpochs = try c.decodeIfPresent(Double.self, forKey: .numTrainEpochs) ?? d.numTrainEpochs
        maxSteps = try c.decodeIfPresent(Int.self, forKey: .maxSteps) ?? d.maxSteps
        loggingSteps = try c.decodeIfPresent(Double.self, forKey: .loggingSteps) ?? d.loggingSteps
        seed = try c.decodeIfPresent(Int.self, forKey: .seed) ?? d.seed
    }

    /// Every problem with these settings, one ``TrainingError`` per field, named by its key. The
    /// rules are transformers' (`TrainingArguments.__post_init__`) and torch's (`AdamW.__init__`:
    /// lr ≥ 0, ε ≥ 0, 0 ≤ β < 1, weight decay ≥ 0), plus the counts a loop needs.
    public var problems: [TrainingError] {
        var problems: [TrainingError] = []
        func check(_ ok: Bool, _ key: CodingKeys, _ reason: @autoclosure () -> String) {
            if !ok { problems.append(TrainingError(key.rawValue, reason())) }
        }
        check(learningRate.isFinite && learningRate >= 0, .learningRate, "must be a finite number ≥ 0, got \(learningRate)")
        let kwargs = lrSchedulerKwargs
        switch lrSchedulerType {
        case .cosineWithMinLR:
            check(!(kwargs.minLR != nil && kwargs.minLRRate != nil), .lrSchedulerKwargs, "set only one of min_lr and min_lr_rate")
            check(kwargs.minLR != nil || kwargs.minLRRate != nil, .lrSchedulerKwargs, "cosine_with_min_lr needs min_lr or min_lr_rate")
        case .constant, .constantWithWarmup, .linear, .cosine:
            check(kwargs.minLR == nil && kwargs.minLRRate == nil, .lrSchedulerKwargs,
                  "min_lr and min_lr_rate only apply to cosine_with_min_lr, not \(lrSchedulerType.rawValue)")
        }
        if kwargs.numCycles != nil {
            check(lrSchedulerType == .cosine || lrSchedulerType == .cosineWithMinLR, .lrSchedulerKwargs,
                  "num_cycles only applies to the cosine schedules, not \(lrSchedulerType.rawValue)")
        }
        check(warmupSteps.isFinite && warmupSteps >= 0, .warmupSteps,
              "must be a step count ≥ 1 or a ratio in [0, 1), got \(warmupSteps)")
        check(weightDecay.isFinite && weightDecay >= 0, .weightDecay, "must be a finite number ≥ 0, got \(weightDecay)")
        check(adamBeta1 >= 0 && adamBeta1 < 1, .adamBeta1, "must be in [0, 1), got \(adamBeta1)")
        check(adamBeta2 >= 0 && adamBeta2 < 1, .adamBeta2, "must be in [0, 1), got \(adamBeta2)")
        check(adamEpsilon.isFinite && adamEpsilon >= 0, .adamEpsilon, "must be a finite number ≥ 0, got \(adamEpsilon)")
        check(!maxGradNorm.isNaN, .maxGradNorm, "must be a number (≤ 0 disables clipping), got nan")
        check(gradientAccumulationSteps >= 1, .gradientAccumulationSteps, "must be ≥ 1, got \(gradientAccumulationSteps)")
        check(perDeviceTrainBatchSize >= 1, .perDeviceTrainBatchSize, "must be ≥ 1, got \(perDeviceTrainBatchSize)")
        check(maxSteps != 0, .maxSteps, "must be > 0, or -1 to train for num_train_epochs")
        if maxSteps < 0 {
            check(numTrainEpochs.isFinite && numTrainEpochs > 0, .numTrainEpochs,
                  "must be > 0 when max_steps is -1, got \(numTrainEpochs)")
        }
        check(loggingSteps.isFinite && loggingSteps > 0, .loggingSteps, "must be > 0, got \(loggingSteps)")
        if loggingSteps > 1 {
            check(loggingSteps == loggingSteps.rounded(), .loggingSteps, "must be an integer if bigger than 1, got \(loggingSteps)")
        }
        return problems
    }

    /// Throws the first of ``problems``, if any.
    public func validate() throws {
        if let first = problems.first { throw first }
    }

    /// Log every this many optimizer steps in a run of `totalSteps`: `logging_steps`, or
    /// ⌈totalSteps · logging_steps⌉ for a ratio (transformers' `Trainer._inner_training_loop`).
    public func loggingInterval(totalSteps: Int) -> Int {
        loggingSteps < 1 ? Int((Double(totalSteps) * loggingSteps).rounded(.up)) : Int(loggingSteps)
    }
}

/// A coding key for any string, to list the keys a decoder holds.
private struct AnyKey: CodingKey {
    var stringValue: String
    var intValue: Int? { nil }
    init(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { nil }
}

/// Throws a ``TrainingError`` for the first key of the decoder's object that is not in `known`
/// (DESIGN.md §6: unknown keys are errors, not silence).
private func rejectUnknownKeys(_ decoder: any Decoder, known: [String], prefix: String) throws {
    let container = try decoder.container(keyedBy: AnyKey.self)
    for key in container.allKeys where !known.contains(key.stringValue) {
        throw TrainingError(prefix + key.stringValue, "unknown key; known keys: " + known.joined(separator: ", "))
    }
}
