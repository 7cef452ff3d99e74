// Python methods on the builtin types that templates call: `content.strip()`,
// `message.content.split('</think>')`, `tool.items()`, `message.get('tool_calls')`,
// `'{} {}'.format(a, b)`. In transformers' ImmutableSandboxedEnvironment the list and dict
// methods that mutate (`append`, `pop`, `update`, ...) are unsafe: reading one yields an undefined
// whose use raises "access to attribute 'append' of 'list' object is unsafe.", which is what
// jinja2 does. Python methods that exist but are not implemented here raise an `unsupported`
// error when called, never a wrong result.

enum Methods {
    private static let unsafeList: Set<String> = ["append", "clear", "extend", "insert", "pop", "remove", "reverse", "sort"]
    private static let unsafeDict: Set<String> = ["clear", "pop", "popitem", "setdefault", "update"]
    private static let unimplementedString: Set<String> = [
        "casefold", "encode", "expandtabs", "format_map", "isascii", "isidentifier", "isprintable", "istitle",
        "maketrans", "swapcase", "translate",
    ]

    static func bind(_ object: Value, _ name: String) -> Value? {
        switch object {
        case .string(let s): return stringMethod(s, name)
        case .list(let items):
            if unsafeList.contains(name) { return unsafe(object, name) }
            return sequenceMethod(items, name, isList: true)
        case .tuple(let items): return sequenceMethod(items, name, isList: false)
        case .dict(let d):
            if unsafeDict.contains(name) { return unsafe(object, name) }
            return dictMethod(d, name)
        default: return nil
        }
    }

    private static func unsafe(_ object: Value, _ name: String) -> Value {
        .undefined(UndefinedInfo(
            message: "access to attribute \(pythonRepr(name)) of \(pythonRepr(object.typeName)) object is unsafe.",
            isSecurity: true))
    }

    private static func method(_ name: String, _ body: @escaping (Interpreter, ArgumentReader) throws -> Value) -> Value {
        .callable(CallableObject(name, kind: .method) { interpreter, args in
            try body(interpreter, ArgumentReader(name, args))
        })
    }

    // MARK: - str

    private static func stringMethod(_ s: String, _ name: String) -> Value? {
        switch name {
        case "upper": return method(name) { _, a in try a.done(); return .string(pythonUpper(s)) }
        case "lower": return method(name) { _, a in try a.done(); return .string(pythonLower(s)) }
        case "title": return method(name) { _, a in try a.done(); return .string(pythonTitle(s)) }
        case "capitalize": return method(name) { _, a in try a.done(); return .string(pythonCapitalize(s)) }
        case "strip", "lstrip", "rstrip":
            return method(name) { _, a in
                let chars = try a.optionalString(0, "chars")
                try a.done(max: 1)
                return .string(pythonStrip(s, chars, left: name != "rstrip", right: name != "lstrip"))
            }
        case "split", "rsplit":
            return method(name) { _, a in
                let sep = try a.optionalString(0, "sep")
                let maxSplit = try a.int(1, "maxsplit", default: -1)
                try a.done(max: 2)
                let parts = name == "split" ? try pythonSplit(s, sep, maxSplit: maxSplit) : try pythonRSplit(s, sep, maxSplit: maxSplit)
                return .list(parts.map { .string($0) })
            }
        case "splitlines":
            return method(name) { _, a in
                let keep = a.value(0, "keepends")?.isTruthy ?? false
                return .list(pythonSplitLines(s, keepEnds: keep).map { .string($0) })
            }
        case "startswith", "endswith":
            return method(name) { _, a in
                guard let prefix = a.value(0, nil) else { throw a.missing("prefix") }
                let h = scalars(s)
                let start = try a.optionalInt(1) ?? 0
                let end = try a.optionalInt(2) ?? h.count
                func norm(_ i: Int) -> Int { i < 0 ? max(0, i + h.count) : min(i, h.count) }
                let region = norm(start) <= norm(end) ? Array(h[norm(start)..<norm(end)]) : []
                let candidates: [Value]
                if case .tuple(let items) = prefix { candidates = items } else { candidates = [prefix] }
                for candidate in candidates {
                    guard case .string(let p) = candidate else {
                        throw JinjaError.render("\(name) first arg must be str or a tuple of str, not \(candidate.typeName)")
                    }
                    let ps = scalars(p)
                    if ps.count <= region.count,
                        name == "startswith" ? region.prefix(ps.count).elementsEqual(ps) : region.suffix(ps.count).elementsEqual(ps)
                    {
                        return .bool(true)
                    }
                }
                return .bool(false)
            }
        case "replace":
            return method(name) { _, a in
                let old = try a.string(0, "old")
                let new = try a.string(1, "new")
                let count = try a.int(2, "count", default: -1)
                return .string(pythonReplace(s, old, new, count: count))
            }
        case "find", "rfind", "index", "rindex":
            return method(name) { _, a in
                let sub = scalars(try a.string(0, "sub"))
                let h = scalars(s)
                let start = try a.optionalInt(1) ?? 0
                let end = try a.optionalInt(2) ?? h.count
                func norm(_ i: Int) -> Int { i < 0 ? max(0, i + h.count) : min(i, h.count) }
                let lo = norm(start)
                let hi = norm(end)
                var found: Int? = nil
                if lo <= hi {
                    let region = Array(h[lo..<hi])
                    found = (name.hasPrefix("r") ? rfindScalars(region, sub) : findScalars(region, sub)).map { $0 + lo }
                }
                if let found { return .int(found) }
                if name.hasSuffix("index") { throw JinjaError.render("substring not found") }
                return .int(-1)
            }
        case "count":
            return method(name) { _, a in .int(pythonCount(s, try a.string(0, "sub"))) }
        case "join":
            return method(name) { _, a in
                guard let iterable = a.value(0, nil) else { throw a.missing("iterable") }
                var parts: [String] = []
                for (i, item) in try iterable.iterate().enumerated() {
                    guard case .string(let part) = item else {
                        throw JinjaError.render("sequence item \(i): expected str instance, \(item.typeName) found")
                    }
                    parts.append(part)
                }
                return .string(parts.joined(separator: s))
            }
        case "format":
            return method(name) { interpreter, a in .string(try pythonStrFormat(s, a.arguments, interpreter)) }
        case "center", "ljust", "rjust":
            return method(name) { _, a in
                let width = try a.int(0, "width", default: 0)
                let fillText = try a.optionalString(1, "fillchar") ?? " "
                guard fillText.unicodeScalars.count == 1, let fill = fillText.unicodeScalars.first else {
                    throw JinjaError.render("The fill character must be exactly one character long")
                }
                let length = s.unicodeScalars.count
                guard width > length else { return .string(s) }
                if name == "center" { return .string(pythonCenter(s, width, fill: fill)) }
                let pad = makeString(Array(repeating: fill, count: width - length))
                return .string(name == "ljust" ? s + pad : pad + s)
            }
        case "zfill":
            return method(name) { _, a in
                let width = try a.int(0, "width", default: 0)
                var h = scalars(s)
                guard width > h.count else { return .string(s) }
                let fill = Array(repeating: Unicode.Scalar("0"), count: width - h.count)
                let signed = h.first == "+" || h.first == "-"
                h.insert(contentsOf: fill, at: signed ? 1 : 0)
                return .string(makeString(h))
            }
        case "removeprefix", "removesuffix":
            return method(name) { _, a in
                let affix = scalars(try a.string(0, "affix"))
                let h = scalars(s)
                if name == "removeprefix", h.starts(with: affix) { return .string(makeString(h.dropFirst(affix.count))) }
                if name == "removesuffix", !affix.isEmpty, h.count >= affix.count, h.suffix(affix.count).elementsEqual(affix) {
                    return .string(makeString(h.dropLast(affix.count)))
                }
                return .string(s)
            }
        case "partition", "rpartition":
            return method(name) { _, a in
                let sep = scalars(try a.string(0, "sep"))
                guard !sep.isEmpty else { throw JinjaError.render("empty separator") }
                let h = scalars(s)
                let found = name == "partition" ? findScalars(h, sep) : rfindScalars(h, sep)
                guard let i = found else {
                    return name == "partition" ? .tuple([.string(s), .string(""), .string("")]) : .tuple([.string(""), .string(""), .string(s)])
                }
                return .tuple([.string(makeString(h[..<i])), .string(makeString(sep)), .string(makeString(h[(i + sep.count)...]))])
            }
        case "isdigit", "isdecimal", "isnumeric", "isalpha", "isalnum", "isspace", "isupper", "islower":
            return method(name) { _, a in
                try a.done()
                return .bool(pythonStringPredicate(s, name) ?? false)
            }
        default:
            if unimplementedString.contains(name) {
                return method(name) { _, _ in throw JinjaError.unsupported("str.\(name)() is not implemented") }
            }
            return nil
        }
    }

    // MARK: - list / tuple

    private static func sequenceMethod(_ items: [Value], _ name: String, isList: Bool) -> Value? {
        switch name {
        case "index":
            return method(name) { _, a in
                guard let x = a.value(0, nil) else { throw a.missing("value") }
                if let i = items.firstIndex(where: { $0.pythonEquals(x) }) { return .int(i) }
                throw JinjaError.render(isList ? "\(try x.pythonRepr()) is not in list" : "tuple.index(x): x not in tuple")
            }
        case "count":
            return method(name) { _, a in
                guard let x = a.value(0, nil) else { throw a.missing("value") }
                return .int(items.filter { $0.pythonEquals(x) }.count)
            }
        case "copy" where isList:
            return method(name) { _, _ in .list(items) }
        default:
            return nil
        }
    }

    // MARK: - dict

    private static func dictMethod(_ d: OrderedDict, _ name: String) -> Value? {
        switch name {
        case "items":
            return method(name) { _, a in
                try a.done()
                return .view(.dictItems, d.pairs.map { .tuple([$0, $1]) })
            }
        case "keys":
            return method(name) { _, a in
                try a.done()
                return .view(.dictKeys, d.keys)
            }
        case "values":
            return method(name) { _, a in
                try a.done()
                return .view(.dictValues, d.values)
            }
        case "get":
            return method(name) { interpreter, a in
                guard let key = a.value(0, nil) else { throw a.missing("key") }
                try interpreter.requireHashable(key)
                return d[key] ?? (a.value(1, nil) ?? .none)
            }
        case "copy":
            return method(name) { _, _ in .dict(d) }
        case "fromkeys":
            return method(name) { _, _ in throw JinjaError.unsupported("dict.fromkeys() is not implemented") }
        default:
            return nil
        }
    }
}

/// Reads Python-style call arguments (positional, or by keyword name).
struct ArgumentReader {
    let function: String
    let arguments: Arguments

    init(_ function: String, _ arguments: Arguments) {
        self.function = function
        self.arguments = arguments
    }

    func value(_ index: Int, _ keyword: String?) -> Value? {
        if index < arguments.positional.count { return arguments.positional[index] }
        if let keyword { return arguments.keyword(keyword) }
        return nil
    }

    func missing(_ name: String) -> JinjaError {
        JinjaError.render("\(function)() missing required argument: \(pythonRepr(name))")
    }

    func done(max: Int = 0) throws {
        if arguments.positional.count > max {
            throw JinjaError.render("\(function)() takes at most \(max) argument\(max == 1 ? "" : "s") (\(arguments.positional.count) given)")
        }
    }

    func string(_ index: Int, _ keyword: String) throws -> String {
        guard let v = value(index, keyword) else { throw missing(keyword) }
        guard case .string(let s) = v else {
            throw JinjaError.render("\(function)() argument \(index + 1) must be str, not \(v.typeName)")
        }
        return s
    }

    func optionalString(_ index: Int, _ keyword: String) throws -> String? {
        guard let v = value(index, keyword), !v.isNone else { return nil }
        guard case .string(let s) = v else {
            throw JinjaError.render("\(function) arg must be None or str")
        }
        return s
    }

    func int(_ index: Int, _ keyword: String, default defaultValue: Int) throws -> Int {
        guard let v = value(index, keyword) else { return defaultValue }
        guard let i = v.integer else {
            throw JinjaError.render("\(pythonRepr(v.typeName)) object cannot be interpreted as an integer")
        }
        return i
    }

    func optionalInt(_ index: Int) throws -> Int? {
        guard let v = value(index, nil), !v.isNone else { return nil }
        guard let i = v.integer else {
            throw JinjaError.render("slice indices must be integers or None or have an __index__ method")
        }
        return i
    }
}
