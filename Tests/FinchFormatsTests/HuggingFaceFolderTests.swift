import FinchCore
import FinchFormats
import Foundation
import XCTest

/// Folders written by transformers 5.24 `save_pretrained` (a sharded tiny Llama; Qwen2 and Phi
/// configs), and the errors for broken folders.
final class HuggingFaceFolderTests: XCTestCase {
    func testShardedTinyLlamaReadsLikeTransformers() throws {
        let source = try ModelSource(path: Fixtures.path("tiny_llama"))
        let expected = try Fixtures.json("tiny_llama_expected.json")
        XCTAssertEqual(source.format, .huggingFace)
        let tensors = try XCTUnwrap(expected["tensors"]?.arrayValue)
        XCTAssertEqual(source.tensors.count, tensors.count)
        for want in tensors {
            let name = try XCTUnwrap(want["name"]?.stringValue)
            let tensor = try XCTUnwrap(source.tensor(name), name)
            XCTAssertEqual(tensor.shape, want["shape"]?.arrayValue?.compactMap(\.intValue), name)
            XCTAssertEqual(tensor.storage, .safetensors(.f32))
            XCTAssertEqual(sha256(try source.float32(name)), want["sha256_f32"]?.stringValue, name)
        }
        XCTAssertEqual(source.tensors.reduce(0) { $0 + $1.elementCount }, expected["num_parameters"]?.intValue)
        let c = source.configuration
        XCTAssertEqual([c.hiddenSize, c.numHiddenLayers, c.numAttentionHeads, c.numKeyValueHeads, c.intermediateSize, c.vocabSize, c.headDim],
                       [64, 2, 4, 2, 128, 256, 16])
        XCTAssertFalse(c.tieWordEmbeddings)
        XCTAssertNotNil(source.generationConfigPath)
    }

    func testConfigSpellingsOfTransformers4And5() throws {
        let qwen = try ModelConfiguration(huggingFaceConfig: JSONValue.parse(contentsOf: Fixtures.path("tiny_qwen2/config.json")), path: "qwen")
        XCTAssertEqual(qwen.architecture, .qwen2)
        let phi = try ModelConfiguration(huggingFaceConfig: JSONValue.parse(contentsOf: Fixtures.path("tiny_phi/config.json")), path: "phi")
        XCTAssertEqual(phi.architecture, .phi)
        XCTAssertEqual(phi.partialRotaryFactor, 0.4)  // nested in rope_parameters (transformers 5)
        XCTAssertEqual(phi.rotaryDim, 6)              // int(16 × 0.4), as transformers computes it
        XCTAssertEqual(phi.normEpsilon, 1e-5)
        XCTAssertEqual(phi.hiddenAct, "gelu_new")
        let expected = try Fixtures.json("tiny_configs_expected.json")
        // A transformers 4.x Phi config with top-level rope_theta and partial_rotary_factor.
        let legacy = try XCTUnwrap(expected["legacy_v4_phi_input"]?["input"]?.objectValue)
        var members = legacy
        members += [("intermediate_size", .number("256")), ("num_hidden_layers", .number("2")), ("vocab_size", .number("256"))]
        let old = try ModelConfiguration(huggingFaceConfig: .object(members), path: "old")
        let after = expected["legacy_v4_phi_input"]?["rope_parameters_after_load"]
        XCTAssertEqual(old.partialRotaryFactor, after?["partial_rotary_factor"]?.doubleValue)
        XCTAssertEqual(old.ropeTheta, after?["rope_theta"]?.doubleValue)
    }

    func testBrokenFolders() throws {
        let dir = try TemporaryDirectory()
        assertFormatError(try ModelSource(path: dir.path), path: dir.path, contains: "no config.json")
        let config = try dir.write("config.json", #"{"model_type": "llama", "hidden_size": 64, "intermediate_size": 128, "num_attention_heads": 4, "vocab_size": 10}"#)
        assertFormatError(try ModelSource(path: dir.path), path: config, contains: "missing required field 'num_hidden_layers'")
        _ = try dir.write("config.json", #"{"model_type": "gpt_neox", "hidden_size": 64}"#)
        assertFormatError(try ModelSource(path: dir.path), contains: "unsupported model_type 'gpt_neox'", "qwen2")
        _ = try dir.write("config.json", #"{"model_type": "llama", "hidden_size": "64"}"#)
        assertFormatError(try ModelSource(path: dir.path), contains: "'hidden_size' must be a positive integer")
        _ = try dir.write("config.json", "{\"model_type\": \"llama\",\n\"hidden_size\": }")
        assertFormatError(try ModelSource(path: dir.path), path: config, contains: "line 2")
        // A valid config with no weights.
        let good = try String(contentsOfFile: Fixtures.path("tiny_llama/config.json"), encoding: .utf8)
        _ = try dir.write("config.json", good)
        assertFormatError(try ModelSource(path: dir.path), path: dir.path, contains: "no model.safetensors")
        // An index naming a shard that is not there, or a tensor the shard does not hold.
        let index = try dir.write("model.safetensors.index.json", #"{"metadata": {}, "weight_map": {"a.weight": "model-1.safetensors"}}"#)
        assertFormatError(try ModelSource(path: dir.path), path: index, contains: "shard 'model-1.safetensors'", "does not exist")
        let shard = dir.path + "/model-1.safetensors"
        try SafeTensorsWriter.write([.init(name: "b.weight", shape: [1], float32: [1])], to: shard)
        assertFormatError(try ModelSource(path: dir.path), path: shard, contains: "tensor 'a.weight'", "not stored in this shard")
    }
}
