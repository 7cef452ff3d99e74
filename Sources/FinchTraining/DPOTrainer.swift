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

/// TRL's `DPOTrainer` with a PEFT LoRA policy (reference/trl-dpo.md §3–§7): per optimizer step,
/// for each micro-batch of its accumulation window, the reference log-probs (adapter off, a
/// frozen adapter, or precomputed), the policy forward and backward of the DPO loss divided by the
/// window's size; then global-norm clipping, the optimizer at the schedule's rate, and metrics
/// averaged over the logging window with TRL's names.
public final class DPOTrainer: LoRATrainer {
    public let reference: DPOReference
    public let configuration: DPOTrainerConfiguration
    public let trainPairs: [DPOSequencePair]
    public let evalPairs: [DPOSequencePair]
    /// Precomputed reference log-probs (chosen, rejected) per train and eval pair.
    public private(set) var precomputedTrain: [(Double, Double)]?
    public private(set) var precomputedEval: [(Double, Double)]?

    /// - Parameters:
    ///   - policy: the trained adapter; its values must live in `arena` (build both with
    ///     ``LoRATrainer/makePolicy(model:configuration:seed:)`` or pass an arena holding its values).
    public init(model: CausalLM, policy: LoRAAdapter, arena: ParameterArena, reference: DPOReference,
                trainPairs: [DPOSequencePair], evalPairs: [DPOSequencePair] = [], configuration: DPOTrainerConfiguration,
                pool: ThreadPool = ThreadPool()) throws {
        guard !trainPairs.isEmpty else { throw TrainingError("train_dataset", "has no pairs left to train on") }
        for (i, pair) in (trainPairs + evalPairs).enumerated() where pair.chosenCompletionCount == 0 || pair.rejectedCompletionCount == 0 {
            throw TrainingError("train_dataset", "pair \(i) has an empty completion after truncation")
        }
        if case .adapter(let ref) = reference {
            try ref.check(for: model)
            guard ref.moduleNames == policy.moduleNames else {
                throw TrainingError("ref_adapter", "adapts \(ref.moduleNames.count) modules, the policy \(policy.moduleNames.count): they must match")
            }
        }
        self.reference = reference
        self.configuration = configuration
        self.trainPairs = trainPairs
        self.evalPairs = evalPairs
        try super.init(model: model, policy: policy, arena: arena, arguments: configuration.arguments, examples: trainPairs.count,
                       dataOrder: configuration.dataOrder, pool: pool)
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

    override var evalSteps: Int { configuration.evalSteps }

    override func trainWindow(_ window: AccumulationWindow) throws -> Double {
        if configuration.precomputeReferenceLogProbabilities, precomputedTrain == nil { try precomputeReferenceLogProbabilities() }
        let windowSize = Double(window.batches.count)
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
            // The Trainer divides each micro-batch's loss by its window's size (DPO sets
            // model_accepts_loss_kwargs = False).
            let scale = 1 / windowSize
            try pass.backward(logProbabilityGradient: micro.tokenGradient(chosen: result.chosenGradient.map { $0 * scale },
                                                                          rejected: result.rejectedGradient.map { $0 * scale },
                                                                          chosenToken: result.chosenTokenGradient * scale),
                              pool: pool)
            accumulatePolicyGradients()
            stepLoss += result.loss / windowSize
            tokensSeen += micro.tokenCount
            windowMetrics.append(metrics(micro, values: values, logitMeans: out.logitMeans ?? []).named)
        }
        return stepLoss
    }

    /// Evaluation on `evalPairs` with the current policy (no gradients): `eval_loss` (the mean
    /// over pairs, as the Trainer's sample-weighted mean of batch losses) and the metrics as
    /// `eval_*`.
    public override func evaluate() throws -> TrainingLogRecord? {
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
                                  + Self.average(all.map(\.named)).map { ("eval_" + $0.0, $0.1) })
        history.append(record)
        return record
    }

    private func metrics(_ micro: DPOMicroBatch, values: DPOPairValues, logitMeans: [Float]) -> DPOMetrics {
        let t = logitMeans.isEmpty ? (0, 0, 0, 0) : micro.totals(logitMeans)
        return DPOMetrics(values, beta: configuration.loss.beta, chosenLogitSum: t.0, chosenLogitCount: t.1,
                          rejectedLogitSum: t.2, rejectedLogitCount: t.3)
    }
}
