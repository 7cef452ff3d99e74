// Tokenizer for Jinja2 template source, reproducing jinja2 3.1's `Lexer.tokeniter` rule by rule,
// because whitespace control is where chat templates most often differ from a naive renderer:
//
// - The source is first split on `\r\n`, `\r` and `\n` and re-joined with `\n`; with
//   `keep_trailing_newline=False` one trailing newline is dropped (jinja2 `tokeniter`).
// - `{%-`, `{{-`, `{#-` strip all whitespace (Python `str.rstrip`) before the tag.
// - With `lstrip_blocks`, whitespace between the start of a line and a `{%` or `{#` tag is removed,
//   but not for `{{`, and not when the tag is written `{%+`. "Start of a line" includes the case
//   where the previous tag's match ended with a newline (jinja2's `line_starting`).
// - `-%}`, `-}}`, `-#}` strip all whitespace after the tag; with `trim_blocks`, `%}` and `#}` eat
//   one following newline, `+%}` does not, and `}}` never does.
// - `}}` / `%}` only close a tag when no `(`, `[` or `{` is open inside it (jinja2's balancing
//   stack), so `{{ {'a': {'b': 1}} }}` lexes as one expression.
// - `{% raw %}...{% endraw %}` is copied verbatim; the raw opening tag never trims a newline.
//
// Positions are kept as scalar offsets and turned into 1-based line/column on demand. Comments are
// dropped here. Line statements (`#` prefixes) are disabled in transformers and not supported.

enum TokenKind: Equatable, Sendable {
    case data, variableBegin, variableEnd, blockBegin, blockEnd
    case name, string, integer, float, op
    case eof
}

struct Token: Sendable {
    var kind: TokenKind
    /// The data text, name, operator, or decoded string literal.
    var text: String = ""
    var integer: Int = 0
    var float: Double = 0
    var position: SourcePosition
}

/// Python's `str.isspace()` (`_PyUnicode_IsWhitespace`), which is also what `\s` matches in a
/// `re` str pattern and what `str.strip()` removes. It is wider than ASCII whitespace.
@inline(__always)
func isPythonSpace(_ c: Unicode.Scalar) -> Bool {
    switch c.value {
    case 0x09...0x0D, 0x1C...0x20, 0x85, 0xA0, 0x1680, 0x2000...0x200A, 0x2028, 0x2029, 0x202F,
        0x205F, 0x3000:
        return true
    default:
        return false
    }
}

struct Lexer {
    private let src: [Unicode.Scalar]
    private let options: JinjaTemplate.Options
    private var lineStarts: [Int] = [0]
    private(set) var tokens: [Token] = []
    private var pos = 0
    /// jinja2's `line_starting`: whether the previous rule's match ended with a newline.
    private var lineStarting = true

    /// Normalises newlines exactly as jinja2's `tokeniter` does before lexing.
    static func normalize(_ source: String, keepTrailingNewline: Bool) -> [Unicode.Scalar] {
        var lines: [[Unicode.Scalar]] = [[]]
        var iterator = source.unicodeScalars.makeIterator()
        var pending: Unicode.Scalar? = nil
        while let c = pending ?? iterator.next() {
            pending = nil
            if c == "\r" {
                let next = iterator.next()
                if next != "\n" { pending = next }
                lines.append([])
            } else if c == "\n" {
                lines.append([])
            } else {
                lines[lines.count - 1].append(c)
            }
        }
        if !keepTrailingNewline, lines.count > 1, lines[lines.count - 1].isEmpty {
            lines.removeLast()
        }
        var out: [Unicode.Scalar] = []
        for (i, line) in lines.enumerated() {
            if i > 0 { out.append("\n") }
            out.append(contentsOf: line)
        }
        return out
    }

    init(_ source: String, options: JinjaTemplate.Options) {
        self.src = Lexer.normalize(source, keepTrailingNewline: options.keepTrailingNewline)
        self.options = options
        for (i, c) in src.enumerated() where c == "\n" { lineStarts.append(i + 1) }
    }

    func position(_ offset: Int) -> SourcePosition {
        var lo = 0
        var hi = lineStarts.count - 1
        while lo < hi {
            let mid = (lo + hi + 1) / 2
            if lineStarts[mid] <= offset { lo = mid } else { hi = mid - 1 }
        }
        return SourcePosition(line: lo + 1, column: offset - lineStarts[lo] + 1)
    }

    private func syntaxError(_ message: String, at offset: Int) -> JinjaError {
        let p = position(offset)
        return JinjaError(.syntax, message, line: p.line, column: p.column)
    }

    private func has(_ literal: String, at offset: Int) -> Bool {
        var i = offset
        for c in literal.unicodeScalars {
            guard i < src.count, src[i] == c else { return false }
            i += 1
        }
        return true
    }

    private func skipSpaces(from offset: Int) -> Int {
        var i = offset
        while i < src.count, isPythonSpace(src[i]) { i += 1 }
        return i
    }

    private mutating func emit(_ kind: TokenKind, _ text: String = "", at offset: Int) {
        tokens.append(Token(kind: kind, text: text, position: position(offset)))
    }

    // MARK: - Root state

    mutating func tokenize() throws -> [Token] {
        while pos < src.count {
            guard let (tagStart, opener) = nextTagStart(from: pos) else {
                emitData(src[pos...], at: pos)
                pos = src.count
                break
            }
            var p = tagStart + 2
            var sign: Unicode.Scalar? = nil
            if p < src.count, src[p] == "-" || src[p] == "+" {
                sign = src[p]
                p += 1
            }
            var rawBeginEnd: Int? = nil
            if opener == "%" { rawBeginEnd = matchRawBegin(at: p) }
            let text = controlledText(pos..<tagStart, sign: sign, isVariable: opener == "{")
            emitData(text, at: pos)
            if let end = rawBeginEnd {
                lineStarting = src[end - 1] == "\n"
                pos = end
                try lexRaw()
                continue
            }
            lineStarting = false
            switch opener {
            case "#":
                try lexComment(from: p, start: tagStart)
            case "%":
                emit(.blockBegin, at: tagStart)
                try lexTag(from: p, isBlock: true)
            default:
                emit(.variableBegin, at: tagStart)
                try lexTag(from: p, isBlock: false)
            }
        }
        emit(.eof, at: src.count)
        return tokens
    }

    private func nextTagStart(from offset: Int) -> (Int, Unicode.Scalar)? {
        var i = offset
        while i + 1 < src.count {
            if src[i] == "{" {
                let c = src[i + 1]
                if c == "%" || c == "{" || c == "#" { return (i, c) }
            }
            i += 1
        }
        return nil
    }

    /// Applies `-` stripping or `lstrip_blocks` to the data before a tag (jinja2 `OptionalLStrip`).
    private func controlledText(_ range: Range<Int>, sign: Unicode.Scalar?, isVariable: Bool)
        -> ArraySlice<Unicode.Scalar>
    {
        var text = src[range]
        if sign == "-" {
            while let last = text.last, isPythonSpace(last) { text.removeLast() }
        } else if sign != "+", options.lstripBlocks, !isVariable {
            let lineStart = (text.lastIndex(of: "\n").map { $0 + 1 }) ?? text.startIndex
            if lineStart > text.startIndex || lineStarting {
                let tail = text[lineStart...]
                if !tail.isEmpty, tail.allSatisfy(isPythonSpace) {
                    text = text[..<lineStart]
                }
            }
        }
        return text
    }

    private mutating func emitData(_ text: ArraySlice<Unicode.Scalar>, at offset: Int) {
        guard !text.isEmpty else { return }
        var s = String.UnicodeScalarView()
        s.append(contentsOf: text)
        emit(.data, String(s), at: offset)
    }

    // MARK: - Raw blocks and comments

    /// Matches `\s*raw\s*(-%}\s*|%})` after `{%` and its sign; returns the offset after the match.
    private func matchRawBegin(at offset: Int) -> Int? {
        var i = skipSpaces(from: offset)
        guard has("raw", at: i) else { return nil }
        i = skipSpaces(from: i + 3)
        if has("-%}", at: i) { return skipSpaces(from: i + 3) }
        if has("%}", at: i) { return i + 2 }
        return nil
    }

    /// Matches a block end (`+%}`, `-%}\s*` or `%}` plus one newline under trim_blocks).
    private func matchBlockEnd(at offset: Int, closer: Unicode.Scalar) -> Int? {
        let end = closer == "%" ? "%}" : "#}"
        if has("+" + end, at: offset) { return offset + 3 }
        if has("-" + end, at: offset) { return skipSpaces(from: offset + 3) }
        if has(end, at: offset) {
            let after = offset + 2
            if options.trimBlocks, after < src.count, src[after] == "\n" { return after + 1 }
            return after
        }
        return nil
    }

    private mutating func lexRaw() throws {
        var i = pos
        while i < src.count {
            if has("{%", at: i) {
                var p = i + 2
                var sign: Unicode.Scalar? = nil
                if p < src.count, src[p] == "-" || src[p] == "+" {
                    sign = src[p]
                    p += 1
                }
                p = skipSpaces(from: p)
                if has("endraw", at: p), let end = matchBlockEnd(at: skipSpaces(from: p + 6), closer: "%") {
                    let text = controlledText(pos..<i, sign: sign, isVariable: false)
                    emitData(text, at: pos)
                    lineStarting = src[end - 1] == "\n"
                    pos = end
                    return
                }
            }
            i += 1
        }
        throw syntaxError("Missing end of raw directive", at: pos)
    }

    private mutating func lexComment(from offset: Int, start: Int) throws {
        var i = offset
        while i < src.count {
            if let end = matchBlockEnd(at: i, closer: "#") {
                lineStarting = src[end - 1] == "\n"
                pos = end
                return
            }
            i += 1
        }
        throw syntaxError("Missing end of comment tag", at: start)
    }

    // MARK: - Inside {% %} and {{ }}

    private mutating func lexTag(from offset: Int, isBlock: Bool) throws {
        var i = offset
        var balance: [Unicode.Scalar] = []
        while i < src.count {
            if balance.isEmpty {
                if isBlock, let end = matchBlockEnd(at: i, closer: "%") {
                    emit(.blockEnd, at: i)
                    lineStarting = src[end - 1] == "\n"
                    pos = end
                    return
                }
                if !isBlock {
                    if has("-}}", at: i) {
                        emit(.variableEnd, at: i)
                        let end = skipSpaces(from: i + 3)
                        lineStarting = src[end - 1] == "\n"
                        pos = end
                        return
                    }
                    if has("}}", at: i) {
                        emit(.variableEnd, at: i)
                        lineStarting = false
                        pos = i + 2
                        return
                    }
                }
            }
            let c = src[i]
            if isPythonSpace(c) {
                i += 1
                continue
            }
            if let end = try lexNumber(at: i) {
                i = end
                continue
            }
            if isNameStart(c) {
                var j = i + 1
                while j < src.count, isNameContinue(src[j]) { j += 1 }
                emit(.name, string(i..<j), at: i)
                i = j
                continue
            }
            if c == "'" || c == "\"", let end = stringEnd(from: i) {
                var token = Token(kind: .string, position: position(i))
                token.text = try decodeStringLiteral(src[(i + 1)..<(end - 1)], at: i)
                tokens.append(token)
                i = end
                continue
            }
            if let op = operatorAt(i) {
                switch op {
                case "(": balance.append(")")
                case "[": balance.append("]")
                case "{": balance.append("}")
                case ")", "]", "}":
                    guard let expected = balance.popLast() else {
                        throw syntaxError("unexpected '\(op)'", at: i)
                    }
                    if String(expected) != op {
                        throw syntaxError("unexpected '\(op)', expected '\(expected)'", at: i)
                    }
                default: break
                }
                emit(.op, op, at: i)
                i += op.unicodeScalars.count
                continue
            }
            throw syntaxError("unexpected char \(pythonRepr(String(c))) at \(i)", at: i)
        }
        // End of source inside a tag: the parser reports what it was expecting.
        pos = src.count
    }

    private func string(_ range: Range<Int>) -> String {
        var s = String.UnicodeScalarView()
        s.append(contentsOf: src[range])
        return String(s)
    }

    private func isNameStart(_ c: Unicode.Scalar) -> Bool {
        if c.isASCII { return c == "_" || (c >= "a" && c <= "z") || (c >= "A" && c <= "Z") }
        return c.properties.isXIDStart
    }

    private func isNameContinue(_ c: Unicode.Scalar) -> Bool {
        if c.isASCII { return c == "_" || (c >= "0" && c <= "9") || (c >= "a" && c <= "z") || (c >= "A" && c <= "Z") }
        return c.properties.isXIDContinue
    }

    private static let operators: [String] = [
        "//", "**", "==", "!=", ">=", "<=",
        "+", "-", "/", "*", "%", "~", "[", "]", "(", ")", "{", "}", ">", "<", "=", ".", ":", "|", ",", ";",
    ]

    private func operatorAt(_ offset: Int) -> String? {
        Lexer.operators.first { has($0, at: offset) }
    }

    private func isDigit(_ offset: Int) -> Bool {
        offset < src.count && src[offset] >= "0" && src[offset] <= "9"
    }

    /// Digits with single underscores between them (`(\d+_)*\d+`); returns the end offset.
    private func digitRun(from offset: Int) -> Int? {
        guard isDigit(offset) else { return nil }
        var i = offset
        while true {
            while isDigit(i) { i += 1 }
            if i < src.count, src[i] == "_", isDigit(i + 1) { i += 1 } else { return i }
        }
    }

    /// jinja2's `float_re` then `integer_re`: floats need a fraction or an exponent and may not
    /// follow a `.` (so `x.0.1` is two integer subscripts). Integers allow 0b/0o/0x prefixes.
    private mutating func lexNumber(at offset: Int) throws -> Int? {
        guard isDigit(offset) else { return nil }
        let afterDot = offset > 0 && src[offset - 1] == "."
        if !afterDot, let intEnd = digitRun(from: offset) {
            var end = intEnd
            var isFloat = false
            if end < src.count, src[end] == ".", let fracEnd = digitRun(from: end + 1) {
                end = fracEnd
                isFloat = true
            }
            if end < src.count, src[end] == "e" || src[end] == "E" {
                var e = end + 1
                if e < src.count, src[e] == "+" || src[e] == "-" { e += 1 }
                // Without exponent digits (`1e`) the `e` is not part of the number.
                if let expEnd = digitRun(from: e) {
                    end = expEnd
                    isFloat = true
                }
            }
            if isFloat {
                let text = string(offset..<end).replacingOccurrences(of: "_", with: "")
                guard let value = Double(text) else { throw syntaxError("invalid float literal \(text)", at: offset) }
                var token = Token(kind: .float, text: text, position: position(offset))
                token.float = value
                tokens.append(token)
                return end
            }
        }
        // integer_re: 0b.. | 0o.. | 0x.. | [1-9](_?\d)* | 0(_?0)*
        var radix = 10
        var i = offset
        var digitsStart = offset
        if src[offset] == "0", offset + 1 < src.count {
            switch src[offset + 1] {
            case "b", "B": radix = 2
            case "o", "O": radix = 8
            case "x", "X": radix = 16
            default: break
            }
        }
        if radix != 10 {
            var j = offset + 2
            var any = false
            while j < src.count {
                if src[j] == "_", j + 1 < src.count, Int(String(src[j + 1]), radix: radix) != nil {
                    j += 2
                    any = true
                } else if Int(String(src[j]), radix: radix) != nil {
                    j += 1
                    any = true
                } else {
                    break
                }
            }
            if any {
                i = j
                digitsStart = offset + 2
            } else {
                radix = 10
            }
        }
        if radix == 10 {
            if src[offset] == "0" {
                i = offset + 1
                while true {
                    if i < src.count, src[i] == "0" {
                        i += 1
                    } else if i + 1 < src.count, src[i] == "_", src[i + 1] == "0" {
                        i += 2
                    } else {
                        break
                    }
                }
            } else {
                i = offset + 1
                while true {
                    if isDigit(i) {
                        i += 1
                    } else if i + 1 < src.count, src[i] == "_", isDigit(i + 1) {
                        i += 2
                    } else {
                        break
                    }
                }
            }
        }
        let digits = string(digitsStart..<i).replacingOccurrences(of: "_", with: "")
        guard let value = Int(digits, radix: radix) else {
            throw JinjaError(.unsupported, "integer literal \(digits) does not fit in 64 bits",
                             line: position(offset).line, column: position(offset).column)
        }
        var token = Token(kind: .integer, text: string(offset..<i), position: position(offset))
        token.integer = value
        tokens.append(token)
        return i
    }

    /// The offset just past the closing quote of the string literal at `offset`, honouring
    /// backslash escapes (jinja2 `string_re`), or nil if it is not terminated.
    private func stringEnd(from offset: Int) -> Int? {
        let quote = src[offset]
        var i = offset + 1
        while i < src.count {
            if src[i] == "\\" {
                i += 2
                continue
            }
            if src[i] == quote { return i + 1 }
            i += 1
        }
        return nil
    }

    /// Decodes a literal's body like Python's `unicode-escape` codec, which jinja2 applies to every
    /// string literal: `\n \t \r \\ \' \" \a \b \f \v`, octal `\ooo`, `\xhh`, `\uXXXX`,
    /// `\UXXXXXXXX`, backslash-newline continuation; unknown escapes keep their backslash.
    private func decodeStringLiteral(_ body: ArraySlice<Unicode.Scalar>, at offset: Int) throws -> String {
        var out = String.UnicodeScalarView()
        var i = body.startIndex
        func hex(_ count: Int) throws -> Unicode.Scalar {
            var value: UInt32 = 0
            for k in 0..<count {
                let idx = i + 1 + k
                guard idx < body.endIndex, let d = Int(String(body[idx]), radix: 16) else {
                    throw syntaxError("truncated escape in string literal", at: offset)
                }
                value = value * 16 + UInt32(d)
            }
            guard let scalar = Unicode.Scalar(value) else {
                throw syntaxError("invalid escape in string literal", at: offset)
            }
            i += count + 1
            return scalar
        }
        while i < body.endIndex {
            let c = body[i]
            guard c == "\\", i + 1 < body.endIndex else {
                out.append(c)
                i += 1
                continue
            }
            i += 1
            let e = body[i]
            switch e {
            case "\n": i += 1
            case "\\": out.append("\\"); i += 1
            case "'": out.append("'"); i += 1
            case "\"": out.append("\""); i += 1
            case "a": out.append("\u{07}"); i += 1
            case "b": out.append("\u{08}"); i += 1
            case "f": out.append("\u{0C}"); i += 1
            case "n": out.append("\n"); i += 1
            case "r": out.append("\r"); i += 1
            case "t": out.append("\t"); i += 1
            case "v": out.append("\u{0B}"); i += 1
            case "x": out.append(try hex(2))
            case "u": out.append(try hex(4))
            case "U": out.append(try hex(8))
            case "0"..."7":
                var value: UInt32 = 0
                var n = 0
                while n < 3, i < body.endIndex, body[i] >= "0", body[i] <= "7" {
                    value = value * 8 + (body[i].value - 48)
                    i += 1
                    n += 1
                }
                out.append(Unicode.Scalar(value) ?? "\u{FFFD}")
            case "N":
                throw JinjaError(.unsupported, "\\N{...} escapes in string literals are not supported",
                                 line: position(offset).line, column: position(offset).column)
            default:
                out.append("\\")
                out.append(e)
                i += 1
            }
        }
        return String(out)
    }
}

extension String {
    /// `replacingOccurrences` without Foundation, for literal needles.
    func replacingOccurrences(of needle: String, with replacement: String) -> String {
        pythonReplace(self, needle, replacement, count: -1)
    }
}
