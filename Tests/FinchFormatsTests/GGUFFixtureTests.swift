import FinchCore
import FinchFormats
import XCTest

/// `gguf_types.gguf` was written by gguf-py's GGUFWriter with every metadata value type (nested
/// arrays included), a non-default alignment, and tensors of every type Finch dequantizes; the
/// expected values come from `gguf.dequantize` (reference/make_format_fixtures.py).
final class GGUFFixtureTests: XCTestCase {
    var file: GGUFFile!
    var expected: JSONValue!

    override func setUpWithError() throws {
        file = try GGUFFile(path: Fixtures.path("gguf_types.gguf"))
        expected = try Fixtures.json("gguf_types_expected.json")
    }

    func testLayout() throws {
        XCTAssertEqual(Int(file.version), expected["version"]?.intValue)
        XCTAssertEqual(file.alignment, expected["alignment"]?.intValue)
        XCTAssertEqual(file.dataStart, expected["data_start"]?.intValue)
        XCTAssertEqual(file.metadataKeys, expected["kv_order"]?.arrayValue?.compactMap(\.stringValue))
        let tensors = try XCTUnwrap(expected["tensors"]?.arrayValue)
        XCTAssertEqual(file.tensors.count, tensors.count)
        for (info, want) in zip(file.tensors, tensors) {
            XCTAssertEqual(info.name, want["name"]?.stringValue)
            XCTAssertEqual(Int(info.type.rawValue), want["type_id"]?.intValue, info.name)
            XCTAssertEqual(info.dimensions, want["ne"]?.arrayValue?.compactMap(\.intValue), info.name)
            XCTAssertEqual(info.offset, want["offset"]?.intValue, info.name)
            XCTAssertEqual(info.byteCount, want["n_bytes"]?.intValue, info.name)
        }
    }

    func testEveryMetadataValueType() throws {
        let metadata = try XCTUnwrap(expected["metadata"])
        for key in file.metadataKeys {
            let value = try XCTUnwrap(file[key])
            let want = try XCTUnwrap(metadata[key], key)
            XCTAssertEqual(value.type.name, want["type"]?.stringValue, key)
            XCTAssertTrue(Self.matches(value, want["value"], elementType: want["element_type"]?.stringValue, valueString: want["value_string"]?.stringValue),
                          "\(key): \(value) vs \(want)")
        }
        // Spot checks that do not go through the generic comparison.
        XCTAssertEqual(file["test.string_utf8"]?.stringValue, "héllo wörld — 日本語 🦙")
        XCTAssertEqual(file["test.uint64"], .uint64(.max))
        XCTAssertEqual(file["test.float32"], .float32(3.1415927))
        XCTAssertEqual(file["test.array_nested_int32"], .array(.array, [.array(.int32, [.int32(1), .int32(2)]),
                                                                        .array(.int32, [.int32(3), .int32(4), .int32(5)]),
                                                                        .array(.int32, [.int32(-6)])]))
    }

    /// Compares a GGUF value with the fixture's JSON rendering of it.
    static func matches(_ value: GGUFValue, _ json: JSONValue?, elementType: String?, valueString: String?) -> Bool {
        guard let json else { return false }
        switch value {
        case .string(let s): return json.stringValue == s
        case .bool(let b): return json.boolValue == b
        case .float32(let f): return json.doubleValue.map { Float($0) == f && Double(f) == $0 } ?? false
        case .float64(let d): return json.doubleValue == d
        case .uint64(let v): return (valueString ?? json.compactText) == String(v)
        case .int64(let v): return (valueString ?? json.compactText) == String(v)
        case .array(let type, let items):
            guard type.name == elementType, let array = json.arrayValue, array.count == items.count else { return false }
            return zip(items, array).allSatisfy { item, j in
                if case .array = item { return matches(item, j["value"], elementType: j["element_type"]?.stringValue, valueString: nil) }
                return matches(item, j, elementType: nil, valueString: nil)
            }
        default: return value.intValue == json.intValue
        }
    }

    func testDequantizationIsBitExactWithGGUFPy() throws {
        let reference = try SafeTensorsFile(path: Fixtures.path("gguf_types_expected.safetensors"))
        let tensors = try XCTUnwrap(expected["tensors"]?.arrayValue)
        for (info, want) in zip(file.tensors, tensors) {
            let ours = try file.float32(info)
            let theirs = try reference.float32(info.name)
            XCTAssertEqual(reference.info(info.name)?.shape, info.shape, info.name)
            let bad = bitMismatches(ours, theirs)
            XCTAssertEqual(bad.count, 0, "\(info.name) (\(info.type.name)): \(bad.count) elements differ, first at \(bad.prefix(5).map { "[\($0)] \(ours[$0]) vs \(theirs[$0])" })")
            XCTAssertEqual(sha256(ours), want["sha256_f32"]?.stringValue, info.name)
        }
    }

    func testTheBitExactCheckerCatchesAOneBitChange() throws {
        // Test the checker: flip the lowest mantissa bit of one expected value and it must report it.
        let reference = try SafeTensorsFile(path: Fixtures.path("gguf_types_expected.safetensors"))
        for name in ["q4_k", "q6_k", "q5_1"] {
            let info = try XCTUnwrap(file.tensor(name))
            let ours = try file.float32(info)
            var mutated = try reference.float32(name)
            let i = mutated.firstIndex { $0 != 0 } ?? 0
            mutated[i] = Float(bitPattern: mutated[i].bitPattern ^ 1)
            XCTAssertEqual(bitMismatches(ours, mutated), [i], name)
            XCTAssertNotEqual(sha256(mutated), sha256(ours))
        }
    }
}

/// Indices where two arrays differ in bits (NaNs of any payload count as equal), or every index
/// if the counts differ.
func bitMismatches(_ a: [Float], _ b: [Float]) -> [Int] {
    guard a.count == b.count else { return Array(0..<max(a.count, b.count)) }
    return a.indices.filter { a[$0].bitPattern != b[$0].bitPattern && !(a[$0].isNaN && b[$0].isNaN) }
}
