import FinchCore
import FinchModels
import Foundation

/// One logged record: TRL's keys (`loss`, `grad_norm`, `learning_rate`, `rewards/chosen`, …, and
/// `eval_*` for evaluations) with the optimizer step.
public struct TrainingLogRecord: Sendable {
    public var step: Int
    public var values: [(String, Double)]

    public init(step: Int, values: [(String, Double)]) {
        self.step = step
        self.values = values
    }

    public subscript(key: String) -> Double? { values.first { $0.0 == key }?.1 }
}

public typealias DPOLogRecord = TrainingLogRecord

/// The order in which a run visits its training examples.
public enum TrainingDataOrder: Sendable, Equatable {
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

public typealias DPODataOrder = TrainingDataOrder

/// The loop a transformers `Trainer` runs around a LoRA policy, shared by ``DPOTrainer`` and
/// ``SFTTrainer``: the plan of optimizer steps and accumulation windows (trl-dpo.md §7.5), zeroed
/// gradients, the subclass's micro-batches (``trainWindow(_:)``), global-norm clipping, the
/// optimizer at the schedule's rate, and logging: the loss averaged over the steps of a logging
/// window, each metric's plain mean over the window's micro-batches. Checkpoints are in
/// `LoRATrainer+Checkpoint.swift`.
public class LoRATrainer {
    public let model: CausalLM
    public let policy: LoRAAdapter
    /// The policy's values, gradients and optimizer moments (`policy`'s values live here).
    public let arena: ParameterArena
    public let arguments: TrainingArguments
    public let plan: TrainingPlan
    public let schedule: LearningRateSchedule
    public internal(set) var optimizer: TrainingOptimizer
    /// Optimizer steps done.
    public internal(set) var step = 0
    /// TRL's cumulative `num_tokens`.
    public internal(set) var tokensSeen = 0
    /// Every record logged so far.
    public internal(set) var history: [TrainingLogRecord] = []
    /// Training examples (pairs for DPO, sequences for SFT), for the plan and checkpoint checks.
    public let exampleCount: Int
    /// The order of the examples.
    public let dataOrder: TrainingDataOrder

    let pool: ThreadPool
    let pass: TrainingPass
    /// The logging window: each micro-batch's metrics, and the steps' losses.
    var windowMetrics: [[(String, Double)]] = []
    var windowLoss = 0.0
    var windowSteps = 0

    init(model: CausalLM, policy: LoRAAdapter, arena: ParameterArena, arguments: TrainingArguments, examples: Int,
         dataOrder: TrainingDataOrder, pool: ThreadPool) throws {
        guard arena.values.baseAddress == policy.parameters.values else {
            throw TrainingError("policy", "the adapter's values must live in the trainer's parameter arena")
        }
        self.model = model
        self.policy = policy
        self.arena = arena
        self.arguments = arguments
        exampleCount = examples
        self.dataOrder = dataOrder
        self.pool = pool
        let a = arguments
        plan = try TrainingPlan(examples: examples, arguments: a)
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

    /// The example indices of micro-batch `batch` of epoch `epoch`.
    func microBatchIndices(epoch: Int, batch: Int) -> [Int] {
        let order = dataOrder.permutation(epoch: epoch, count: exampleCount)
        let size = arguments.perDeviceTrainBatchSize
        return Array(order[(batch * size)..<min((batch + 1) * size, order.count)])
    }

    /// Training examples (pairs, rows) that optimizer step `step` (1-based) goes through: the
    /// micro-batches of its window, the last of an epoch possibly short.
    public func exampleCount(ofStep step: Int) -> Int {
        let window = plan.window(forStep: step)
        return window.batches.reduce(0) { $0 + microBatchIndices(epoch: window.epoch, batch: $1).count }
    }

    /// Runs the window's micro-batches: forward, backward (gradients of the window's loss into
    /// `policy.parameters`, then ``accumulatePolicyGradients()``), `tokensSeen` and
    /// `windowMetrics` updated. Returns the step's loss (what the Trainer logs for it).
    func trainWindow(_ window: AccumulationWindow) throws -> Double {
        preconditionFailure("LoRATrainer.trainWindow must be overridden")
    }

    /// Adds the policy adapter's gradients (of one micro-batch) into the arena.
    func accumulatePolicyGradients() {
        for slice in arena.slices {
            arena.accumulateGradient(UnsafeBufferPointer(policy.parameters.gradients(of: slice.name)!), into: slice)
        }
    }

    /// Runs the next optimizer step; returns the record logged at this step, if any.
    @discardableResult
    public func trainStep() throws -> TrainingLogRecord? {
        guard step < plan.totalSteps else { throw TrainingError("max_steps", "the run's \(plan.totalSteps) steps are done") }
        let window = plan.window(forStep: step + 1)
        arena.zeroGradients()
        let stepLoss = try trainWindow(window)
        guard stepLoss.isFinite else { throw TrainingError("loss", "is \(stepLoss) at step \(step + 1); stopping") }
        let maxNorm = arguments.maxGradNorm
        let norm = maxNorm > 0 ? try arena.clipGradientNorm(maxNorm: maxNorm, pool: pool) : arena.gradientNorm(pool: pool)
        guard norm.isFinite else { throw TrainingError("grad_norm", "is \(norm) at step \(step + 1); stopping") }
        let learningRate = schedule.learningRate(forStep: step + 1)
        optimizer.step(arena, learningRate: learningRate, pool: pool)
        step += 1
        windowLoss += stepLoss
        windowSteps += 1
        let logging = arguments.loggingSteps
        let every = logging >= 1 ? Int(logging) : max(1, Int((logging * Double(plan.totalSteps)).rounded(.up)))
        guard step % every == 0 || step == plan.totalSteps else { return nil }
        var values: [(String, Double)] = [("loss", windowLoss / Double(windowSteps)), ("grad_norm", norm), ("learning_rate", learningRate)]
        values += Self.average(windowMetrics)
        values += [("num_tokens", Double(tokensSeen)), ("epoch", window.epochProgress)]
        windowMetrics = []
        windowLoss = 0
        windowSteps = 0
        let record = TrainingLogRecord(step: step, values: values)
        history.append(record)
        return record
    }

    /// TRL's log-time reduction: each metric's plain mean over the micro-batches.
    static func average(_ metrics: [[(String, Double)]]) -> [(String, Double)] {
        guard let first = metrics.first else { return [] }
        return first.indices.map { k in (first[k].0, metrics.reduce(0.0) { $0 + $1[k].1 } / Double(metrics.count)) }
    }

    /// Evaluation on the held-out examples (`eval_*` keys); nil without any.
    public func evaluate() throws -> TrainingLogRecord? { nil }

    /// Evaluate every this many steps (0: never).
    var evalSteps: Int { 0 }

    /// Trains to the end of the plan, calling `log` with every record (training and evaluation).
    public func train(log: (TrainingLogRecord) throws -> Void = { _ in }) throws {
        while step < plan.totalSteps {
            if let record = try trainStep() { try log(record) }
            if evalSteps > 0, step % evalSteps == 0 || step == plan.totalSteps, let record = try evaluate() { try log(record) }
        }
    }
}
