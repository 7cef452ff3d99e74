import FinchCore
import FinchFormats
import XCTest

/// `python_written.safetensors` was written by the Python `safetensors` package (torch.save_file)
/// with every common dtype, a scalar, an empty tensor and edge-case floats
/// (reference/make_format_fixtures.py). Finch must read every value and write the same bytes.
final class SafeTensorsFixtureTests: XCTestCase {
    let path = Fixtures.path("python_written.safetensors")

    func testReadsEveryTensorAsPythonWroteIt() throws {
        let file = try SafeTensorsFile(path: path)
        let expected = try Fixtures.json("python_written.json")
        XCTAssertEqual(file.dataStart, expected["data_start"]?.intValue)
        XCTAssertEqual(file.metadata, ["format": "pt"])
        XCTAssertEqual(file.tensors.map(\.name), expected["data_order"]?.arrayValue?.compactMap(\.stringValue))
        let tensors = try XCTUnwrap(expected["tensors"]?.objectValue)
        XCTAssertEqual(tensors.count, file.tensors.count)
        for (name, want) in tensors {
            let info = try XCTUnwrap(file.info(name), name)
            XCTAssertEqual(info.dtype.rawValue, want["dtype"]?.stringValue, name)
            XCTAssertEqual(info.shape, want["shape"]?.arrayValue?.compactMap(\.intValue), name)
            let offsets = want["data_offsets"]?.arrayValue?.compactMap(\.intValue) ?? []
            XCTAssertEqual([info.dataRange.lowerBound, info.dataRange.upperBound], offsets, name)
            let raw = try file.data(name)
            let values = want["values"]?.arrayValue ?? []
            XCTAssertEqual(values.count, info.elementCount, name)
            if let bits = want["bits_hex"]?.arrayValue?.compactMap(\.stringValue) {
                // Floats: compare the stored bit patterns, and the Float32 conversion bit-exactly.
                let width = info.dtype.bitsPerElement / 8
                for (i, hex) in bits.enumerated() {
                    var stored: UInt64 = 0
                    for b in 0..<width { stored |= UInt64(raw[i * width + b]) << (8 * UInt64(b)) }
                    XCTAssertEqual(String(stored, radix: 16), String(UInt64(hex, radix: 16) ?? 0, radix: 16), "\(name)[\(i)]")
                }
                let floats = try file.float32(name)
                for (i, v) in values.enumerated() {
                    switch v {
                    case .string("nan"): XCTAssertTrue(floats[i].isNaN, "\(name)[\(i)]")
                    case .string("inf"): XCTAssertEqual(floats[i], .infinity, "\(name)[\(i)]")
                    case .string("-inf"): XCTAssertEqual(floats[i], -.infinity, "\(name)[\(i)]")
                    default:
                        let d = try XCTUnwrap(v.doubleValue)
                        XCTAssertEqual(floats[i].bitPattern, Float(d).bitPattern, "\(name)[\(i)] = \(floats[i]) vs \(d)")
                    }
                }
            } else {
                // Integers and booleans: compare exact decimal text, wide types included.
                let strings = want["values_string"]?.arrayValue?.compactMap(\.stringValue) ?? values.map { $0.boolValue.map { $0 ? "1" : "0" } ?? $0.compactText }
                XCTAssertEqual(Self.integers(raw, info.dtype, info.elementCount), strings, name)
            }
        }
    }

    static func integers(_ raw: UnsafeRawBufferPointer, _ dtype: SafeTensorsDType, _ count: Int) -> [String] {
        (0..<count).map { i in
            switch dtype {
            case .u8, .bool: String(raw.loadUnaligned(fromByteOffset: i, as: UInt8.self))
            case .i8: String(raw.loadUnaligned(fromByteOffset: i, as: Int8.self))
            case .i16: String(Int16(littleEndian: raw.loadUnaligned(fromByteOffset: 2 * i, as: Int16.self)))
            case .u16: String(UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)))
            case .i32: String(Int32(littleEndian: raw.loadUnaligned(fromByteOffset: 4 * i, as: Int32.self)))
            case .u32: String(UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self)))
            case .i64: String(Int64(littleEndian: raw.loadUnaligned(fromByteOffset: 8 * i, as: Int64.self)))
            case .u64: String(UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: 8 * i, as: UInt64.self)))
            default: "?"
            }
        }
    }

    func testWritesTheSameBytesAsPython() throws {
        let file = try SafeTensorsFile(path: path)
        // Hand the tensors to the writer in a scrambled order: the writer must impose the reference order.
        let entries = file.tensors.reversed().map { info in
            SafeTensorsWriter.Entry(name: info.name, dtype: info.dtype, shape: info.shape, bytes: Array(file.data(info)))
        }
        let ours = try SafeTensorsWriter.serialize(entries, metadata: ["format": "pt"])
        let theirs = try MappedFile(path: path).withBytes { Array($0) }
        XCTAssertEqual(ours.count, theirs.count)
        let firstDifference = zip(ours, theirs).enumerated().first { $0.element.0 != $0.element.1 }?.offset
        XCTAssertNil(firstDifference, "first differing byte at \(firstDifference ?? -1)")

        // And the file written to disk reads back to the same tensors.
        let dir = try TemporaryDirectory()
        let out = dir.path + "/out.safetensors"
        try SafeTensorsWriter.write(entries, metadata: ["format": "pt"], to: out)
        let back = try SafeTensorsFile(path: out)
        XCTAssertEqual(back.tensors, file.tensors)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir.path), ["out.safetensors"])
    }

    func testFloat16AndBFloat16ConversionsMatchTorch() throws {
        // float.f16 / float.bf16 were made from float.f32 by torch's .to() (round to nearest even).
        let file = try SafeTensorsFile(path: path)
        let f32 = try file.float32("float.f32")
        let f16 = try file.data("float.f16"), bf16 = try file.data("float.bf16")
        for (i, x) in f32.enumerated() {
            let torchHalf = UInt16(f16[2 * i]) | UInt16(f16[2 * i + 1]) << 8
            let torchBF16 = UInt16(bf16[2 * i]) | UInt16(bf16[2 * i + 1]) << 8
            if x.isNaN {
                // torch keeps the sign and payload of a NaN in a tensor (0xFFFF); Finch writes a quiet NaN.
                XCTAssertTrue(HalfPrecision.float(fromBFloat16: HalfPrecision.bfloat16(from: x)).isNaN)
                continue
            }
            XCTAssertEqual(HalfPrecision.half(from: x), torchHalf, "f16 of \(x)")
            XCTAssertEqual(HalfPrecision.bfloat16(from: x), torchBF16, "bf16 of \(x)")
        }
    }
}
