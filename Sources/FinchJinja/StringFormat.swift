// Python `str.format()` (through jinja2's `SandboxedFormatter`, which resolves `{0.attr}` and
// `{0[key]}` with the sandbox's attribute rules) and the format-spec mini-language of `format()`:
// `[[fill]align][sign][#][0][width][,|_][.precision][type]` for str, int and float. Nested
// replacement fields inside a spec (`{:{width}}`) and the locale-dependent `n` type are not
// implemented and raise an `unsupported` error.

func pythonStrFormat(_ format: String, _ args: Arguments, _ interpreter: Interpreter) throws -> String {
    let f = scalars(format)
    var out = ""
    var i = 0
    var autoIndex = 0
    var manual: Bool? = nil
    while i < f.count {
        let c = f[i]
        if c == "}" {
            guard i + 1 < f.count, f[i + 1] == "}" else { throw JinjaError.render("Single '}' encountered in format string") }
            out += "}"
            i += 2
            continue
        }
        guard c == "{" else {
            out.unicodeScalars.append(c)
            i += 1
            continue
        }
        if i + 1 < f.count, f[i + 1] == "{" {
            out += "{"
            i += 2
            continue
        }
        var j = i + 1
        var depth = 1
        while j < f.count {
            if f[j] == "{" { depth += 1 }
            if f[j] == "}" {
                depth -= 1
                if depth == 0 { break }
            }
            j += 1
        }
        guard j < f.count else { throw JinjaError.render("Single '{' encountered in format string") }
        let field = Array(f[(i + 1)..<j])
        i = j + 1
        if field.contains("{") { throw JinjaError.unsupported("nested replacement fields in str.format() are not implemented") }
        var nameEnd = field.count
        var conversion: Unicode.Scalar? = nil
        var spec = ""
        if let colon = field.firstIndex(of: ":") {
            spec = makeString(field[(colon + 1)...])
            nameEnd = colon
        }
        if let bang = field[..<nameEnd].firstIndex(of: "!") {
            guard bang + 1 < nameEnd else { throw JinjaError.render("end of string while looking for conversion specifier") }
            conversion = field[bang + 1]
            nameEnd = bang
        }
        let fieldName = Array(field[..<nameEnd])
        var k = 0
        while k < fieldName.count, fieldName[k] != ".", fieldName[k] != "[" { k += 1 }
        let first = makeString(fieldName[..<k])
        var value: Value
        if first.isEmpty {
            if manual == true {
                throw JinjaError.render("cannot switch from manual field specification to automatic field numbering")
            }
            manual = false
            guard autoIndex < args.positional.count else {
                throw JinjaError.render("Replacement index \(autoIndex) out of range for positional args tuple")
            }
            value = args.positional[autoIndex]
            autoIndex += 1
        } else if let index = Int(first) {
            if manual == false {
                throw JinjaError.render("cannot switch from automatic field numbering to manual field specification")
            }
            manual = true
            guard index < args.positional.count else {
                throw JinjaError.render("Replacement index \(index) out of range for positional args tuple")
            }
            value = args.positional[index]
        } else {
            guard let v = args.keyword(first) else { throw JinjaError.render(pythonRepr(first)) }
            value = v
        }
        while k < fieldName.count {
            if fieldName[k] == "." {
                var e = k + 1
                while e < fieldName.count, fieldName[e] != ".", fieldName[e] != "[" { e += 1 }
                value = try interpreter.attribute(of: value, makeString(fieldName[(k + 1)..<e]))
                k = e
            } else {
                guard let close = fieldName[k...].firstIndex(of: "]") else {
                    throw JinjaError.render("Missing ']' in format string")
                }
                let key = makeString(fieldName[(k + 1)..<close])
                value = try interpreter.item(of: value, Int(key).map { Value.int($0) } ?? .string(key))
                k = close + 1
            }
        }
        switch conversion {
        case nil: break
        case "s": value = .string(try value.pythonStr())
        case "r", "a": value = .string(try value.pythonRepr())
        case let other?:
            throw JinjaError.render("Unknown conversion specifier \(String(other))")
        }
        out += try pythonFormatValue(value, spec)
    }
    return out
}

/// Python `format(value, spec)` for str, int, bool, float and None.
func pythonFormatValue(_ value: Value, _ spec: String) throws -> String {
    if spec.isEmpty { return try value.pythonStr() }
    let s = scalars(spec)
    var i = 0
    var fill: Unicode.Scalar = " "
    var align: Unicode.Scalar? = nil
    let aligns: Set<Unicode.Scalar> = ["<", ">", "^", "="]
    if s.count >= 2, aligns.contains(s[1]) {
        fill = s[0]
        align = s[1]
        i = 2
    } else if !s.isEmpty, aligns.contains(s[0]) {
        align = s[0]
        i = 1
    }
    var sign: Unicode.Scalar = "-"
    if i < s.count, s[i] == "+" || s[i] == "-" || s[i] == " " {
        sign = s[i]
        i += 1
    }
    var alternate = false
    if i < s.count, s[i] == "#" {
        alternate = true
        i += 1
    }
    if i < s.count, s[i] == "0" {
        if align == nil {
            fill = "0"
            align = "="
        }
        i += 1
    }
    var widthText = ""
    while i < s.count, s[i] >= "0", s[i] <= "9" {
        widthText.unicodeScalars.append(s[i])
        i += 1
    }
    var grouping: Unicode.Scalar? = nil
    if i < s.count, s[i] == "," || s[i] == "_" {
        grouping = s[i]
        i += 1
    }
    var precision: Int? = nil
    if i < s.count, s[i] == "." {
        i += 1
        var digits = ""
        while i < s.count, s[i] >= "0", s[i] <= "9" {
            digits.unicodeScalars.append(s[i])
            i += 1
        }
        guard let p = Int(digits) else { throw JinjaError.render("Format specifier missing precision") }
        precision = p
    }
    var type: Unicode.Scalar? = nil
    if i < s.count {
        type = s[i]
        i += 1
    }
    guard i == s.count else { throw JinjaError.render("Invalid format specifier") }
    let width = Int(widthText) ?? 0

    var body: String
    var signText = ""
    var numeric = true
    switch value {
    case .string(let text):
        guard type == nil || type == "s" else {
            throw JinjaError.render("Unknown format code '\(String(type ?? "s"))' for object of type 'str'")
        }
        numeric = false
        body = precision.map { makeString(text.unicodeScalars.prefix($0)) } ?? text
    case .int, .bool:
        let n = value.integer ?? 0
        if case .bool(let b) = value, type == nil { return try pad(b ? "True" : "False", "", width, fill, align ?? "<", false) }
        switch type {
        case nil, "d", "b", "o", "x", "X", "c":
            guard precision == nil else { throw JinjaError.render("Precision not allowed in integer format specifier") }
            if n < 0 { signText = "-" } else if sign == "+" { signText = "+" } else if sign == " " { signText = " " }
            let radix = type == "b" ? 2 : type == "o" ? 8 : (type == "x" || type == "X") ? 16 : 10
            if type == "c" {
                guard let c = Unicode.Scalar(UInt32(clamping: n)) else { throw JinjaError.render("%c arg not in range(0x110000)") }
                return try pad(String(c), "", width, fill, align ?? "<", false)
            }
            body = String(n.magnitude, radix: radix, uppercase: type == "X")
            if let grouping { body = group(body, grouping, every: radix == 10 ? 3 : 4) }
            if alternate, radix != 10 { signText += radix == 2 ? "0b" : radix == 8 ? "0o" : (type == "X" ? "0X" : "0x") }
        case "e", "E", "f", "F", "g", "G", "%":
            return try pythonFormatValue(.double(Double(n)), spec)
        default:
            throw JinjaError.render("Unknown format code '\(String(type ?? "d"))' for object of type 'int'")
        }
    case .double(let d):
        if d < 0 || (d == 0 && d.sign == .minus) { signText = "-" } else if sign == "+" { signText = "+" } else if sign == " " { signText = " " }
        let magnitude = d.magnitude
        switch type {
        case nil:
            if let precision {
                var text = cFormat("%" + (alternate ? "#" : "") + ".\(max(precision, 1))g", magnitude)
                if magnitude.isFinite, !text.contains("."), !text.contains("e") { text += ".0" }
                body = text
            } else {
                body = magnitude.isFinite ? pythonFloatRepr(magnitude) : (magnitude.isNaN ? "nan" : "inf")
            }
        case "e", "E", "f", "F", "g", "G":
            body = cFormat("%" + (alternate ? "#" : "") + ".\(precision ?? 6)" + String(type ?? "f"), magnitude)
        case "%":
            body = cFormat("%" + (alternate ? "#" : "") + ".\(precision ?? 6)f", magnitude * 100) + "%"
        default:
            throw JinjaError.render("Unknown format code '\(String(type ?? "f"))' for object of type 'float'")
        }
        if let grouping {
            let digitsEnd = body.firstIndex(where: { $0 == "." || $0 == "e" || $0 == "E" || $0 == "%" }) ?? body.endIndex
            body = group(String(body[..<digitsEnd]), grouping, every: 3) + body[digitsEnd...]
        }
    case .none:
        throw JinjaError.render("unsupported format string passed to NoneType.__format__")
    default:
        throw JinjaError.unsupported("format() of a \(value.typeName) with a format spec is not implemented")
    }
    return try pad(body, signText, width, fill, align ?? (numeric ? ">" : "<"), numeric)
}

private func group(_ digits: String, _ separator: Unicode.Scalar, every n: Int) -> String {
    let d = scalars(digits)
    var out: Scalars = []
    for (i, c) in d.enumerated() {
        if i > 0, (d.count - i) % n == 0 { out.append(separator) }
        out.append(c)
    }
    return makeString(out)
}

private func pad(_ body: String, _ sign: String, _ width: Int, _ fill: Unicode.Scalar, _ align: Unicode.Scalar,
                 _ numeric: Bool) throws -> String {
    let length = body.unicodeScalars.count + sign.unicodeScalars.count
    guard width > length else { return sign + body }
    let padding = width - length
    func fills(_ n: Int) -> String { makeString(Array(repeating: fill, count: n)) }
    switch align {
    case "<": return sign + body + fills(padding)
    case "^": return fills(padding / 2) + sign + body + fills(padding - padding / 2)
    case "=":
        guard numeric else { throw JinjaError.render("'=' alignment not allowed in string format specifier") }
        return sign + fills(padding) + body
    default: return fills(padding) + sign + body
    }
}
