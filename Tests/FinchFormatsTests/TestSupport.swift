import FinchCore
import FinchFormats
import Foundation
import XCTest

/// Committed golden fixtures written by `reference/make_format_fixtures.py`.
enum Fixtures {
    static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures").path

    static func path(_ name: String) -> String { directory + "/" + name }

    static func json(_ name: String) throws -> JSONValue {
        try JSONValue.parse(contentsOf: path(name))
    }
}

/// A scratch directory removed after the test.
final class TemporaryDirectory {
    let path: String
    init() throws {
        path = NSTemporaryDirectory() + "finch-test-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }
    deinit { try? FileManager.default.removeItem(atPath: path) }

    func write(_ name: String, _ bytes: [UInt8]) throws -> String {
        let p = path + "/" + name
        try Data(bytes).write(to: URL(fileURLWithPath: p))
        return p
    }

    func write(_ name: String, _ text: String) throws -> String { try write(name, Array(text.utf8)) }
}

/// Asserts that `body` throws a FormatError whose message contains every fragment (and names `path`).
func assertFormatError<T>(_ body: @autoclosure () throws -> T, path: String? = nil, contains fragments: String...,
                          file: StaticString = #filePath, line: UInt = #line) {
    do {
        _ = try body()
        XCTFail("expected an error containing \(fragments)", file: file, line: line)
    } catch let error as FormatError {
        if let path { XCTAssertEqual(error.path, path, file: file, line: line) }
        for fragment in fragments {
            XCTAssertTrue(error.description.contains(fragment), "«\(error.description)» lacks «\(fragment)»", file: file, line: line)
        }
        XCTAssertFalse(error.description.contains("\n"), "error must be one line: \(error.description)", file: file, line: line)
    } catch {
        XCTFail("expected FormatError, got \(error)", file: file, line: line)
    }
}

/// SHA-256 of Float32 values as little-endian bytes: the checksum the Python fixtures record.
func sha256(_ values: [Float]) -> String {
    values.withUnsafeBytes { SHA256.hex($0) }
}

/// The cached default model, which `scripts/test` fetches before running tests. Tests that need it
/// fail (never skip) when it is missing.
func defaultModelPath(file: StaticString = #filePath, line: UInt = #line) throws -> String {
    let cache = ModelCache.fromEnvironment()
    let model = KnownModel.defaultModel
    guard cache.contains(model) else {
        XCTFail("default model missing at \(cache.path(for: model)); run `swift run -c release finch pull` (scripts/test does)", file: file, line: line)
        throw FormatError(cache.path(for: model), "missing")
    }
    return cache.path(for: model)
}

/// Builds GGUF bytes field by field, so tests can write both valid files and every kind of corrupt one.
struct GGUFBytes {
    var bytes: [UInt8] = []

    mutating func u8(_ v: UInt8) { bytes.append(v) }
    mutating func u32(_ v: UInt32) { for i in 0..<4 { bytes.append(UInt8(truncatingIfNeeded: v >> (8 * UInt32(i)))) } }
    mutating func u64(_ v: UInt64) { for i in 0..<8 { bytes.append(UInt8(truncatingIfNeeded: v >> (8 * UInt64(i)))) } }
    mutating func string(_ s: String) { u64(UInt64(s.utf8.count)); bytes += Array(s.utf8) }
    mutating func header(version: UInt32 = 3, tensors: UInt64, kvs: UInt64) {
        bytes += Array("GGUF".utf8)
        u32(version); u64(tensors); u64(kvs)
    }
    mutating func kvString(_ key: String, _ value: String) { string(key); u32(8); string(value) }
    mutating func kvU32(_ key: String, _ value: UInt32) { string(key); u32(4); u32(value) }
    mutating func tensorInfo(_ name: String, ne: [UInt64], type: UInt32, offset: UInt64) {
        string(name); u32(UInt32(ne.count)); for d in ne { u64(d) }; u32(type); u64(offset)
    }
    mutating func align(_ a: Int = 32) { while bytes.count % a != 0 { bytes.append(0) } }
    mutating func zeros(_ n: Int) { bytes += [UInt8](repeating: 0, count: n) }
}
