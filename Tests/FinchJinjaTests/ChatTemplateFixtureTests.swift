// Golden-replay tests: every case in Fixtures/template_cases.json (real chat templates),
// Fixtures/template_units.json (one language feature each) and the seeded fuzz files
// (template_fuzz.json: whitespace control; template_expression_fuzz.json: expressions, scoping
// and loop control) must render byte-identically to what
// Python jinja2 3.1.6 produced inside transformers' chat-template environment, or throw a
// JinjaError whose message contains Python's message (or the fixture's chosen fragment) and which
// carries a line and column.
//
// What these tests assert: output bytes, error messages, error kinds, and for syntax errors the
// line jinja2 reported. What they do not: Python's exception class names beyond the kind mapping,
// and the exact column (jinja2 reports none).

import FinchJinja
import Foundation
import XCTest

final class ChatTemplateFixtureTests: XCTestCase {
    /// jinja2 / transformers exception class → the JinjaError kind we promise.
    static func expectedKind(_ pythonType: String) -> JinjaError.Kind {
        switch pythonType {
        case "TemplateError": return .raised
        case "TemplateSyntaxError", "TemplateAssertionError", "SyntaxError": return .syntax
        default: return .render
        }
    }

    func testChatTemplateCases() throws {
        let fixture = try Fixtures.json("template_cases.json")
        guard case .object(let families)? = fixture["families"], case .array(let cases)? = fixture["cases"] else {
            return XCTFail("template_cases.json has no families/cases")
        }
        var templates: [String: JinjaTemplate] = [:]
        var datePlaceholders: [String: String] = [:]
        for (family, info) in families {
            if let placeholder = info["date_placeholder"]?["placeholder"]?.stringValue {
                datePlaceholders[family] = placeholder
            }
            guard let path = info["template"]?.stringValue else { return XCTFail("\(family): no template path") }
            let source = try Fixtures.text(path)
            do {
                templates[family] = try JinjaTemplate(source)
            } catch {
                XCTFail("\(family): template does not parse: \(error)")
            }
        }
        XCTAssertGreaterThanOrEqual(families.count, 16, "expected at least 16 template families")
        var passed = 0
        for testCase in cases {
            let name = testCase["name"]?.stringValue ?? "?"
            guard let family = testCase["family"]?.stringValue, let template = templates[family] else {
                XCTFail("\(name): unknown family")
                continue
            }
            var expected = testCase["expected"]
            if let placeholder = datePlaceholders[family], let text = expected?.stringValue {
                // The generator replaced today's date (strftime_now("%Y-%m-%d")) with a placeholder;
                // put back today's date, computed here with Foundation, not with the code under test.
                expected = .string(text.replacingOccurrences(of: placeholder, with: Self.today()))
            }
            if check(name: name, template: template, variables: try Fixtures.variables(testCase["variables"]),
                     expected: expected, error: testCase["error"])
            {
                passed += 1
            }
        }
        XCTAssertEqual(passed, cases.count, "\(passed) of \(cases.count) chat-template cases passed")
        print("ChatTemplateFixtureTests: \(passed)/\(cases.count) chat-template cases across \(families.count) families passed")
    }

    static func today() -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = .current
        formatter.dateFormat = "yyyy-MM-dd"
        return formatter.string(from: Date())
    }

    func testLanguageFeatureCases() throws {
        try runUnitFixture("template_units.json", label: "language-feature")
    }

    /// Random nestings of whitespace control under every trim/lstrip/keep_trailing_newline
    /// combination, rendered by jinja2 (seeded, see `fuzz_cases` in the generator).
    func testWhitespaceFuzzCases() throws {
        try runUnitFixture("template_fuzz.json", label: "whitespace-fuzz")
    }

    /// Random expressions over literals, operators, filters, tests and subscripts, and random
    /// nestings of set/for/if/with/macro/namespace statements, including the errors they raise
    /// (seeded, see `expression_fuzz_cases` and `statement_fuzz_cases` in the generator).
    func testExpressionAndStatementFuzzCases() throws {
        try runUnitFixture("template_expression_fuzz.json", label: "expression/statement-fuzz")
    }

    private func runUnitFixture(_ file: String, label: String) throws {
        let fixture = try Fixtures.json(file)
        let shared = try Fixtures.variables(fixture["shared_variables"])
        guard case .array(let cases)? = fixture["cases"] else { return XCTFail("\(file) has no cases") }
        var passed = 0
        for testCase in cases {
            let name = testCase["name"]?.stringValue ?? "?"
            guard let source = testCase["template"]?.stringValue else {
                XCTFail("\(name): no template")
                continue
            }
            var variables = shared
            for (k, v) in try Fixtures.variables(testCase["variables"]) { variables[k] = v }
            let options = Fixtures.options(testCase["options"])
            let template: JinjaTemplate
            do {
                template = try JinjaTemplate(source, options: options)
            } catch {
                // A parse failure is only right when Python failed at compile time too.
                if verifyError(name: name, error, expected: testCase["error"]) { passed += 1 }
                continue
            }
            if check(name: name, template: template, variables: variables, expected: testCase["expected"],
                     error: testCase["error"])
            {
                passed += 1
            }
        }
        XCTAssertEqual(passed, cases.count, "\(passed) of \(cases.count) \(label) cases passed")
        print("ChatTemplateFixtureTests: \(passed)/\(cases.count) \(label) cases passed")
    }

    /// Renders one case and reports a failure; returns whether it passed.
    private func check(name: String, template: JinjaTemplate, variables: [String: JinjaValue],
                       expected: JinjaValue?, error: JinjaValue?) -> Bool {
        do {
            let output = try template.render(variables)
            guard let expected = expected?.stringValue else {
                XCTFail("\(name): rendered \(output.debugDescription) but Python raised \(error.map { "\($0)" } ?? "?")")
                return false
            }
            if let report = OutputCheck.mismatch(expected: expected, actual: output) {
                XCTFail("\(name): \(report)")
                return false
            }
            return true
        } catch let thrown {
            return verifyError(name: name, thrown, expected: error)
        }
    }

    private func verifyError(name: String, _ thrown: Error, expected: JinjaValue?) -> Bool {
        guard let expected, let message = expected["message"]?.stringValue else {
            XCTFail("\(name): threw \(thrown) but Python rendered successfully")
            return false
        }
        let fragment = expected["fragment"]?.stringValue ?? message
        if let report = OutputCheck.errorMismatch(thrown, expectedFragment: fragment) {
            XCTFail("\(name): \(report)")
            return false
        }
        guard let error = thrown as? JinjaError else { return false }
        let kind = Self.expectedKind(expected["type"]?.stringValue ?? "")
        if error.kind != kind {
            XCTFail("\(name): error kind \(error.kind) but Python raised \(expected["type"]?.stringValue ?? "?") (expected \(kind))")
            return false
        }
        if case .int(let line)? = expected["line"], error.line != line {
            XCTFail("\(name): syntax error at line \(error.line), jinja2 reported line \(line)")
            return false
        }
        return true
    }
}
