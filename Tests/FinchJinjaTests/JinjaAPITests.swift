// The public API surface and the constructs FinchJinja refuses on purpose. Rendering semantics are
// pinned by the Python fixtures (ChatTemplateFixtureTests); these tests cover what the fixtures
// cannot: Swift-side conveniences, error locations, and unsupported constructs failing loudly.

import FinchJinja
import Foundation
import XCTest

final class JinjaAPITests: XCTestCase {
    func testLiteralsBuildValues() throws {
        let value: JinjaValue = ["role": "user", "n": 1, "x": 1.5, "ok": true, "none": nil, "list": [1, "a"]]
        XCTAssertEqual(value["role"], .string("user"))
        XCTAssertEqual(value["list"]?[1], .string("a"))
        XCTAssertEqual(JinjaValue.int(1), JinjaValue.double(1.0), "Python equality: 1 == 1.0")
        XCTAssertNotEqual(JinjaValue.string("caf\u{E9}"), JinjaValue.string("cafe\u{301}"))
        XCTAssertEqual(JinjaValue.object([("a", 1), ("b", 2)]), JinjaValue.object([("b", 2), ("a", 1)]))
        XCTAssertEqual(value.description, "{'role': 'user', 'n': 1, 'x': 1.5, 'ok': True, 'none': None, 'list': [1, 'a']}")
    }

    func testJSONParsingKeepsPythonTypesAndOrder() throws {
        let value = try JinjaValue(json: #"{"b": 1, "a": 1.0, "c": [true, null, "\u00e9\ud83c\udf0d"], "b": 2}"#)
        XCTAssertEqual(value, .object([("b", .int(2)), ("a", .double(1)), ("c", [true, nil, "é🌍"])]))
        guard case .object(let pairs) = value else { return XCTFail() }
        XCTAssertEqual(pairs.map(\.0), ["b", "a", "c"])
        XCTAssertThrowsError(try JinjaValue(json: "{\"a\": }")) { error in
            XCTAssertEqual((error as? JinjaError)?.kind, .syntax)
        }
    }

    func testRenderSmolLM2StyleChat() throws {
        let template = try JinjaTemplate(
            "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}")
        let output = try template.render(["messages": [["role": "user", "content": "Hi"]], "add_generation_prompt": true])
        XCTAssertEqual(output, "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n")
    }

    func testRaiseExceptionCarriesMessageAndLocation() throws {
        let template = try JinjaTemplate("line one\n  {{ raise_exception('Only user and assistant roles are supported!') }}")
        XCTAssertThrowsError(try template.render([:])) { error in
            guard let error = error as? JinjaError else { return XCTFail("\(error)") }
            XCTAssertEqual(error.kind, .raised)
            XCTAssertEqual(error.message, "Only user and assistant roles are supported!")
            XCTAssertEqual(error.line, 2)
            XCTAssertEqual(error.column, 6)
            XCTAssertTrue(error.description.contains("line 2, column 6"), error.description)
        }
    }

    func testSyntaxErrorsNameLineAndColumn() {
        XCTAssertThrowsError(try JinjaTemplate("ok\n  {{ x | }}")) { error in
            guard let error = error as? JinjaError else { return XCTFail("\(error)") }
            XCTAssertEqual(error.kind, .syntax)
            XCTAssertEqual(error.line, 2)
            XCTAssertGreaterThan(error.column, 0)
        }
    }

    func testUnsupportedConstructsThrowClearly() {
        let cases: [(String, JinjaError.Kind, String)] = [
            ("{% include 'other.jinja' %}", .unsupported, "include"),
            ("a\n{% extends 'base.jinja' %}", .unsupported, "extends"),
            ("{% import 'macros.jinja' as m %}", .unsupported, "import"),
            ("{% from 'macros.jinja' import m %}", .unsupported, "from"),
            ("{% autoescape true %}x{% endautoescape %}", .unsupported, "autoescape"),
            ("{{ x | no_such_filter }}", .syntax, "No filter named 'no_such_filter'."),
            ("{{ x is no_such_test }}", .syntax, "No test named 'no_such_test'."),
            ("{% do x.append(1) %}", .syntax, "Encountered unknown tag 'do'."),
        ]
        for (source, kind, fragment) in cases {
            XCTAssertThrowsError(try JinjaTemplate(source), source) { error in
                guard let error = error as? JinjaError else { return XCTFail("\(source): \(error)") }
                XCTAssertEqual(error.kind, kind, source)
                XCTAssertTrue(error.message.contains(fragment), "\(source): \(error.message)")
                XCTAssertGreaterThan(error.line, 0, source)
                XCTAssertGreaterThan(error.column, 0, source)
            }
        }
        // Valid jinja2 filters that are not implemented fail when executed, never silently.
        XCTAssertThrowsError(try JinjaTemplate("{{ [1, 2]|random }}").render([:])) { error in
            XCTAssertEqual((error as? JinjaError)?.kind, .unsupported)
        }
        // Printing an iterator would show a Python memory address: refused, not faked.
        XCTAssertThrowsError(try JinjaTemplate("{{ [1, 2]|map('string') }}").render([:])) { error in
            XCTAssertEqual((error as? JinjaError)?.kind, .unsupported)
        }
    }

    func testStrftimeNowMatchesFoundation() throws {
        let template = try JinjaTemplate("{{ strftime_now('%d %b %Y|%B|%A|%a|%m|%y|%j|%Y-%m-%d') }}")
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = .current
        formatter.dateFormat = "dd MMM yyyy|MMMM|EEEE|EEE|MM|yy|DDD|yyyy-MM-dd"
        let before = formatter.string(from: Date())
        let rendered = try template.render([:])
        let after = formatter.string(from: Date())
        XCTAssertTrue(rendered == before || rendered == after, "\(rendered) vs \(before)")
        let time = try JinjaTemplate("{{ strftime_now('%H:%M:%S %p %I') }}").render([:])
        XCTAssertEqual(time.count, 14, time)
    }

    func testExplicitUndefinedIsAMissingVariable() throws {
        let template = try JinjaTemplate("[{{ x }}]{{ x is defined }}")
        XCTAssertEqual(try template.render(["x": .undefined]), "[]False")
        XCTAssertThrowsError(try JinjaTemplate("{{ x.y }}").render(["x": .undefined])) { error in
            XCTAssertEqual((error as? JinjaError)?.message, "'x' is undefined")
        }
    }

    func testOptionsDefaults() throws {
        XCTAssertEqual(JinjaTemplate.Options.huggingFace,
                       JinjaTemplate.Options(trimBlocks: true, lstripBlocks: true, keepTrailingNewline: false))
        let source = "{% if true %}\n  x\n{% endif %}\n"
        XCTAssertEqual(try JinjaTemplate(source).render([:]), "  x\n")
        XCTAssertEqual(try JinjaTemplate(source, options: .jinjaDefaults).render([:]), "\n  x\n")
    }

    func testConcurrentRendersShareOneTemplate() async throws {
        let template = try JinjaTemplate("{% set ns = namespace(n=0) %}{% for i in range(k) %}{% set ns.n = ns.n + i %}{% endfor %}{{ ns.n }}")
        try await withThrowingTaskGroup(of: (Int, String).self) { group in
            for k in 0..<32 {
                group.addTask { (k, try template.render(["k": .int(k)])) }
            }
            for try await (k, output) in group {
                XCTAssertEqual(output, String(k * (k - 1) / 2))
            }
        }
    }
}
