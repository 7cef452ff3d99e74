import FinchCore
import FinchFormats
import FinchModels
import FinchTraining
import Foundation
import XCTest

/// `SFTTrainer` replays the training-core's 10-step PyTorch + PEFT run
/// (reference/make_training_run_fixture.py: LoRA SFT of the tiny Llama, fused AdamW with weight
/// decay, cosine with 3 warmup steps, clipping on 5 steps, accumulation 2, loss = the window's
/// summed token cross-entropy / its scored tokens): the loop shared with DPO must give the same
/// losses, norms, rates and final weights as that run (TrainingRunTests drives the same pieces by
/// hand). Parity with TRL's SFTTrainer itself is SFTTrainerParityTests.
final class SFTTrainerTests: XCTestCase {
    func testReplaysThePyTorchRun() throws {
        let json = try JSONValue.parse(contentsOf: TrainingRunTests.fixtures + "/training_run.json")
        let tensors = try SafeTensorsFile(path: TrainingRunTests.fixtures + "/training_run.safetensors")
        let model = try CausalLM(source: ModelSource(path: TrainingRunTests.modelFolder))
        let lora = try XCTUnwrap(json["lora"])
        let configuration = LoRAConfiguration(r: try XCTUnwrap(lora["r"]?.intValue), loraAlpha: try XCTUnwrap(lora["lora_alpha"]?.doubleValue),
                                              loraDropout: 0, targetModules: .names(try XCTUnwrap(lora["target_modules"]?.arrayValue).compactMap(\.stringValue)))
        let (policy, arena) = try SFTTrainer.makePolicy(model: model, configuration: configuration, seed: 1)
        for tensor in policy.parameters.tensors { try policy.parameters.setValues(of: tensor.name, to: tensors.float32("initial." + tensor.name)) }
        let micro = try XCTUnwrap(json["micro_batches"]?.arrayValue)
        let rows: [[SFTTrainingSequence]] = micro.flatMap { mb in
            (mb.arrayValue ?? []).map { s in
                [SFTTrainingSequence(inputIDs: s["input_ids"]?.arrayValue?.compactMap(\.intValue) ?? [],
                                     labels: s["labels"]?.arrayValue?.compactMap(\.intValue) ?? [])]
            }
        }
        let optimizer = try XCTUnwrap(json["optimizer"])
        var arguments = TrainingArguments()
        arguments.learningRate = try XCTUnwrap(optimizer["learning_rate"]?.doubleValue)
        arguments.weightDecay = try XCTUnwrap(optimizer["weight_decay"]?.doubleValue)
        arguments.lrSchedulerType = .cosine
        arguments.warmupSteps = Double(try XCTUnwrap(json["warmup_steps"]?.intValue))
        arguments.maxGradNorm = try XCTUnwrap(json["max_grad_norm"]?.doubleValue)
        arguments.gradientAccumulationSteps = try XCTUnwrap(json["gradient_accumulation_steps"]?.intValue)
        arguments.perDeviceTrainBatchSize = try XCTUnwrap(micro.first?.arrayValue?.count)
        arguments.maxSteps = try XCTUnwrap(json["max_steps"]?.intValue)
        arguments.loggingSteps = 1
        var c = SFTTrainerConfiguration(arguments: arguments)
        c.gradientCheckpointing = false
        c.dataOrder = .sequential
        let trainer = try SFTTrainer(model: model, policy: policy, arena: arena, trainRows: rows, configuration: c, pool: ThreadPool(threads: 2))
        var records: [TrainingLogRecord] = []
        try trainer.train { records.append($0) }
        let steps = try XCTUnwrap(json["steps"]?.arrayValue)
        XCTAssertEqual(records.count, steps.count)
        for (ours, theirs) in zip(records, steps) {
            for key in ["loss", "grad_norm"] {
                let want = try XCTUnwrap(theirs[key]?.doubleValue), got = try XCTUnwrap(ours[key])
                XCTAssertLessThanOrEqual(abs(got - want), 1e-5 * abs(want), "step \(ours.step) \(key): \(got) vs \(want)")
            }
            XCTAssertEqual(try XCTUnwrap(ours["learning_rate"]), try XCTUnwrap(theirs["learning_rate"]?.doubleValue), accuracy: 1e-15)
            let accuracy = try XCTUnwrap(ours["mean_token_accuracy"])
            XCTAssertTrue((0...1).contains(accuracy))
        }
        for tensor in policy.parameters.tensors {
            let got = Array(policy.parameters.values(of: tensor.name)!), want = try tensors.float32("final." + tensor.name)
            let difference = zip(got, want).reduce(0.0) { $0 + Double($1.0 - $1.1) * Double($1.0 - $1.1) }.squareRoot()
            let size = want.reduce(0.0) { $0 + Double($1) * Double($1) }.squareRoot()
            XCTAssertLessThanOrEqual(difference, 1e-5 * size, tensor.name)
        }
    }
}
