// The global functions of transformers' chat-template environment (`_compile_jinja_template`):
// jinja2's defaults `range` (the sandbox's `safe_range`, capped at 100000 items), `cycler`,
// `joiner`, plus transformers' `raise_exception`, `strftime_now`, and its `dict` and `namespace`
// (which refuses `_`-prefixed attribute names). `lipsum` is random text and is not supported.

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

enum Globals {
    static func make() -> [String: Value] {
        func function(_ name: String, _ body: @escaping (Interpreter, Arguments) throws -> Value) -> Value {
            .callable(CallableObject(name, body))
        }
        return [
            "range": function("range", range),
            "dict": function("dict") { _, args in .dict(try makeDict(args, checkNames: false)) },
            "namespace": function("namespace") { _, args in
                let ns = NamespaceObject()
                ns.attributes = try makeDict(args, checkNames: true)
                return .namespace(ns)
            },
            "raise_exception": function("raise_exception") { _, args in
                let message = try (args.positional.first ?? args.keyword("message") ?? .none).pythonStr()
                throw JinjaError(.raised, message)
            },
            "strftime_now": function("strftime_now") { _, args in
                guard case .string(let format)? = args.positional.first ?? args.keyword("format") else {
                    throw JinjaError.render("strftime() argument 1 must be str")
                }
                return .string(strftimeNow(format))
            },
            "cycler": function("cycler") { _, args in .native(Cycler(args.positional)) },
            "joiner": function("joiner") { _, args in
                let separator = try (args.positional.first ?? args.keyword("sep") ?? .string(", ")).pythonStr()
                final class State { var used = false }
                let state = State()
                return .callable(CallableObject("joiner") { _, _ in
                    defer { state.used = true }
                    return .string(state.used ? separator : "")
                })
            },
            "lipsum": function("lipsum") { _, _ in throw JinjaError.unsupported("lipsum() produces random text and is not supported") },
        ]
    }

    /// The sandbox's `safe_range`.
    private static func range(_: Interpreter, _ args: Arguments) throws -> Value {
        var ints: [Int] = []
        for v in args.positional {
            guard let i = v.integer else {
                if case .undefined(let u) = v { throw u.error }
                throw JinjaError.render("\(pythonRepr(v.typeName)) object cannot be interpreted as an integer")
            }
            ints.append(i)
        }
        let start: Int
        let stop: Int
        var step = 1
        switch ints.count {
        case 1: (start, stop) = (0, ints[0])
        case 2: (start, stop) = (ints[0], ints[1])
        case 3: (start, stop, step) = (ints[0], ints[1], ints[2])
        case 0: throw JinjaError.render("range expected at least 1 argument, got 0")
        default: throw JinjaError.render("range expected at most 3 arguments, got \(ints.count)")
        }
        guard step != 0 else { throw JinjaError.render("range() arg 3 must not be zero") }
        let count = step > 0 ? max(0, (stop - start + step - 1) / step) : max(0, (start - stop - step - 1) / -step)
        guard count <= 100_000 else {
            throw JinjaError.render("Range too big. The sandbox blocks ranges larger than MAX_RANGE (100000).")
        }
        let items = (0..<count).map { Value.int(start + $0 * step) }
        return .view(.range(start: start, stop: stop, step: step), items)
    }

    /// Python `dict(*args, **kwargs)`; with `checkNames`, transformers' TemplateNamespace check.
    private static func makeDict(_ args: Arguments, checkNames: Bool) throws -> OrderedDict {
        var d = OrderedDict()
        if args.positional.count > 1 {
            throw JinjaError.render("dict expected at most 1 argument, got \(args.positional.count)")
        }
        if let source = args.positional.first {
            if case .dict(let other) = source {
                d = other
            } else {
                for (i, pair) in try source.iterate().enumerated() {
                    let parts = try pair.iterate()
                    guard parts.count == 2 else {
                        throw JinjaError.render("dictionary update sequence element #\(i) has length \(parts.count); 2 is required")
                    }
                    d[parts[0]] = parts[1]
                }
            }
        }
        for (k, v) in args.keywords { d[.string(k)] = v }
        if checkNames {
            for case .string(let name) in d.keys where name.hasPrefix("_") {
                throw JinjaError.render(
                    "Chat templates cannot store underscore-prefixed attributes on a namespace, but got \(pythonRepr(name)). Please rename the attribute.")
            }
        }
        return d
    }

    /// `datetime.now().strftime(format)`: local time through the C library's `strftime`, which is
    /// what CPython calls (in the C locale unless the process changed it).
    static func strftimeNow(_ format: String) -> String {
        var now = time(nil)
        var parts = tm()
        localtime_r(&now, &parts)
        var size = 256
        while size <= 65536 {
            var buffer = [CChar](repeating: 0, count: size)
            let count = strftime(&buffer, size, format, &parts)
            if count > 0 || format.isEmpty {
                return String(decoding: buffer.prefix(count).map { UInt8(bitPattern: $0) }, as: UTF8.self)
            }
            size *= 4
        }
        return ""
    }
}

/// jinja2's `Cycler`: `next()`, `current`, `reset()`.
final class Cycler: NativeObject {
    let items: [Value]
    var position = 0

    init(_ items: [Value]) { self.items = items }

    var typeName: String { "Cycler" }

    func repr() throws -> String {
        throw JinjaError.unsupported("rendering a Cycler object is not supported: Python prints a memory address")
    }

    func attribute(_ name: String, interpreter: Interpreter) throws -> Value? {
        switch name {
        case "current":
            guard !items.isEmpty else { throw JinjaError.render("at least one item has to be provided") }
            return items[position]
        case "next":
            return .callable(CallableObject("next", kind: .method) { [unowned self] _, _ in
                guard !self.items.isEmpty else { throw JinjaError.render("at least one item has to be provided") }
                let value = self.items[self.position]
                self.position = (self.position + 1) % self.items.count
                return value
            })
        case "reset":
            return .callable(CallableObject("reset", kind: .method) { [unowned self] _, _ in
                self.position = 0
                return .none
            })
        default: return nil
        }
    }
}
