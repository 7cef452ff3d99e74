// Tests the checker itself: a golden comparison that cannot fail proves nothing, so these mutate
// real fixture expectations and require OutputCheck to reject them.

import FinchJinja
import XCTest

final class CheckerTests: XCTestCase {
    private func firstCase(_ family: String) throws -> (JinjaTemplate, [String: JinjaValue], String) {
        let fixture = try Fixtures.json("template_cases.json")
        guard case .array(let cases)? = fixture["cases"],
            let testCase = cases.first(where: { $0["family"]?.stringValue == family && $0["expected"] != nil }),
            let expected = testCase["expected"]?.stringValue
        else { throw FixtureError("no \(family) case with an expected output") }
        let template = try JinjaTemplate(try Fixtures.text("templates/\(family).jinja"))
        return (template, try Fixtures.variables(testCase["variables"]), expected)
    }

    func testMutatedExpectedOutputIsRejected() throws {
        let (template, variables, expected) = try firstCase("qwen2_5")
        let output = try template.render(variables)
        XCTAssertNil(OutputCheck.mismatch(expected: expected, actual: output))

        var bytes = Array(expected.utf8)
        let middle = bytes.count / 2
        bytes[middle] = bytes[middle] == UInt8(ascii: "x") ? UInt8(ascii: "y") : UInt8(ascii: "x")
        let mutated = String(decoding: bytes, as: UTF8.self)
        let report = try XCTUnwrap(OutputCheck.mismatch(expected: mutated, actual: output))
        XCTAssertTrue(report.contains("byte \(middle)"), report)

        // A missing trailing newline and an extra space are differences too.
        XCTAssertNotNil(OutputCheck.mismatch(expected: expected + "\n", actual: output))
        XCTAssertNotNil(OutputCheck.mismatch(expected: " " + expected, actual: output))
        // Canonically equivalent but different code points must not compare equal.
        XCTAssertNotNil(OutputCheck.mismatch(expected: "caf\u{E9}", actual: "cafe\u{301}"))
    }

    func testErrorCheckRequiresFragmentAndLocation() {
        let located = JinjaError(.raised, "Conversation roles must alternate", line: 3, column: 7)
        XCTAssertNil(OutputCheck.errorMismatch(located, expectedFragment: "roles must alternate"))
        XCTAssertNotNil(OutputCheck.errorMismatch(located, expectedFragment: "roles must not alternate"))
        let unlocated = JinjaError(.raised, "Conversation roles must alternate")
        XCTAssertNotNil(OutputCheck.errorMismatch(unlocated, expectedFragment: "roles must alternate"))
        XCTAssertNotNil(OutputCheck.errorMismatch(FixtureError("other"), expectedFragment: "other"))
    }
}
