import FinchCore
import FinchFormats
import FinchModels
import FinchTraining
import Foundation
import XCTest

/// The DPO loop's invariants on the tiny Llama (parity with TRL is DPOTrainerParityTests).
final class DPOTrainerTests: XCTestCase {
    static let modelFolder = TrainingRunTests.modelFolder

    func pairs(_ n: Int, seed: UInt64, vocabulary: Int) -> [DPOSequencePair] {
        var rng = SplitMix64(seed: seed)
        func tokens(_ k: Int) -> [Int] { (0..<k).map { _ in Int(rng.next() % UInt64(vocabulary)) } }
        return (0..<n).map { i in DPOSequencePair(prompt: tokens(3 + i % 4), chosen: tokens(2 + i % 3), rejected: tokens(4 - i % 3)) }
    }

    func trainer(reference: DPOReference? = nil, precompute: Bool = false, learningRate: Double = 1e-2,
                 loss: DPOLossConfiguration? = nil, maxSteps: Int = 4) throws -> DPOTrainer {
        let model = try CausalLM(source: ModelSource(path: Self.modelFolder))
        let lora = LoRAConfiguration(r: 4, loraAlpha: 8, targetModules: .allLinear)
        let (policy, arena) = try DPOTrainer.makePolicy(model: model, configuration: lora, seed: 5)
        var arguments = TrainingArguments.trlDPO
        arguments.learningRate = learningRate
        arguments.perDeviceTrainBatchSize = 2
        arguments.gradientAccumulationSteps = 2
        arguments.maxSteps = maxSteps
        arguments.loggingSteps = 1
        var configuration = DPOTrainerConfiguration(arguments: arguments, loss: try loss ?? DPOLossConfiguration())
        configuration.precomputeReferenceLogProbabilities = precompute
        configuration.dataOrder = .shuffled(seed: 3)
        return try DPOTrainer(model: model, policy: policy, arena: arena, reference: reference ?? .base,
                              trainPairs: pairs(8, seed: 1, vocabulary: model.vocabularySize),
                              evalPairs: pairs(3, seed: 2, vocabulary: model.vocabularySize), configuration: configuration,
                              pool: ThreadPool(threads: 2))
    }

    /// Step 1 with a fresh adapter (B = 0): policy = reference, so TRL's loss is exactly ln 2,
    /// rewards and margins 0, accuracy 0 (strict >).
    func testFirstStepValues() throws {
        let t = try trainer()
        let record = try XCTUnwrap(try t.trainStep())
        XCTAssertEqual(Float(try XCTUnwrap(record["loss"])), 0.6931471824645996)
        for key in ["rewards/chosen", "rewards/rejected", "rewards/margins", "rewards/accuracies"] {
            XCTAssertEqual(record[key], 0, key)
        }
        XCTAssertGreaterThan(try XCTUnwrap(record["grad_norm"]), 0)
        XCTAssertEqual(record["learning_rate"], 1e-2, "linear schedule, no warmup: λ(0) = 1")
        XCTAssertLessThan(try XCTUnwrap(record["logps/chosen"]), 0)
        // num_tokens: every token of both sequences of the step's 4 pairs.
        let second = try XCTUnwrap(try t.trainStep())
        XCTAssertGreaterThan(try XCTUnwrap(second["rewards/margins"]), 0, "one step of DPO separates chosen from rejected")
        XCTAssertGreaterThan(try XCTUnwrap(second["num_tokens"]), try XCTUnwrap(record["num_tokens"]))
    }

    /// Precomputed reference log-probs give the live base reference's numbers (only the packing
    /// of the reference pass differs: BLAS blocking over other row counts).
    func testPrecomputedReferenceMatchesLive() throws {
        let live = try trainer(), pre = try trainer(precompute: true)
        for _ in 0..<4 {
            let a = try XCTUnwrap(try live.trainStep()), b = try XCTUnwrap(try pre.trainStep())
            for (key, value) in a.values {
                XCTAssertEqual(try XCTUnwrap(b[key]), value, accuracy: 1e-6 * max(1, abs(value)), key)
            }
        }
        let ea = try XCTUnwrap(try live.evaluate()), eb = try XCTUnwrap(try pre.evaluate())
        XCTAssertEqual(try XCTUnwrap(eb["eval_loss"]), try XCTUnwrap(ea["eval_loss"]), accuracy: 1e-6)
    }

    /// A frozen reference adapter equal to the policy's start: step 1 is ln 2 again, and the
    /// reference really is read (a different reference adapter changes the loss).
    func testFrozenAdapterReference() throws {
        let model = try CausalLM(source: ModelSource(path: Self.modelFolder))
        let lora = LoRAConfiguration(r: 4, loraAlpha: 8, targetModules: .allLinear)
        let reference = try LoRAAdapter(name: "ref", configuration: lora, model: model, seed: 9)
        var rng = SplitMix64(seed: 4)
        for tensor in reference.parameters.tensors {
            try reference.parameters.setValues(of: tensor.name, to: (0..<tensor.count).map { _ in Float.random(in: -0.1...0.1, using: &rng) })
        }
        let t = try trainer(reference: .adapter(reference))
        // The policy starts as a copy of the reference adapter (TRL's "ref" copy).
        t.policy.parameters.values.update(from: reference.parameters.values, count: reference.parameters.count)
        let record = try XCTUnwrap(try t.trainStep())
        XCTAssertEqual(Float(try XCTUnwrap(record["loss"])), 0.6931471824645996)
        let fresh = try trainer(reference: .adapter(reference))
        let other = try XCTUnwrap(try fresh.trainStep())
        XCTAssertNotEqual(other["loss"], record["loss"], "a reference ≠ policy changes the loss")
    }

    /// A diverging run stops with an error naming the step.
    func testNonFiniteLossStopsTheRun() throws {
        let t = try trainer(learningRate: 1e30)
        XCTAssertThrowsError(try t.train()) { error in
            XCTAssertTrue("\(error)".contains("at step"), "\(error)")
        }
        XCTAssertGreaterThanOrEqual(t.step, 1)
    }

    func testInvalidInputs() throws {
        let model = try CausalLM(source: ModelSource(path: Self.modelFolder))
        let (policy, arena) = try DPOTrainer.makePolicy(model: model, configuration: LoRAConfiguration(r: 2, targetModules: .allLinear), seed: 1)
        let configuration = DPOTrainerConfiguration(loss: try DPOLossConfiguration())
        XCTAssertThrowsError(try DPOTrainer(model: model, policy: policy, arena: arena, reference: .base, trainPairs: [],
                                            configuration: configuration)) { XCTAssertTrue("\($0)".hasPrefix("train_dataset:")) }
        let empty = DPOSequencePair(prompt: [1, 2], chosen: [], rejected: [3])
        XCTAssertThrowsError(try DPOTrainer(model: model, policy: policy, arena: arena, reference: .base, trainPairs: [empty],
                                            configuration: configuration)) { XCTAssertTrue("\($0)".contains("empty completion")) }
    }
}

extension DPOTrainerTests {
    /// Stopping after step 2 (checkpoint written) and resuming in a new trainer ends with the same
    /// adapter bytes, optimizer state and logs as one uninterrupted run.
    func testResumeFromCheckpointReproducesTheRun() throws {
        let dir = NSTemporaryDirectory() + "finch-dpo-ckpt-\(UUID().uuidString)"
        addTeardownBlock { try? FileManager.default.removeItem(atPath: dir) }
        let straight = try trainer()
        try straight.train()
        let first = try trainer()
        try first.trainStep()
        try first.trainStep()
        try first.saveCheckpoint(in: dir, baseModel: "tiny", totalLimit: 1)
        try first.trainStep()
        try first.saveCheckpoint(in: dir, baseModel: "tiny", totalLimit: 1)
        XCTAssertEqual(DPOTrainer.checkpoints(in: dir).map(\.step), [3], "save_total_limit 1 keeps the newest")
        let resumed = try trainer()
        try resumed.resume(fromCheckpoint: try XCTUnwrap(DPOTrainer.checkpoints(in: dir).last).path)
        XCTAssertEqual(resumed.step, 3)
        try resumed.train()
        XCTAssertEqual(Array(resumed.arena.values), Array(straight.arena.values), "adapter values")
        XCTAssertEqual(Array(resumed.arena.secondMoments), Array(straight.arena.secondMoments), "optimizer moments")
        XCTAssertEqual(resumed.history.count, straight.history.count)
        for (a, b) in zip(resumed.history, straight.history) {
            XCTAssertEqual(a.step, b.step)
            XCTAssertEqual(a.values.map(\.0), b.values.map(\.0))
            XCTAssertEqual(a.values.map(\.1), b.values.map(\.1), "step \(a.step)")
        }
        // A checkpoint of another run is refused with the reason.
        let other = try trainer(maxSteps: 6)
        XCTAssertThrowsError(try other.resume(fromCheckpoint: DPOTrainer.checkpoints(in: dir).last!.path)) {
            XCTAssertTrue("\($0)".contains("6"), "\($0)")
        }
    }
}
