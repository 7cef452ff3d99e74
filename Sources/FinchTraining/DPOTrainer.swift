import FinchCore
import FinchModels
import Foundation

/// Where the reference log-probabilities come from (trl-dpo.md §5), none of which costs a second
/// copy of the base model.
public enum DPOReference: Sendable {
    /// The same network with the LoRA branch off (TRL's `disable_adapter()` for a fresh adapter).
    case base
    /// A frozen second adapter on the same base (TRL's `"ref"` copy of a pretrained adapter; the
    /// article's "load the SFT adapter twice").
    case adapter(LoRAAdapter)
}

/// The order in which a run visits the training pairs.
public enum DPODataOrder: Sendable, Equatable {
    /// A fresh seeded shuffle every epoch (`seed`; Finch's own generator, so not torch's order).
    case shuffled(seed: UInt64)
    /// Dataset order every epoch.
    case sequential
    /// One permutation per epoch, given (e.g. to replay a TRL run's sampler); epochs beyond the
    /// list reuse its last entry.
    case explicit([[Int]])

    func permutation(epoch: Int, count: Int) -> [Int] {
        switch self {
        case .sequential: return Array(0..<count)
        case .explicit(let orders): return orders[min(epoch, orders.count - 1)]
        case .shuffled(let seed):
            var rng = SplitMix64(seed: seed &+ UInt64(epoch) &* 0x9E37_79B9_7F4A_7C15)
            var order = Array(0..<count)
            // Fisher–Yates.
            for i in stride(from: count - 1, to: 0, by: -1) {
                order.swapAt(i, Int(rng.next() % UInt64(i + 1)))
            }
            return order
        }
    }
}

/// The settings of a DPO run (TRL `DPOConfig` names in the doc comments).
public struct DPOTrainerConfiguration: Sendable {
    /// Optimizer, schedule, batch size, accumulation, steps/epochs, logging, clipping, seed.
    public var arguments: TrainingArguments
    /// `loss_type`, `loss_weights`, `beta`, `label_smoothing`.
    public var loss: DPOLossConfiguration
    /// `gradient_checkpointing` (TRL default true).
    public var gradientCheckpointing = true
    /// `precompute_ref_log_probs`: compute every pair's reference log-probs once before training.
    public var precomputeReferenceLogProbabilities = false
    /// `eval_steps`: evaluate every this many optimizer steps (and at the end) when > 0.
    public var evalSteps = 0
    /// Data order; default a seeded shuffle per epoch from `arguments.seed`.
    public var dataOrder: DPODataOrder

    public init(arguments: TrainingArguments = .trlDPO, loss: DPOLossConfiguration) {
        self.arguments = arguments
        self.loss = loss
        dataOrder = .shuffled(seed: UInt64(truncatingIfNeeded: arguments.seed))
    }
}

/// One logged record: TRL's keys (`loss`, `grad_norm`, `learning_rate`, `rewards/chosen`, …, and
/// `eval_*` for evaluations) with the optimizer step.
public struct DPOLogRecord: Sendable {
    public var step: Int
    public var values: [(String, Double)]

    public subscript(key: String) -> Double? { values.first { $0.0 == key }?.1 }
}

/// TRL's `DPOTrainer` with a PEFT LoRA policy (reference/trl-dpo.md §3–§7): per optimizer step,
/// for each micro-batch of its accumulation window, the reference log-probs (adapter off, a
/// frozen adapter, or precomputed), the policy forward and backward of the DPO loss divided by the
/// window's size; then global-norm clipping, the optimizer at the schedule's rate, and metrics
/// averaged over the logging window with TRL's names.
public final class DPOTrainer {
    public let model: CausalLM
    public let policy: LoRAAdapter
    public let reference: DPOReference
    public let configuration: DPOTrainerConfiguration
    public let trainPairs: [DPOSequencePair]
    public let evalPairs: [DPOSequencePair]
    public let plan: TrainingPlan
    public let schedule: LearningRateSchedule
    /// The policy's values, gradients and optimizer moments (`policy`'s values live here).
    public let arena: ParameterArena
    public internal(set) var optimizer: TrainingOptimizer
    /// Optimizer steps done.
    public internal(set) var step = 0
    /// TRL's cumulative `num_tokens`.
    public internal(set) var tokensSeen = 0
    /// Every record logged so far.
    public internal(set) var history: [DPOLogRecord] = []
    /// Precomputed reference log-probs (chosen, rejected) per train and eval pair.
    public private(set) var precomputedTrain: [(Double, Double)]?
    public private(set) var precomputedEval: [(Double, Double)]?

    let pool: ThreadPool
    let pass: TrainingPass
    /// The logging window's per-micro-batch metrics and step losses.
    var windowMetrics: [DPOMetrics] = []
    var windowLoss = 0.0
    var windowSteps = 0

    /// - Parameters:
    ///   - policy: the trained adapter; its values must live in `arena` (build both with
    ///     ``makePolicy(model:configuration:seed:)`` or pass an arena holding its values).
    public init(model: CausalLM, policy: LoRAAdapter, arena: ParameterArena, reference: DPOReference,
                trainPairs: [DPOSequencePair], evalPairs: [DPOSequencePair] = [], configuration: DPOTrainerConfiguration,
                pool: ThreadPool = ThreadPool()) throws {
        guard !trainPairs.isEmpty else { throw TrainingError("train_dataset", "has no pairs left to train on") }
        for (i, pair) in (trainPairs + evalPairs).enumerated() where pair.chosenCompletionCount == 0 || pair.rejectedCompletionCount == 0 {
            throw TrainingError("train_dataset", "pair \(i) has an empty completion after truncation")
        }
        guard arena.values.baseAddress == policy.parameters.values else {
            throw TrainingError("policy", "the adapter's values must live in the trainer's parameter arena")
        }
        if case .adapter(let ref) = reference {
            try ref.check(for: model)
            guard ref.moduleNames == policy.moduleNames else {
                throw TrainingError("ref_adapter", "adapts \(ref.moduleNames.count) modules, the policy \(policy.moduleNames.count): they must match")
            }
        }
        self.model = model
        self.policy = policy
        self.arena = arena
        self.reference = reference
        self.configuration = configuration
        self.trainPairs = trainPairs
        self.evalPairs = evalPairs
        self.pool = pool
        let a = configuration.arguments
        plan = try TrainingPlan(examples: trainPairs.count, arguments: a)
        schedule = try LearningRateSchedule(type: a.lrSchedulerType, learningRate: a.learningRate,
                                            warmupSteps: LearningRateSchedule.resolvedWarmupSteps(a.warmupSteps, trainingSteps: plan.totalSteps),
                                            trainingSteps: plan.totalSteps, minLR: a.lrSchedulerKwargs.minLR,
                                            minLRRate: a.lrSchedulerKwargs.minLRRate, numCycles: a.lrSchedulerKwargs.numCycles ?? 0.5)
        optimizer = try TrainingOptimizer(a, arena: arena)
        pass = TrainingPass(model: model)
    }

    /// A LoRA policy whose values live in a new arena (transformers decays every LoRA matrix).
    public static func makePolicy(model: CausalLM, configuration: LoRAConfiguration, seed: UInt64) throws -> (LoRAAdapter, ParameterArena) {
        let shapes = try LoRAAdapter.parameterShapes(configuration: configuration, model: model)
        let arena = try ParameterArena(shapes.map { ParameterSpec(name: $0.name, shape: $0.shape, appliesWeightDecay: true) })
        let adapter = try LoRAAdapter(configuration: configuration, model: model, seed: seed,
                                      values: ExternalValues(pointer: arena.values.baseAddress!, count: arena.values.count, owner: arena))
        return (adapter, arena)
    }

    // MARK: Reference log-probs

    private var referenceAdapter: LoRAAdapter? {
        if case .adapter(let a) = reference { return a }
        return nil
    }

    /// The reference's (chosen, rejected) sums for a micro-batch, from the precomputed table when
    /// there is one (`indices` into `table`).
    private func referenceSums(_ micro: DPOMicroBatch, indices: [Int], table: [(Double, Double)]?) throws -> (chosen: [Double], rejected: [Double]) {
        if let table { return (indices.map { table[$0].0 }, indices.map { table[$0].1 }) }
        let out = try pass.logProbabilities(micro.batch, adapter: referenceAdapter, pool: pool)
        return micro.sums(out.logProbabilities)
    }

    /// Computes the reference log-probs of every pair once (`precompute_ref_log_probs`), in
    /// micro-batches of `per_device_train_batch_size` pairs.
    public func precomputeReferenceLogProbabilities() throws {
        func table(_ pairs: [DPOSequencePair]) throws -> [(Double, Double)] {
            var out: [(Double, Double)] = []
            let size = configuration.arguments.perDeviceTrainBatchSize
            for start in stride(from: 0, to: pairs.count, by: size) {
                let micro = try DPOMicroBatch(Array(pairs[start..<min(start + size, pairs.count)]))
                let sums = try referenceSums(micro, indices: [], table: nil)
                out += zip(sums.chosen, sums.rejected).map { ($0, $1) }
            }
            return out
        }
        precomputedTrain = try table(trainPairs)
        precomputedEval = try table(evalPairs)
    }

    /// Sets precomputed reference log-probs (e.g. read from a cache).
    public func setPrecomputed(train: [(Double, Double)], eval: [(Double, Double)]) throws {
        guard train.count == trainPairs.count, eval.count == evalPairs.count else {
            throw TrainingError("precompute_ref_log_probs", "the cached values cover \(train.count)+\(eval.count) pairs, the data has \(trainPairs.count)+\(evalPairs.count)")
        }
        precomputedTrain = train
        precomputedEval = eval
    }

    // MARK: Training

    /// The pair indices of micro-batch `batch` of epoch `epoch`.
    func microBatchIndices(epoch: Int, batch: Int) -> [Int] {
        let order = configuration.dataOrder.permutation(epoch: epoch, count: trainPairs.count)
        let size = configuration.arguments.perDeviceTrainBatchSize
        return Array(order[(batch * size)..<min((batch + 1) * size, order.count)])
    }

    /// Runs the next optimizer step; returns the record logged at this step, if any.
    @discardableResult
    public func trainStep() throws -> DPOLogRecord? {
        guard step < plan.totalSteps else { throw TrainingError("max_steps", "the run's \(plan.totalSteps) steps are done") }
        if configuration.precomputeReferenceLogProbabilities, precomputedTrain == nil { try precomputeReferenceLogProbabilities() }
        let window = plan.window(forStep: step + 1)
        let windowSize = Double(window.batches.count)
        arena.zeroGradients()
        var stepLoss = 0.0
        let options = TrainingPass.Options(gradientCheckpointing: configuration.gradientCheckpointing, logitMeans: true)
        for b in window.batches {
            let indices = microBatchIndices(epoch: window.epoch, batch: b)
            let micro = try DPOMicroBatch(indices.map { trainPairs[$0] })
            let ref = try referenceSums(micro, indices: indices, table: precomputedTrain)
            policy.parameters.zeroGradients()
            let out = try pass.forward(micro.batch, adapter: policy, options: options, pool: pool)
            let values = micro.pairValues(policy: out.logProbabilities, reference: ref)
            let result = DPOLoss.evaluate(values, configuration: configuration.loss)
            guard result.loss.isFinite else {
                throw TrainingError("loss", "is \(result.loss) at step \(step + 1) (micro-batch of pairs \(indices)); stopping")
            }
            let scale = 1 / windowSize
            try pass.backward(logProbabilityGradient: micro.tokenGradient(chosen: result.chosenGradient.map { $0 * scale },
                                                                          rejected: result.rejectedGradient.map { $0 * scale },
                                                                          chosenToken: result.chosenTokenGradient * scale),
                              pool: pool)
            for slice in arena.slices {
                arena.accumulateGradient(UnsafeBufferPointer(policy.parameters.gradients(of: slice.name)!), into: slice)
            }
            stepLoss += result.loss / windowSize
            tokensSeen += micro.tokenCount
            windowMetrics.append(metrics(micro, values: values, logitMeans: out.logitMeans ?? []))
        }
        let maxNorm = configuration.arguments.maxGradNorm
        let norm: Double
        if maxNorm > 0 {
            norm = try arena.clipGradientNorm(maxNorm: maxNorm, pool: pool)
        } else {
            norm = arena.gradientNorm(pool: pool)
        }
        guard norm.isFinite else { throw TrainingError("grad_norm", "is \(norm) at step \(step + 1); stopping") }
        let learningRate = schedule.learningRate(forStep: step + 1)
        optimizer.step(arena, learningRate: learningRate, pool: pool)
        step += 1
        windowLoss += stepLoss
        windowSteps += 1
        let logging = configuration.arguments.loggingSteps
        let every = logging >= 1 ? Int(logging) : max(1, Int((logging * Double(plan.totalSteps)).rounded(.up)))
        guard step % every == 0 || step == plan.totalSteps else { return nil }
        var values: [(String, Double)] = [("loss", windowLoss / Double(windowSteps)), ("grad_norm", norm), ("learning_rate", learningRate)]
        values += Self.average(windowMetrics)
        values += [("num_tokens", Double(tokensSeen)), ("epoch", window.epochProgress)]
        windowMetrics = []
        windowLoss = 0
        windowSteps = 0
        let record = DPOLogRecord(step: step, values: values)
        history.append(record)
        return record
    }

    /// Evaluation on `evalPairs` with the current policy (no gradients): `eval_loss` (the mean
    /// over pairs, as the Trainer's sample-weighted mean of batch losses) and the metrics as
    /// `eval_*`.
    public func evaluate() throws -> DPOLogRecord? {
        guard !evalPairs.isEmpty else { return nil }
        if configuration.precomputeReferenceLogProbabilities, precomputedEval == nil { try precomputeReferenceLogProbabilities() }
        let size = configuration.arguments.perDeviceTrainBatchSize
        var lossSum = 0.0
        var all: [DPOMetrics] = []
        for start in stride(from: 0, to: evalPairs.count, by: size) {
            let indices = Array(start..<min(start + size, evalPairs.count))
            let micro = try DPOMicroBatch(indices.map { evalPairs[$0] })
            let ref = try referenceSums(micro, indices: indices, table: precomputedEval)
            let out = try pass.logProbabilities(micro.batch, adapter: policy, options: .init(logitMeans: true), pool: pool)
            let values = micro.pairValues(policy: out.logProbabilities, reference: ref)
            lossSum += DPOLoss.evaluate(values, configuration: configuration.loss).loss * Double(indices.count)
            all.append(metrics(micro, values: values, logitMeans: out.logitMeans ?? []))
        }
        let record = DPOLogRecord(step: step, values: [("eval_loss", lossSum / Double(evalPairs.count))]
                                  + Self.average(all).map { ("eval_" + $0.0, $0.1) })
        history.append(record)
        return record
    }

    private func metrics(_ micro: DPOMicroBatch, values: DPOPairValues, logitMeans: [Float]) -> DPOMetrics {
        let t = logitMeans.isEmpty ? (0, 0, 0, 0) : micro.totals(logitMeans)
        return DPOMetrics(values, beta: configuration.loss.beta, chosenLogitSum: t.0, chosenLogitCount: t.1,
                          rejectedLogitSum: t.2, rejectedLogitCount: t.3)
    }

    /// TRL's log-time reduction: each metric's plain mean over the window's micro-batches.
    static func average(_ metrics: [DPOMetrics]) -> [(String, Double)] {
        guard let first = metrics.first else { return [] }
        return first.named.indices.map { k in
            (first.named[k].0, metrics.reduce(0.0) { $0 + $1.named[k].1 } / Double(metrics.count))
        }
    }

    /// Trains to the end of the plan, calling `log` with every record (training and evaluation).
    public func train(log: (DPOLogRecord) throws -> Void = { _ in }) throws {
        while step < plan.totalSteps {
            if let record = try trainStep() { try log(record) }
            let evalSteps = configuration.evalSteps
            if evalSteps > 0, step % evalSteps == 0 || step == plan.totalSteps, let record = try evaluate() { try log(record) }
        }
    }
}
