import FinchCore
import FinchFormats
import FinchModels
import FinchTraining
import Foundation
import XCTest

/// `SFTTrainer` against TRL 1.16 `SFTTrainer` + PEFT 0.21.2 (reference/make_sft_fixtures.py;
/// Fixtures/sft/README.md): the tiny Llama and Phi of the DPO fixtures, batch 2 × accumulation 2
/// (one-micro-batch windows at epoch ends), cosine with warmup, clipping; completion-only loss,
/// loss on all tokens, conversational messages (all tokens, and assistant-only), Alpaca rows, and
/// bfd packing (documents in one row, positions restarting, no attention across them). Finch
/// replays TRL's token ids, labels and row order; every logged value and the final adapter are
/// compared at 1e-4 relative (the figure; measured worst in the printout).
final class SFTTrainerParityTests: XCTestCase {
    static let fixtures = TrainingRunTests.fixtures + "/sft"

    func check(_ run: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let json = try JSONValue.parse(contentsOf: Self.fixtures + "/sft_\(run).json")
        let tensors = try SafeTensorsFile(path: Self.fixtures + "/sft_\(run).safetensors")
        let c = try XCTUnwrap(json["resolved"])
        let folder = (Self.fixtures as NSString).appendingPathComponent(try XCTUnwrap(json["model_folder"]?.stringValue))
        let model = try CausalLM(source: ModelSource(path: folder))
        let lora = try XCTUnwrap(json["lora"])
        let configuration = LoRAConfiguration(r: try XCTUnwrap(lora["r"]?.intValue), loraAlpha: try XCTUnwrap(lora["lora_alpha"]?.doubleValue),
                                              loraDropout: 0, targetModules: .allLinear)
        let (policy, arena) = try SFTTrainer.makePolicy(model: model, configuration: configuration, seed: 1)
        for tensor in policy.parameters.tensors { try policy.parameters.setValues(of: tensor.name, to: tensors.float32("initial." + tensor.name)) }
        let maxLength = c["max_length"]?.intValue ?? .max
        func ids(_ v: JSONValue?, _ key: String) -> [Int] { v?[key]?.arrayValue?.compactMap(\.intValue) ?? [] }
        let packed = c["packing"]?.boolValue ?? false
        var rows: [[SFTTrainingSequence]]
        if packed {
            rows = try XCTUnwrap(json["packed_rows"]?.arrayValue).map { row in
                let input = ids(row, "input_ids"), labels = ids(row, "labels")
                var start = 0
                return (row["seq_lengths"]?.arrayValue?.compactMap(\.intValue) ?? []).map { n in
                    defer { start += n }
                    return SFTTrainingSequence(inputIDs: Array(input[start..<(start + n)]), labels: Array(labels[start..<(start + n)]))
                }
            }
        } else {
            rows = try XCTUnwrap(json["examples"]?.arrayValue).filter { $0["dropped"]?.boolValue != true }
                .sorted { ($0["prepared_index"]?.intValue ?? 0) < ($1["prepared_index"]?.intValue ?? 0) }
                .map { e in [SFTTrainingSequence(inputIDs: Array(ids(e, "input_ids").prefix(maxLength)), labels: Array(ids(e, "labels").prefix(maxLength)))] }
        }
        let evalRows: [[SFTTrainingSequence]] = (json["eval_examples"]?.arrayValue ?? []).filter { $0["dropped"]?.boolValue != true }
            .sorted { ($0["prepared_index"]?.intValue ?? 0) < ($1["prepared_index"]?.intValue ?? 0) }
            .map { e in [SFTTrainingSequence(inputIDs: Array(ids(e, "input_ids").prefix(maxLength)), labels: Array(ids(e, "labels").prefix(maxLength)))] }
        let arguments = try trlArguments(c)
        var trainerConfiguration = SFTTrainerConfiguration(arguments: arguments)
        trainerConfiguration.gradientCheckpointing = false
        trainerConfiguration.evalSteps = c["eval_strategy"]?.stringValue == "steps" ? (c["eval_steps"]?.intValue ?? 0) : 0
        let micro = try XCTUnwrap(json["micro_batches"]?.arrayValue)
        let perEpoch = try XCTUnwrap(c["micro_batches_per_epoch"]?.intValue)
        let key = packed ? "packed_indices" : "prepared_indices"
        trainerConfiguration.dataOrder = .explicit(stride(from: 0, to: micro.count, by: perEpoch).map { start in
            micro[start..<min(start + perEpoch, micro.count)].flatMap { $0[key]?.arrayValue?.compactMap(\.intValue) ?? [] }
        })
        let trainer = try SFTTrainer(model: model, policy: policy, arena: arena, trainRows: rows, evalRows: evalRows,
                                     configuration: trainerConfiguration, pool: ThreadPool(threads: 2))
        var records: [TrainingLogRecord] = []
        try trainer.train { records.append($0) }
        let steps = try XCTUnwrap(json["steps"]?.arrayValue), evals = json["eval_logs"]?.arrayValue ?? []
        let train = records.filter { $0["loss"] != nil }, evaluation = records.filter { $0["eval_loss"] != nil }
        XCTAssertEqual(train.count, steps.count, file: file, line: line)
        XCTAssertEqual(evaluation.count, evals.count, file: file, line: line)
        var worst = 0.0
        func compare(_ ours: TrainingLogRecord, _ theirs: JSONValue, _ keys: [String]) {
            for k in keys {
                guard let want = theirs[k]?.doubleValue, let got = ours[k] else { XCTFail("\(run) step \(ours.step): \(k) missing", file: file, line: line); continue }
                let bound = 1e-4 * abs(want) + (k.contains("accuracy") ? 1e-9 : 0)
                worst = max(worst, abs(got - want) / max(bound, .leastNormalMagnitude))
                XCTAssertLessThanOrEqual(abs(got - want), bound, "\(run) step \(ours.step) \(k): Finch \(got), TRL \(want)", file: file, line: line)
            }
        }
        for (ours, theirs) in zip(train, steps) {
            compare(ours, theirs, ["loss", "grad_norm", "learning_rate", "mean_token_accuracy", "num_tokens", "epoch"])
        }
        for (ours, theirs) in zip(evaluation, evals) { compare(ours, theirs, ["eval_loss", "eval_mean_token_accuracy"]) }
        for tensor in policy.parameters.tensors {
            let got = Array(policy.parameters.values(of: tensor.name)!), want = try tensors.float32("final." + tensor.name)
            let difference = zip(got, want).reduce(0.0) { $0 + Double($1.0 - $1.1) * Double($1.0 - $1.1) }.squareRoot()
            let size = want.reduce(0.0) { $0 + Double($1) * Double($1) }.squareRoot()
            XCTAssertLessThanOrEqual(difference, 1e-4 * size, "\(run) final \(tensor.name)", file: file, line: line)
        }
        print("\(run): worst logged value at \(worst) of its tolerance")
    }

    func testPromptCompletionLlama() throws { try check("llama_prompt_completion") }
    func testPromptCompletionPhi() throws { try check("phi_prompt_completion") }
    func testAllTokens() throws { try check("llama_prompt_completion_all_tokens") }
    func testMessages() throws { try check("llama_messages") }
    func testMessagesAssistantOnly() throws { try check("llama_messages_assistant_only") }
    func testAlpaca() throws { try check("llama_alpaca") }
    func testConversationalPromptCompletion() throws { try check("llama_conversational_prompt_completion") }
    func testPackedText() throws { try check("llama_text_packed") }
    func testPackedPromptCompletion() throws { try check("llama_prompt_completion_packed") }
}
