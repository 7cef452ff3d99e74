import FinchCore
import FinchFormats
import XCTest

/// The real default model (SmolLM2-135M-Instruct Q4_1 GGUF) against transformers 5.24 +
/// gguf 0.19: every tensor, dequantized and in HF layout, must have the SHA-256 that
/// `load_gguf_checkpoint` gives (reference/make_format_fixtures.py → smollm2_tensors.json).
final class DefaultModelTests: XCTestCase {
    func testEveryTensorDequantizesBitExactlyInHuggingFaceLayout() throws {
        let source = try ModelSource(path: defaultModelPath())
        let expected = try Fixtures.json("smollm2_tensors.json")
        let tensors = try XCTUnwrap(expected["tensors"]?.arrayValue)
        XCTAssertEqual(source.tensors.count, tensors.count)
        XCTAssertEqual(tensors.count, 272)
        for want in tensors {
            let name = try XCTUnwrap(want["hf_name"]?.stringValue)
            guard let tensor = source.tensor(name) else { XCTFail("missing \(name)"); continue }
            XCTAssertEqual(tensor.fileName, want["gguf_name"]?.stringValue)
            XCTAssertEqual(tensor.storage.name, want["ggml_type"]?.stringValue, name)
            XCTAssertEqual(tensor.shape, want["shape"]?.arrayValue?.compactMap(\.intValue), name)
            let values = try source.float32(name)
            XCTAssertEqual(sha256(values), want["sha256_f32"]?.stringValue, "\(name): dequantized values differ from transformers'")
            for sample in want["samples"]?.arrayValue ?? [] {
                guard let pair = sample.arrayValue, let i = pair.first?.intValue, let v = pair.last?.doubleValue else { continue }
                XCTAssertEqual(values[i].bitPattern, Float(v).bitPattern, "\(name)[\(i)]")
            }
            let sum = values.reduce(0.0) { $0 + Double($1) }
            let ref = try XCTUnwrap(want["sum_f64"]?.doubleValue)
            // Exact fsum vs a sequential Double sum of ≤ 28M Float32 values: rounding ≤ 1e-9 relative.
            XCTAssertEqual(sum, ref, accuracy: 1e-9 * max(1, abs(ref)) + 1e-9, name)
        }
    }

    func testRawGGUFDequantizationAndPermutation() throws {
        // Without the Q/K un-permutation the attn_q/attn_k checksums must differ from the HF ones
        // (they match gguf.dequantize's raw output instead): the permutation is real and undone.
        let gguf = try GGUFFile(path: defaultModelPath())
        let expected = try Fixtures.json("smollm2_tensors.json")
        let raw = try XCTUnwrap(expected["gguf_raw"]?.objectValue)
        XCTAssertEqual(raw.count, gguf.tensors.count)
        var permutedChecked = 0
        for (name, want) in raw {
            let info = try XCTUnwrap(gguf.tensor(name), name)
            XCTAssertEqual(info.dimensions, want["ne"]?.arrayValue?.compactMap(\.intValue), name)
            XCTAssertEqual(gguf.dataStart + info.offset, want["data_offset"]?.intValue, name)
            XCTAssertEqual(info.byteCount, want["n_bytes"]?.intValue, name)
            let values = try gguf.float32(info)
            XCTAssertEqual(sha256(values), want["sha256_f32"]?.stringValue, "\(name): gguf.dequantize differs")
            if name.contains(".attn_q.") || name.contains(".attn_k.") {
                let hf = expected["tensors"]?.arrayValue?.first { $0["gguf_name"]?.stringValue == name }
                XCTAssertNotEqual(want["sha256_f32"]?.stringValue, hf?["sha256_f32"]?.stringValue)
                permutedChecked += 1
            }
        }
        XCTAssertEqual(permutedChecked, 60)
    }

    func testConfigurationMatchesTransformers() throws {
        let source = try ModelSource(path: defaultModelPath())
        let expected = try Fixtures.json("smollm2_tensors.json")
        let config = try XCTUnwrap(expected["config"])
        let c = source.configuration
        XCTAssertEqual(c.architecture, .llama)
        XCTAssertEqual(c.numHiddenLayers, config["num_hidden_layers"]?.intValue)
        XCTAssertEqual(c.hiddenSize, config["hidden_size"]?.intValue)
        XCTAssertEqual(c.intermediateSize, config["intermediate_size"]?.intValue)
        XCTAssertEqual(c.numAttentionHeads, config["num_attention_heads"]?.intValue)
        XCTAssertEqual(c.numKeyValueHeads, config["num_key_value_heads"]?.intValue)
        XCTAssertEqual(c.headDim, config["head_dim"]?.intValue)
        XCTAssertEqual(c.vocabSize, config["vocab_size"]?.intValue)
        XCTAssertEqual(c.maxPositionEmbeddings, config["max_position_embeddings"]?.intValue)
        XCTAssertEqual(c.normEpsilon, config["rms_norm_eps"]?.doubleValue)
        XCTAssertEqual(c.ropeTheta, config["rope_theta"]?.doubleValue)
        XCTAssertEqual(c.tieWordEmbeddings, config["tie_word_embeddings"]?.boolValue)
        XCTAssertEqual(c.bosTokenID, config["bos_token_id"]?.intValue)
        XCTAssertEqual(c.eosTokenIDs, [config["eos_token_id"]?.intValue ?? -1])
        XCTAssertEqual(c.padTokenID, config["pad_token_id"]?.intValue)
        let summary = try ModelSummary(source: source)
        XCTAssertEqual(summary.parameters, expected["total_parameters"]?.intValue)
        XCTAssertEqual(summary.storage.map { "\($0.type)×\($0.tensors)" }, ["Q4_1×210", "F32×61", "Q8_0×1"])
        XCTAssertEqual(summary.tokenizer.specialTokens.count, 17)
        XCTAssertEqual(summary.tokenizer.specialTokens.first, .init(id: 0, content: "<|endoftext|>"))
        XCTAssertTrue(summary.tokenizer.hasChatTemplate)
    }
}
