import FinchCore
import FinchFormats
import FinchGeneration
import FinchModels
import FinchTokenizers
import XCTest

/// The real SmolLM2-135M-Instruct Q4_1 GGUF against transformers 5.24 loading the same file
/// dequantized to fp32 (reference/make_inference_fixtures.py → smollm2_expected.json).
final class DefaultModelInferenceTests: XCTestCase {
    static let fixtures = ModelParityTests.fixtures

    func load() throws -> (CausalLM, Tokenizer, JSONValue, SafeTensorsFile) {
        let source = try ModelSource(path: ModelCache.fromEnvironment().path(for: .defaultModel))
        return (try CausalLM(source: source), try Tokenizer(source: source),
                try JSONValue.parse(contentsOf: Self.fixtures + "/smollm2_expected.json"),
                try SafeTensorsFile(path: Self.fixtures + "/smollm2_logits.safetensors"))
    }

    /// Last-position logits of 5 prompts. Finch dequantizes the Q4_1/Q8_0 blocks bit-exactly as
    /// transformers' loader does but sums in another order (its own fused kernels and BLAS
    /// blocking instead of torch's); over 30 layers that leaves a few 1e-5 on logits of magnitude
    /// ≈20 (measured worst 4.7e-5 on this machine). The bound, 5e-4, leaves 10× for other BLAS
    /// builds and thread counts; a real error (a wrong scale, a missed bias) is ≥ 1e-2. The top-5
    /// ids must agree exactly.
    func testLastPositionLogitsMatchTransformers() throws {
        let (model, tokenizer, expected, logits) = try load()
        let prompts = try XCTUnwrap(expected["prompts"]?.arrayValue)
        XCTAssertEqual(prompts.count, 5)
        var worst: Float = 0
        for (i, prompt) in prompts.enumerated() {
            let ids = prompt["input_ids"]?.arrayValue?.compactMap(\.intValue) ?? []
            if let text = prompt["text"]?.stringValue, prompt["chat"]?.boolValue != true {
                XCTAssertEqual(tokenizer.encode(text), ids, "prompt \(i) tokenizes differently")
            }
            let ours = try model.forward(ids, cache: model.makeCache(capacity: ids.count), pool: ThreadPool(threads: 2))
            let theirs = try logits.float32("prompt_\(i)")
            let diff = zip(ours, theirs).map { abs($0 - $1) }.max() ?? .infinity
            worst = max(worst, diff)
            XCTAssertLessThanOrEqual(diff, 5e-4, "prompt \(i): max |Δlogit| \(diff)")
            let top5 = ours.indices.sorted { ours[$0] > ours[$1] }.prefix(5)
            XCTAssertEqual(Array(top5), prompt["top5_ids"]?.arrayValue?.compactMap(\.intValue), "prompt \(i)")
        }
        print("SmolLM2 last-position logits: worst |Δ| = \(worst)")
    }

    func testGreedyContinuationsAreIdenticalTokenForToken() throws {
        let (model, tokenizer, expected, _) = try load()
        let generator = Generator(model: model, tokenizer: tokenizer, pool: ThreadPool(threads: 2))
        for (i, prompt) in (try XCTUnwrap(expected["prompts"]?.arrayValue)).enumerated() {
            let ids = prompt["input_ids"]?.arrayValue?.compactMap(\.intValue) ?? []
            let want = prompt["greedy_new_ids"]?.arrayValue?.compactMap(\.intValue) ?? []
            let summary = try generator.generate(GenerationRequest(promptTokens: ids, maxNewTokens: 64, stopTokenIDs: generator.defaultStopTokenIDs))
            // transformers keeps the EOS it stopped at in its output; Finch reports it as the finish reason.
            let got = summary.finishReason == .endOfSequence ? summary.generatedTokens + [want.last ?? -1] : summary.generatedTokens
            XCTAssertEqual(got, want, "prompt \(i): \(tokenizer.decode(summary.generatedTokens).debugDescription)")
        }
    }

    /// The same prompt through the KV cache token by token gives the logits of the full pass.
    func testCachedDecodingMatchesTheFullPass() throws {
        let (model, tokenizer, _, _) = try load()
        let ids = tokenizer.encode("The capital of France is Paris, and the capital of Italy is")
        let full = try model.forward(ids, cache: model.makeCache(capacity: 32), allLogits: true, pool: .serial)
        let cache = model.makeCache(capacity: 32)
        var stepwise: [Float] = []
        for id in ids { stepwise += try model.forward([id], cache: cache, pool: ThreadPool(threads: 2)) }
        let diff = zip(full, stepwise).map { abs($0 - $1) }.max() ?? .infinity
        // Only summation order differs (batched products vs one row at a time).
        XCTAssertLessThanOrEqual(diff, 1e-3)
    }
}
