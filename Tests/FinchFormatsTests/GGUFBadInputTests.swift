import FinchFormats
import XCTest

/// Every malformed GGUF file gives a one-line FormatError naming the file and the problem, without
/// reading out of bounds or allocating what the file claims.
final class GGUFBadInputTests: XCTestCase {
    func open(_ b: GGUFBytes, _ dir: TemporaryDirectory) throws -> String { try dir.write("bad.gguf", b.bytes) }

    /// A valid one-tensor file (F32, 8 elements) to corrupt.
    func valid(offset: UInt64 = 0, ne: [UInt64] = [8], type: UInt32 = 0, dataBytes: Int = 32) -> GGUFBytes {
        var b = GGUFBytes()
        b.header(tensors: 1, kvs: 1)
        b.kvString("general.architecture", "llama")
        b.tensorInfo("w", ne: ne, type: type, offset: offset)
        b.align()
        b.zeros(dataBytes)
        return b
    }

    func testValidBaseline() throws {
        let dir = try TemporaryDirectory()
        let f = try GGUFFile(path: open(valid(), dir))
        XCTAssertEqual(f.tensors.map(\.name), ["w"])
        XCTAssertEqual(try f.float32(f.tensors[0]), [Float](repeating: 0, count: 8))
    }

    func testEmptyFileAndWrongMagic() throws {
        let dir = try TemporaryDirectory()
        let empty = try dir.write("e.gguf", [])
        assertFormatError(try GGUFFile(path: empty), path: empty, contains: "empty file")
        let text = try dir.write("t.gguf", "{\"not\": \"gguf\"}")
        assertFormatError(try GGUFFile(path: text), path: text, contains: "wrong magic")
        let tiny = try dir.write("s.gguf", [0x47, 0x47])
        assertFormatError(try GGUFFile(path: tiny), contains: "wrong magic")
    }

    func testVersions() throws {
        let dir = try TemporaryDirectory()
        var b = valid()
        b.bytes[4] = 1
        assertFormatError(try GGUFFile(path: open(b, dir)), contains: "version 1 is obsolete")
        b.bytes[4] = 9
        assertFormatError(try GGUFFile(path: open(b, dir)), contains: "unsupported GGUF version 9")
        b.bytes[4] = 0; b.bytes[7] = 3
        assertFormatError(try GGUFFile(path: open(b, dir)), contains: "big-endian")
        b.bytes[4] = 2; b.bytes[7] = 0
        XCTAssertEqual(try GGUFFile(path: open(b, dir)).version, 2)
    }

    func testTruncatedEverywhere() throws {
        // Cutting a valid file at any byte inside its header must give an error, never a crash.
        let dir = try TemporaryDirectory()
        let full = valid().bytes
        let headerEnd = full.count - 32
        for cut in 4..<headerEnd {
            let p = try dir.write("cut.gguf", Array(full[0..<cut]))
            assertFormatError(try GGUFFile(path: p), path: p)
        }
        let p = try dir.write("cut.gguf", Array(full[0..<(full.count - 1)]))
        assertFormatError(try GGUFFile(path: p), contains: "tensor 'w'", "past the end")
    }

    func testAbsurdCountsAndLengthsAllocateNothing() throws {
        let dir = try TemporaryDirectory()
        var b = GGUFBytes()
        b.header(tensors: UInt64.max, kvs: 0)
        assertFormatError(try GGUFFile(path: open(b, dir)), contains: "tensor count")
        b = GGUFBytes()
        b.header(tensors: 0, kvs: 1 << 60)
        assertFormatError(try GGUFFile(path: open(b, dir)), contains: "metadata count")
        b = GGUFBytes()
        b.header(tensors: 0, kvs: 1)
        b.u64(1 << 62); b.zeros(20) // key length
        assertFormatError(try GGUFFile(path: open(b, dir)), contains: "string length")
        b = GGUFBytes()
        b.header(tensors: 0, kvs: 1)
        b.string("tokens"); b.u32(9); b.u32(8); b.u64(1 << 40) // array of 2^40 strings
        assertFormatError(try GGUFFile(path: open(b, dir)), contains: "metadata 'tokens'", "array count")
        b = GGUFBytes()
        b.header(tensors: 0, kvs: 1)
        b.string("k"); b.u32(99); b.u32(0)
        assertFormatError(try GGUFFile(path: open(b, dir)), contains: "metadata 'k'", "unknown value type 99")
        b = GGUFBytes()
        b.header(tensors: 0, kvs: 1)
        b.string("flag"); b.u32(7); b.u8(2); b.zeros(16)
        assertFormatError(try GGUFFile(path: open(b, dir)), contains: "BOOL value 2")
    }

    func testDeeplyNestedArraysRejected() throws {
        let dir = try TemporaryDirectory()
        var b = GGUFBytes()
        b.header(tensors: 0, kvs: 1)
        b.string("deep")
        b.u32(9)
        for _ in 0..<20 { b.u32(9); b.u64(1) }
        b.u32(4); b.u64(1); b.u32(0)
        assertFormatError(try GGUFFile(path: open(b, dir)), contains: "nested deeper")
    }

    func testUnknownGGMLTypeAndBadDimensions() throws {
        let dir = try TemporaryDirectory()
        assertFormatError(try GGUFFile(path: open(valid(type: 77), dir)), contains: "tensor 'w'", "unknown ggml type 77")
        assertFormatError(try GGUFFile(path: open(valid(ne: [1 << 32, 1 << 32, 1 << 8]), dir)), contains: "tensor 'w'", "overflow")
        assertFormatError(try GGUFFile(path: open(valid(ne: [UInt64.max]), dir)), contains: "tensor 'w'", "too large")
        assertFormatError(try GGUFFile(path: open(valid(ne: [1, 1, 1, 1, 8]), dir)), contains: "tensor 'w'", "5 dimensions")
        assertFormatError(try GGUFFile(path: open(valid(ne: [48], type: 2), dir)), contains: "not a multiple", "Q4_0 block size 32")
        // A type Finch knows but cannot dequantize fails when dequantized, naming the tensor and type.
        let iq = try GGUFFile(path: open(valid(ne: [256], type: 16, dataBytes: 66 + 30), dir))
        assertFormatError(try iq.float32(iq.tensors[0]), contains: "tensor 'w'", "IQ2_XXS")
    }

    func testTensorOffsetsOverlappingOutOfOrderMisalignedOrPastTheEnd() throws {
        let dir = try TemporaryDirectory()
        func two(_ o1: UInt64, _ o2: UInt64, data: Int = 96) -> GGUFBytes {
            var b = GGUFBytes()
            b.header(tensors: 2, kvs: 0)
            b.tensorInfo("a", ne: [16], type: 0, offset: o1) // 64 bytes
            b.tensorInfo("b", ne: [8], type: 0, offset: o2)  // 32 bytes
            b.align()
            b.zeros(data)
            return b
        }
        XCTAssertNoThrow(try GGUFFile(path: open(two(0, 64), dir)))
        assertFormatError(try GGUFFile(path: open(two(0, 32), dir)), contains: "tensor 'b'", "overlaps")
        assertFormatError(try GGUFFile(path: open(two(32, 0, data: 96), dir)), contains: "tensor 'b'", "in order")
        assertFormatError(try GGUFFile(path: open(two(0, 72), dir)), contains: "tensor 'b'", "alignment")
        assertFormatError(try GGUFFile(path: open(two(0, 96), dir)), contains: "tensor 'b'", "past the end")
        assertFormatError(try GGUFFile(path: open(valid(offset: UInt64.max - 15), dir)), contains: "tensor 'w'")
    }

    func testDuplicateKeysAndNamesAndBadAlignment() throws {
        let dir = try TemporaryDirectory()
        var b = GGUFBytes()
        b.header(tensors: 0, kvs: 2)
        b.kvString("k", "a"); b.kvString("k", "b")
        assertFormatError(try GGUFFile(path: open(b, dir)), contains: "'k' appears twice")
        b = GGUFBytes()
        b.header(tensors: 0, kvs: 1)
        b.kvU32("general.alignment", 24)
        assertFormatError(try GGUFFile(path: open(b, dir)), contains: "general.alignment", "power of two")
        b = GGUFBytes()
        b.header(tensors: 2, kvs: 0)
        b.tensorInfo("w", ne: [8], type: 0, offset: 0)
        b.tensorInfo("w", ne: [8], type: 0, offset: 32)
        b.align(); b.zeros(64)
        assertFormatError(try GGUFFile(path: open(b, dir)), contains: "'w' appears twice")
    }

    func testInvalidUTF8String() throws {
        let dir = try TemporaryDirectory()
        var b = GGUFBytes()
        b.header(tensors: 0, kvs: 1)
        b.string("name"); b.u32(8); b.u64(2); b.u8(0xC3); b.u8(0x28)
        assertFormatError(try GGUFFile(path: open(b, dir)), contains: "not valid UTF-8")
    }
}
