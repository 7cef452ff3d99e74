// jinja2's built-in filters (jinja2/filters.py, 3.1) with transformers' `tojson` override. Each
// filter reproduces the Python function's argument handling and return type, including the
// details that leak into output:
//
// - `map`, `select`, `reject`, `selectattr`, `rejectattr`, `unique`, `batch`, `slice` and `items`
//   return one-shot generators (always truthy, no `len()`, cannot be printed without `|list`);
//   `reverse` returns a reverse iterator for sequences and a string for strings.
// - `default` only replaces undefined unless its second argument is true.
// - `join`, `string`, `replace`, `trim` convert with `str()` (so `None` becomes "None").
// - `sort`, `dictsort`, `unique`, `min` and `max` lower-case strings unless `case_sensitive`.
// - `round` rounds half to even on the exact binary value, as Python's `round()` does.
//
// `escape`/`safe` return plain strings: transformers never autoescapes, and the Markup class's
// escaping on `+`/`%` is not modelled. Filters jinja2 has but this file does not implement
// (`groupby`, `pprint`, `random`, `striptags`, `urlencode`, `urlize`, `wordwrap`, `xmlattr`,
// `filesizeformat`) raise an `unsupported` error when called.

enum Filters {
    /// Every filter name the transformers environment knows, for jinja2's compile-time check.
    static let jinjaFilterNames: Set<String> = [
        "abs", "attr", "batch", "capitalize", "center", "count", "d", "default", "dictsort", "e", "escape",
        "filesizeformat", "first", "float", "forceescape", "format", "groupby", "indent", "int", "join", "last",
        "length", "list", "lower", "items", "map", "min", "max", "pprint", "random", "reject", "rejectattr",
        "replace", "reverse", "round", "safe", "select", "selectattr", "slice", "sort", "string", "striptags",
        "sum", "title", "trim", "truncate", "unique", "upper", "urlencode", "urlize", "wordcount", "wordwrap",
        "xmlattr", "tojson",
    ]

    static func apply(_ name: String, _ value: Value, _ args: Arguments, _ interpreter: Interpreter) throws -> Value {
        let a = ArgumentReader(name, args)
        switch name {
        case "abs":
            switch value {
            case .int(let i):
                guard i != Int.min else { throw JinjaError.unsupported("integer overflow") }
                return .int(abs(i))
            case .bool(let b): return .int(b ? 1 : 0)
            case .double(let d): return .double(d.magnitude)
            default: throw JinjaError.render("bad operand type for abs(): \(pythonRepr(value.typeName))")
            }
        case "attr":
            guard let attributeName = a.value(0, "name") else { throw a.missing("name") }
            let attribute = try attributeName.pythonStr()
            if case .dict = value { return Methods.bind(value, attribute) ?? .undefined(.missing(value, key: .string(attribute))) }
            if case .undefined(let u) = value { throw u.error }
            return try interpreter.attribute(of: value, attribute)
        case "batch": return try batch(value, a)
        case "capitalize": return .string(pythonCapitalize(try value.pythonStr()))
        case "center":
            return .string(pythonCenter(try value.pythonStr(), try a.int(0, "width", default: 80)))
        case "count", "length":
            return .int(try value.length())
        case "d", "default":
            let fallback = a.value(0, "default_value") ?? .string("")
            let boolean = a.value(1, "boolean")?.isTruthy ?? false
            if value.isUndefined || (boolean && !value.isTruthy) { return fallback }
            return value
        case "dictsort": return try dictsort(value, a)
        case "e", "escape", "forceescape":
            return .string(htmlEscape(try value.pythonStr()))
        case "first":
            if case .undefined = value { return .undefined(.hint("No first item, sequence was empty.")) }
            if case .iterator(let it) = value {
                guard it.cursor < it.items.count else { return .undefined(.hint("No first item, sequence was empty.")) }
                it.cursor += 1
                return it.items[it.cursor - 1]
            }
            return try value.iterate().first ?? .undefined(.hint("No first item, sequence was empty."))
        case "last":
            switch value {
            case .undefined, .string, .list, .tuple, .dict, .view:
                return try value.iterate().last ?? .undefined(.hint("No last item, sequence was empty."))
            default:
                throw JinjaError.render("\(pythonRepr(value.typeName)) object is not reversible")
            }
        case "float":
            let fallback = a.value(0, "default") ?? .double(0)
            if case .undefined(let u) = value { throw u.error }
            return pythonFloat(value).map { .double($0) } ?? fallback
        case "format":
            if !args.positional.isEmpty, !args.keywords.isEmpty {
                throw JinjaError.render("can't handle positional and keyword arguments at the same time")
            }
            let values: Value = args.keywords.isEmpty
                ? .tuple(args.positional) : .dict(OrderedDict(args.keywords.map { (.string($0.0), $0.1) }))
            return .string(try pythonPercentFormat(try value.pythonStr(), values))
        case "indent":
            // jinja2 appends "\n" to the value itself (`s += newline`), so only strings work.
            guard case .string(let text) = value else {
                switch value {
                case .undefined(let u): throw u.error
                case .list: throw JinjaError.render("'list' object has no attribute 'splitlines'")
                case .tuple: throw JinjaError.render("can only concatenate tuple (not \"str\") to tuple")
                default:
                    throw JinjaError.render("unsupported operand type(s) for +=: \(pythonRepr(value.typeName)) and 'str'")
                }
            }
            return .string(try indent(text, a))
        case "int": return try toInt(value, a)
        case "items":
            if case .undefined = value { return .iterator(IteratorObject("generator", [])) }
            guard case .dict(let d) = value else { throw JinjaError.render("Can only get item pairs from a mapping.") }
            return .iterator(IteratorObject("generator", d.pairs.map { .tuple([$0, $1]) }))
        case "join":
            var items = try value.iterate()
            if let attribute = a.value(1, "attribute"), !attribute.isNone {
                items = try items.map { try attributeGetter(attribute, interpreter)($0) }
            }
            let separator = try (a.value(0, "d") ?? .string("")).pythonStr()
            return .string(try items.map { try $0.pythonStr() }.joined(separator: separator))
        case "list": return .list(try value.iterate())
        case "lower": return .string(pythonLower(try value.pythonStr()))
        case "upper": return .string(pythonUpper(try value.pythonStr()))
        case "map": return try map(value, args, interpreter)
        case "min", "max": return try minMax(value, a, interpreter, isMax: name == "max")
        case "select", "reject", "selectattr", "rejectattr":
            return try selectOrReject(value, args, interpreter, lookupAttribute: name.hasSuffix("attr"),
                                      keep: name.hasPrefix("select"))
        case "replace":
            let old = try (a.value(0, "old") ?? .string("")).pythonStr()
            let new = try (a.value(1, "new") ?? .string("")).pythonStr()
            let count = a.value(2, "count").flatMap { $0.isNone ? nil : $0.integer } ?? -1
            return .string(pythonReplace(try value.pythonStr(), old, new, count: count))
        case "reverse": return try reverse(value)
        case "round": return try round(value, a)
        case "safe": return .string(try value.pythonStr())
        case "slice": return try sliceFilter(value, a)
        case "sort": return try sort(value, a, interpreter)
        case "string": return .string(try value.pythonStr())
        case "sum":
            var items = try value.iterate()
            if let attribute = a.value(0, "attribute"), !attribute.isNone {
                items = try items.map { try attributeGetter(attribute, interpreter)($0) }
            }
            var total = a.value(1, "start") ?? .int(0)
            if case .string = total { throw JinjaError.render("sum() can't sum strings [use ''.join(seq) instead]") }
            for item in items { total = try interpreter.binary(.add, total, item) }
            return total
        case "title": return .string(jinjaTitle(try value.pythonStr()))
        case "trim":
            let chars = a.value(0, "chars").flatMap { v -> String? in if case .string(let s) = v { return s } else { return nil } }
            return .string(pythonStrip(try value.pythonStr(), chars))
        case "truncate": return .string(try truncate(try value.pythonStr(), a))
        case "unique": return try unique(value, a, interpreter)
        case "wordcount":
            var count = 0
            var inWord = false
            for c in try value.pythonStr().unicodeScalars {
                let word = isPythonWordCharacter(c)
                if word, !inWord { count += 1 }
                inWord = word
            }
            return .int(count)
        case "tojson": return .string(try toJSON(value, a))
        case "groupby", "pprint", "random", "striptags", "urlencode", "urlize", "wordwrap", "xmlattr", "filesizeformat":
            throw JinjaError.unsupported("the '\(name)' filter is not implemented")
        default:
            throw JinjaError.render("No filter named \(pythonRepr(name)) found.")
        }
    }

    // MARK: - Helpers shared with tests

    /// jinja2 `make_attrgetter`: `"a.b.0"` walks items/attributes; digit parts are indices.
    static func attributeGetter(_ attribute: Value, _ interpreter: Interpreter, default fallback: Value? = nil,
                                lowercase: Bool = false) -> (Value) throws -> Value {
        let parts: [Value]
        if case .string(let path) = attribute {
            parts = path.split(separator: ".", omittingEmptySubsequences: false).map { part in
                if let i = Int(part), part.allSatisfy({ $0.isASCII && $0.isNumber }) { return .int(i) }
                return .string(String(part))
            }
        } else {
            parts = [attribute]
        }
        return { item in
            var current = item
            for part in parts {
                current = try interpreter.item(of: current, part)
                if let fallback, !fallback.isNone, current.isUndefined { current = fallback }
            }
            if lowercase, case .string(let s) = current { return .string(pythonLower(s)) }
            return current
        }
    }

    static func ignoreCase(_ v: Value) -> Value {
        if case .string(let s) = v { return .string(pythonLower(s)) }
        return v
    }

    /// A stable merge sort with a throwing Python `<`, reversing the way CPython's `sorted` does.
    static func stableSorted(_ items: [Value], keys: [Value], reverse: Bool) throws -> [Value] {
        var order = Array(items.indices)
        if reverse { order.reverse() }
        func less(_ i: Int, _ j: Int) throws -> Bool { try keys[i].pythonLess(keys[j]) }
        var buffer = order
        var width = 1
        while width < order.count {
            var start = 0
            while start < order.count {
                let mid = min(start + width, order.count)
                let end = min(start + 2 * width, order.count)
                var i = start
                var j = mid
                var k = start
                while i < mid, j < end {
                    if try less(order[j], order[i]) {
                        buffer[k] = order[j]
                        j += 1
                    } else {
                        buffer[k] = order[i]
                        i += 1
                    }
                    k += 1
                }
                while i < mid { buffer[k] = order[i]; i += 1; k += 1 }
                while j < end { buffer[k] = order[j]; j += 1; k += 1 }
                start += 2 * width
            }
            swap(&order, &buffer)
            width *= 2
        }
        if reverse { order.reverse() }
        return order.map { items[$0] }
    }

    // MARK: - Individual filters

    private static func batch(_ value: Value, _ a: ArgumentReader) throws -> Value {
        let size = try a.int(0, "linecount", default: 0)
        guard size > 0 else { throw JinjaError.render("batch size must be positive") }
        let fill = a.value(1, "fill_with")
        var batches: [Value] = []
        var current: [Value] = []
        for item in try value.iterate() {
            if current.count == size {
                batches.append(.list(current))
                current = []
            }
            current.append(item)
        }
        if !current.isEmpty {
            if let fill, !fill.isNone, current.count < size {
                current += Array(repeating: fill, count: size - current.count)
            }
            batches.append(.list(current))
        }
        return .iterator(IteratorObject("generator", batches))
    }

    private static func sliceFilter(_ value: Value, _ a: ArgumentReader) throws -> Value {
        let slices = try a.int(0, "slices", default: 1)
        guard slices > 0 else { throw JinjaError.render("integer division or modulo by zero") }
        let fill = a.value(1, "fill_with")
        let seq = try value.iterate()
        let perSlice = seq.count / slices
        let withExtra = seq.count % slices
        var offset = 0
        var out: [Value] = []
        for n in 0..<slices {
            let start = offset + n * perSlice
            if n < withExtra { offset += 1 }
            let end = offset + (n + 1) * perSlice
            var part = Array(seq[min(start, seq.count)..<min(end, seq.count)])
            if let fill, !fill.isNone, n >= withExtra { part.append(fill) }
            out.append(.list(part))
        }
        return .iterator(IteratorObject("generator", out))
    }

    private static func dictsort(_ value: Value, _ a: ArgumentReader) throws -> Value {
        guard case .dict(let d) = value else {
            if case .undefined(let u) = value { throw u.error }
            throw JinjaError.render("\(pythonRepr(value.typeName)) object has no attribute 'items'")
        }
        let caseSensitive = a.value(0, "case_sensitive")?.isTruthy ?? false
        let by = try (a.value(1, "by") ?? .string("key")).pythonStr()
        guard by == "key" || by == "value" else {
            throw JinjaError.render("You can only sort by either 'key' or 'value'")
        }
        let reverse = a.value(2, "reverse")?.isTruthy ?? false
        let items = d.pairs.map { Value.tuple([$0, $1]) }
        let keys = d.pairs.map { pair -> Value in
            let v = by == "key" ? pair.0 : pair.1
            return caseSensitive ? v : ignoreCase(v)
        }
        return .list(try stableSorted(items, keys: keys, reverse: reverse))
    }

    private static func map(_ value: Value, _ args: Arguments, _ interpreter: Interpreter) throws -> Value {
        guard value.isTruthy else { return .iterator(IteratorObject("generator", [])) }
        let items = try value.iterate()
        if args.positional.isEmpty, let attribute = args.keyword("attribute") {
            let fallback = args.keyword("default")
            if let extra = args.keywords.first(where: { $0.0 != "attribute" && $0.0 != "default" }) {
                throw JinjaError.render("Unexpected keyword argument \(pythonRepr(extra.0))")
            }
            let getter = attributeGetter(attribute, interpreter, default: fallback)
            return .iterator(IteratorObject("generator", try items.map(getter)))
        }
        guard case .string(let filter)? = args.positional.first else {
            throw JinjaError.render("map requires a filter argument")
        }
        let rest = Arguments(Array(args.positional.dropFirst()), args.keywords)
        return .iterator(IteratorObject("generator", try items.map { try apply(filter, $0, rest, interpreter) }))
    }

    private static func selectOrReject(_ value: Value, _ args: Arguments, _ interpreter: Interpreter,
                                       lookupAttribute: Bool, keep: Bool) throws -> Value {
        guard value.isTruthy else { return .iterator(IteratorObject("generator", [])) }
        var transform: (Value) throws -> Value = { $0 }
        var offset = 0
        if lookupAttribute {
            guard let attribute = args.positional.first else {
                throw JinjaError.render("Missing parameter for attribute name")
            }
            transform = attributeGetter(attribute, interpreter)
            offset = 1
        }
        var predicate: (Value) throws -> Bool = { $0.isTruthy }
        if args.positional.count > offset {
            let test = try args.positional[offset].pythonStr()
            let rest = Arguments(Array(args.positional.dropFirst(offset + 1)), args.keywords)
            predicate = { try TestFunctions.apply(test, $0, rest, interpreter) }
        }
        let kept = try value.iterate().filter { try predicate(try transform($0)) == keep }
        return .iterator(IteratorObject("generator", kept))
    }

    private static func minMax(_ value: Value, _ a: ArgumentReader, _ interpreter: Interpreter, isMax: Bool) throws -> Value {
        let items = try value.iterate()
        guard !items.isEmpty else { return .undefined(.hint("No aggregated item, sequence was empty.")) }
        let caseSensitive = a.value(0, "case_sensitive")?.isTruthy ?? false
        let getter: (Value) throws -> Value
        if let attribute = a.value(1, "attribute"), !attribute.isNone {
            getter = attributeGetter(attribute, interpreter, lowercase: !caseSensitive)
        } else {
            getter = { caseSensitive ? $0 : ignoreCase($0) }
        }
        var best = items[0]
        var bestKey = try getter(best)
        for item in items.dropFirst() {
            let key = try getter(item)
            if try key.pythonOrder(isMax ? .greater : .less, bestKey) {
                best = item
                bestKey = key
            }
        }
        return best
    }

    private static func reverse(_ value: Value) throws -> Value {
        switch value {
        case .string(let s): return .string(makeString(s.unicodeScalars.reversed()))
        case .list(let items): return .iterator(IteratorObject("list_reverseiterator", items.reversed()))
        case .tuple(let items): return .iterator(IteratorObject("reversed", items.reversed()))
        case .dict(let d): return .iterator(IteratorObject("dict_reversekeyiterator", d.keys.reversed()))
        case .view(let kind, let items):
            let name: String
            switch kind {
            case .dictKeys: name = "dict_reversekeyiterator"
            case .dictValues: name = "dict_reversevalueiterator"
            case .dictItems: name = "dict_reverseitemiterator"
            case .range: name = "range_iterator"
            }
            return .iterator(IteratorObject(name, items.reversed()))
        case .undefined: return .iterator(IteratorObject("reversed", []))
        default:
            do {
                return .list(try value.iterate().reversed())
            } catch {
                throw JinjaError.render("argument must be iterable")
            }
        }
    }

    private static func round(_ value: Value, _ a: ArgumentReader) throws -> Value {
        let precision = try a.int(0, "precision", default: 0)
        let method = try (a.value(1, "method") ?? .string("common")).pythonStr()
        guard ["common", "ceil", "floor"].contains(method) else {
            throw JinjaError.render("method must be common, ceil or floor")
        }
        guard let x = value.numeric else {
            throw JinjaError.render("type \(value.typeName) doesn't define __round__ method")
        }
        if method != "common" {
            var scale = 1.0
            for _ in 0..<abs(precision) { scale *= 10 }
            if precision < 0 { scale = 1 / scale }
            let scaled = x * scale
            let rounded = method == "ceil" ? scaled.rounded(.up) : scaled.rounded(.down)
            return .double(rounded / scale)
        }
        if let i = value.integer {
            guard precision >= 0 else { throw JinjaError.unsupported("round() of an int with negative precision is not implemented") }
            return .int(i)
        }
        guard precision >= 0 else { throw JinjaError.unsupported("round() with negative precision is not implemented") }
        guard x.isFinite else { return .double(x) }
        return .double(Double(cFormat("%.\(precision)f", x)) ?? x)
    }

    private static func sort(_ value: Value, _ a: ArgumentReader, _ interpreter: Interpreter) throws -> Value {
        let items = try value.iterate()
        let reverse = a.value(0, "reverse")?.isTruthy ?? false
        let caseSensitive = a.value(1, "case_sensitive")?.isTruthy ?? false
        var keys: [Value]
        if let attribute = a.value(2, "attribute"), !attribute.isNone {
            var getters: [(Value) throws -> Value] = []
            if case .string(let spec) = attribute, spec.contains(",") {
                getters = spec.split(separator: ",").map { attributeGetter(.string(String($0)), interpreter, lowercase: !caseSensitive) }
            } else {
                getters = [attributeGetter(attribute, interpreter, lowercase: !caseSensitive)]
            }
            keys = try items.map { item in
                getters.count == 1 ? try getters[0](item) : .list(try getters.map { try $0(item) })
            }
        } else {
            keys = caseSensitive ? items : items.map(ignoreCase)
        }
        return .list(try stableSorted(items, keys: keys, reverse: reverse))
    }

    private static func unique(_ value: Value, _ a: ArgumentReader, _ interpreter: Interpreter) throws -> Value {
        let caseSensitive = a.value(0, "case_sensitive")?.isTruthy ?? false
        let getter: (Value) throws -> Value
        if let attribute = a.value(1, "attribute"), !attribute.isNone {
            getter = attributeGetter(attribute, interpreter, lowercase: !caseSensitive)
        } else {
            getter = { caseSensitive ? $0 : ignoreCase($0) }
        }
        var seen: [Value] = []
        var out: [Value] = []
        for item in try value.iterate() {
            let key = try getter(item)
            try interpreter.requireHashable(key)
            if !seen.contains(where: { $0.pythonEquals(key) }) {
                seen.append(key)
                out.append(item)
            }
        }
        return .iterator(IteratorObject("generator", out))
    }

    private static func indent(_ text: String, _ a: ArgumentReader) throws -> String {
        let indentation: String
        switch a.value(0, "width") {
        case .string(let s)?: indentation = s
        case let v?: indentation = String(repeating: " ", count: max(0, v.integer ?? 4))
        case nil: indentation = "    "
        }
        let first = a.value(1, "first")?.isTruthy ?? false
        let blank = a.value(2, "blank")?.isTruthy ?? false
        var lines = pythonSplitLines(text + "\n")
        var result: String
        if blank {
            result = lines.joined(separator: "\n" + indentation)
        } else {
            result = lines.isEmpty ? "" : lines.removeFirst()
            if !lines.isEmpty {
                result += "\n" + lines.map { $0.isEmpty ? $0 : indentation + $0 }.joined(separator: "\n")
            }
        }
        return first ? indentation + result : result
    }

    private static func truncate(_ s: String, _ a: ArgumentReader) throws -> String {
        let length = try a.int(0, "length", default: 255)
        let killWords = a.value(1, "killwords")?.isTruthy ?? false
        let end = try (a.value(2, "end") ?? .string("...")).pythonStr()
        let leeway = try a.int(3, "leeway", default: 5)
        let h = scalars(s)
        let e = end.unicodeScalars.count
        guard length >= e else { throw JinjaError.render("expected length >= \(e), got \(length)") }
        guard leeway >= 0 else { throw JinjaError.render("expected leeway >= 0, got \(leeway)") }
        if h.count <= length + leeway { return s }
        let head = makeString(h.prefix(length - e))
        if killWords { return head + end }
        return (try pythonRSplit(head, " ", maxSplit: 1).first ?? "") + end
    }

    private static func toInt(_ value: Value, _ a: ArgumentReader) throws -> Value {
        let fallback = a.value(0, "default") ?? .int(0)
        let base = try a.int(1, "base", default: 10)
        switch value {
        case .undefined(let u): throw u.error
        case .int, .bool: return .int(value.integer ?? 0)
        case .double(let d):
            guard d.isFinite else {
                if d.isNaN { return fallback }
                throw JinjaError.render("cannot convert float infinity to integer")
            }
            guard abs(d) < 9.2e18 else { throw JinjaError.unsupported("integer overflow") }
            return .int(Int(d.rounded(.towardZero)))
        case .string(let s):
            if let i = pythonInt(s, base: base) { return .int(i) }
            if let d = pythonFloat(value) {
                if d.isNaN { return fallback }
                guard d.isFinite else { throw JinjaError.render("cannot convert float infinity to integer") }
                guard abs(d) < 9.2e18 else { throw JinjaError.unsupported("integer overflow") }
                return .int(Int(d.rounded(.towardZero)))
            }
            return fallback
        default:
            return fallback
        }
    }

    private static func toJSON(_ value: Value, _ a: ArgumentReader) throws -> String {
        var options = JSONOptions()
        options.ensureASCII = a.value(0, "ensure_ascii")?.isTruthy ?? false
        if let indent = a.value(1, "indent"), !indent.isNone {
            if case .string(let s) = indent {
                options.indent = s
            } else if let n = indent.integer {
                options.indent = String(repeating: " ", count: max(0, n))
            } else {
                throw JinjaError.render("can't multiply sequence by non-int of type \(pythonRepr(indent.typeName))")
            }
            options.itemSeparator = ","
        }
        if let separators = a.value(2, "separators"), !separators.isNone {
            let parts = try separators.iterate()
            guard parts.count == 2, case .string(let item) = parts[0], case .string(let key) = parts[1] else {
                throw JinjaError.render("separators must be a pair of strings")
            }
            options.itemSeparator = item
            options.keySeparator = key
        }
        options.sortKeys = a.value(3, "sort_keys")?.isTruthy ?? false
        return try JSONEncoder.encode(value, options)
    }
}

/// markupsafe `escape`.
func htmlEscape(_ s: String) -> String {
    var out = ""
    for c in s.unicodeScalars {
        switch c {
        case "&": out += "&amp;"
        case "<": out += "&lt;"
        case ">": out += "&gt;"
        case "\"": out += "&#34;"
        case "'": out += "&#39;"
        default: out.unicodeScalars.append(c)
        }
    }
    return out
}

/// jinja2's `title` filter: split on runs of `-`, whitespace, `(`, `{`, `[`, `<` (keeping them),
/// then upper-case the first character of each piece and lower-case the rest.
func jinjaTitle(_ s: String) -> String {
    func isBoundary(_ c: Unicode.Scalar) -> Bool { c == "-" || c == "(" || c == "{" || c == "[" || c == "<" || isPythonSpace(c) }
    var out = ""
    var piece: Scalars = []
    var pieceIsBoundary = false
    func flush() {
        guard let first = piece.first else { return }
        out += pythonUpper(String(first)) + pythonLower(makeString(piece.dropFirst()))
        piece = []
    }
    for c in s.unicodeScalars {
        let boundary = isBoundary(c)
        if !piece.isEmpty, boundary != pieceIsBoundary { flush() }
        pieceIsBoundary = boundary
        piece.append(c)
    }
    flush()
    return out
}

/// Python `int(s, base)` for strings: whitespace, sign, underscores between digits, base prefixes.
func pythonInt(_ s: String, base: Int) -> Int? {
    var text = Substring(pythonStrip(s, nil))
    var negative = false
    if let c = text.first, c == "+" || c == "-" {
        negative = c == "-"
        text = text.dropFirst()
    }
    var radix = base
    let lower = text.lowercased()
    for (prefix, r) in [("0x", 16), ("0o", 8), ("0b", 2)] where lower.hasPrefix(prefix) && (base == r || base == 0) {
        radix = r
        text = text.dropFirst(2)
        if text.first == "_" { text = text.dropFirst() }
    }
    if radix == 0 { radix = 10 }
    guard !text.isEmpty, text.first != "_", text.last != "_", !text.contains("__") else { return nil }
    guard let magnitude = Int(String(text).replacingOccurrences(of: "_", with: ""), radix: radix) else { return nil }
    return negative ? -magnitude : magnitude
}

/// Python `float(x)` for numbers and strings; nil where Python raises TypeError/ValueError.
func pythonFloat(_ value: Value) -> Double? {
    switch value {
    case .bool, .int, .double: return value.numeric
    case .string(let s):
        let text = pythonStrip(s, nil)
        let lower = text.lowercased()
        let unsigned = lower.hasPrefix("+") || lower.hasPrefix("-") ? String(lower.dropFirst()) : lower
        if ["inf", "infinity", "nan"].contains(unsigned) {
            let v: Double = unsigned == "nan" ? .nan : .infinity
            return lower.hasPrefix("-") ? -v : v
        }
        let allowed = Set("0123456789.eE+-_")
        guard !text.isEmpty, text.allSatisfy({ allowed.contains($0) }), !text.contains("__"),
            text.first != "_", text.last != "_"
        else { return nil }
        return Double(text.replacingOccurrences(of: "_", with: ""))
    default:
        return nil
    }
}
