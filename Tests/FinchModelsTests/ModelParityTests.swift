import FinchCore
import FinchFormats
import FinchModels
import Foundation
import XCTest

/// Full-sequence logits of tiny random models against transformers 5.24 (fp32, eager attention),
/// written by reference/make_inference_fixtures.py: Llama with GQA and tied embeddings, untied
/// Llama with another θ, Qwen2 with q/k/v biases, Phi with partial rotary 0.4 and biases.
final class ModelParityTests: XCTestCase {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures").path

    /// |a − b| ≤ atol + rtol·|b| elementwise; returns the worst offenders for the message.
    static func mismatches(_ a: [Float], _ b: [Float], atol: Float, rtol: Float) -> [(Int, Float, Float)] {
        guard a.count == b.count else { return [(-1, Float(a.count), Float(b.count))] }
        return a.indices.filter { abs(a[$0] - b[$0]) > atol + rtol * abs(b[$0]) || a[$0].isNaN }.map { ($0, a[$0], b[$0]) }
    }

    func check(_ name: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let expected = try JSONValue.parse(contentsOf: Self.fixtures + "/\(name)_expected.json")
        let logits = try SafeTensorsFile(path: Self.fixtures + "/\(name)_logits.safetensors")
        let model = try CausalLM(source: ModelSource(path: Self.fixtures + "/" + name))
        let sequences = try XCTUnwrap(expected["sequences"]?.arrayValue)
        XCTAssertGreaterThanOrEqual(sequences.count, 2)
        for sequence in sequences {
            let ids = sequence["input_ids"]?.arrayValue?.compactMap(\.intValue) ?? []
            let want = try logits.float32(try XCTUnwrap(sequence["logits_key"]?.stringValue))
            // One pass over the whole sequence …
            let full = try model.forward(ids, cache: model.makeCache(capacity: 64), allLogits: true, pool: .serial)
            let bad = Self.mismatches(full, want, atol: 1e-4, rtol: 1e-4)
            XCTAssertTrue(bad.isEmpty, "\(name): \(bad.count) logits differ beyond 1e-4, worst: \(bad.sorted { abs($0.1 - $0.2) > abs($1.1 - $1.2) }.prefix(3))", file: file, line: line)
            // … and token by token through the KV cache, in parallel, must give the same logits.
            let cache = model.makeCache(capacity: 64)
            var stepwise: [Float] = []
            for id in ids { stepwise += try model.forward([id], cache: cache, pool: ThreadPool(threads: 2)) }
            let badCached = Self.mismatches(stepwise, full, atol: 1e-5, rtol: 1e-5)
            XCTAssertTrue(badCached.isEmpty, "\(name): KV-cached decoding differs from the full pass at \(badCached.prefix(3))", file: file, line: line)
        }
    }

    func testTinyLlamaGQATied() throws { try check("tiny_llama_gqa") }
    func testTinyLlamaUntied() throws { try check("tiny_llama_untied") }
    func testTinyQwen2WithBiases() throws { try check("tiny_qwen2") }
    func testTinyPhiPartialRotaryAndBiases() throws { try check("tiny_phi") }

    func testTheComparisonCatchesAPerturbedLogit() {
        var b: [Float] = [1, 2, 3]
        XCTAssertTrue(Self.mismatches([1, 2, 3], b, atol: 1e-4, rtol: 1e-4).isEmpty)
        b[1] += 1e-3
        XCTAssertEqual(Self.mismatches([1, 2, 3], b, atol: 1e-4, rtol: 1e-4).map(\.0), [1])
    }
}
