// The data a caller hands to a template: the Python objects that transformers' `apply_chat_template`
// passes to jinja2 (`messages`, `tools`, `bos_token`, ...), after `_plain_template_data` has reduced
// them to JSON-like types. This file does not evaluate anything: the interpreter converts a
// `JinjaValue` into its richer internal `Value` (which adds callables, namespaces and loop objects).

/// A template variable: the JSON-like subset of Python values that chat templates receive.
///
/// The cases mirror the Python types transformers passes to jinja2 after `_plain_template_data`:
/// `None`, `bool`, `int`, `float`, `str`, `list` and `dict`. Dictionaries keep their insertion
/// order, as Python dicts do, because templates iterate them (`tool.items()`, `tojson`) and the
/// order is visible in the output.
///
/// `int` is a 64-bit `Int`: Python integers are unbounded, so arithmetic that overflows throws a
/// ``JinjaError`` instead of wrapping.
public enum JinjaValue: Sendable, Equatable {
    /// jinja2's `Undefined`: renders as an empty string and is falsy. Passing it is the same as not
    /// passing the variable at all.
    case undefined
    /// Python `None`; `{{ none }}` renders `None`.
    case none
    case bool(Bool)
    case int(Int)
    case double(Double)
    case string(String)
    /// A Python list.
    case array([JinjaValue])
    /// A Python dict with string keys, in insertion order. A repeated key keeps its first position
    /// and its last value, as `dict(pairs)` does in Python.
    case object([(String, JinjaValue)])

    /// Structural equality with Python's rules for these types: `1 == 1.0` and `True == 1` hold,
    /// dictionaries compare as unordered maps, and strings compare by Unicode scalars (not by
    /// canonical equivalence, which is what Swift's `String ==` does).
    public static func == (lhs: JinjaValue, rhs: JinjaValue) -> Bool {
        FinchJinja.Value(lhs).pythonEquals(FinchJinja.Value(rhs))
    }

    /// The value for `key` when this is an object, else `nil`.
    public subscript(key: String) -> JinjaValue? {
        guard case .object(let pairs) = self else { return nil }
        return pairs.last(where: { $0.0.utf8.elementsEqual(key.utf8) })?.1
    }

    /// The element at `index` when this is an array and the index is in range, else `nil`.
    public subscript(index: Int) -> JinjaValue? {
        guard case .array(let items) = self, items.indices.contains(index) else { return nil }
        return items[index]
    }

    /// The string payload, or `nil` for any other case.
    public var stringValue: String? {
        if case .string(let s) = self { return s }
        return nil
    }
}

extension JinjaValue: ExpressibleByNilLiteral {
    public init(nilLiteral: ()) { self = .none }
}

extension JinjaValue: ExpressibleByBooleanLiteral {
    public init(booleanLiteral value: Bool) { self = .bool(value) }
}

extension JinjaValue: ExpressibleByIntegerLiteral {
    public init(integerLiteral value: Int) { self = .int(value) }
}

extension JinjaValue: ExpressibleByFloatLiteral {
    public init(floatLiteral value: Double) { self = .double(value) }
}

extension JinjaValue: ExpressibleByStringLiteral {
    public init(stringLiteral value: String) { self = .string(value) }
}

extension JinjaValue: ExpressibleByArrayLiteral {
    public init(arrayLiteral elements: JinjaValue...) { self = .array(elements) }
}

extension JinjaValue: ExpressibleByDictionaryLiteral {
    /// Keeps the literal's order, which is the order a Python dict literal would have.
    public init(dictionaryLiteral elements: (String, JinjaValue)...) { self = .object(elements) }
}

extension JinjaValue: CustomStringConvertible {
    /// Python's `str()` of the value, which is what `{{ value }}` renders.
    public var description: String {
        (try? FinchJinja.Value(self).pythonStr()) ?? ""
    }
}
