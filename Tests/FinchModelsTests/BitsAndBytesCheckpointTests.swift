import FinchCore
import FinchFormats
import FinchModels
import Foundation
import XCTest

/// Pre-quantized bitsandbytes checkpoints (transformers `save_pretrained` of tiny random Llama and
/// Phi models loaded with `BitsAndBytesConfig`; reference/make_bnb_checkpoint_fixtures.py): NF4 and
/// FP4, plain and double-quantized scales, and LLM.int8.
///
/// - Logits of `CausalLM(source:)` against transformers' quantized model in float32 (bitsandbytes'
///   float32 path: `dequantize_4bit` + `linear`, or `MatMul8bitFp` for 8-bit) at atol = rtol = 1e-4,
///   as the float32 parity tests: both sides multiply by the same dequantized weights (checked bit
///   for bit through SHA-256 of every weight), so only Float32 summation order differs.
/// - The weights are used as stored: wrapped in the mapped file (same addresses, no copies), and
///   equal to what Finch's own bit-exact quantizers make of the float32 source model.
/// - Bad checkpoints are errors naming the file and the tensor.
final class BitsAndBytesCheckpointTests: XCTestCase {
    static let fixtures = ModelParityTests.fixtures

    private static func expected() throws -> [JSONValue] {
        try XCTUnwrap(JSONValue.parse(contentsOf: fixtures + "/bnb_checkpoints_expected.json")["checkpoints"]?.arrayValue)
    }

    func testLogitsMatchTransformers() throws {
        let logits = try SafeTensorsFile(path: Self.fixtures + "/bnb_checkpoints_logits.safetensors")
        var checked = 0
        for entry in try Self.expected() {
            let name = try XCTUnwrap(entry["name"]?.stringValue)
            let model = try CausalLM(source: ModelSource(path: Self.fixtures + "/" + name))
            var worst: Float = 0
            for sequence in try XCTUnwrap(entry["sequences"]?.arrayValue) {
                let ids = sequence["input_ids"]?.arrayValue?.compactMap(\.intValue) ?? []
                let want = try logits.float32(try XCTUnwrap(sequence["logits_key"]?.stringValue))
                let full = try model.forward(ids, cache: model.makeCache(capacity: 64), allLogits: true, pool: ThreadPool(threads: 2))
                let bad = ModelParityTests.mismatches(full, want, atol: 1e-4, rtol: 1e-4)
                XCTAssertTrue(bad.isEmpty, "\(name): \(bad.count) logits differ beyond 1e-4, first: \(bad.prefix(3))")
                worst = max(worst, zip(full, want).map { abs($0 - $1) }.max() ?? .infinity)
                // Token by token through the KV cache (decode kernels instead of panels).
                let cache = model.makeCache(capacity: 64)
                var stepwise: [Float] = []
                for id in ids { stepwise += try model.forward([id], cache: cache, pool: ThreadPool(threads: 2)) }
                let badCached = ModelParityTests.mismatches(stepwise, want, atol: 1e-4, rtol: 1e-4)
                XCTAssertTrue(badCached.isEmpty, "\(name): KV-cached logits differ beyond 1e-4 at \(badCached.prefix(3))")
            }
            print("\(name): max |logit − transformers| = \(worst)")
            checked += 1
        }
        XCTAssertEqual(checked, 6)
    }

    /// Every quantized weight dequantizes bit for bit to the weight bitsandbytes multiplies by, its
    /// buffers are the mapped file's own bytes, and it equals Finch's quantization of the float32
    /// source folder (so nothing was requantized or approximated on load).
    func testWeightsAreUsedAsStored() throws {
        var modules = 0
        for entry in try Self.expected() {
            let name = try XCTUnwrap(entry["name"]?.stringValue)
            let folder = Self.fixtures + "/" + name
            let sourceFolder = Self.fixtures + "/" + (entry["source"]?.stringValue ?? "")
            let sourceFile = try Data(contentsOf: URL(fileURLWithPath: sourceFolder + "/model.safetensors"))
            XCTAssertEqual(sourceFile.withUnsafeBytes { SHA256.hex($0) }, entry["source_sha256"]?.stringValue,
                           "\(sourceFolder) changed since the bnb fixtures were made: rerun reference/make_bnb_checkpoint_fixtures.py")
            let source = try ModelSource(path: folder), float = try ModelSource(path: sourceFolder)
            let hashes = try XCTUnwrap(entry["dequantized_sha256"]?.objectValue)
            XCTAssertFalse(hashes.isEmpty)
            for (module, hash) in hashes {
                let weightName = module + ".weight"
                let context = "\(name) \(weightName)"
                let weight = try XCTUnwrap(try source.bitsAndBytesWeight(weightName), context)
                let (out, inFeatures) = (weight.shape[0], weight.shape[1])
                let linear: LinearWeight
                switch weight {
                case .fourBit(let q): linear = LinearWeight(quantized: q)
                case .int8Rows(let q): linear = LinearWeight(int8Rows: q)
                }
                var rows = [Float](repeating: .nan, count: out * inFeatures)
                rows.withUnsafeMutableBufferPointer { buffer in
                    for r in 0..<out { linear.row(r, into: buffer.baseAddress! + r * inFeatures) }
                }
                XCTAssertEqual(rows.withUnsafeBytes { SHA256.hex($0) }, hash.stringValue, context + ": dequantized weight")

                let values = try float.float32(weightName)
                let stored = try XCTUnwrap(source.tensor(weightName))
                let storedBytes = try source.packedData(stored)
                switch weight {
                case .fourBit(let q):
                    XCTAssertEqual(UnsafeRawPointer(q.packed.baseAddress), storedBytes.baseAddress, context + ": packed bytes not mapped")
                    let ours = try Quantized4Bit(quantizing: values, shape: [out, inFeatures], type: q.type,
                                                doubleQuantization: q.isDoubleQuantized)
                    XCTAssertEqual(ours.packedBytes, q.packedBytes, context + ": packed bytes")
                    XCTAssertEqual(ours.blockScales().map(\.bitPattern), q.blockScales().map(\.bitPattern), context + ": block scales")
                    XCTAssertEqual(ours.codeValues.map(\.bitPattern), q.codeValues.map(\.bitPattern), context + ": quant_map")
                    if case let .doubleQuantized(codes, _, offset, map) = q.absmax,
                       case let .doubleQuantized(ourCodes, _, ourOffset, ourMap) = ours.absmax {
                        XCTAssertEqual(Array(codes), Array(ourCodes), context + ": absmax codes")
                        XCTAssertEqual(offset.bitPattern, ourOffset.bitPattern, context + ": nested_offset")
                        XCTAssertEqual(Array(map).map(\.bitPattern), Array(ourMap).map(\.bitPattern), context + ": nested_quant_map")
                    }
                case .int8Rows(let q):
                    XCTAssertEqual(UnsafeRawPointer(q.codes.baseAddress), storedBytes.baseAddress, context + ": codes not mapped")
                    let ours = try Int8RowQuantized(quantizing: values, rows: out, columns: inFeatures)
                    XCTAssertEqual(Array(ours.codes), Array(q.codes), context + ": CB")
                    XCTAssertEqual(Array(ours.absmax).map(\.bitPattern), Array(q.absmax).map(\.bitPattern), context + ": SCB")
                }
                modules += 1
            }
            // Embeddings (and Phi's lm_head) are not quantized by bitsandbytes.
            XCTAssertNil(try source.bitsAndBytesWeight("model.embed_tokens.weight"))
        }
        XCTAssertEqual(modules, 5 * 14 + 12)
    }

    func testInspectSummary() throws {
        for (name, source, method) in [("bnb_llama_nf4_dq", "tiny_llama_gqa", "bitsandbytes NF4, double-quantized scales"),
                                       ("bnb_llama_fp4", "tiny_llama_gqa", "bitsandbytes FP4 (compute"),
                                       ("bnb_llama_int8", "tiny_llama_gqa", "bitsandbytes LLM.int8 rows"),
                                       ("bnb_phi_nf4_dq", "tiny_phi", "bitsandbytes NF4, double")] {
            let summary = try ModelSummary(source: ModelSource(path: Self.fixtures + "/" + name))
            let plain = try ModelSummary(source: ModelSource(path: Self.fixtures + "/" + source))
            XCTAssertEqual(summary.parameters, plain.parameters, name)
            XCTAssertNil(plain.quantization)
            let quantization = try XCTUnwrap(summary.quantization, name)
            XCTAssertTrue(quantization.hasPrefix(method), quantization)
            XCTAssertTrue(quantization.hasSuffix("; \(name.hasPrefix("bnb_phi") ? 12 : 14) quantized weights"), quantization)
            XCTAssertTrue(summary.text.contains("quantization      " + quantization), summary.text)
        }
    }

    // MARK: - Bad checkpoints

    /// Each mutation of a valid checkpoint gives an error that names the file and the tensor (or
    /// config.json and the field) and says what is wrong.
    func testBadCheckpointsAreErrorsNamingFileAndTensor() throws {
        let q = "model.layers.0.self_attn.q_proj.weight"
        let state = q + ".quant_state.bitsandbytes__nf4"
        typealias Edit = (inout [String: SafeTensorsWriter.Entry], inout String) throws -> Void
        func json(_ text: String) -> SafeTensorsWriter.Entry {
            SafeTensorsWriter.Entry(name: state, dtype: .u8, shape: [text.utf8.count], bytes: Array(text.utf8))
        }
        func stateJSON(_ replace: @escaping (String) -> String) -> Edit {
            { tensors, _ in
                let text = String(decoding: tensors[state]!.bytes, as: UTF8.self)
                let changed = replace(text)
                XCTAssertNotEqual(changed, text, "the mutation did not apply")
                tensors[state] = json(changed)
            }
        }
        let fourBit: [(String, Edit, [String])] = [
            ("blocksize 128", stateJSON { $0.replacingOccurrences(of: "\"blocksize\": 64", with: "\"blocksize\": 128") },
             ["model.safetensors", state, "blocksize 128 is not supported"]),
            ("unknown field", stateJSON { $0.replacingOccurrences(of: "{", with: "{\"quant_storage\": \"uint8\", ") },
             [state, "unknown quant state field 'quant_storage'"]),
            ("quant type", stateJSON { $0.replacingOccurrences(of: "\"nf4\"", with: "\"fp4\"") }, [state, "does not match"]),
            ("shape", stateJSON { $0.replacingOccurrences(of: "\"shape\": [64, 64]", with: "\"shape\": [64, 32]") },
             [q, "expected U8 [1024, 1]"]),
            ("nested blocksize", stateJSON { $0.replacingOccurrences(of: "\"nested_blocksize\": 256", with: "\"nested_blocksize\": 128") },
             [state, "nested_blocksize 128 is not supported"]),
            ("offset", stateJSON { $0.replacingOccurrences(of: "\"nested_offset\": [^,}]+", with: "\"nested_offset\": \"x\"",
                                                           options: .regularExpression) },
             [state, "nested_offset \"x\" is not a finite number"]),
            ("not JSON", { tensors, _ in tensors[state] = json("{\"quant_type\": ") }, [state]),
            ("missing absmax", { tensors, _ in tensors[q + ".absmax"] = nil }, ["model.safetensors", "missing tensor '\(q).absmax'"]),
            ("absmax dtype", { tensors, _ in
                tensors[q + ".absmax"] = SafeTensorsWriter.Entry(name: q + ".absmax", shape: [64], float32: [Float](repeating: 1, count: 64))
            }, [q + ".absmax", "is F32 [64], expected U8 [64]"]),
            ("packed shape", { tensors, _ in
                let e = tensors[q]!
                tensors[q] = SafeTensorsWriter.Entry(name: q, dtype: .u8, shape: [2048], bytes: e.bytes)
            }, [q, "is U8 [2048], expected U8 [2048, 1]"]),
            ("nested absmax NaN", { tensors, _ in
                tensors[q + ".nested_absmax"] = SafeTensorsWriter.Entry(name: q + ".nested_absmax", shape: [1], float32: [.nan])
            }, [q + ".nested_absmax", "element 0 is nan"]),
            ("quant map size", { tensors, _ in
                tensors[q + ".quant_map"] = SafeTensorsWriter.Entry(name: q + ".quant_map", shape: [15], float32: [Float](repeating: 0, count: 15))
            }, [q + ".quant_map", "expected F32 [16]"]),
            ("no quant state", { tensors, _ in tensors[state] = nil }, [q + ".absmax", "quant_state.bitsandbytes__nf4' (or __fp4) is missing"]),
            ("config double quant", { _, config in
                config = config.replacingOccurrences(of: "\"bnb_4bit_use_double_quant\": true", with: "\"bnb_4bit_use_double_quant\": false")
            }, [state, "bnb_4bit_use_double_quant is false"]),
            ("config type", { _, config in
                config = config.replacingOccurrences(of: "\"bnb_4bit_quant_type\": \"nf4\"", with: "\"bnb_4bit_quant_type\": \"fp4\"")
            }, [state, "bnb_4bit_quant_type is fp4"]),
            ("config removed", { _, config in
                config = config.replacingOccurrences(of: "\"quantization_config\"", with: "\"removed_quantization_config\"")
            }, [state, "does not say load_in_4bit"]),
            ("config storage", { _, config in
                config = config.replacingOccurrences(of: "\"bnb_4bit_quant_storage\": \"uint8\"", with: "\"bnb_4bit_quant_storage\": \"bfloat16\"")
            }, ["config.json", "bnb_4bit_quant_storage 'bfloat16' is not supported"]),
            ("config method", { _, config in
                config = config.replacingOccurrences(of: "\"quant_method\": \"bitsandbytes\"", with: "\"quant_method\": \"gptq\"")
            }, ["config.json", "quant_method 'gptq' is not supported"]),
            ("config both", { _, config in
                config = config.replacingOccurrences(of: "\"load_in_8bit\": false", with: "\"load_in_8bit\": true")
            }, ["config.json", "both 'load_in_4bit' and 'load_in_8bit' are true"]),
        ]
        for (what, edit, fragments) in fourBit {
            try assertLoadError("bnb_llama_nf4_dq", what, edit, fragments)
        }

        let scb = "model.layers.1.mlp.down_proj.SCB", format = "model.layers.1.mlp.down_proj.weight_format"
        let down = "model.layers.1.mlp.down_proj.weight"
        let eightBit: [(String, Edit, [String])] = [
            ("weight format", { tensors, _ in
                tensors[format] = SafeTensorsWriter.Entry(name: format, dtype: .u8, shape: [], bytes: [1])
            }, ["model.safetensors", format, "format 1 (col32) is not supported"]),
            ("negative SCB", { tensors, _ in
                var values = [Float](repeating: 0.5, count: 64)
                values[3] = -1
                tensors[scb] = SafeTensorsWriter.Entry(name: scb, shape: [64], float32: values)
            }, [scb, "row 3 has absmax (SCB) -1.0"]),
            ("SCB shape", { tensors, _ in
                tensors[scb] = SafeTensorsWriter.Entry(name: scb, shape: [63], float32: [Float](repeating: 0.5, count: 63))
            }, [scb, "is F32 [63], expected F32 [64]"]),
            ("weight dtype", { tensors, _ in
                let e = tensors[down]!
                tensors[down] = SafeTensorsWriter.Entry(name: down, dtype: .u8, shape: e.shape, bytes: e.bytes)
            }, [down, "is U8 [64, 128], expected I8 [64, 128]"]),
            ("missing SCB", { tensors, _ in tensors[scb] = nil }, [format, "'model.layers.1.mlp.down_proj.SCB' is missing"]),
            ("config", { _, config in
                config = config.replacingOccurrences(of: "\"load_in_8bit\": true", with: "\"load_in_8bit\": false")
                    .replacingOccurrences(of: "\"load_in_4bit\": false", with: "\"load_in_4bit\": true")
            }, ["model.layers.0.self_attn.q_proj.SCB", "does not say load_in_8bit"]),
        ]
        for (what, edit, fragments) in eightBit {
            try assertLoadError("bnb_llama_int8", what, edit, fragments)
        }
    }

    /// Copies fixture `name`, applies `edit` to its tensors and config.json, and checks that loading
    /// the copy fails with a message containing every fragment (and the copy's path).
    private func assertLoadError(_ name: String, _ what: String,
                                 _ edit: (inout [String: SafeTensorsWriter.Entry], inout String) throws -> Void,
                                 _ fragments: [String], file: StaticString = #filePath, line: UInt = #line) throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("finch-bnb-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let original = try SafeTensorsFile(path: Self.fixtures + "/\(name)/model.safetensors")
        var tensors: [String: SafeTensorsWriter.Entry] = [:]
        for info in original.tensors {
            tensors[info.name] = SafeTensorsWriter.Entry(name: info.name, dtype: info.dtype, shape: info.shape, bytes: Array(original.data(info)))
        }
        var config = try String(contentsOfFile: Self.fixtures + "/\(name)/config.json", encoding: .utf8)
        let before = config
        try edit(&tensors, &config)
        if what.hasPrefix("config") { XCTAssertNotEqual(config, before, "\(what): the config edit did not apply", file: file, line: line) }
        try SafeTensorsWriter.write(Array(tensors.values), to: folder + "/model.safetensors")
        try config.write(toFile: folder + "/config.json", atomically: true, encoding: .utf8)
        do {
            _ = try CausalLM(source: ModelSource(path: folder))
            XCTFail("\(name) \(what): loaded without an error", file: file, line: line)
        } catch {
            let message = "\(error)"
            XCTAssertTrue(message.hasPrefix(folder), "\(what): «\(message)» does not name the file", file: file, line: line)
            for fragment in fragments {
                XCTAssertTrue(message.contains(fragment), "\(what): «\(message)» lacks «\(fragment)»", file: file, line: line)
            }
        }
    }
}
