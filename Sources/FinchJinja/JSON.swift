// JSON in and out of templates.
//
// Out: transformers replaces jinja2's HTML-escaping `tojson` with
// `json.dumps(x, ensure_ascii=False, indent=indent, separators=separators, sort_keys=sort_keys)`
// (`_compile_jinja_template` in transformers/utils/chat_template_utils.py). This file reproduces
// `json.dumps` exactly: `", "`/`": "` separators without indent and `","`/`": "` with it, float
// `repr`, `NaN`/`Infinity`, non-string keys coerced (`true`, `null`, `1.5`), control characters as
// `\u00XX`, and with `ensure_ascii` every non-ASCII character as `\uXXXX` (surrogate pairs above
// U+FFFF).
//
// In: ``JinjaValue/init(json:)`` parses JSON the way Python's `json.loads` does, so that data read
// from a request or a fixture has the same types a Python caller would pass (`1` is an int, `1.0`
// a float, object key order is kept, a repeated key keeps its first position and last value).

struct JSONOptions {
    var ensureASCII = false
    /// The indent string per level, or nil for single-line output.
    var indent: String? = nil
    var itemSeparator = ", "
    var keySeparator = ": "
    var sortKeys = false
}

enum JSONEncoder {
    static func encode(_ value: Value, _ options: JSONOptions) throws -> String {
        var out = ""
        try write(value, options, level: 0, into: &out)
        return out
    }

    private static func write(_ value: Value, _ options: JSONOptions, level: Int, into out: inout String) throws {
        switch value {
        case .none: out += "null"
        case .bool(let b): out += b ? "true" : "false"
        case .int(let i): out += String(i)
        case .double(let d): out += floatText(d)
        case .string(let s): writeString(s, ascii: options.ensureASCII, into: &out)
        case .list(let items), .tuple(let items):
            guard !items.isEmpty else {
                out += "[]"
                return
            }
            out += "["
            for (i, item) in items.enumerated() {
                if i > 0 { out += options.itemSeparator }
                newline(options, level + 1, &out)
                try write(item, options, level: level + 1, into: &out)
            }
            newline(options, level, &out)
            out += "]"
        case .dict(let d):
            guard d.count > 0 else {
                out += "{}"
                return
            }
            var pairs: [(String, Value)] = []
            for (k, v) in d.pairs { pairs.append((try keyText(k), v)) }
            if options.sortKeys {
                for k in d.keys where !(k.isString) {
                    throw JinjaError.render("'<' not supported between instances of '\(k.typeName)' and 'str'")
                }
                pairs.sort { $0.0.utf8.lexicographicallyPrecedes($1.0.utf8) }
            }
            out += "{"
            for (i, (key, item)) in pairs.enumerated() {
                if i > 0 { out += options.itemSeparator }
                newline(options, level + 1, &out)
                writeString(key, ascii: options.ensureASCII, into: &out)
                out += options.keySeparator
                try write(item, options, level: level + 1, into: &out)
            }
            newline(options, level, &out)
            out += "}"
        default:
            throw JinjaError.render("Object of type \(value.typeName) is not JSON serializable")
        }
    }

    private static func newline(_ options: JSONOptions, _ level: Int, _ out: inout String) {
        guard let indent = options.indent else { return }
        out += "\n"
        for _ in 0..<level { out += indent }
    }

    static func floatText(_ d: Double) -> String {
        if d.isNaN { return "NaN" }
        if d.isInfinite { return d < 0 ? "-Infinity" : "Infinity" }
        return pythonFloatRepr(d)
    }

    private static func keyText(_ key: Value) throws -> String {
        switch key {
        case .string(let s): return s
        case .bool(let b): return b ? "true" : "false"
        case .none: return "null"
        case .int(let i): return String(i)
        case .double(let d): return floatText(d)
        default:
            throw JinjaError.render("keys must be str, int, float, bool or None, not \(key.typeName)")
        }
    }

    static func writeString(_ s: String, ascii: Bool, into out: inout String) {
        out += "\""
        for c in s.unicodeScalars {
            switch c {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case "\u{08}": out += "\\b"
            case "\u{0C}": out += "\\f"
            default:
                if c.value < 0x20 || (ascii && c.value > 0x7E) {
                    if c.value > 0xFFFF {
                        let v = c.value - 0x10000
                        out += hex4(0xD800 + (v >> 10)) + hex4(0xDC00 + (v & 0x3FF))
                    } else {
                        out += hex4(c.value)
                    }
                } else {
                    out.unicodeScalars.append(c)
                }
            }
        }
        out += "\""
    }

    private static func hex4(_ v: UInt32) -> String {
        let digits = String(v, radix: 16)
        return "\\u" + String(repeating: "0", count: 4 - digits.count) + digits
    }
}

extension Value {
    var isString: Bool {
        if case .string = self { return true }
        return false
    }
}

extension JinjaValue {
    /// Parses JSON text as Python's `json.loads` would type it: integers without a fraction or
    /// exponent become ``int(_:)``, other numbers ``double(_:)``; `NaN`, `Infinity` and
    /// `-Infinity` are accepted, as Python accepts them.
    ///
    /// - Throws: ``JinjaError`` (kind `.syntax`) with the offending line and column.
    public init(json text: String) throws {
        var parser = JSONParser(Array(text.utf8))
        parser.skipWhitespace()
        self = try parser.parseValue()
        parser.skipWhitespace()
        guard parser.atEnd else { throw parser.error("extra data after the JSON value") }
    }
}

private struct JSONParser {
    let bytes: [UInt8]
    var i = 0

    init(_ bytes: [UInt8]) { self.bytes = bytes }

    var atEnd: Bool { i >= bytes.count }

    func error(_ message: String) -> JinjaError {
        var line = 1
        var column = 1
        for b in bytes[..<min(i, bytes.count)] {
            if b == UInt8(ascii: "\n") {
                line += 1
                column = 1
            } else if b & 0xC0 != 0x80 {
                column += 1
            }
        }
        return JinjaError(.syntax, "invalid JSON: \(message)", line: line, column: column)
    }

    mutating func skipWhitespace() {
        while i < bytes.count, [0x20, 0x09, 0x0A, 0x0D].contains(bytes[i]) { i += 1 }
    }

    private mutating func literal(_ word: String) -> Bool {
        let w = Array(word.utf8)
        guard i + w.count <= bytes.count, Array(bytes[i..<(i + w.count)]) == w else { return false }
        i += w.count
        return true
    }

    mutating func parseValue() throws -> JinjaValue {
        guard i < bytes.count else { throw error("unexpected end of input") }
        switch bytes[i] {
        case UInt8(ascii: "{"):
            i += 1
            var pairs: [(String, JinjaValue)] = []
            skipWhitespace()
            if i < bytes.count, bytes[i] == UInt8(ascii: "}") {
                i += 1
                return .object(pairs)
            }
            while true {
                skipWhitespace()
                guard i < bytes.count, bytes[i] == UInt8(ascii: "\"") else { throw error("expected a string key") }
                let key = try parseString()
                skipWhitespace()
                guard i < bytes.count, bytes[i] == UInt8(ascii: ":") else { throw error("expected ':'") }
                i += 1
                skipWhitespace()
                let value = try parseValue()
                if let existing = pairs.firstIndex(where: { $0.0.utf8.elementsEqual(key.utf8) }) {
                    pairs[existing].1 = value
                } else {
                    pairs.append((key, value))
                }
                skipWhitespace()
                guard i < bytes.count else { throw error("unterminated object") }
                if bytes[i] == UInt8(ascii: ",") {
                    i += 1
                    continue
                }
                guard bytes[i] == UInt8(ascii: "}") else { throw error("expected ',' or '}'") }
                i += 1
                return .object(pairs)
            }
        case UInt8(ascii: "["):
            i += 1
            var items: [JinjaValue] = []
            skipWhitespace()
            if i < bytes.count, bytes[i] == UInt8(ascii: "]") {
                i += 1
                return .array(items)
            }
            while true {
                skipWhitespace()
                items.append(try parseValue())
                skipWhitespace()
                guard i < bytes.count else { throw error("unterminated array") }
                if bytes[i] == UInt8(ascii: ",") {
                    i += 1
                    continue
                }
                guard bytes[i] == UInt8(ascii: "]") else { throw error("expected ',' or ']'") }
                i += 1
                return .array(items)
            }
        case UInt8(ascii: "\""):
            return .string(try parseString())
        default:
            if literal("true") { return .bool(true) }
            if literal("false") { return .bool(false) }
            if literal("null") { return .none }
            if literal("NaN") { return .double(.nan) }
            if literal("Infinity") { return .double(.infinity) }
            if literal("-Infinity") { return .double(-.infinity) }
            return try parseNumber()
        }
    }

    private mutating func parseNumber() throws -> JinjaValue {
        let start = i
        var isFloat = false
        if i < bytes.count, bytes[i] == UInt8(ascii: "-") { i += 1 }
        func digits() -> Bool {
            let s = i
            while i < bytes.count, bytes[i] >= 0x30, bytes[i] <= 0x39 { i += 1 }
            return i > s
        }
        guard digits() else { throw error("unexpected character") }
        if i < bytes.count, bytes[i] == UInt8(ascii: ".") {
            i += 1
            isFloat = true
            guard digits() else { throw error("expected digits after '.'") }
        }
        if i < bytes.count, bytes[i] == UInt8(ascii: "e") || bytes[i] == UInt8(ascii: "E") {
            i += 1
            isFloat = true
            if i < bytes.count, bytes[i] == UInt8(ascii: "+") || bytes[i] == UInt8(ascii: "-") { i += 1 }
            guard digits() else { throw error("expected exponent digits") }
        }
        let text = String(decoding: bytes[start..<i], as: UTF8.self)
        if !isFloat {
            guard let value = Int(text) else { throw error("integer \(text) does not fit in 64 bits") }
            return .int(value)
        }
        guard let value = Double(text) else { throw error("invalid number \(text)") }
        return .double(value)
    }

    private mutating func hex4() throws -> UInt32 {
        guard i + 4 <= bytes.count, let v = UInt32(String(decoding: bytes[i..<(i + 4)], as: UTF8.self), radix: 16)
        else { throw error("invalid \\u escape") }
        i += 4
        return v
    }

    private mutating func parseString() throws -> String {
        i += 1
        var out = String.UnicodeScalarView()
        var run = i
        func flush(_ end: Int) { out.append(contentsOf: String(decoding: bytes[run..<end], as: UTF8.self).unicodeScalars) }
        while i < bytes.count {
            let b = bytes[i]
            if b == UInt8(ascii: "\"") {
                flush(i)
                i += 1
                return String(out)
            }
            if b < 0x20 { throw error("invalid control character in string") }
            if b != UInt8(ascii: "\\") {
                i += 1
                continue
            }
            flush(i)
            i += 1
            guard i < bytes.count else { break }
            let e = bytes[i]
            i += 1
            switch e {
            case UInt8(ascii: "\""): out.append("\"")
            case UInt8(ascii: "\\"): out.append("\\")
            case UInt8(ascii: "/"): out.append("/")
            case UInt8(ascii: "b"): out.append("\u{08}")
            case UInt8(ascii: "f"): out.append("\u{0C}")
            case UInt8(ascii: "n"): out.append("\n")
            case UInt8(ascii: "r"): out.append("\r")
            case UInt8(ascii: "t"): out.append("\t")
            case UInt8(ascii: "u"):
                var v = try hex4()
                if (0xD800..<0xDC00).contains(v), i + 6 <= bytes.count, bytes[i] == UInt8(ascii: "\\"),
                    bytes[i + 1] == UInt8(ascii: "u")
                {
                    i += 2
                    let low = try hex4()
                    guard (0xDC00..<0xE000).contains(low) else { throw error("unpaired surrogate") }
                    v = 0x10000 + ((v - 0xD800) << 10) + (low - 0xDC00)
                }
                guard let scalar = Unicode.Scalar(v) else { throw error("lone surrogate \\u\(String(v, radix: 16))") }
                out.append(scalar)
            default:
                throw error("invalid escape")
            }
            run = i
        }
        throw error("unterminated string")
    }
}
