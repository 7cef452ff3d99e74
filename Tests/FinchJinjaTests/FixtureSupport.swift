// Shared helpers for the FinchJinja fixture tests: locating and loading the golden files written by
// reference/make_template_fixtures.py, converting their JSON into template variables, and the
// byte-exact comparison (with its own mutation test in CheckerTests).

import FinchJinja
import Foundation
import XCTest

enum Fixtures {
    /// `Tests/FinchJinjaTests/Fixtures`, found from this source file so tests work from any cwd.
    static let directory: URL = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("Fixtures")

    static func text(_ relativePath: String) throws -> String {
        let url = directory.appendingPathComponent(relativePath)
        guard let data = FileManager.default.contents(atPath: url.path) else {
            throw FixtureError("missing fixture \(url.path); run reference/make_template_fixtures.py")
        }
        guard let text = String(data: data, encoding: .utf8) else { throw FixtureError("\(relativePath) is not UTF-8") }
        return text
    }

    static func json(_ relativePath: String) throws -> JinjaValue {
        let value = try JinjaValue(json: try text(relativePath))
        guard case .int(1)? = value["fixture_version"] else {
            throw FixtureError("\(relativePath): unexpected fixture_version; regenerate with reference/make_template_fixtures.py")
        }
        return value
    }

    /// A JSON object as render variables.
    static func variables(_ object: JinjaValue?) throws -> [String: JinjaValue] {
        guard let object else { return [:] }
        guard case .object(let pairs) = object else { throw FixtureError("variables must be an object") }
        var out: [String: JinjaValue] = [:]
        for (key, value) in pairs { out[key] = value }
        return out
    }

    static func options(_ object: JinjaValue?) -> JinjaTemplate.Options {
        guard let object else { return .huggingFace }
        return JinjaTemplate.Options(
            trimBlocks: object["trim_blocks"] == .bool(true),
            lstripBlocks: object["lstrip_blocks"] == .bool(true),
            keepTrailingNewline: object["keep_trailing_newline"] == .bool(true))
    }
}

struct FixtureError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

enum OutputCheck {
    /// nil when `actual` equals `expected` byte for byte; otherwise a report naming the first
    /// differing UTF-8 offset with escaped context from both strings.
    static func mismatch(expected: String, actual: String) -> String? {
        let e = Array(expected.utf8)
        let a = Array(actual.utf8)
        guard e != a else { return nil }
        var offset = 0
        while offset < min(e.count, a.count), e[offset] == a[offset] { offset += 1 }
        func context(_ bytes: [UInt8]) -> String {
            let start = max(0, offset - 40)
            let end = min(bytes.count, offset + 40)
            let text = String(decoding: bytes[start..<end], as: UTF8.self)
            return text.unicodeScalars.map { $0.escaped(asASCII: true) }.joined()
        }
        return "outputs differ at byte \(offset) (expected \(e.count) bytes, got \(a.count))\n"
            + "  expected: …\(context(e))…\n"
            + "  actual:   …\(context(a))…"
    }

    /// nil when the thrown error matches the fixture's expectation: the message contains the
    /// expected fragment and the error carries a line and column.
    static func errorMismatch(_ error: Error, expectedFragment: String) -> String? {
        guard let error = error as? JinjaError else { return "expected a JinjaError, got \(error)" }
        guard error.message.contains(expectedFragment) else {
            return "error message \(error.message.debugDescription) does not contain \(expectedFragment.debugDescription)"
        }
        guard error.line > 0, error.column > 0 else { return "error has no location: \(error)" }
        return nil
    }
}
