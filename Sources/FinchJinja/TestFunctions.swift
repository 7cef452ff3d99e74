// jinja2's built-in tests (jinja2/tests.py, 3.1): `is defined`, `is none`, `is string`,
// `is mapping`, `is divisibleby 3`, `is equalto 'user'`, ... Each mirrors the Python predicate,
// including its less obvious answers: `True is number` and `undefined is iterable` are true,
// `True is integer` is false, and a one-shot generator is iterable but not a sequence.

enum TestFunctions {
    static let jinjaTestNames: Set<String> = [
        "odd", "even", "divisibleby", "defined", "undefined", "filter", "test", "none", "boolean", "false", "true",
        "integer", "float", "number", "string", "mapping", "iterable", "sequence", "callable", "sameas", "escaped",
        "in", "lower", "upper", "eq", "equalto", "==", "ne", "!=", "lt", "lessthan", "<", "le", "<=", "gt",
        "greaterthan", ">", "ge", ">=",
    ]

    static func apply(_ name: String, _ value: Value, _ args: Arguments, _ interpreter: Interpreter) throws -> Bool {
        func argument() throws -> Value {
            guard let v = args.positional.first ?? args.keywords.first?.1 else {
                throw JinjaError.render("\(name)() missing 1 required positional argument")
            }
            return v
        }
        switch name {
        case "defined": return !value.isUndefined
        case "undefined": return value.isUndefined
        case "none": return value.isNone
        case "boolean":
            if case .bool = value { return true }
            return false
        case "false":
            if case .bool(false) = value { return true }
            return false
        case "true":
            if case .bool(true) = value { return true }
            return false
        case "integer":
            if case .int = value { return true }
            return false
        case "float":
            if case .double = value { return true }
            return false
        case "number": return value.numeric != nil
        case "string": return value.isString
        case "mapping":
            if case .dict = value { return true }
            return false
        case "iterable":
            switch value {
            case .undefined, .string, .list, .tuple, .dict, .iterator, .view: return true
            case .native(let n): return n.typeName == "LoopContext"
            default: return false
            }
        case "sequence":
            switch value {
            case .undefined, .string, .list, .tuple, .dict, .view(.range, _): return true
            default: return false
            }
        case "callable":
            switch value {
            case .callable, .undefined: return true
            case .native(let n): return n.typeName == "LoopContext" || n.typeName == "Joiner"
            default: return false
            }
        case "sameas":
            let other = try argument()
            switch (value, other) {
            case (.none, .none): return true
            case (.bool(let a), .bool(let b)): return a == b
            case (.namespace(let a), .namespace(let b)): return a === b
            case (.callable(let a), .callable(let b)): return a === b
            case (.iterator(let a), .iterator(let b)): return a === b
            case (.native(let a), .native(let b)): return a === b
            case (.int(let a), .int(let b)): return a == b && (-5...256).contains(a)
            case (.string(let a), .string(let b)): return a.isEmpty && b.isEmpty
            default: return false
            }
        case "escaped": return false
        case "in": return try argument().contains(value)
        case "divisibleby":
            return try interpreter.binary(.modulo, value, try argument()).pythonEquals(.int(0))
        case "even":
            return try interpreter.binary(.modulo, value, .int(2)).pythonEquals(.int(0))
        case "odd":
            return try interpreter.binary(.modulo, value, .int(2)).pythonEquals(.int(1))
        case "lower": return pythonStringPredicate(try value.pythonStr(), "islower") ?? false
        case "upper": return pythonStringPredicate(try value.pythonStr(), "isupper") ?? false
        case "filter":
            guard case .string(let n) = value else { return false }
            return Filters.jinjaFilterNames.contains(n)
        case "test":
            guard case .string(let n) = value else { return false }
            return jinjaTestNames.contains(n)
        case "eq", "equalto", "==": return try interpreter.compare(.equal, value, try argument())
        case "ne", "!=": return try interpreter.compare(.notEqual, value, try argument())
        case "lt", "lessthan", "<": return try interpreter.compare(.less, value, try argument())
        case "le", "<=": return try interpreter.compare(.lessEqual, value, try argument())
        case "gt", "greaterthan", ">": return try interpreter.compare(.greater, value, try argument())
        case "ge", ">=": return try interpreter.compare(.greaterEqual, value, try argument())
        default:
            throw JinjaError.render("No test named \(pythonRepr(name)) found.")
        }
    }
}
