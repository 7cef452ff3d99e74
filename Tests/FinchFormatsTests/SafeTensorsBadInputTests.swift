import FinchFormats
import XCTest

/// Every malformed safetensors file gives a one-line FormatError naming the file and the problem.
final class SafeTensorsBadInputTests: XCTestCase {
    /// A file with the given header text (padded to 8) and `data` bytes after it.
    func file(_ dir: TemporaryDirectory, _ header: String, data: Int = 0, lengthOverride: UInt64? = nil) throws -> String {
        var json = Array(header.utf8)
        while json.count % 8 != 0 { json.append(0x20) }
        var bytes: [UInt8] = []
        let n = lengthOverride ?? UInt64(json.count)
        for i in 0..<8 { bytes.append(UInt8(truncatingIfNeeded: n >> (8 * UInt64(i)))) }
        bytes += json + [UInt8](repeating: 7, count: data)
        return try dir.write("bad.safetensors", bytes)
    }

    func testEmptyAndTooShortFiles() throws {
        let dir = try TemporaryDirectory()
        let empty = try dir.write("empty.safetensors", [])
        assertFormatError(try SafeTensorsFile(path: empty), path: empty, contains: "empty file")
        let short = try dir.write("short.safetensors", [1, 2, 3])
        assertFormatError(try SafeTensorsFile(path: short), path: short, contains: "too short")
        assertFormatError(try SafeTensorsFile(path: dir.path + "/missing.safetensors"), contains: "cannot open")
    }

    func testHeaderLengthBeyondEndOfFileOrHuge() throws {
        let dir = try TemporaryDirectory()
        let p = try file(dir, "{}", lengthOverride: 4096)
        assertFormatError(try SafeTensorsFile(path: p), path: p, contains: "runs past the end of the file")
        let q = try file(dir, "{}", lengthOverride: UInt64.max)
        assertFormatError(try SafeTensorsFile(path: q), path: q, contains: "exceeds")
    }

    func testHeaderThatIsNotAJSONObject() throws {
        let dir = try TemporaryDirectory()
        for header in ["[1,2,3]", "\"text\"", "{\"a\": ", "{not json}"] {
            let p = try file(dir, header)
            assertFormatError(try SafeTensorsFile(path: p), path: p)
        }
        let p = try file(dir, "[1,2,3]")
        assertFormatError(try SafeTensorsFile(path: p), contains: "does not start with '{'")
        let q = try file(dir, "{\"a\": ")
        assertFormatError(try SafeTensorsFile(path: q), contains: "invalid JSON")
    }

    func testUnknownDtypeAndBadEntries() throws {
        let dir = try TemporaryDirectory()
        var p = try file(dir, #"{"w":{"dtype":"Q4","shape":[2],"data_offsets":[0,2]}}"#, data: 2)
        assertFormatError(try SafeTensorsFile(path: p), path: p, contains: "tensor 'w'", "unknown dtype 'Q4'")
        p = try file(dir, #"{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}}"#, data: 4)
        assertFormatError(try SafeTensorsFile(path: p), contains: "tensor 'w'", "needs 8")
        p = try file(dir, #"{"w":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}"#, data: 4)
        assertFormatError(try SafeTensorsFile(path: p), contains: "non-negative integer")
        p = try file(dir, #"{"w":{"dtype":"F32","data_offsets":[0,4]}}"#, data: 4)
        assertFormatError(try SafeTensorsFile(path: p), contains: "missing array field 'shape'")
        p = try file(dir, #"{"__metadata__":{"format":1}}"#)
        assertFormatError(try SafeTensorsFile(path: p), contains: "must be strings")
        p = try file(dir, #"{"w":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"w":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}}"#, data: 2)
        assertFormatError(try SafeTensorsFile(path: p), contains: "duplicate key \"w\"")
    }

    func testDimensionsWhoseProductOverflows() throws {
        let dir = try TemporaryDirectory()
        let p = try file(dir, #"{"w":{"dtype":"F32","shape":[4294967296,4294967296,16],"data_offsets":[0,4]}}"#, data: 4)
        assertFormatError(try SafeTensorsFile(path: p), path: p, contains: "tensor 'w'", "overflows")
        let q = try file(dir, #"{"w":{"dtype":"F64","shape":[2305843009213693952],"data_offsets":[0,4]}}"#, data: 4)
        assertFormatError(try SafeTensorsFile(path: q), contains: "overflows")
    }

    func testOffsetsOverlappingWithGapsOrPastTheEnd() throws {
        let dir = try TemporaryDirectory()
        var p = try file(dir, #"{"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},"b":{"dtype":"U8","shape":[4],"data_offsets":[2,6]}}"#, data: 6)
        assertFormatError(try SafeTensorsFile(path: p), path: p, contains: "tensor 'b'", "overlaps")
        p = try file(dir, #"{"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},"b":{"dtype":"U8","shape":[4],"data_offsets":[6,10]}}"#, data: 10)
        assertFormatError(try SafeTensorsFile(path: p), contains: "tensor 'b'", "gap")
        p = try file(dir, #"{"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},"b":{"dtype":"U8","shape":[4],"data_offsets":[4,8]}}"#, data: 6)
        assertFormatError(try SafeTensorsFile(path: p), contains: "tensor 'b'", "past the end")
        p = try file(dir, #"{"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]}}"#, data: 9)
        assertFormatError(try SafeTensorsFile(path: p), contains: "trailing bytes")
        p = try file(dir, #"{"a":{"dtype":"U8","shape":[4],"data_offsets":[4,0]}}"#, data: 4)
        assertFormatError(try SafeTensorsFile(path: p), contains: "begin ≤ end")
    }

    func testOutOfOrderButContiguousEntriesAreValid() throws {
        // The reference reader sorts entries by offset: header order does not matter.
        let dir = try TemporaryDirectory()
        let p = try file(dir, #"{"b":{"dtype":"U8","shape":[2],"data_offsets":[2,4]},"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]}}"#, data: 4)
        let f = try SafeTensorsFile(path: p)
        XCTAssertEqual(f.tensors.map(\.name), ["a", "b"])
    }

    func testWriterRejectsInconsistentEntriesAndLeavesNoFile() throws {
        let dir = try TemporaryDirectory()
        let out = dir.path + "/out.safetensors"
        XCTAssertThrowsError(try SafeTensorsWriter.write([.init(name: "w", dtype: .f32, shape: [3], bytes: [0, 0, 0, 0])], to: out))
        XCTAssertThrowsError(try SafeTensorsWriter.write([.init(name: "w", shape: [1], float32: [1]), .init(name: "w", shape: [1], float32: [2])], to: out))
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir.path), [])
    }
}
