// The interpreter's runtime value: the Python objects a jinja2 template can see while rendering.
// It extends the public ``JinjaValue`` with what only exists during a render: tuples, namespaces,
// callables (globals, macros, bound methods), the `loop` object, one-shot iterators (what jinja2's
// `map`/`select`/`reverse` filters return) and dict views. Equality, ordering, truthiness and
// iteration follow CPython's rules for the corresponding types; jinja2's `Undefined` carries the
// message it would raise when used.
//
// Values live only for one render and never cross threads, so the reference types here are not
// `Sendable`.

/// jinja2's `Undefined`, with the message `_undefined_message` would produce.
struct UndefinedInfo {
    var message: String
    /// Set for the sandbox's "access to attribute ... is unsafe" undefined, whose use raises
    /// `SecurityError` rather than `UndefinedError`.
    var isSecurity = false

    /// `'name' is undefined`.
    static func name(_ name: String) -> UndefinedInfo {
        UndefinedInfo(message: "\(pythonRepr(name)) is undefined")
    }

    /// `'dict object' has no attribute 'x'` / `list object has no element 3`.
    static func missing(_ object: Value, key: Value) -> UndefinedInfo {
        let owner = object.objectTypeRepr
        if case .string(let s) = key {
            return UndefinedInfo(message: "\(pythonRepr(owner)) has no attribute \(pythonRepr(s))")
        }
        return UndefinedInfo(message: "\(owner) has no element \((try? key.pythonRepr()) ?? "?")")
    }

    static func hint(_ message: String) -> UndefinedInfo { UndefinedInfo(message: message) }

    var error: JinjaError { JinjaError(.render, message) }
}

/// A Python dict: insertion-ordered, keys compared with Python equality (`1`, `1.0` and `True` are
/// one key; strings compare by scalars).
struct OrderedDict {
    private(set) var keys: [Value] = []
    private(set) var values: [Value] = []

    init() {}

    init(_ pairs: [(Value, Value)]) {
        for (k, v) in pairs { self[k] = v }
    }

    var count: Int { keys.count }
    var pairs: Zip2Sequence<[Value], [Value]> { zip(keys, values) }

    func index(of key: Value) -> Int? {
        if case .string(let s) = key {
            return keys.firstIndex { if case .string(let t) = $0 { return t.utf8.elementsEqual(s.utf8) } else { return false } }
        }
        return keys.firstIndex { $0.pythonEquals(key) }
    }

    subscript(key: Value) -> Value? {
        get { index(of: key).map { values[$0] } }
        set {
            if let i = index(of: key) {
                if let newValue { values[i] = newValue } else { keys.remove(at: i); values.remove(at: i) }
            } else if let newValue {
                keys.append(key)
                values.append(newValue)
            }
        }
    }

    subscript(string key: String) -> Value? { self[.string(key)] }
}

/// `namespace(...)`: the one mutable object templates may assign attributes on.
final class NamespaceObject {
    var attributes = OrderedDict()
}

/// A built-in function, macro, bound method or `caller`.
final class CallableObject {
    enum Kind { case function, macro, method }
    let name: String
    let kind: Kind
    let function: (Interpreter, Arguments) throws -> Value

    init(_ name: String, kind: Kind = .function, _ function: @escaping (Interpreter, Arguments) throws -> Value) {
        self.name = name
        self.kind = kind
        self.function = function
    }
}

/// A one-shot Python iterator (generator, `list_reverseiterator`): iterating consumes it, as in
/// Python, so `{% set g = xs|select %}{{ g|list }}{{ g|list }}` renders the items once.
final class IteratorObject {
    let typeName: String
    let items: [Value]
    var cursor = 0

    init(_ typeName: String, _ items: [Value]) {
        self.typeName = typeName
        self.items = items
    }

    func drain() -> [Value] {
        defer { cursor = items.count }
        return Array(items[cursor...])
    }
}

/// Objects with attributes provided natively: `loop`, `cycler`, `joiner`.
protocol NativeObject: AnyObject {
    var typeName: String { get }
    func attribute(_ name: String, interpreter: Interpreter) throws -> Value?
    func repr() throws -> String
}

/// Read-only sequence views whose `str()` differs from a list's.
enum ViewKind {
    case dictKeys, dictValues, dictItems
    case range(start: Int, stop: Int, step: Int)

    var typeName: String {
        switch self {
        case .dictKeys: return "dict_keys"
        case .dictValues: return "dict_values"
        case .dictItems: return "dict_items"
        case .range: return "range"
        }
    }
}

struct Arguments {
    var positional: [Value] = []
    var keywords: [(String, Value)] = []

    init(_ positional: [Value] = [], _ keywords: [(String, Value)] = []) {
        self.positional = positional
        self.keywords = keywords
    }

    func keyword(_ name: String) -> Value? { keywords.last { $0.0 == name }?.1 }
}

indirect enum Value {
    case undefined(UndefinedInfo)
    case none
    case bool(Bool)
    case int(Int)
    case double(Double)
    case string(String)
    case list([Value])
    case tuple([Value])
    case dict(OrderedDict)
    case namespace(NamespaceObject)
    case callable(CallableObject)
    case iterator(IteratorObject)
    case view(ViewKind, [Value])
    case native(NativeObject)

    init(_ value: JinjaValue) {
        switch value {
        case .undefined: self = .undefined(UndefinedInfo(message: "value is undefined"))
        case .none: self = .none
        case .bool(let b): self = .bool(b)
        case .int(let i): self = .int(i)
        case .double(let d): self = .double(d)
        case .string(let s): self = .string(s)
        case .array(let items): self = .list(items.map(Value.init))
        case .object(let pairs): self = .dict(OrderedDict(pairs.map { (.string($0.0), Value($0.1)) }))
        }
    }

    var isUndefined: Bool {
        if case .undefined = self { return true }
        return false
    }

    var isNone: Bool {
        if case .none = self { return true }
        return false
    }

    /// `type(x).__name__`.
    var typeName: String {
        switch self {
        case .undefined: return "Undefined"
        case .none: return "NoneType"
        case .bool: return "bool"
        case .int: return "int"
        case .double: return "float"
        case .string: return "str"
        case .list: return "list"
        case .tuple: return "tuple"
        case .dict: return "dict"
        case .namespace: return "TemplateNamespace"
        case .callable(let c):
            switch c.kind {
            case .macro: return "Macro"
            case .method: return "builtin_function_or_method"
            case .function: return "function"
            }
        case .iterator(let it): return it.typeName
        case .view(let kind, _): return kind.typeName
        case .native(let n): return n.typeName
        }
    }

    /// jinja2 `object_type_repr`: `"dict object"`, or `"None"` for None.
    var objectTypeRepr: String {
        switch self {
        case .none: return "None"
        case .namespace: return "transformers.utils.chat_template_utils.TemplateNamespace object"
        case .native(let n) where n.typeName == "LoopContext": return "jinja2.runtime.LoopContext object"
        default: return "\(typeName) object"
        }
    }

    /// Python `bool(x)`.
    var isTruthy: Bool {
        switch self {
        case .undefined, .none: return false
        case .bool(let b): return b
        case .int(let i): return i != 0
        case .double(let d): return d != 0
        case .string(let s): return !s.isEmpty
        case .list(let items), .tuple(let items), .view(_, let items): return !items.isEmpty
        case .dict(let d): return d.count > 0
        case .namespace, .callable, .iterator, .native: return true
        }
    }

    /// A number as Double for mixed arithmetic (bool counts as int, as in Python).
    var numeric: Double? {
        switch self {
        case .bool(let b): return b ? 1 : 0
        case .int(let i): return Double(i)
        case .double(let d): return d
        default: return nil
        }
    }

    /// An exact integer for int and bool.
    var integer: Int? {
        switch self {
        case .bool(let b): return b ? 1 : 0
        case .int(let i): return i
        default: return nil
        }
    }

    // MARK: - Equality and ordering

    /// Python `==`.
    func pythonEquals(_ other: Value) -> Bool {
        switch (self, other) {
        case (.undefined, .undefined), (.none, .none): return true
        case (.string(let a), .string(let b)): return a.utf8.elementsEqual(b.utf8)
        case (.list(let a), .list(let b)), (.tuple(let a), .tuple(let b)):
            return a.count == b.count && zip(a, b).allSatisfy { $0.pythonEquals($1) }
        case (.dict(let a), .dict(let b)):
            guard a.count == b.count else { return false }
            for (k, v) in a.pairs {
                guard let w = b[k], v.pythonEquals(w) else { return false }
            }
            return true
        case (.namespace(let a), .namespace(let b)): return a === b
        case (.callable(let a), .callable(let b)): return a === b
        case (.iterator(let a), .iterator(let b)): return a === b
        case (.native(let a), .native(let b)): return a === b
        case (.view(.dictKeys, let a), .view(.dictKeys, let b)), (.view(.dictItems, let a), .view(.dictItems, let b)):
            return a.count == b.count && a.allSatisfy { x in b.contains { $0.pythonEquals(x) } }
        case (.view(.range, let a), .view(.range, let b)):
            return a.count == b.count && zip(a, b).allSatisfy { $0.pythonEquals($1) }
        default:
            if let x = integer, let y = other.integer { return x == y }
            if let x = numeric, let y = other.numeric {
                // Python compares int and float exactly.
                if let i = integer, case .double(let d) = other { return exactEquals(i, d) }
                if case .double(let d) = self, let i = other.integer { return exactEquals(i, d) }
                return x == y
            }
            return false
        }
    }

    private func exactEquals(_ i: Int, _ d: Double) -> Bool {
        guard d.isFinite, d == d.rounded(.towardZero), d >= -9.223372036854775808e18, d < 9.223372036854775808e18
        else { return false }
        return Int(d) == i
    }

    /// Python `<`, raising `TypeError` for unorderable types.
    func pythonLess(_ other: Value) throws -> Bool { try pythonOrder(.less, other) }

    /// Python's ordering comparisons (`<`, `<=`, `>`, `>=`) with CPython's rules: numbers compare
    /// by value, strings by code point, lists and tuples lexicographically by their first unequal
    /// elements (compared with the same operator), anything else raises `TypeError` naming the
    /// operand types in source order.
    func pythonOrder(_ op: CompareOperator, _ other: Value) throws -> Bool {
        func result<T: Comparable>(_ x: T, _ y: T) -> Bool {
            switch op {
            case .less: return x < y
            case .lessEqual: return x <= y
            case .greater: return x > y
            default: return x >= y
            }
        }
        switch (self, other) {
        case (.undefined(let u), _), (_, .undefined(let u)): throw u.error
        case (.string(let a), .string(let b)):
            let x = Array(a.utf8)
            let y = Array(b.utf8)
            if x == y { return op == .lessEqual || op == .greaterEqual }
            let less = x.lexicographicallyPrecedes(y)
            return op == .less || op == .lessEqual ? less : !less
        case (.list(let a), .list(let b)), (.tuple(let a), .tuple(let b)):
            for (x, y) in zip(a, b) where !x.pythonEquals(y) { return try x.pythonOrder(op, y) }
            return result(a.count, b.count)
        default:
            if let x = integer, let y = other.integer { return result(x, y) }
            if let x = numeric, let y = other.numeric { return result(x, y) }
            throw JinjaError.render(
                "'\(op.rawValue)' not supported between instances of '\(typeName)' and '\(other.typeName)'")
        }
    }

    // MARK: - Iteration and length

    /// The items `for x in value` visits. Dicts yield keys, strings yield characters (Unicode
    /// scalars, as Python strings are code-point sequences), undefined yields nothing.
    func iterate() throws -> [Value] {
        switch self {
        case .undefined: return []
        case .list(let items), .tuple(let items), .view(_, let items): return items
        case .string(let s): return s.unicodeScalars.map { .string(String($0)) }
        case .dict(let d): return d.keys
        case .iterator(let it): return it.drain()
        case .native(let n) where n.typeName == "Cycler":
            throw JinjaError.render("'Cycler' object is not iterable")
        default:
            throw JinjaError.render("\(FinchJinja.pythonRepr(typeName)) object is not iterable")
        }
    }

    /// Python `len(x)`; undefined has length 0 in jinja2.
    func length() throws -> Int {
        switch self {
        case .undefined: return 0
        case .string(let s): return s.unicodeScalars.count
        case .list(let items), .tuple(let items), .view(_, let items): return items.count
        case .dict(let d): return d.count
        default: throw JinjaError.render("object of type \(FinchJinja.pythonRepr(typeName)) has no len()")
        }
    }

    /// Raises Python's `TypeError` for values that cannot be dict keys.
    func requireHashable() throws {
        switch self {
        case .list, .dict, .view:
            throw JinjaError.render("unhashable type: \(FinchJinja.pythonRepr(typeName))")
        case .tuple(let items): try items.forEach { try $0.requireHashable() }
        default: break
        }
    }

    /// Python `x in container`.
    func contains(_ item: Value) throws -> Bool {
        switch self {
        case .undefined: return false
        case .string(let s):
            guard case .string(let needle) = item else {
                throw JinjaError.render("'in <string>' requires string as left operand, not \(item.typeName)")
            }
            return pythonFind(s, needle) != nil
        case .list(let items), .tuple(let items), .view(_, let items):
            return items.contains { $0.pythonEquals(item) }
        case .dict(let d):
            try item.requireHashable()
            return d.index(of: item) != nil
        case .iterator(let it):
            while it.cursor < it.items.count {
                let x = it.items[it.cursor]
                it.cursor += 1
                if x.pythonEquals(item) { return true }
            }
            return false
        default:
            throw JinjaError.render("argument of type \(FinchJinja.pythonRepr(typeName)) is not iterable")
        }
    }
}

extension JinjaValue {
    /// Converts a runtime value back into data, for values that are plain data.
    init?(_ value: FinchJinja.Value) {
        switch value {
        case .undefined: self = .undefined
        case .none: self = .none
        case .bool(let b): self = .bool(b)
        case .int(let i): self = .int(i)
        case .double(let d): self = .double(d)
        case .string(let s): self = .string(s)
        case .list(let items), .tuple(let items):
            var out: [JinjaValue] = []
            for item in items {
                guard let v = JinjaValue(item) else { return nil }
                out.append(v)
            }
            self = .array(out)
        case .dict(let d):
            var out: [(String, JinjaValue)] = []
            for (k, v) in d.pairs {
                guard case .string(let key) = k, let converted = JinjaValue(v) else { return nil }
                out.append((key, converted))
            }
            self = .object(out)
        default: return nil
        }
    }
}
