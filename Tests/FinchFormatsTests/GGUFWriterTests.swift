import FinchCore
import FinchFormats
import Foundation
import XCTest

/// Finch's GGUF writer against the `gguf` package's `GGUFWriter`: the same metadata and tensors
/// (spelled out in reference/make_gguf_export_fixtures.py and here) give the same bytes.
final class GGUFWriterTests: XCTestCase {
    static let fixture = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("Fixtures/gguf_writer_reference.gguf").path

    func temporaryPath(_ name: String) throws -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("finch-gguf-writer-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(atPath: dir) }
        return dir + "/" + name
    }

    static let metadata: [(String, GGUFValue)] = [
        ("general.architecture", .string("llama")),
        ("test.uint8", .uint8(200)), ("test.int8", .int8(-100)), ("test.uint16", .uint16(60000)), ("test.int16", .int16(-30000)),
        ("test.uint32", .uint32(4_000_000_000)), ("test.int32", .int32(-2_000_000_000)), ("test.float32", .float32(0.1)),
        ("test.bool", .bool(true)), ("test.string", .string("héllo, wörld ✓")), ("test.uint64", .uint64(1 << 63 + 5)),
        ("test.int64", .int64(-(1 << 62))), ("test.float64", .float64(1.0 / 3.0)),
        ("test.strings", .array(.string, [.string("a"), .string(""), .string("ĠĠ"), .string("<|im_end|>")])),
        ("test.int32s", .array(.int32, [.int32(1), .int32(-2), .int32(3)])),
        ("test.float32s", .array(.float32, [.float32(0.5), .float32(-1.25)])),
    ]

    static var tensors: [GGUFWriter.Tensor] {
        let a = (0..<120).map { Float($0) * 0.25 - 3 }
        return [
            GGUFWriter.Tensor(name: "blk.0.attn_norm.weight", dimensions: [40], type: .f32) { out in
                a[0..<40].withUnsafeBufferPointer { GGMLType.f32.quantize($0.baseAddress!, count: 40, into: out.baseAddress!) }
            },
            GGUFWriter.Tensor(name: "token_embd.weight", dimensions: [40, 3], type: .f16) { out in
                a.withUnsafeBufferPointer { GGMLType.f16.quantize($0.baseAddress!, count: 120, into: out.baseAddress!) }
            },
            GGUFWriter.Tensor(name: "output.weight", dimensions: [64, 2], type: .q8_0) { out in
                for i in 0..<out.count { out[i] = UInt8(i % 251) }
            },
        ]
    }

    func testBytesEqualTheGGUFPackagesWriter() throws {
        let path = try temporaryPath("ours.gguf")
        try GGUFWriter.write(metadata: Self.metadata, tensors: Self.tensors, to: path)
        let ours = try Data(contentsOf: URL(fileURLWithPath: path)), theirs = try Data(contentsOf: URL(fileURLWithPath: Self.fixture))
        XCTAssertEqual(ours.count, theirs.count)
        let first = zip(ours, theirs).enumerated().first { $0.element.0 != $0.element.1 }?.offset
        XCTAssertNil(first, "first differing byte at \(first ?? -1)")
        // And Finch's reader reads back what was written.
        let file = try GGUFFile(path: path)
        XCTAssertEqual(file.metadataKeys, Self.metadata.map(\.0))
        for (key, value) in Self.metadata { XCTAssertEqual(file[key], value, key) }
        XCTAssertEqual(file.tensors.map(\.name), ["blk.0.attn_norm.weight", "token_embd.weight", "output.weight"])
        XCTAssertEqual(try file.float32(try XCTUnwrap(file.tensor("token_embd.weight"))), (0..<120).map { Float($0) * 0.25 - 3 })
        let permissions = try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int
        XCTAssertNotEqual(permissions.map { $0 & 0o044 }, 0, "the file is readable by others as a plain create makes it (umask permitting)")
    }

    func testInvalidInputIsRefusedAndLeavesNoFile() throws {
        let path = try temporaryPath("bad.gguf")
        let dir = (path as NSString).deletingLastPathComponent
        func refuses(_ metadata: [(String, GGUFValue)], _ tensors: [GGUFWriter.Tensor], _ fragment: String, line: UInt = #line) {
            XCTAssertThrowsError(try GGUFWriter.write(metadata: metadata, tensors: tensors, to: path), line: line) { error in
                XCTAssertTrue("\(error)".contains(fragment), "\(error)", line: line)
            }
            XCTAssertEqual(try? FileManager.default.contentsOfDirectory(atPath: dir), [], "nothing left behind", line: line)
        }
        let ok = Self.tensors
        refuses(Self.metadata + [("test.uint8", .uint8(1))], ok, "'test.uint8' appears twice")
        refuses([("x", .array(.uint32, [.string("no")]))], ok, "element type")
        refuses(Self.metadata, ok + [ok[0]], "'blk.0.attn_norm.weight' appears twice")
        refuses(Self.metadata, [GGUFWriter.Tensor(name: "w", dimensions: [40, 2], type: .q8_0) { _ in }], "not a multiple of Q8_0's block of 32")
        refuses(Self.metadata, [GGUFWriter.Tensor(name: String(repeating: "n", count: 64), dimensions: [4], type: .f32) { _ in }], "longer than 63 bytes")
        refuses([("general.alignment", .uint32(12))], ok, "general.alignment")
        struct Failure: Error, CustomStringConvertible { var description: String { "fill failed" } }
        refuses(Self.metadata, [GGUFWriter.Tensor(name: "w", dimensions: [4], type: .f32) { _ in throw Failure() }], "fill failed")
    }
}
