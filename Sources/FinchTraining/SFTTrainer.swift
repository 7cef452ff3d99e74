import FinchCore
import FinchModels
import Foundation

/// One tokenized SFT sequence: input ids and transformers-style labels aligned with them (−100:
/// no loss; the model shifts, so label t is scored by row t − 1).
public struct SFTTrainingSequence: Sendable, Equatable, Codable {
    public var inputIDs: [Int]
    public var labels: [Int]

    public init(inputIDs: [Int], labels: [Int]) {
        precondition(inputIDs.count == labels.count, "SFTTrainingSequence: \(inputIDs.count) ids, \(labels.count) labels")
        self.inputIDs = inputIDs
        self.labels = labels
    }
}

/// The settings of an SFT run (TRL `SFTConfig` names in the doc comments).
public struct SFTTrainerConfiguration: Sendable {
    /// Optimizer, schedule, batch size, accumulation, steps/epochs, logging, clipping, seed.
    public var arguments: TrainingArguments
    /// `gradient_checkpointing` (TRL default true).
    public var gradientCheckpointing = true
    /// `eval_steps` (0: never during training).
    public var evalSteps = 0
    /// Data order; default a seeded shuffle per epoch from `arguments.seed`.
    public var dataOrder: TrainingDataOrder

    public init(arguments: TrainingArguments) {
        self.arguments = arguments
        dataOrder = .shuffled(seed: UInt64(truncatingIfNeeded: arguments.seed))
    }
}

/// TRL's `SFTTrainer` with a PEFT LoRA policy: the mean token cross-entropy of each accumulation
/// window — Σ over the window's scored tokens of −log p, divided by the window's scored-token
/// count (transformers' `num_items_in_batch`, since `SFTTrainer` models accept loss kwargs) — then
/// the shared clipping, optimizer, schedule and logging of ``LoRATrainer``.
///
/// An example is one training row: a single sequence, or with packing a bin of several sequences
/// that go through the model end to end, each attending only to itself with positions restarting
/// at 0 (TRL's padding-free packing with `position_ids`), which is what a `PackedBatch` computes.
/// Metrics per micro-batch: `mean_token_accuracy` (argmax = label over the scored tokens).
public final class SFTTrainer: LoRATrainer {
    public let configuration: SFTTrainerConfiguration
    public let trainRows: [[SFTTrainingSequence]]
    public let evalRows: [[SFTTrainingSequence]]

    public init(model: CausalLM, policy: LoRAAdapter, arena: ParameterArena, trainRows: [[SFTTrainingSequence]],
                evalRows: [[SFTTrainingSequence]] = [], configuration: SFTTrainerConfiguration, pool: ThreadPool = ThreadPool()) throws {
        guard !trainRows.isEmpty else { throw TrainingError("train_dataset", "has no sequences left to train on") }
        for (i, row) in (trainRows + evalRows).enumerated() {
            guard !row.isEmpty, row.allSatisfy({ $0.inputIDs.count >= 1 }) else {
                throw TrainingError("train_dataset", "row \(i) is empty")
            }
        }
        self.configuration = configuration
        self.trainRows = trainRows
        self.evalRows = evalRows
        try super.init(model: model, policy: policy, arena: arena, arguments: configuration.arguments, examples: trainRows.count,
                       dataOrder: configuration.dataOrder, pool: pool)
    }

    override var evalSteps: Int { configuration.evalSteps }

    /// The packed micro-batch of some rows.
    static func batch(_ rows: [[SFTTrainingSequence]]) throws -> PackedBatch {
        let sequences = rows.flatMap { $0 }
        return try PackedBatch(sequences: sequences.map(\.inputIDs), labels: sequences.map(\.labels))
    }

    override func trainWindow(_ window: AccumulationWindow) throws -> Double {
        let batches = try window.batches.map { b in try Self.batch(microBatchIndices(epoch: window.epoch, batch: b).map { trainRows[$0] }) }
        // transformers' num_items_in_batch: the window's scored tokens.
        let items = batches.reduce(0) { $0 + $1.scoredTokenCount }
        guard items > 0 else { throw TrainingError("train_dataset", "step \(step + 1) has no token to compute the loss on") }
        var options = TrainingPass.Options(gradientCheckpointing: configuration.gradientCheckpointing)
        options.topPredictions = true
        var stepLoss = 0.0
        for (index, batch) in batches.enumerated() {
            // LoRA dropout stays on in SFT (only DPO disables dropout): masks drawn from the seed,
            // the step and the micro-batch, so a resumed run draws the same ones.
            if policy.configuration.loraDropout > 0 {
                options.loraDropout = .random(seed: UInt64(truncatingIfNeeded: arguments.seed) &* 0x9E37_79B9_7F4A_7C15
                                              &+ UInt64(step) &* 1_000_003 &+ UInt64(index))
            }
            policy.parameters.zeroGradients()
            let out = try pass.forward(batch, adapter: policy, options: options, pool: pool)
            let (sum, correct, scored) = Self.totals(batch, out)
            let loss = -sum / Double(items)
            guard loss.isFinite else { throw TrainingError("loss", "is \(loss) at step \(step + 1); stopping") }
            let g = batch.targets.map { $0 >= 0 ? Float(-1 / Double(items)) : 0 }
            try pass.backward(logProbabilityGradient: g, pool: pool)
            accumulatePolicyGradients()
            stepLoss += loss
            tokensSeen += batch.tokenCount
            windowMetrics.append([("mean_token_accuracy", scored > 0 ? Double(correct) / Double(scored) : 0)])
        }
        return stepLoss
    }

    /// Σ log p over the scored rows, how many of them are the argmax, and their count.
    static func totals(_ batch: PackedBatch, _ out: TrainingPass.Output) -> (Double, Int, Int) {
        var sum = 0.0, correct = 0, scored = 0
        for t in 0..<batch.tokenCount where batch.targets[t] >= 0 {
            sum += Double(out.logProbabilities[t])
            scored += 1
            if out.targetIsTopPrediction?[t] == true { correct += 1 }
        }
        return (sum, correct, scored)
    }

    /// `eval_loss` (the Trainer's sample-weighted mean of each batch's mean token cross-entropy)
    /// and `eval_mean_token_accuracy` (the plain mean of per-batch accuracies, as TRL logs metrics).
    public override func evaluate() throws -> TrainingLogRecord? {
        guard !evalRows.isEmpty else { return nil }
        let size = arguments.perDeviceTrainBatchSize
        var weighted = 0.0, accuracies: [Double] = []
        var options = TrainingPass.Options()
        options.topPredictions = true
        for start in stride(from: 0, to: evalRows.count, by: size) {
            let rows = Array(evalRows[start..<min(start + size, evalRows.count)])
            let batch = try Self.batch(rows)
            let out = try pass.logProbabilities(batch, adapter: policy, options: options, pool: pool)
            let (s, correct, scored) = Self.totals(batch, out)
            weighted += (scored > 0 ? -s / Double(scored) : 0) * Double(rows.count)
            accuracies.append(scored > 0 ? Double(correct) / Double(scored) : 0)
        }
        let record = TrainingLogRecord(step: step, values: [("eval_loss", weighted / Double(evalRows.count)),
                                                            ("eval_mean_token_accuracy", accuracies.reduce(0, +) / Double(accuracies.count))])
        history.append(record)
        return record
    }
}
