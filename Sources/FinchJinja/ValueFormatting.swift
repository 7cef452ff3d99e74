// Python's `str()` and `repr()` of template values, which is what `{{ value }}` renders: `None`,
// `True`, `1.0`, `1e+16`, `['a', 1]`, `{'a': None}`, `('x',)`. Floats use CPython's `repr`
// algorithm (shortest round-tripping digits, fixed notation iff -4 <= exponent < 16), taking the
// digits from Swift's own shortest round-trip conversion. Also Python's printf-style `%` formatting,
// used by the `%` operator on strings and by the `format` filter.

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The shortest decimal digits that round-trip `value` (> 0, finite) and the position of the
/// decimal point: value = 0.d1d2...dn × 10^decimalPoint.
private func shortestDigits(_ value: Double) -> (digits: [UInt8], decimalPoint: Int) {
    let text = value.magnitude.description
    var mantissa = Substring(text)
    var exponent = 0
    if let e = text.firstIndex(where: { $0 == "e" || $0 == "E" }) {
        mantissa = text[..<e]
        exponent = Int(text[text.index(after: e)...]) ?? 0
    }
    let parts = mantissa.split(separator: ".", omittingEmptySubsequences: false)
    let integerPart = parts.first.map(String.init) ?? ""
    let fractionPart = parts.count > 1 ? String(parts[1]) : ""
    var digits = Array((integerPart + fractionPart).utf8).map { $0 - 48 }
    var decimalPoint = integerPart.count + exponent
    while digits.first == 0 {
        digits.removeFirst()
        decimalPoint -= 1
    }
    while digits.last == 0 { digits.removeLast() }
    return (digits, decimalPoint)
}

/// CPython `float.__repr__` (also `str()` and `json.dumps` for finite values).
func pythonFloatRepr(_ value: Double) -> String {
    if value.isNaN { return "nan" }
    if value.isInfinite { return value < 0 ? "-inf" : "inf" }
    if value == 0 { return value.sign == .minus ? "-0.0" : "0.0" }
    let (digits, point) = shortestDigits(value)
    let sign = value < 0 ? "-" : ""
    let d = String(decoding: digits.map { $0 + 48 }, as: UTF8.self)
    if point > -4, point <= 16 {
        if point <= 0 { return sign + "0." + String(repeating: "0", count: -point) + d }
        if point >= digits.count { return sign + d + String(repeating: "0", count: point - digits.count) + ".0" }
        let i = d.index(d.startIndex, offsetBy: point)
        return sign + d[..<i] + "." + d[i...]
    }
    let exponent = point - 1
    var mantissa = String(d.prefix(1))
    if digits.count > 1 { mantissa += "." + d.dropFirst() }
    let expDigits = String(abs(exponent))
    return sign + mantissa + "e" + (exponent < 0 ? "-" : "+") + (expDigits.count < 2 ? "0" + expDigits : expDigits)
}

/// C `snprintf` with one double, for correctly rounded `%.Nf`, `%.Ne` and `%.Ng` (glibc rounds
/// the exact binary value half-to-even, as CPython's formatting does).
func cFormat(_ format: String, _ value: Double) -> String {
    var buffer = [CChar](repeating: 0, count: 512)
    let count = withVaList([value]) { args in
        buffer.withUnsafeMutableBufferPointer { vsnprintf($0.baseAddress, 512, format, args) }
    }
    if count >= 512 {
        buffer = [CChar](repeating: 0, count: Int(count) + 1)
        _ = withVaList([value]) { args in
            buffer.withUnsafeMutableBufferPointer { vsnprintf($0.baseAddress, Int(count) + 1, format, args) }
        }
    }
    return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
}

extension Value {
    /// Python `str(x)`; undefined renders as the empty string (jinja2 `Undefined.__str__`).
    func pythonStr() throws -> String {
        switch self {
        case .undefined: return ""
        case .string(let s): return s
        default: return try pythonRepr()
        }
    }

    /// Python `repr(x)`.
    func pythonRepr() throws -> String {
        switch self {
        case .undefined: return "Undefined"
        case .none: return "None"
        case .bool(let b): return b ? "True" : "False"
        case .int(let i): return String(i)
        case .double(let d): return pythonFloatRepr(d)
        case .string(let s): return FinchJinja.pythonRepr(s)
        case .list(let items): return "[" + (try items.map { try $0.pythonRepr() }.joined(separator: ", ")) + "]"
        case .tuple(let items):
            if items.count == 1 { return "(" + (try items[0].pythonRepr()) + ",)" }
            return "(" + (try items.map { try $0.pythonRepr() }.joined(separator: ", ")) + ")"
        case .dict(let d):
            return "{" + (try d.pairs.map { try $0.pythonRepr() + ": " + $1.pythonRepr() }.joined(separator: ", ")) + "}"
        case .namespace(let ns): return "<Namespace " + (try Value.dict(ns.attributes).pythonRepr()) + ">"
        case .view(let kind, let items):
            if case .range(let start, let stop, let step) = kind {
                return step == 1 ? "range(\(start), \(stop))" : "range(\(start), \(stop), \(step))"
            }
            return kind.typeName + "(" + (try Value.list(items).pythonRepr()) + ")"
        case .callable(let c):
            if c.kind == .macro { return "<Macro \(FinchJinja.pythonRepr(c.name))>" }
            throw JinjaError.unsupported(
                "rendering the function object \(FinchJinja.pythonRepr(c.name)) is not supported: Python prints a memory address")
        case .iterator(let it):
            throw JinjaError.unsupported(
                "rendering a \(it.typeName) object is not supported: Python prints a memory address (add '|list')")
        case .native(let n): return try n.repr()
        }
    }
}

// MARK: - printf-style formatting (`str % args`)

/// Python's `str % values`. `values` is a tuple (positional), a dict (for `%(name)s`) or a single
/// value.
func pythonPercentFormat(_ format: String, _ values: Value) throws -> String {
    let f = scalars(format)
    var positional: [Value]
    var mapping: OrderedDict? = nil
    // CPython treats any non-tuple, non-str argument with `__getitem__` as a mapping: it is still
    // the single positional value, but unused arguments are then not an error.
    var mappingLike = false
    switch values {
    case .tuple(let items): positional = items
    case .dict(let d):
        positional = [values]
        mapping = d
        mappingLike = true
    case .list, .undefined, .view(.range, _):
        positional = [values]
        mappingLike = true
    default: positional = [values]
    }
    var next = 0
    var usedMapping = false
    var out = ""
    var i = 0
    func takeArgument() throws -> Value {
        guard next < positional.count else { throw JinjaError.render("not enough arguments for format string") }
        defer { next += 1 }
        return positional[next]
    }
    while i < f.count {
        guard f[i] == "%" else {
            out.unicodeScalars.append(f[i])
            i += 1
            continue
        }
        i += 1
        guard i < f.count else { throw JinjaError.render("incomplete format") }
        var argument: Value? = nil
        if f[i] == "(" {
            guard let mapping else { throw JinjaError.render("format requires a mapping") }
            var depth = 1
            var j = i + 1
            while j < f.count, depth > 0 {
                if f[j] == "(" { depth += 1 } else if f[j] == ")" { depth -= 1 }
                j += 1
            }
            let key = makeString(f[(i + 1)..<(j - 1)])
            guard let value = mapping[string: key] else { throw JinjaError.render(FinchJinja.pythonRepr(key)) }
            argument = value
            usedMapping = true
            i = j
        }
        var flags = Set<Unicode.Scalar>()
        while i < f.count, "-+ #0".unicodeScalars.contains(f[i]) {
            flags.insert(f[i])
            i += 1
        }
        var width: Int? = nil
        if i < f.count, f[i] == "*" {
            width = try takeArgument().integer
            i += 1
        } else {
            var digits = ""
            while i < f.count, f[i].properties.numericType == .decimal, f[i].isASCII {
                digits.unicodeScalars.append(f[i])
                i += 1
            }
            width = Int(digits)
        }
        var precision: Int? = nil
        if i < f.count, f[i] == "." {
            i += 1
            if i < f.count, f[i] == "*" {
                precision = try takeArgument().integer
                i += 1
            } else {
                var digits = ""
                while i < f.count, f[i] >= "0", f[i] <= "9" {
                    digits.unicodeScalars.append(f[i])
                    i += 1
                }
                precision = Int(digits) ?? 0
            }
        }
        while i < f.count, "hlL".unicodeScalars.contains(f[i]) { i += 1 }
        guard i < f.count else { throw JinjaError.render("incomplete format") }
        let type = f[i]
        i += 1
        if type == "%" {
            out += "%"
            continue
        }
        let value = try argument ?? takeArgument()
        var body: String
        var numeric = false
        var negative = false
        switch type {
        case "s": body = try value.pythonStr()
        case "r", "a": body = try value.pythonRepr()
        case "d", "i", "u":
            numeric = true
            let n: Int
            if let x = value.integer {
                n = x
            } else if case .double(let d) = value, d.isFinite {
                n = Int(d.rounded(.towardZero))
            } else {
                throw JinjaError.render("%\(type) format: a real number is required, not \(value.typeName)")
            }
            negative = n < 0
            body = String(n.magnitude)
            if let precision, body.count < precision { body = String(repeating: "0", count: precision - body.count) + body }
        case "x", "X", "o":
            numeric = true
            guard let n = value.integer else {
                throw JinjaError.render("%\(type) format: an integer is required, not \(value.typeName)")
            }
            negative = n < 0
            body = String(n.magnitude, radix: type == "o" ? 8 : 16, uppercase: type == "X")
            if flags.contains("#") { body = (type == "o" ? "0o" : (type == "X" ? "0X" : "0x")) + body }
        case "f", "F", "e", "E", "g", "G":
            numeric = true
            guard let d = value.numeric else {
                throw JinjaError.render("must be real number, not \(value.typeName)")
            }
            negative = d < 0 || (d == 0 && d.sign == .minus)
            body = cFormat("%" + (flags.contains("#") ? "#" : "") + ".\(precision ?? 6)" + String(type), d.magnitude)
        case "c":
            if case .string(let s) = value, s.unicodeScalars.count == 1 {
                body = s
            } else if let n = value.integer, let c = Unicode.Scalar(UInt32(clamping: n)) {
                body = String(c)
            } else {
                throw JinjaError.render("%c requires int or char")
            }
        default:
            throw JinjaError.render("unsupported format character \(FinchJinja.pythonRepr(String(type))) (0x\(String(type.value, radix: 16))) at index \(i - 1)")
        }
        if (type == "s" || type == "r" || type == "a"), let precision {
            body = makeString(body.unicodeScalars.prefix(precision))
        }
        var sign = ""
        if numeric {
            if negative { sign = "-" } else if flags.contains("+") { sign = "+" } else if flags.contains(" ") { sign = " " }
        }
        let length = sign.unicodeScalars.count + body.unicodeScalars.count
        let pad = max(0, (width ?? 0) - length)
        if flags.contains("-") {
            out += sign + body + String(repeating: " ", count: pad)
        } else if flags.contains("0"), numeric {
            out += sign + String(repeating: "0", count: pad) + body
        } else {
            out += String(repeating: " ", count: pad) + sign + body
        }
    }
    if !usedMapping, !mappingLike, next < positional.count {
        throw JinjaError.render("not all arguments converted during string formatting")
    }
    return out
}
