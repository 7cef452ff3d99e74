import FinchCore
import FinchFormats
import FinchModels
import Foundation
import XCTest

/// bench/qlora part (b): a model with Phi-2's exact config (2.78B parameters, random weights
/// written by bench/qlora/make_phi2_random.py as an F16 folder) loaded in NF4 with double
/// quantization, embedding and lm_head kept in 16 bits; then one DPO-shaped LoRA step with
/// gradient checkpointing on one triple (prompt + chosen + rejected = 512 tokens: the policy
/// and the reference both run prompt+chosen and prompt+rejected). Prints the resident weight
/// bytes, load time, step time and peak RSS in one line the script parses.
///
/// With `FINCH_BENCH=1` and `FINCH_PHI2_RANDOM=<folder>`; otherwise the same code runs once on the
/// tiny Phi fixture and checks that the loss and gradients are finite and nonzero.
final class QLoRABenchmarkTests: XCTestCase {
    func testPhi2ShapedNF4Step() throws {
        let environment = ProcessInfo.processInfo.environment
        let bench = environment["FINCH_BENCH"] == "1" && environment["FINCH_PHI2_RANDOM"] != nil
        let path = bench ? environment["FINCH_PHI2_RANDOM"]! : ModelParityTests.fixtures + "/tiny_phi"
        let pool = ThreadPool()
        let loadStart = DispatchTime.now().uptimeNanoseconds
        let model = try CausalLM(source: ModelSource(path: path),
                                 options: ModelLoadOptions(quantization: .nf4, doubleQuantization: true, unquantizedStorage: .float16),
                                 pool: pool)
        let loadSeconds = Double(DispatchTime.now().uptimeNanoseconds - loadStart) / 1e9
        let afterLoad = TrainingBenchmarkTests.memory()
        var parameters = 0
        for name in model.linearModuleNames + ["model.embed_tokens.weight", "lm_head.weight"] {
            let w = try XCTUnwrap(model.linearWeight(named: name.hasSuffix(".weight") ? name : name + ".weight"))
            parameters += w.outFeatures * w.inFeatures
        }
        // The article's adapter: r 16, alpha 16, q/k/v/dense.
        let adapter = try LoRAAdapter(configuration: LoRAConfiguration(r: 16, loraAlpha: 16,
                                                                       targetModules: .names(["q_proj", "k_proj", "v_proj", "dense"])),
                                      model: model, seed: 1)
        // B is 0 at init, so the first step's A gradient would be 0: give B small values so
        // every adapter tensor's backward does real work, as in a later step.
        var rng = SplitMix64(seed: 3)
        for tensor in adapter.parameters.tensors where tensor.name.hasSuffix("lora_B.weight") {
            let count = tensor.shape.reduce(1, *)
            try adapter.parameters.setValues(of: tensor.name, to: (0..<count).map { _ in Float.random(in: -0.01...0.01, using: &rng) })
        }
        let (promptLength, answerLength) = bench ? (256, 128) : (6, 4)
        let prompt = (0..<promptLength).map { _ in Int.random(in: 0..<model.vocabularySize, using: &rng) }
        let chosen = (0..<answerLength).map { _ in Int.random(in: 0..<model.vocabularySize, using: &rng) }
        let rejected = (0..<answerLength).map { _ in Int.random(in: 0..<model.vocabularySize, using: &rng) }
        let sequences = [prompt + chosen, prompt + rejected]
        let labels = sequences.map { s in s.enumerated().map { $0.offset < promptLength ? -100 : $0.element } }
        let batch = try PackedBatch(sequences: sequences, labels: labels)

        let stepStart = DispatchTime.now().uptimeNanoseconds
        let pass = TrainingPass(model: model)
        let reference = batch.sequenceSums(try pass.logProbabilities(batch, adapter: nil, pool: pool).logProbabilities)
        let policy = batch.sequenceSums(try pass.forward(batch, adapter: adapter, options: .init(gradientCheckpointing: true),
                                                         pool: pool).logProbabilities)
        // DPO's sigmoid loss, β 0.1: L = −log σ(β·((π_c − r_c) − (π_r − r_r))).
        let beta: Float = 0.1
        let z = beta * ((policy[0] - reference[0]) - (policy[1] - reference[1]))
        let loss = log1p(exp(-z))
        let dz = -1 / (1 + exp(z))
        try pass.backward(logProbabilityGradient: batch.tokenGradient(sequenceGradients: [beta * dz, -beta * dz]), pool: pool)
        let stepSeconds = Double(DispatchTime.now().uptimeNanoseconds - stepStart) / 1e9

        XCTAssertTrue(loss.isFinite && z.isFinite, "loss \(loss)")
        let gradients = UnsafeBufferPointer(start: adapter.parameters.gradients, count: adapter.parameters.count)
        XCTAssertTrue(gradients.allSatisfy(\.isFinite), "LoRA gradients")
        for tensor in adapter.parameters.tensors {
            XCTAssertTrue(adapter.parameters.gradients(of: tensor.name)!.contains { $0 != 0 }, "\(tensor.name) has a gradient")
        }
        print(String(format: "qlora-phi2: %ld parameters, weights %.3f GB resident (NF4 + double quant, embedding and lm_head F16), "
                     + "load %.1f s (%@); DPO LoRA step (r 16 q/k/v/dense, checkpointing, %d+%d+%d tokens) %.1f s, loss %.4f; %@",
                     parameters, Double(model.weightByteCount) / 1e9, loadSeconds, afterLoad, promptLength, answerLength,
                     answerLength, stepSeconds, loss, TrainingBenchmarkTests.memory()))
    }
}
