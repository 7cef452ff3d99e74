import FinchCore
import FinchFormats
import FinchModels
import FinchTraining
import Foundation
import XCTest

/// `DPOTrainer` against TRL 1.16 `DPOTrainer` + PEFT 0.21.2 (reference/make_dpo_fixtures.py;
/// Fixtures/dpo/README.md): tiny random Llama and Phi with a real byte-level BPE tokenizer, 13
/// pairs after TRL drops one, max_length 48 (one chosen cut), batch 2 × accumulation 2 (the
/// 4th step of each epoch has one micro-batch of one pair), cosine with 2 warmup steps, clipping on
/// several steps, LoRA r 4 alpha 8 on all linear modules. Finch replays TRL's token ids and data
/// order (its sampler is torch's) and every logged value is compared.
///
/// **Tolerances.** `1e-4` relative (the figure) with an absolute floor for values that
/// are small differences of large sums: `rewards/*` are β·(π − π_ref) of log-prob sums ≈ −100,
/// so Float32 summation order alone moves them by ≈ 1e-6 (TRL's own precomputed and live
/// references differ by up to 7.6e-7 on the same run); floor 1e-5. `logits/*` are vocabulary
/// means ≈ 1e-2 of order-1 logits (TRL's two paths differ by 3e-6 relative); floor 1e-6.
final class DPOTrainerParityTests: XCTestCase {
    static let fixtures = TrainingRunTests.fixtures + "/dpo"

    struct Replay {
        var trainer: DPOTrainer
        var json: JSONValue
        var tensors: SafeTensorsFile
    }

    static func pairs(_ examples: [JSONValue], maxLength: Int?) -> [DPOSequencePair] {
        examples.filter { $0["dropped"]?.boolValue != true }
            .sorted { ($0["prepared_index"]?.intValue ?? 0) < ($1["prepared_index"]?.intValue ?? 0) }
            .map { e in
                let ids = { (key: String) in e[key]?.arrayValue?.compactMap(\.intValue) ?? [] }
                let p = ids("prompt_ids"), c = p + ids("chosen_ids"), r = p + ids("rejected_ids")
                // TRL's collator: each sequence keeps its first max_length tokens.
                let cut = maxLength ?? .max
                return DPOSequencePair(chosen: Array(c.prefix(cut)), chosenPromptLength: min(p.count, cut),
                                       rejected: Array(r.prefix(cut)), rejectedPromptLength: min(p.count, cut))
            }
    }

    /// - Parameters:
    ///   - directory: the fixture folder (`dpo`, or `sft` for the two-stage runs).
    ///   - model: the base to train on (default: the run's `model` folder in the DPO fixtures).
    func replay(_ run: String, directory: String = DPOTrainerParityTests.fixtures, model: CausalLM? = nil,
                gradientCheckpointing: Bool = false, threads: Int = 2) throws -> Replay {
        let json = try JSONValue.parse(contentsOf: directory + "/dpo_\(run).json")
        let tensors = try SafeTensorsFile(path: directory + "/dpo_\(run).safetensors")
        let c = try XCTUnwrap(json["resolved"])
        let model = try model ?? CausalLM(source: ModelSource(path: Self.fixtures + "/" + (try XCTUnwrap(json["model"]?.stringValue))))
        let lora = try XCTUnwrap(json["lora"])
        let configuration = LoRAConfiguration(r: try XCTUnwrap(lora["r"]?.intValue), loraAlpha: try XCTUnwrap(lora["lora_alpha"]?.doubleValue),
                                              loraDropout: 0, targetModules: .allLinear, useRSLoRA: lora["use_rslora"]?.boolValue ?? false)
        let (policy, arena) = try DPOTrainer.makePolicy(model: model, configuration: configuration, seed: 1)
        XCTAssertEqual(Set(policy.moduleNames), Set(try XCTUnwrap(lora["target_modules_resolved"]?.arrayValue).compactMap(\.stringValue)))
        for tensor in policy.parameters.tensors { try policy.parameters.setValues(of: tensor.name, to: tensors.float32("initial." + tensor.name)) }
        var reference = DPOReference.base
        if json["start_adapter_from"]?.stringValue != nil {
            // TRL's "ref" adapter: a frozen copy of the loaded one.
            let ref = try LoRAAdapter(name: "ref", configuration: configuration, model: model, seed: 1)
            ref.parameters.values.update(from: policy.parameters.values, count: policy.parameters.count)
            reference = .adapter(ref)
        }
        let arguments = try trlArguments(c)
        let types = try XCTUnwrap(c["loss_type"]?.arrayValue).compactMap { $0.stringValue.flatMap(DPOLossType.init(rawValue:)) }
        let loss = try DPOLossConfiguration(types: types, weights: c["loss_weights"]?.arrayValue?.compactMap(\.doubleValue),
                                            beta: try XCTUnwrap(c["beta"]?.doubleValue), labelSmoothing: c["label_smoothing"]?.doubleValue ?? 0)
        var trainerConfiguration = DPOTrainerConfiguration(arguments: arguments, loss: loss)
        trainerConfiguration.gradientCheckpointing = gradientCheckpointing
        trainerConfiguration.precomputeReferenceLogProbabilities = c["precompute_ref_log_probs"]?.boolValue ?? false
        trainerConfiguration.evalSteps = c["eval_strategy"]?.stringValue == "steps" ? (c["eval_steps"]?.intValue ?? 0) : 0
        // TRL's sampler order: one permutation per epoch, from the recorded micro-batches.
        let micro = try XCTUnwrap(json["micro_batches"]?.arrayValue)
        let perEpoch = try XCTUnwrap(c["micro_batches_per_epoch"]?.intValue)
        let orders = stride(from: 0, to: micro.count, by: perEpoch).map { start in
            micro[start..<min(start + perEpoch, micro.count)].flatMap { $0["prepared_indices"]?.arrayValue?.compactMap(\.intValue) ?? [] }
        }
        trainerConfiguration.dataOrder = .explicit(orders)
        let maxLength = c["max_length"]?.intValue
        let trainer = try DPOTrainer(model: model, policy: policy, arena: arena, reference: reference,
                                     trainPairs: Self.pairs(try XCTUnwrap(json["examples"]?.arrayValue), maxLength: maxLength),
                                     evalPairs: Self.pairs(json["eval_examples"]?.arrayValue ?? [], maxLength: maxLength),
                                     configuration: trainerConfiguration, pool: ThreadPool(threads: threads))
        XCTAssertEqual(trainer.trainPairs.count, json["num_examples_prepared"]?.intValue)
        return Replay(trainer: trainer, json: json, tensors: tensors)
    }

    static func tolerance(_ key: String) -> (relative: Double, absolute: Double) {
        if key.contains("rewards/") { return (1e-4, 1e-5) }
        if key.contains("logits/") { return (1e-4, 1e-6) }
        return (1e-4, 0)
    }

    /// Runs the replay to the end and compares every logged value and the final adapter.
    @discardableResult
    func check(_ run: String, directory: String = DPOTrainerParityTests.fixtures, model: CausalLM? = nil,
               gradientCheckpointing: Bool = false, file: StaticString = #filePath, line: UInt = #line) throws -> Double {
        let r = try replay(run, directory: directory, model: model, gradientCheckpointing: gradientCheckpointing)
        var records: [DPOLogRecord] = []
        try r.trainer.train { records.append($0) }
        let steps = try XCTUnwrap(r.json["steps"]?.arrayValue)
        let evals = r.json["eval_logs"]?.arrayValue ?? []
        let train = records.filter { $0["loss"] != nil }, evaluation = records.filter { $0["eval_loss"] != nil }
        XCTAssertEqual(train.count, steps.count, "logged steps", file: file, line: line)
        XCTAssertEqual(evaluation.count, evals.count, "evaluations", file: file, line: line)
        var worst = 0.0
        func compare(_ ours: DPOLogRecord, _ theirs: JSONValue, keys: [String]) {
            for key in keys {
                guard let want = theirs[key]?.doubleValue else { XCTFail("\(run): TRL did not log \(key)", file: file, line: line); continue }
                guard let got = ours[key] else { XCTFail("\(run) step \(ours.step): Finch did not log \(key)", file: file, line: line); continue }
                let (rel, abs) = Self.tolerance(key)
                // While the policy still equals the reference (step 1 with a precomputed or frozen
                // reference: B = 0), every pair's reward margin is 0 in exact arithmetic and Float32
                // noise (≈ 1e-8) from packing the pairs differently in the two passes decides each
                // `chosen > rejected`: both stacks then count signs of noise. The margins
                // themselves are still checked against TRL's (within 1e-5) under their own key.
                if key.hasSuffix("rewards/accuracies"),
                   let margin = theirs[key.replacingOccurrences(of: "accuracies", with: "margins")]?.doubleValue,
                   Swift.abs(margin) <= Self.tolerance("rewards/margins").absolute { continue }
                let error = Swift.abs(got - want)
                worst = max(worst, error / max(abs + rel * Swift.abs(want), .leastNormalMagnitude))
                XCTAssertLessThanOrEqual(error, abs + rel * Swift.abs(want), "\(run) step \(ours.step) \(key): Finch \(got), TRL \(want)",
                                         file: file, line: line)
            }
        }
        let keys = ["loss", "grad_norm", "learning_rate", "rewards/chosen", "rewards/rejected", "rewards/accuracies", "rewards/margins",
                    "logps/chosen", "logps/rejected", "logits/chosen", "logits/rejected", "num_tokens", "epoch"]
        for (ours, theirs) in zip(train, steps) {
            XCTAssertEqual(ours.step, theirs["global_step"]?.intValue, file: file, line: line)
            compare(ours, theirs, keys: keys)
        }
        for (ours, theirs) in zip(evaluation, evals) {
            compare(ours, theirs, keys: ["eval_loss", "eval_rewards/chosen", "eval_rewards/rejected", "eval_rewards/accuracies",
                                         "eval_rewards/margins", "eval_logps/chosen", "eval_logps/rejected", "eval_logits/chosen",
                                         "eval_logits/rejected"])
        }
        // The final adapter, tensor by tensor (relative L2).
        for tensor in r.trainer.policy.parameters.tensors {
            let got = Array(r.trainer.policy.parameters.values(of: tensor.name)!), want = try r.tensors.float32("final." + tensor.name)
            let difference = zip(got, want).reduce(0.0) { $0 + Double($1.0 - $1.1) * Double($1.0 - $1.1) }.squareRoot()
            let size = want.reduce(0.0) { $0 + Double($1) * Double($1) }.squareRoot()
            XCTAssertLessThanOrEqual(difference, 1e-4 * size, "\(run) final \(tensor.name)", file: file, line: line)
        }
        print("\(run): worst logged value at \(worst) of its tolerance")
        return worst
    }

    func testLlamaSigmoidMatchesTRL() throws { try check("llama_sigmoid") }
    func testPhiSigmoidMatchesTRL() throws { try check("phi_sigmoid") }
    func testIPOMatchesTRL() throws { try check("llama_ipo") }
    func testHingeMatchesTRL() throws { try check("llama_hinge") }
    func testRobustMatchesTRL() throws { try check("llama_robust") }
    func testSigmoidNormMatchesTRL() throws { try check("llama_sigmoid_norm") }
    func testSigmoidPlusSFTMatchesTRL() throws { try check("llama_sigmoid_sft") }
    func testFrozenAdapterReferenceMatchesTRL() throws { try check("llama_ref_adapter") }
    func testPrecomputedReferenceMatchesTRL() throws { try check("llama_precompute") }
    func testConversationalDataMatchesTRL() throws { try check("llama_conversational") }
    /// The two-stage pipeline (make_sft_fixtures.py run (f)): DPO on the SFT run's adapter, loaded
    /// as the trainable policy with a frozen copy as reference (the article's option 3).
    func testDPOOnSFTAdapterMatchesTRL() throws {
        try check("llama_sft_ref_adapter", directory: SFTTrainerParityTests.fixtures)
    }

    /// The merged-base variant: the SFT adapter merged into the base (PEFT's merge_and_unload),
    /// a fresh adapter on top, reference = the merged base.
    func testDPOOnMergedSFTBaseMatchesTRL() throws {
        let base = try CausalLM(source: ModelSource(path: Self.fixtures + "/tiny_llama_dpo"))
        let sft = try SafeTensorsFile(path: SFTTrainerParityTests.fixtures + "/sft_llama_prompt_completion.safetensors")
        let adapter = try LoRAAdapter(configuration: LoRAConfiguration(r: 4, loraAlpha: 8, targetModules: .allLinear), model: base, seed: 1)
        for tensor in adapter.parameters.tensors { try adapter.parameters.setValues(of: tensor.name, to: sft.float32("final." + tensor.name)) }
        try check("llama_sft_merged", directory: SFTTrainerParityTests.fixtures, model: try base.mergingLoRA(adapter))
    }

    /// Gradient checkpointing recomputes to the same numbers.
    func testCheckpointedRunMatchesTRL() throws { try check("phi_sigmoid", gradientCheckpointing: true) }
}
