import FinchCore
import FinchFormats
import Foundation
import XCTest

/// `Quantized4Bit` against bitsandbytes 0.50.2 (reference/make_nf4_fixtures.py): packed bytes,
/// absmax, nested state and dequantized values must be equal bit for bit, for NF4 and FP4, with and
/// without double quantization, on stored edge cases, on generated 576×1536 and 1024×2560 tensors
/// (checksums) and on SmolLM2-135M's projection weights (checksums).
final class Quantized4BitTests: XCTestCase {
    private static let kinds: [(FourBitType, Bool)] = [(.nf4, false), (.nf4, true), (.fp4, false), (.fp4, true)]

    func testStoredCasesMatchBitsAndBytesBitForBit() throws {
        let expected = try BNBFixtures.expected()
        let file = try BNBFixtures.cases()
        let pool = ThreadPool(threads: 2)
        var checked = 0
        for entry in try XCTUnwrap(expected["stored"]?.arrayValue) {
            let name = try XCTUnwrap(entry["name"]?.stringValue)
            let shape = try XCTUnwrap(entry["shape"]?.arrayValue).compactMap(\.intValue)
            let input = try file.float32("\(name).input")
            for kind in try XCTUnwrap(entry["kinds"]?.arrayValue) {
                let type = try XCTUnwrap(FourBitType(rawValue: kind["quant_type"]?.stringValue ?? ""))
                let double = try XCTUnwrap(kind["double_quant"]?.boolValue)
                let prefix = try XCTUnwrap(kind["prefix"]?.stringValue)
                let context = "\(name) \(type) double_quant=\(double)"
                let reference = try BNBState(file, prefix: prefix, double: double)

                let ours = try Quantized4Bit(quantizing: input, shape: shape, type: type, doubleQuantization: double, pool: pool)
                XCTAssertEqual(ours.shape, shape, context)
                XCTAssertEqual(ours.isDoubleQuantized, double, context)
                assertSameState(ours, reference, context)
                assertBitsEqual(ours.dequantized(), reference.dequantized, context + " dequantized")

                // bitsandbytes' own state, wrapped without copying, dequantizes to its values too.
                let wrapped = try reference.wrapped(type: type, shape: shape)
                assertBitsEqual(wrapped.dequantized(), reference.dequantized, context + " dequantized from bitsandbytes' state")
                assertBitsEqual(wrapped.codeValues, ours.codeValues, context + " quant_map")

                // Any sub-range, odd starts and ends included.
                var rng = SplitMix(seed: UInt64(checked))
                for _ in 0..<20 where ours.count > 0 {
                    let a = Int(rng.next() % UInt64(ours.count)), b = Int(rng.next() % UInt64(ours.count + 1))
                    let range = min(a, b)..<max(a, b)
                    var part = [Float](repeating: .nan, count: range.count)
                    part.withUnsafeMutableBufferPointer { if let p = $0.baseAddress { ours.dequantize(range, into: p) } }
                    assertBitsEqual(part, Array(reference.dequantized[range]), context + " dequantize(\(range))")
                }
                checked += 1
            }
        }
        XCTAssertEqual(checked, 4 * 19)
    }

    /// The nested scales' 8-bit quantizer against bitsandbytes' CPU `quantize_blockwise`, including
    /// values at the edges of its lookup table, where it is not a nearest-value search.
    func testBlockwise8BitMatchesBitsAndBytes() throws {
        let expected = try BNBFixtures.expected()
        let file = try BNBFixtures.cases()
        let map = DynamicMap8Bit.standard
        for entry in try XCTUnwrap(expected["blockwise8"]?.arrayValue) {
            let name = try XCTUnwrap(entry["name"]?.stringValue)
            XCTAssertEqual(sha256(map.values), entry["map_sha256"]?.stringValue, "dynamic map")
            let input = try file.float32("blockwise8.\(name).input")
            let (codes, absmax) = map.quantize(input, blockSize: 256)
            let want = Array(try file.data("blockwise8.\(name).codes"))
            if let i = firstDifference(codes, want) {
                XCTFail("\(name): code \(i) (x = \(input[i])) is \(hex(codes, i)), bitsandbytes \(hex(want, i))")
            }
            assertBitsEqual(absmax, try file.float32("blockwise8.\(name).absmax"), name + " absmax")
            assertBitsEqual(map.dequantize(codes: want, absmax: absmax, blockSize: 256),
                            try file.float32("blockwise8.\(name).dequant"), name + " dequantized")
        }
    }

    func testGeneratedTensorsMatchChecksums() throws {
        let expected = try BNBFixtures.expected()
        let pool = ThreadPool(threads: 2)
        for entry in try XCTUnwrap(expected["generated"]?.arrayValue) {
            let name = try XCTUnwrap(entry["name"]?.stringValue)
            let shape = try XCTUnwrap(entry["shape"]?.arrayValue).compactMap(\.intValue)
            let seed = UInt64(try XCTUnwrap(entry["seed"]?.intValue))
            let input = BNBFixtures.generated(seed: seed, rows: shape[0], columns: shape[1])
            XCTAssertEqual(sha256(input), entry["sha256_input"]?.stringValue, "\(name): the generator differs from the script's")
            for kind in try XCTUnwrap(entry["kinds"]?.arrayValue) {
                let type = try XCTUnwrap(FourBitType(rawValue: kind["quant_type"]?.stringValue ?? ""))
                let double = try XCTUnwrap(kind["double_quant"]?.boolValue)
                // The fixtures ran torch with 2 threads; the 1024×2560 case also with 1.
                let q = try Quantized4Bit(quantizing: input, shape: shape, type: type, doubleQuantization: double, pool: pool, torchThreads: 2)
                assertChecksums(q, try XCTUnwrap(kind["sha256"]), "\(name) \(type) double_quant=\(double)")
                if let single = kind["sha256_torch_threads_1"] {
                    let q1 = try Quantized4Bit(quantizing: input, shape: shape, type: type, doubleQuantization: double, pool: pool, torchThreads: 1)
                    assertChecksums(q1, single, "\(name) \(type) double_quant=\(double) torch threads 1")
                    let bits = try XCTUnwrap(kind["offset_bits_by_torch_threads"])
                    XCTAssertNotEqual(bits["1"], bits["2"], "the fixture should exercise torch's thread split")
                }
            }
        }
    }

    func testSmolLM2WeightsMatchChecksums() throws {
        let cache = ModelCache.fromEnvironment()
        guard cache.contains(.defaultModel) else {
            XCTFail("default model missing at \(cache.path(for: .defaultModel)); run `swift run -c release finch pull` (scripts/test does)")
            return
        }
        let source = try ModelSource(path: cache.path(for: .defaultModel))
        let expected = try BNBFixtures.expected()
        let pool = ThreadPool(threads: 2)
        let entries = try XCTUnwrap(expected["smollm2"]?.arrayValue)
        XCTAssertEqual(entries.count, 8)
        for entry in entries {
            let name = try XCTUnwrap(entry["name"]?.stringValue)
            let shape = try XCTUnwrap(entry["shape"]?.arrayValue).compactMap(\.intValue)
            let input = try source.float32(name)
            XCTAssertEqual(sha256(input), entry["sha256_input"]?.stringValue, "\(name): Float32 weights differ from transformers'")
            for kind in try XCTUnwrap(entry["kinds"]?.arrayValue) {
                let type = try XCTUnwrap(FourBitType(rawValue: kind["quant_type"]?.stringValue ?? ""))
                let double = try XCTUnwrap(kind["double_quant"]?.boolValue)
                let q = try Quantized4Bit(quantizing: input, shape: shape, type: type, doubleQuantization: double, pool: pool)
                assertChecksums(q, try XCTUnwrap(kind["sha256"]), "\(name) \(type) double_quant=\(double)")
            }
        }
    }

    /// formats.md §1.9: x[k] = sin(k)·(k+1)/64, two NF4 blocks without double quantization.
    func testGoldenVectorOfTheFormatNotes() throws {
        let x = (0..<128).map { Float(sin(Double($0)) * Double($0 + 1) / 64) }
        let q = try Quantized4Bit(quantizing: x, shape: [128], type: .nf4, doubleQuantization: false)
        XCTAssertEqual(q.blockScales(), [0.935926616191864, 1.9452601671218872])
        XCTAssertEqual(Array(q.packedBytes.prefix(8)), [0x77, 0x87, 0x66, 0x78, 0x98, 0x65, 0x68, 0xA9])
        XCTAssertEqual(Array(q.dequantized().prefix(4)), [0, 0, 0.07448132336139679, 0])
    }

    func testResultDoesNotDependOnThePool() throws {
        let x = BNBFixtures.generated(seed: 42, rows: 97, columns: 333)
        for (type, double) in Self.kinds {
            let reference = try Quantized4Bit(quantizing: x, shape: [97, 333], type: type, doubleQuantization: double, pool: .serial)
            for threads in [2, 3] {
                let q = try Quantized4Bit(quantizing: x, shape: [97, 333], type: type, doubleQuantization: double,
                                          pool: ThreadPool(threads: threads))
                XCTAssertEqual(q.packedBytes, reference.packedBytes, "\(type) \(double) threads \(threads)")
                assertBitsEqual(q.blockScales(), reference.blockScales(), "\(type) \(double) threads \(threads)")
            }
        }
    }

    /// Double quantization keeps no Float32 scales (that is its point: 0.127 instead of 0.5 bit per
    /// weight); a loader's one-call quantization gives the same weight as the two-step one.
    func testMemoryAndTheLinearWeightShortcut() throws {
        let x = BNBFixtures.generated(seed: 7, rows: 1536, columns: 576)
        let nested = try Quantized4Bit(quantizing: x, shape: [1536, 576])
        XCTAssertTrue(nested.isDoubleQuantized)
        XCTAssertEqual(nested.byteCount, 1536 * 576 / 2 + 13_824 + 4 * 54 + 4 * 256 + 4 + 4 * 16)
        let plain = try Quantized4Bit(quantizing: x, shape: [1536, 576], doubleQuantization: false)
        XCTAssertEqual(plain.byteCount, 1536 * 576 / 2 + 4 * 13_824 + 4 * 16)

        let weight = try x.withUnsafeBufferPointer { try LinearWeight(outFeatures: 1536, inFeatures: 576, quantizing: $0) }
        let input = (0..<(2 * 576)).map { Float($0 % 17) / 17 - 0.5 }
        var a = [Float](repeating: 0, count: 2 * 1536), b = a
        weight.forward(input, tokens: 2, into: &a, pool: .serial)
        LinearWeight(quantized: nested).forward(input, tokens: 2, into: &b, pool: .serial)
        XCTAssertEqual(a.map(\.bitPattern), b.map(\.bitPattern))
    }

    func testInvalidInputsAreErrorsThatSayWhat() throws {
        var x = [Float](repeating: 0.5, count: 200)
        x[150] = .nan
        assertQuantizationError(try Quantized4Bit(quantizing: x, shape: [200]), contains: "element 150")
        x[150] = 0
        x[7] = -.infinity
        assertQuantizationError(try Quantized4Bit(quantizing: x, shape: [2, 100], doubleQuantization: false), contains: "element 7")
        assertQuantizationError(try Quantized4Bit(quantizing: [1, 2, 3], shape: [2, 2]), contains: "4 elements, got 3 values")

        let packed = [UInt8](repeating: 0x77, count: 50), scales: [Float] = [1, 2]
        try packed.withUnsafeBufferPointer { p in
            try scales.withUnsafeBufferPointer { s in
                _ = try Quantized4Bit(type: .nf4, shape: [10, 10], packed: p, absmax: .float32(s), owner: nil)
                assertQuantizationError(try Quantized4Bit(type: .nf4, shape: [10, 11], packed: p, absmax: .float32(s), owner: nil),
                                        contains: "55 packed bytes, got 50")
                assertQuantizationError(try Quantized4Bit(type: .nf4, shape: [10, 10], packed: p, absmax: .float32(UnsafeBufferPointer(rebasing: s[0..<1])), owner: nil),
                                        contains: "2 absmax values, got 1")
                assertQuantizationError(try Quantized4Bit(type: .fp4, shape: [10, 10], packed: p, absmax: .float32(s), codeValues: [0, 1], owner: nil),
                                        contains: "16")
            }
        }
    }

    /// The comparisons used above report a single flipped bit, in the packed bytes and in a value.
    func testCheckerReportsAFlippedBit() throws {
        let file = try BNBFixtures.cases()
        let reference = try BNBState(file, prefix: "randn_3x100.nf4.dq", double: true)
        let q = try Quantized4Bit(quantizing: try file.float32("randn_3x100.input"), shape: [3, 100], type: .nf4, doubleQuantization: true)
        XCTAssertNil(firstDifference(q.packedBytes, reference.packed))
        var packed = reference.packed
        packed[17] ^= 0x10
        XCTAssertEqual(firstDifference(q.packedBytes, packed), 17)
        var values = reference.dequantized
        values[250] = Float(bitPattern: values[250].bitPattern ^ 1)
        XCTAssertEqual(firstDifference(q.dequantized().map(\.bitPattern), values.map(\.bitPattern)), 250)
    }

    // MARK: - Comparisons

    private func assertSameState(_ q: Quantized4Bit, _ reference: BNBState, _ context: String,
                                 file: StaticString = #filePath, line: UInt = #line) {
        if let i = firstDifference(q.packedBytes, reference.packed) {
            XCTFail("\(context): packed byte \(i) is \(hex(q.packedBytes, i)), bitsandbytes \(hex(reference.packed, i))", file: file, line: line)
        }
        switch q.absmax {
        case .float32(let a):
            assertBitsEqual(Array(a), reference.absmax ?? [], context + " absmax", file: file, line: line)
        case .doubleQuantized(let codes, let nested, let offset, let map):
            if let i = firstDifference(Array(codes), reference.absmaxCodes ?? []) {
                XCTFail("\(context): absmax code \(i) is \(hex(Array(codes), i)), bitsandbytes \(hex(reference.absmaxCodes ?? [], i))",
                        file: file, line: line)
            }
            assertBitsEqual(Array(nested), reference.nestedAbsmax ?? [], context + " nested absmax", file: file, line: line)
            assertBitsEqual([offset], reference.offset.map { [$0] } ?? [], context + " offset", file: file, line: line)
            assertBitsEqual(Array(map), reference.nestedMap ?? [], context + " nested map", file: file, line: line)
        }
        assertBitsEqual(q.codeValues, reference.quantMap, context + " quant_map", file: file, line: line)
    }

    private func assertChecksums(_ q: Quantized4Bit, _ want: JSONValue, _ context: String,
                                 file: StaticString = #filePath, line: UInt = #line) {
        var got: [String: String] = ["packed": sha256(bytes: q.packedBytes), "quant_map": sha256(q.codeValues),
                                     "dequant": sha256(q.dequantized())]
        switch q.absmax {
        case .float32(let a):
            got["absmax"] = sha256(Array(a))
        case .doubleQuantized(let codes, let nested, let offset, let map):
            got["absmax_codes"] = sha256(bytes: Array(codes))
            got["nested_absmax"] = sha256(Array(nested))
            got["offset"] = sha256([offset])
            got["nested_map"] = sha256(Array(map))
        }
        let keys = (want.objectValue ?? []).map(\.0)
        XCTAssertEqual(Set(keys), Set(got.keys), context, file: file, line: line)
        for key in keys.sorted() where got[key] != want[key]?.stringValue {
            XCTFail("\(context): \(key) differs from bitsandbytes'", file: file, line: line)
        }
    }

}

/// Fails unless `body` throws a `QuantizationError` whose message contains `fragment`.
func assertQuantizationError<T>(_ body: @autoclosure () throws -> T, contains fragment: String,
                                file: StaticString = #filePath, line: UInt = #line) {
    do {
        _ = try body()
        XCTFail("expected a QuantizationError containing «\(fragment)»", file: file, line: line)
    } catch let error as QuantizationError {
        XCTAssertTrue(error.description.contains(fragment), "«\(error)» lacks «\(fragment)»", file: file, line: line)
    } catch {
        XCTFail("expected QuantizationError, got \(error)", file: file, line: line)
    }
}

/// One quantization of a stored case as bitsandbytes wrote it.
private struct BNBState {
    var packed: [UInt8]
    var absmax: [Float]?
    var absmaxCodes: [UInt8]?
    var nestedAbsmax: [Float]?
    var nestedMap: [Float]?
    var offset: Float?
    var quantMap: [Float]
    var dequantized: [Float]
    /// Keeps the file mapped for `wrapped`.
    let file: SafeTensorsFile
    let prefix: String

    init(_ file: SafeTensorsFile, prefix: String, double: Bool) throws {
        self.file = file
        self.prefix = prefix
        packed = Array(try file.data(prefix + ".packed"))
        quantMap = try file.float32(prefix + ".quant_map")
        dequantized = try file.float32(prefix + ".dequant")
        if double {
            absmaxCodes = Array(try file.data(prefix + ".absmax_codes"))
            nestedAbsmax = try file.float32(prefix + ".nested_absmax")
            nestedMap = try file.float32(prefix + ".nested_map")
            offset = try file.float32(prefix + ".offset").first
        } else {
            absmax = try file.float32(prefix + ".absmax")
        }
    }

    /// bitsandbytes' buffers wrapped in place (the safetensors data is 8-byte aligned).
    func wrapped(type: FourBitType, shape: [Int]) throws -> Quantized4Bit {
        func u8(_ suffix: String) throws -> UnsafeBufferPointer<UInt8> { try file.data(prefix + suffix).bindMemory(to: UInt8.self) }
        func f32(_ suffix: String) throws -> UnsafeBufferPointer<Float> { try file.data(prefix + suffix).bindMemory(to: Float.self) }
        let scales: Quantized4Bit.Absmax = if let offset {
            .doubleQuantized(codes: try u8(".absmax_codes"), absmax: try f32(".nested_absmax"), offset: offset, map: try f32(".nested_map"))
        } else {
            .float32(try f32(".absmax"))
        }
        return try Quantized4Bit(type: type, shape: shape, packed: try u8(".packed"), absmax: scales, codeValues: quantMap, owner: file)
    }
}

/// The files written by reference/make_nf4_fixtures.py, and its integer generator.
enum BNBFixtures {
    static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures").path

    static func expected() throws -> JSONValue { try JSONValue.parse(contentsOf: directory + "/bnb4bit_expected.json") }
    static func cases() throws -> SafeTensorsFile { try SafeTensorsFile(path: directory + "/bnb4bit_cases.safetensors") }

    /// "finch-splitmix64-irwinhall4-v1" (the script's docstring): exact Float32 values, roughly normal.
    static func generated(seed: UInt64, rows: Int, columns: Int) -> [Float] {
        (0..<(rows * columns)).map { i in
            var z = seed &+ UInt64(i + 1) &* 0x9E37_79B9_7F4A_7C15
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            z ^= z >> 31
            let n = Int(z & 0xFFFF) + Int((z >> 16) & 0xFFFF) + Int((z >> 32) & 0xFFFF) + Int(z >> 48) - 131_070
            let v = Float(n) * Float(sign: .plus, exponent: -(17 + (i / columns) % 4), significand: 1)
            return i % 997 == 0 ? v * 16 : v
        }
    }
}

/// SplitMix64 for sub-range choices.
private struct SplitMix {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

func firstDifference<T: Equatable>(_ a: [T], _ b: [T]) -> Int? {
    if a.count != b.count { return min(a.count, b.count) }
    return a.indices.first { a[$0] != b[$0] }
}

private func hex(_ bytes: [UInt8], _ i: Int) -> String {
    i < bytes.count ? String(format: "0x%02x", bytes[i]) : "missing"
}

/// Bit-pattern equality of Float arrays, reporting the first difference.
func assertBitsEqual(_ got: [Float], _ want: [Float], _ context: String, file: StaticString = #filePath, line: UInt = #line) {
    guard let i = firstDifference(got.map(\.bitPattern), want.map(\.bitPattern)) else { return }
    let g = i < got.count ? "\(got[i]) (0x\(String(got[i].bitPattern, radix: 16)))" : "missing"
    let w = i < want.count ? "\(want[i]) (0x\(String(want[i].bitPattern, radix: 16)))" : "missing"
    XCTFail("\(context): element \(i) of \(want.count) is \(g), expected \(w)", file: file, line: line)
}

private func sha256(_ values: [Float]) -> String { values.withUnsafeBytes { SHA256.hex($0) } }
private func sha256(bytes: [UInt8]) -> String { bytes.withUnsafeBytes { SHA256.hex($0) } }
