import FinchCore
import FinchFormats
@testable import FinchModels
import Foundation
import XCTest

/// GGUF export of the tiny parity models (Llama with GQA and tied embeddings, untied Llama, Qwen2
/// with q/k/v biases, Phi with partial rotary and biases): written as F32 and read back by Finch's
/// GGUF loader — which undoes llama.cpp's Q/K permutation and maps names independently, and was
/// checked against transformers' own GGUF loading — the model must compute the source's logits.
final class GGUFExportTests: XCTestCase {
    func temporaryDirectory() throws -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("finch-gguf-export-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(atPath: dir) }
        return dir
    }

    func export(_ model: CausalLM, _ type: GGUFExportType, to path: String) throws {
        let metadata: [(String, GGUFValue)] = [("general.architecture", .string(model.ggufArchitecture))]
            + model.ggufHyperparameters() + [("general.file_type", .uint32(type.fileType))]
        try GGUFWriter.write(metadata: metadata, tensors: try model.ggufTensors(type: type), to: path)
    }

    static let ids = [1, 7, 3, 22, 9, 14, 2, 30, 5]

    func logits(_ model: CausalLM) throws -> [Float] {
        try model.forward(Self.ids, cache: model.makeCache(capacity: 32), allLogits: true, pool: .serial)
    }

    func testF32ExportComputesTheSourceLogits() throws {
        let dir = try temporaryDirectory()
        for name in ["tiny_llama_gqa", "tiny_llama_untied", "tiny_qwen2", "tiny_phi"] {
            let source = try CausalLM(source: ModelSource(path: ModelParityTests.fixtures + "/" + name))
            let path = dir + "/\(name).gguf"
            try export(source, .f32, to: path)
            let file = try GGUFFile(path: path)
            XCTAssertEqual(file.tensor("output.weight") == nil, source.configuration.tieWordEmbeddings, "\(name): a tied lm_head is not written")
            let loaded = try CausalLM(source: ModelSource(path: path))
            XCTAssertEqual(loaded.configuration.architecture, source.configuration.architecture)
            XCTAssertEqual(loaded.configuration.rotaryDim, source.configuration.rotaryDim, name)
            let want = try logits(source), got = try logits(loaded)
            let worst = zip(got, want).map { abs($0 - $1) }.max() ?? .infinity
            // Same Float32 weights; only the kernels' summation order may differ between storages.
            XCTAssertLessThanOrEqual(worst, 1e-5, name)
        }
    }

    /// The permutation really happens on the way out: the stored attn_q rows of the Llama model are
    /// the HF rows in llama.cpp's order (formats.md §4.8), and those of Qwen2 are not permuted.
    func testQueryRowsArePermutedForLlamaOnly() throws {
        let dir = try temporaryDirectory()
        for (name, permuted) in [("tiny_llama_gqa", true), ("tiny_qwen2", false)] {
            let source = try CausalLM(source: ModelSource(path: ModelParityTests.fixtures + "/" + name))
            try export(source, .f32, to: dir + "/m.gguf")
            let file = try GGUFFile(path: dir + "/m.gguf")
            let stored = try file.float32(try XCTUnwrap(file.tensor("blk.0.attn_q.weight")))
            let hf = try SafeTensorsFile(path: ModelParityTests.fixtures + "/\(name)/model.safetensors").float32("model.layers.0.self_attn.q_proj.weight")
            let c = source.configuration, width = c.hiddenSize, half = c.headDim / 2
            for h in 0..<c.numAttentionHeads {
                for i in 0..<half {
                    for j in 0..<2 {
                        let ggufRow = h * c.headDim + (permuted ? 2 * i + j : j * half + i), hfRow = h * c.headDim + j * half + i
                        XCTAssertEqual(Array(stored[(ggufRow * width)..<(ggufRow * width + width)]),
                                       Array(hf[(hfRow * width)..<(hfRow * width + width)]), "\(name) head \(h) i \(i) j \(j)")
                    }
                }
            }
            try FileManager.default.removeItem(atPath: dir + "/m.gguf")
        }
    }

    /// Quantized exports: every matrix is the reference encoding of the source weights (checked
    /// byte for byte against gguf-py in GGMLQuantizeTests), norms stay F32, and with q4_0/q4_1 the
    /// embedding is Q8_0; the logits move only by quantization noise.
    func testQuantizedExportsStoreTheExpectedTypes() throws {
        let dir = try temporaryDirectory()
        let source = try CausalLM(source: ModelSource(path: ModelParityTests.fixtures + "/tiny_llama_untied"))
        let want = try logits(source)
        for (type, matrix, embedding, tolerance) in [(GGUFExportType.f16, GGMLType.f16, GGMLType.f16, Float(2e-3)),
                                                     (.bf16, .bf16, .bf16, 2e-2), (.q8_0, .q8_0, .q8_0, 5e-2),
                                                     (.q4_0, .q4_0, .q8_0, 0.5), (.q4_1, .q4_1, .q8_0, 0.5)] {
            let path = dir + "/\(type.rawValue).gguf"
            try export(source, type, to: path)
            let file = try GGUFFile(path: path)
            XCTAssertEqual(file.tensor("blk.1.ffn_down.weight")?.type, matrix, type.rawValue)
            XCTAssertEqual(file.tensor("token_embd.weight")?.type, embedding, type.rawValue)
            XCTAssertEqual(file.tensor("output.weight")?.type, embedding, type.rawValue)
            XCTAssertEqual(file.tensor("blk.0.attn_norm.weight")?.type, .f32, type.rawValue)
            XCTAssertEqual(file["general.file_type"], .uint32(type.fileType))
            // The stored ffn_down equals the reference quantizer applied to the source rows.
            let rows = try SafeTensorsFile(path: ModelParityTests.fixtures + "/tiny_llama_untied/model.safetensors").float32("model.layers.1.mlp.down_proj.weight")
            var expected = [UInt8](repeating: 0, count: rows.count / matrix.blockSize * matrix.typeSize)
            rows.withUnsafeBufferPointer { x in expected.withUnsafeMutableBytes { matrix.quantize(x.baseAddress!, count: rows.count, into: $0.baseAddress!) } }
            XCTAssertEqual(Array(file.data(try XCTUnwrap(file.tensor("blk.1.ffn_down.weight")))), expected, type.rawValue)
            // Relative RMS error of the logits, a sanity bound only (the stored bytes are checked
            // exactly above, the layout by the F32 round trip): the tiny model's random weights
            // (std 0.15, no outlier structure) lose ~6% per weight at 4 bits and ~0.4% at 8, which
            // its small logits amplify (measured: q8_0 2.8%, q4_0 33%, q4_1 30%).
            let got = try logits(CausalLM(source: ModelSource(path: path)))
            let error = zip(got, want).map { ($0 - $1) * ($0 - $1) }.reduce(0, +), norm = want.map { $0 * $0 }.reduce(0, +)
            let relative = (error / norm).squareRoot()
            XCTAssertLessThanOrEqual(relative, tolerance, type.rawValue)
            XCTAssertGreaterThan(relative, 0, "\(type.rawValue) must actually round")
        }
    }

    func testNonFiniteWeightsAreNamed() throws {
        let dir = try temporaryDirectory()
        let folder = ModelParityTests.fixtures + "/tiny_llama_gqa"
        let copy = dir + "/nan"
        try FileManager.default.createDirectory(atPath: copy, withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: folder + "/config.json", toPath: copy + "/config.json")
        let weights = try SafeTensorsFile(path: folder + "/model.safetensors")
        var entries: [SafeTensorsWriter.Entry] = []
        for info in weights.tensors {
            var values = try weights.float32(info.name)
            if info.name == "model.layers.1.mlp.up_proj.weight" { values[77] = .nan }
            entries.append(SafeTensorsWriter.Entry(name: info.name, shape: info.shape, float32: values))
        }
        try SafeTensorsWriter.write(entries, to: copy + "/model.safetensors")
        let model = try CausalLM(source: ModelSource(path: copy))
        XCTAssertThrowsError(try export(model, .q8_0, to: dir + "/out.gguf")) { error in
            XCTAssertTrue("\(error)".contains("model.layers.1.mlp.up_proj.weight"), "\(error)")
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/out.gguf"))
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir), ["nan"], "no temporary file left")
    }
}
