// Python `str` semantics on Swift strings. Python strings are sequences of code points, so every
// operation here works on Unicode scalars, never on Swift's grapheme clusters (where "\r\n" is one
// Character and "e\u{301}" equals "é"). Case mapping uses the Unicode full mappings, as CPython
// does; whitespace is Python's `str.isspace()` set. This is what makes `len`, slicing, `strip`,
// `split`, `title` and `repr` agree byte for byte with Python.

typealias Scalars = [Unicode.Scalar]

@inline(__always)
func scalars(_ s: String) -> Scalars { Array(s.unicodeScalars) }

func makeString<S: Sequence>(_ scalars: S) -> String where S.Element == Unicode.Scalar {
    var view = String.UnicodeScalarView()
    view.append(contentsOf: scalars)
    return String(view)
}

/// Python `repr(str)`: single quotes unless the text contains `'` and no `"`; escapes backslash,
/// the quote, `\t \n \r`, other control characters as `\xhh`, and non-printable non-ASCII
/// characters as `\xhh`, `\uhhhh` or `\Uhhhhhhhh`.
func pythonRepr(_ s: String) -> String {
    let useDouble = s.unicodeScalars.contains("'") && !s.unicodeScalars.contains("\"")
    let quote: Unicode.Scalar = useDouble ? "\"" : "'"
    var out = String.UnicodeScalarView()
    out.append(quote)
    for c in s.unicodeScalars {
        switch c {
        case quote, "\\":
            out.append("\\")
            out.append(c)
        case "\t": out.append(contentsOf: "\\t".unicodeScalars)
        case "\n": out.append(contentsOf: "\\n".unicodeScalars)
        case "\r": out.append(contentsOf: "\\r".unicodeScalars)
        default:
            if c.value < 0x20 || c.value == 0x7F {
                out.append(contentsOf: hexEscape(c.value, "x", 2).unicodeScalars)
            } else if c.value < 0x7F || isPythonPrintable(c) {
                out.append(c)
            } else if c.value <= 0xFF {
                out.append(contentsOf: hexEscape(c.value, "x", 2).unicodeScalars)
            } else if c.value <= 0xFFFF {
                out.append(contentsOf: hexEscape(c.value, "u", 4).unicodeScalars)
            } else {
                out.append(contentsOf: hexEscape(c.value, "U", 8).unicodeScalars)
            }
        }
    }
    out.append(quote)
    return String(out)
}

private func hexEscape(_ value: UInt32, _ letter: String, _ width: Int) -> String {
    let digits = String(value, radix: 16)
    return "\\" + letter + String(repeating: "0", count: max(0, width - digits.count)) + digits
}

/// Python `str.isprintable()` for one character: not in categories Cc, Cf, Cs, Co, Cn, Zl, Zp, Zs,
/// except the ASCII space.
func isPythonPrintable(_ c: Unicode.Scalar) -> Bool {
    if c == " " { return true }
    switch c.properties.generalCategory {
    case .control, .format, .surrogate, .privateUse, .unassigned, .lineSeparator, .paragraphSeparator,
        .spaceSeparator:
        return false
    default:
        return true
    }
}

// MARK: - Case mapping

func pythonUpper(_ s: String) -> String {
    var out = ""
    for c in s.unicodeScalars { out += c.properties.uppercaseMapping }
    return out
}

/// CPython `lower_ucs4`: the full lowercase mapping, except that a capital sigma in Final_Sigma
/// context (after a cased letter, not before one, ignoring case-ignorable characters) becomes
/// `ς` rather than `σ`.
private func lowerMapping(_ h: Scalars, _ i: Int) -> String {
    let c = h[i]
    guard c == "\u{3A3}" else { return c.properties.lowercaseMapping }
    var j = i - 1
    while j >= 0, h[j].properties.isCaseIgnorable { j -= 1 }
    var finalSigma = j >= 0 && h[j].properties.isCased
    if finalSigma {
        j = i + 1
        while j < h.count, h[j].properties.isCaseIgnorable { j += 1 }
        finalSigma = j == h.count || !h[j].properties.isCased
    }
    return finalSigma ? "\u{3C2}" : "\u{3C3}"
}

func pythonLower(_ s: String) -> String {
    let h = scalars(s)
    var out = ""
    for i in h.indices { out += lowerMapping(h, i) }
    return out
}

/// Python 3.8+ `str.capitalize()`: title-case the first character, lower-case the rest.
func pythonCapitalize(_ s: String) -> String {
    let h = scalars(s)
    var out = ""
    for i in h.indices { out += i == 0 ? h[i].properties.titlecaseMapping : lowerMapping(h, i) }
    return out
}

/// Python `str.title()`: a character after a cased character is lower-cased, any other is
/// title-cased.
func pythonTitle(_ s: String) -> String {
    let h = scalars(s)
    var out = ""
    var previousCased = false
    for i in h.indices {
        out += previousCased ? lowerMapping(h, i) : h[i].properties.titlecaseMapping
        previousCased = h[i].properties.isCased
    }
    return out
}

// MARK: - Searching and splitting

/// The scalar offset of `needle` in `haystack` at or after `start`, or nil.
func pythonFind(_ haystack: String, _ needle: String, start: Int = 0) -> Int? {
    findScalars(scalars(haystack), scalars(needle), start: start)
}

func findScalars(_ h: Scalars, _ n: Scalars, start: Int = 0, end: Int? = nil) -> Int? {
    let limit = min(end ?? h.count, h.count)
    if n.isEmpty { return start <= limit ? start : nil }
    guard n.count <= limit - start, start >= 0 else { return nil }
    var i = start
    while i + n.count <= limit {
        if h[i] == n[0], h[i..<(i + n.count)].elementsEqual(n) { return i }
        i += 1
    }
    return nil
}

func rfindScalars(_ h: Scalars, _ n: Scalars) -> Int? {
    if n.isEmpty { return h.count }
    guard n.count <= h.count else { return nil }
    var i = h.count - n.count
    while i >= 0 {
        if h[i..<(i + n.count)].elementsEqual(n) { return i }
        i -= 1
    }
    return nil
}

/// Python `str.replace(old, new, count)`; an empty `old` inserts `new` between characters.
func pythonReplace(_ s: String, _ old: String, _ new: String, count: Int) -> String {
    let h = scalars(s)
    let o = scalars(old)
    let n = scalars(new)
    var out: Scalars = []
    var replaced = 0
    if o.isEmpty {
        for c in h {
            if count < 0 || replaced < count {
                out.append(contentsOf: n)
                replaced += 1
            }
            out.append(c)
        }
        if count < 0 || replaced < count { out.append(contentsOf: n) }
        return makeString(out)
    }
    var i = 0
    while i < h.count {
        if (count < 0 || replaced < count), i + o.count <= h.count, h[i..<(i + o.count)].elementsEqual(o) {
            out.append(contentsOf: n)
            i += o.count
            replaced += 1
        } else {
            out.append(h[i])
            i += 1
        }
    }
    return makeString(out)
}

func pythonCount(_ s: String, _ sub: String) -> Int {
    let h = scalars(s)
    let n = scalars(sub)
    if n.isEmpty { return h.count + 1 }
    var count = 0
    var i = 0
    while let found = findScalars(h, n, start: i) {
        count += 1
        i = found + n.count
    }
    return count
}

/// Python `str.strip/lstrip/rstrip(chars)`: `chars == nil` strips `str.isspace()` characters.
func pythonStrip(_ s: String, _ chars: String?, left: Bool = true, right: Bool = true) -> String {
    let h = scalars(s)
    let set = chars.map { Set($0.unicodeScalars) }
    func strip(_ c: Unicode.Scalar) -> Bool { set.map { $0.contains(c) } ?? isPythonSpace(c) }
    var lo = 0
    var hi = h.count
    if left { while lo < hi, strip(h[lo]) { lo += 1 } }
    if right { while hi > lo, strip(h[hi - 1]) { hi -= 1 } }
    return makeString(h[lo..<hi])
}

/// Python `str.split(sep, maxsplit)`.
func pythonSplit(_ s: String, _ separator: String?, maxSplit: Int = -1) throws -> [String] {
    let h = scalars(s)
    guard let separator else {
        var parts: [String] = []
        var i = 0
        while i < h.count {
            while i < h.count, isPythonSpace(h[i]) { i += 1 }
            if i == h.count { break }
            if maxSplit >= 0, parts.count == maxSplit {
                parts.append(makeString(h[i...]))
                return parts
            }
            let start = i
            while i < h.count, !isPythonSpace(h[i]) { i += 1 }
            parts.append(makeString(h[start..<i]))
        }
        return parts
    }
    let sep = scalars(separator)
    guard !sep.isEmpty else { throw JinjaError.render("empty separator") }
    var parts: [String] = []
    var start = 0
    while maxSplit < 0 || parts.count < maxSplit, let found = findScalars(h, sep, start: start) {
        parts.append(makeString(h[start..<found]))
        start = found + sep.count
    }
    parts.append(makeString(h[start...]))
    return parts
}

/// Python `str.rsplit(sep, maxsplit)`.
func pythonRSplit(_ s: String, _ separator: String?, maxSplit: Int = -1) throws -> [String] {
    if maxSplit < 0 { return try pythonSplit(s, separator) }
    let reversed = makeString(s.unicodeScalars.reversed())
    let sep = separator.map { makeString($0.unicodeScalars.reversed()) }
    return try pythonSplit(reversed, sep, maxSplit: maxSplit).reversed().map { makeString($0.unicodeScalars.reversed()) }
}

/// Python `str.splitlines(keepends)`.
func pythonSplitLines(_ s: String, keepEnds: Bool = false) -> [String] {
    let h = scalars(s)
    var lines: [String] = []
    var start = 0
    var i = 0
    while i < h.count {
        let c = h[i]
        var breakLength = 0
        switch c.value {
        case 0x0D: breakLength = (i + 1 < h.count && h[i + 1] == "\n") ? 2 : 1
        case 0x0A, 0x0B, 0x0C, 0x1C, 0x1D, 0x1E, 0x85, 0x2028, 0x2029: breakLength = 1
        default: break
        }
        if breakLength > 0 {
            lines.append(makeString(h[start..<(keepEnds ? i + breakLength : i)]))
            i += breakLength
            start = i
        } else {
            i += 1
        }
    }
    if start < h.count { lines.append(makeString(h[start...])) }
    return lines
}

/// Python `str.center(width, fill)`, including CPython's odd-width bias.
func pythonCenter(_ s: String, _ width: Int, fill: Unicode.Scalar = " ") -> String {
    let length = s.unicodeScalars.count
    guard width > length else { return s }
    let margin = width - length
    let left = margin / 2 + (margin & width & 1)
    return makeString(Array(repeating: fill, count: left)) + s
        + makeString(Array(repeating: fill, count: margin - left))
}

/// Python `\w` in a str regex: letters, digits, marks, connector punctuation (underscore).
func isPythonWordCharacter(_ c: Unicode.Scalar) -> Bool {
    if c.isASCII {
        return c == "_" || (c >= "0" && c <= "9") || (c >= "a" && c <= "z") || (c >= "A" && c <= "Z")
    }
    switch c.properties.generalCategory {
    case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter,
        .decimalNumber, .letterNumber, .otherNumber, .nonspacingMark, .spacingMark, .enclosingMark,
        .connectorPunctuation:
        return true
    default:
        return false
    }
}

/// Python `str.isdigit()`-style predicates over a whole string (false for the empty string).
func pythonStringPredicate(_ s: String, _ name: String) -> Bool? {
    let h = scalars(s)
    func all(_ f: (Unicode.Scalar) -> Bool) -> Bool { !h.isEmpty && h.allSatisfy(f) }
    switch name {
    case "isdigit", "isdecimal", "isnumeric":
        return all { c in
            switch c.properties.numericType {
            case .decimal?: return true
            case .digit?: return name != "isdecimal"
            case .numeric?: return name == "isnumeric"
            default: return false
            }
        }
    case "isalpha": return all { $0.properties.isAlphabetic && $0.properties.generalCategory.isLetter }
    case "isalnum": return all { $0.properties.generalCategory.isLetter || $0.properties.numericType != nil }
    case "isspace": return all(isPythonSpace)
    case "isupper", "islower":
        let cased = h.filter { $0.properties.isCased }
        guard !cased.isEmpty else { return false }
        let upper = name == "isupper"
        return h.allSatisfy { c in
            if upper { return !c.properties.isLowercase || !c.properties.isCased }
            return !c.properties.isUppercase && c.properties.generalCategory != .titlecaseLetter
        }
    default: return nil
    }
}

extension Unicode.GeneralCategory {
    var isLetter: Bool {
        switch self {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter: return true
        default: return false
        }
    }
}
