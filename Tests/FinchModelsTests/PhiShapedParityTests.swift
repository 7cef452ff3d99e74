import FinchCore
import FinchFormats
import FinchModels
import Foundation
import XCTest

/// Issue 4's acceptance check at Phi-2's real shapes: hidden 2560, 32 heads of 80 dims with a
/// rotary dim of 32 (partial_rotary_factor 0.4), MLP 10240, vocabulary 51200, untied lm_head with
/// a bias, but only 2 layers. The logits are transformers 5.24's (fp32, eager attention) from
/// reference/make_phi2_shaped_fixture.py. The ≈0.84 GB of weights are not in the repository:
/// this test computes them with the seeded integer generator that the script also uses
/// (`SeededWeights`), writes them as F16 safetensors (Phi-2's checkpoint dtype; every value is exact
/// in F16) to a temporary Hugging Face folder, and loads that folder through `ModelSource` and
/// `CausalLM` like any checkpoint.
final class PhiShapedParityTests: XCTestCase {
    static let fixtures = ModelParityTests.fixtures

    /// The weight generator of reference/make_phi2_shaped_fixture.py ("finch-splitmix64-int8-v1";
    /// its docstring is the specification). Integer arithmetic only: value = (base + (k >> shift))·2^-exp,
    /// where k is the top byte, as an int8, of splitmix64 output i of the seed FNV-1a-64(name).
    enum SeededWeights {
        static let name = "finch-splitmix64-int8-v1"

        struct Kind: Equatable {
            var name: String, base: Int, shift: Int, exp: Int

            /// The value for each k = −128 … 127 (index k + 128).
            var values: [Float] {
                (-128...127).map { k in Float(base + (k >> shift)) * Float(sign: .plus, exponent: -exp, significand: 1) }
            }
            /// The integer numerator for each k (index k + 128).
            var numerators: [Int] { (-128...127).map { base + ($0 >> shift) } }
        }

        static func kind(of tensor: String) -> Kind {
            if tensor.contains("layernorm") && tensor.hasSuffix(".weight") { return Kind(name: "layernorm_weight", base: 128, shift: 2, exp: 7) }
            if tensor.hasSuffix(".bias") { return Kind(name: "bias", base: 0, shift: 0, exp: 10) }
            return Kind(name: "weight", base: 0, shift: 0, exp: 12)
        }

        static func seed(_ tensor: String) -> UInt64 {
            var h: UInt64 = 0xcbf2_9ce4_8422_2325
            for byte in tensor.utf8 { h = (h ^ UInt64(byte)) &* 0x100_0000_01b3 }
            return h
        }

        /// Index k + 128 of element `i` (row-major) of the tensor with this seed.
        @inline(__always)
        static func index(seed: UInt64, _ i: Int) -> Int {
            var z = seed &+ UInt64(i + 1) &* 0x9e37_79b9_7f4a_7c15
            z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
            z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
            z ^= z >> 31
            return Int((z >> 56) ^ 0x80)
        }

        /// The tensor as little-endian F16 bytes, and the sum of its integer numerators.
        static func float16(_ tensor: String, count: Int) -> (bytes: [UInt8], numeratorSum: Int) {
            let kind = kind(of: tensor), s = seed(tensor)
            let halves = kind.values.map { HalfPrecision.half(from: $0).littleEndian }
            var counts = [Int](repeating: 0, count: 256)
            let bytes = [UInt8](unsafeUninitializedCapacity: 2 * count) { buffer, initialized in
                let out = UnsafeMutableRawPointer(buffer.baseAddress!)
                halves.withUnsafeBufferPointer { table in
                    counts.withUnsafeMutableBufferPointer { counts in
                        for i in 0..<count {
                            let j = index(seed: s, i)
                            counts[j] += 1
                            out.storeBytes(of: table[j], toByteOffset: 2 * i, as: UInt16.self)
                        }
                    }
                }
                initialized = 2 * count
            }
            return (bytes, zip(counts, kind.numerators).reduce(0) { $0 + $1.0 * $1.1 })
        }

        /// Element `i` of F16 bytes as Float.
        static func value(_ bytes: [UInt8], _ i: Int) -> Float {
            HalfPrecision.float(fromHalf: UInt16(bytes[2 * i]) | UInt16(bytes[2 * i + 1]) << 8)
        }
    }

    func expected() throws -> JSONValue {
        try JSONValue.parse(contentsOf: Self.fixtures + "/phi2_shaped_expected.json")
    }

    /// Compares one generated tensor with the script's record of it; returns the failures.
    static func generatorMismatches(_ record: JSONValue, bytes: [UInt8], numeratorSum: Int) -> [String] {
        let name = record["name"]?.stringValue ?? "?"
        var problems: [String] = []
        let count = bytes.count / 2
        if record["shape"]?.arrayValue?.compactMap(\.intValue).reduce(1, *) != count { problems.append("element count \(count)") }
        if record["kind"]?.stringValue != SeededWeights.kind(of: name).name { problems.append("kind \(SeededWeights.kind(of: name).name)") }
        if record["seed"]?.stringValue != String(SeededWeights.seed(name), radix: 16).leftPadded(to: 16) { problems.append("seed") }
        let first = (0..<min(4, count)).map { SeededWeights.value(bytes, $0) }
        if record["first4"]?.arrayValue?.compactMap(\.doubleValue).map({ Float($0) }) != first { problems.append("first values \(first)") }
        if record["last"]?.doubleValue.map({ Float($0) }) != SeededWeights.value(bytes, count - 1) { problems.append("last value") }
        if record["numerator_sum"]?.intValue != numeratorSum { problems.append("numerator sum \(numeratorSum)") }
        return problems.map { "\(name): \($0)" }
    }

    /// The generator alone, on every tensor except the two [51200, 2560] matrices (those are checked
    /// while the parity test builds its folder), and the SHA-256 of one tensor of each kind: a
    /// generator that drifted from the script fails here, not as a logits mismatch.
    func testSeededGeneratorMatchesTheReferenceScript() throws {
        let expected = try expected()
        let generator = try XCTUnwrap(expected["generator"])
        XCTAssertEqual(generator["name"]?.stringValue, SeededWeights.name)
        XCTAssertEqual(generator["checkpoint_dtype"]?.stringValue, "F16")
        for kind in ["layernorm_weight", "bias", "weight"] {
            let k = try XCTUnwrap(generator["kinds"]?[kind])
            let ours = SeededWeights.kind(of: kind == "layernorm_weight" ? "x.layernorm.weight" : kind == "bias" ? "x.bias" : "x.weight")
            XCTAssertEqual([k["base"]?.intValue, k["shift"]?.intValue, k["exp"]?.intValue], [ours.base, ours.shift, ours.exp], kind)
            // Every value the generator can produce survives F16 and BF16 unchanged.
            for v in ours.values {
                XCTAssertEqual(HalfPrecision.float(fromHalf: HalfPrecision.half(from: v)), v)
                XCTAssertEqual(v.bitPattern & 0xffff, 0, "\(v) is not a bfloat16")
            }
        }
        let hashes = try XCTUnwrap(generator["sha256_f16"]?.objectValue)
        XCTAssertEqual(hashes.count, 3)
        let records = try XCTUnwrap(expected["tensors"]?.arrayValue)
        XCTAssertEqual(records.count, 5 + 2 * 14) // embeddings, final norm (2), lm_head (2); 14 per layer
        for record in records {
            let name = try XCTUnwrap(record["name"]?.stringValue)
            let count = try XCTUnwrap(record["shape"]?.arrayValue).compactMap(\.intValue).reduce(1, *)
            guard count < 51200 * 2560 else { continue }
            let (bytes, sum) = SeededWeights.float16(name, count: count)
            let problems = Self.generatorMismatches(record, bytes: bytes, numeratorSum: sum)
            XCTAssertTrue(problems.isEmpty, "the Swift generator differs from reference/make_phi2_shaped_fixture.py: \(problems)")
            if let hash = hashes.first(where: { $0.0 == name })?.1.stringValue {
                var sha = SHA256()
                sha.update(bytes)
                XCTAssertEqual(sha.finalizeHex(), hash, "\(name): SHA-256 of the F16 bytes")
            }
        }
        XCTAssertEqual(Set(hashes.map(\.0)).subtracting(records.compactMap { $0["name"]?.stringValue }), [])
    }

    /// Writes config.json and an F16 model.safetensors of the seeded weights into a new temporary
    /// folder, checking every tensor against the script's record on the way.
    func makeCheckpoint(_ expected: JSONValue) throws -> URL {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("finch-phi2-shaped-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: false)
        addTeardownBlock { try? FileManager.default.removeItem(at: folder) }
        try FileManager.default.copyItem(atPath: Self.fixtures + "/" + XCTUnwrap(expected["config_file"]?.stringValue),
                                         toPath: folder.appendingPathComponent("config.json").path)
        var entries: [SafeTensorsWriter.Entry] = []
        var problems: [String] = []
        for record in try XCTUnwrap(expected["tensors"]?.arrayValue) {
            let name = try XCTUnwrap(record["name"]?.stringValue)
            let shape = try XCTUnwrap(record["shape"]?.arrayValue).compactMap(\.intValue)
            let (bytes, sum) = SeededWeights.float16(name, count: shape.reduce(1, *))
            problems += Self.generatorMismatches(record, bytes: bytes, numeratorSum: sum)
            entries.append(SafeTensorsWriter.Entry(name: name, dtype: .f16, shape: shape, bytes: bytes))
        }
        guard problems.isEmpty else { throw GeneratorMismatch(problems: problems) }
        try SafeTensorsWriter.write(entries, to: folder.appendingPathComponent("model.safetensors").path)
        return folder
    }

    /// Full-sequence logits (one prefill pass) and token-by-token decoding through the KV cache,
    /// both against transformers at |a − b| ≤ 1e-4 + 1e-4·|b|.
    func testPhi2ShapedLogitsMatchTransformers() throws {
        let expected = try expected()
        let want = try SafeTensorsFile(path: Self.fixtures + "/" + XCTUnwrap(expected["logits_file"]?.stringValue))
            .float32(XCTUnwrap(expected["logits_key"]?.stringValue))
        let ids = try XCTUnwrap(expected["input_ids"]?.arrayValue).compactMap(\.intValue)
        XCTAssertEqual(want.count, ids.count * 51200)

        let folder = try makeCheckpoint(expected)
        let source = try ModelSource(path: folder.path)
        let c = source.configuration
        XCTAssertEqual([c.hiddenSize, c.numAttentionHeads, c.numKeyValueHeads, c.headDim, c.rotaryDim, c.intermediateSize, c.vocabSize, c.numHiddenLayers],
                       [2560, 32, 32, 80, 32, 10240, 51200, 2])
        XCTAssertEqual(Set(source.tensors.map(\.storage)), [.safetensors(.f16)])
        let model = try CausalLM(source: source)

        let full = try model.forward(ids, cache: model.makeCache(capacity: 16), allLogits: true, pool: ThreadPool(threads: 2))
        let bad = ModelParityTests.mismatches(full, want, atol: 1e-4, rtol: 1e-4)
        XCTAssertTrue(bad.isEmpty, "phi2_shaped: \(bad.count) logits differ beyond 1e-4, worst (index, ours, theirs): \(bad.sorted { abs($0.1 - $0.2) > abs($1.1 - $1.2) }.prefix(3))")

        let cache = model.makeCache(capacity: 16)
        var stepwise: [Float] = []
        for id in ids { stepwise += try model.forward([id], cache: cache, pool: ThreadPool(threads: 2)) }
        let badCached = ModelParityTests.mismatches(stepwise, want, atol: 1e-4, rtol: 1e-4)
        XCTAssertTrue(badCached.isEmpty, "phi2_shaped, KV-cached decoding: \(badCached.count) logits differ beyond 1e-4, first: \(badCached.prefix(3))")

        let argmax = (0..<ids.count).map { t in (0..<51200).max { full[t * 51200 + $0] < full[t * 51200 + $1] }! }
        XCTAssertEqual(argmax, expected["argmax_per_position"]?.arrayValue?.compactMap(\.intValue))
        let worst = zip(full, want).map { abs($0 - $1) }.max() ?? .infinity
        let worstCached = zip(stepwise, want).map { abs($0 - $1) }.max() ?? .infinity
        print("Phi-2-shaped logits: worst |Δ| = \(worst) (full pass), \(worstCached) (KV-cached decoding)")
    }
}

struct GeneratorMismatch: Error, CustomStringConvertible {
    var problems: [String]
    var description: String { "the Swift weight generator differs from reference/make_phi2_shaped_fixture.py: \(problems.prefix(5))" }
}

private extension String {
    func leftPadded(to width: Int) -> String { String(repeating: "0", count: max(0, width - count)) + self }
}
