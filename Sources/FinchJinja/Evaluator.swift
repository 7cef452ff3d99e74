// Evaluates expressions with Python semantics under transformers' `ImmutableSandboxedEnvironment`:
//
// - `obj.name` tries the attribute first and then the item (so `message.content` reads a dict key
//   but `message.items` is the dict method), `obj[key]` the item first and then the attribute.
//   A miss yields an `Undefined` carrying jinja2's message ("'dict object' has no attribute
//   'x'"); using that undefined (attribute, call, arithmetic) raises it.
// - Methods that mutate lists and dicts (`append`, `pop`, `update`, ...) and `_`-prefixed
//   attributes are "unsafe": reading them gives an undefined and calling them raises jinja2's
//   `SecurityError` text, exactly as transformers' immutable sandbox does.
// - Arithmetic follows CPython: `/` is true division, `//` and `%` floor toward negative infinity,
//   `'%s' % x` is printf formatting, `str * int` repeats, and `True` counts as `1`. Python ints are
//   unbounded; here an overflow throws instead of wrapping.

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

extension Interpreter {
    func eval(_ expr: Expr, _ scope: Scope) throws -> Value {
        // jinja2 folds constant sub-expressions at compile time (see Analysis.swift); only a
        // constant slice can make that differ from evaluating at run time.
        if !compileTimeMode, expr.containsSlice, let folded = compileTimeValue(expr, scope), folded.hasSafeRepr
        {
            return folded
        }
        do {
            return try evaluate(expr, scope)
        } catch let error as JinjaError {
            throw error.located(expr.position)
        }
    }

    private func evaluate(_ expr: Expr, _ scope: Scope) throws -> Value {
        switch expr {
        case .constant(let c, _):
            switch c {
            case .none: return .none
            case .bool(let b): return .bool(b)
            case .int(let i): return .int(i)
            case .double(let d): return .double(d)
            case .string(let s): return .string(s)
            }
        case .name(let name, _):
            if compileTimeMode { throw CompileTimeImpossible() }
            return lookup(name, in: scope)
        case .list(let items, _):
            return .list(try items.map { try eval($0, scope) })
        case .tuple(let items, _):
            return .tuple(try items.map { try eval($0, scope) })
        case .dict(let pairs, _):
            var dict = OrderedDict()
            for (k, v) in pairs {
                let key = try eval(k, scope)
                try requireHashable(key)
                dict[key] = try eval(v, scope)
            }
            return .dict(dict)
        case .getattr(let object, let name, _):
            return try attribute(of: try eval(object, scope), name)
        case .getitem(let object, .slice(let start, let stop, let step, _), _):
            let value = try eval(object, scope)
            let bounds = try [start, stop, step].map { try $0.map { try eval($0, scope) } }
            do {
                return try slice(value, bounds[0], bounds[1], bounds[2])
            } catch let error as JinjaError where compileTimeMode && error.kind == .render && !value.isUndefined {
                // At compile time jinja2 slices through environment.getitem, which turns the
                // TypeError into an undefined.
                let parts = try bounds.map { try ($0 ?? .none).pythonRepr() }
                return .undefined(.hint("\(value.objectTypeRepr) has no element slice(\(parts.joined(separator: ", ")))"))
            }
        case .getitem(let object, let key, _):
            return try item(of: try eval(object, scope), try eval(key, scope))
        case .slice:
            throw JinjaError.unsupported("a slice is only valid inside [...]")
        case .call(let callee, let arguments, _):
            if compileTimeMode { throw CompileTimeImpossible() }
            let function = try eval(callee, scope)
            return try invoke(function, try evalArguments(arguments, scope))
        case .filter(let base, let name, let arguments, _):
            guard let base else { throw JinjaError.render("filter without a value") }
            if compileTimeMode, contextFilters.contains(name) { throw CompileTimeImpossible() }
            let value = try eval(base, scope)
            return try Filters.apply(name, value, try evalArguments(arguments, scope), self)
        case .test(let base, let name, let arguments, _):
            let value = try eval(base, scope)
            return .bool(try TestFunctions.apply(name, value, try evalArguments(arguments, scope), self))
        case .negate(let operand, _):
            switch try eval(operand, scope) {
            case .int(let i):
                guard i != Int.min else { throw overflow() }
                return .int(-i)
            case .bool(let b): return .int(b ? -1 : 0)
            case .double(let d): return .double(-d)
            case .undefined(let u): throw u.error
            case let v: throw JinjaError.render("bad operand type for unary -: \(pythonRepr(v.typeName))")
            }
        case .plus(let operand, _):
            switch try eval(operand, scope) {
            case .int(let i): return .int(i)
            case .bool(let b): return .int(b ? 1 : 0)
            case .double(let d): return .double(d)
            case .undefined(let u): throw u.error
            case let v: throw JinjaError.render("bad operand type for unary +: \(pythonRepr(v.typeName))")
            }
        case .not(let operand, _):
            return .bool(!(try eval(operand, scope).isTruthy))
        case .binary(let op, let lhs, let rhs, _):
            return try binary(op, try eval(lhs, scope), try eval(rhs, scope))
        case .and(let lhs, let rhs, _):
            let left = try eval(lhs, scope)
            return left.isTruthy ? try eval(rhs, scope) : left
        case .or(let lhs, let rhs, _):
            let left = try eval(lhs, scope)
            return left.isTruthy ? left : try eval(rhs, scope)
        case .concat(let items, _):
            var text = ""
            for item in items { text += try eval(item, scope).pythonStr() }
            return .string(text)
        case .compare(let first, let rest, _):
            var left = try eval(first, scope)
            for (op, expr) in rest {
                let right = try eval(expr, scope)
                if !(try compare(op, left, right)) { return .bool(false) }
                left = right
            }
            return .bool(true)
        case .conditional(let test, let then, let otherwise, let position):
            if try eval(test, scope).isTruthy { return try eval(then, scope) }
            if let otherwise { return try eval(otherwise, scope) }
            if compileTimeMode { throw CompileTimeImpossible() }
            return .undefined(.hint(
                "the inline if-expression on line \(position.line) evaluated to false and no else section was defined."))
        }
    }

    func evalArguments(_ arguments: CallArguments, _ scope: Scope) throws -> Arguments {
        var args = Arguments()
        args.positional = try arguments.positional.map { try eval($0, scope) }
        args.keywords = try arguments.keywords.map { ($0.0, try eval($0.1, scope)) }
        if let star = arguments.starArgs { args.positional += try eval(star, scope).iterate() }
        if let starStar = arguments.starKwargs {
            guard case .dict(let d) = try eval(starStar, scope) else {
                throw JinjaError.render("argument after ** must be a mapping")
            }
            for (k, v) in d.pairs {
                guard case .string(let key) = k else { throw JinjaError.render("keywords must be strings") }
                args.keywords.append((key, v))
            }
        }
        return args
    }

    private func overflow() -> JinjaError {
        JinjaError.unsupported("integer overflow: Python integers are unbounded, this interpreter uses 64 bits")
    }

    func requireHashable(_ key: Value) throws { try key.requireHashable() }

    // MARK: - Attribute and item access

    /// jinja2 `SandboxedEnvironment.getattr`: attribute, then item.
    func attribute(of object: Value, _ name: String) throws -> Value {
        switch object {
        case .undefined(let u):
            throw u.error
        case .dict(let d):
            if let method = Methods.bind(object, name) { return method }
            if name.hasPrefix("__") && name.hasSuffix("__") { return unsafe(object, name) }
            return d[string: name] ?? .undefined(.missing(object, key: .string(name)))
        case .namespace(let ns):
            if name.hasPrefix("_") { return unsafe(object, name) }
            return ns.attributes[string: name] ?? .undefined(.missing(object, key: .string(name)))
        case .native(let n):
            if name.hasPrefix("_") { return unsafe(object, name) }
            return try n.attribute(name, interpreter: self) ?? .undefined(.missing(object, key: .string(name)))
        default:
            if name.hasPrefix("_") { return unsafe(object, name) }
            if let method = Methods.bind(object, name) { return method }
            return .undefined(.missing(object, key: .string(name)))
        }
    }

    private func unsafe(_ object: Value, _ name: String) -> Value {
        .undefined(UndefinedInfo(
            message: "access to attribute \(pythonRepr(name)) of \(pythonRepr(object.typeName)) object is unsafe.",
            isSecurity: true))
    }

    /// jinja2 `Environment.getitem`: item, then (for string keys) attribute.
    func item(of object: Value, _ key: Value) throws -> Value {
        switch object {
        case .undefined(let u):
            throw u.error
        case .dict(let d):
            if let v = d[key] { return v }
        case .list(let items), .tuple(let items), .view(.range, let items):
            if let i = key.integer {
                let index = i < 0 ? i + items.count : i
                if items.indices.contains(index) { return items[index] }
                return .undefined(.missing(object, key: key))
            }
        case .string(let s):
            if let i = key.integer {
                let chars = scalars(s)
                let index = i < 0 ? i + chars.count : i
                if chars.indices.contains(index) { return .string(String(chars[index])) }
                return .undefined(.missing(object, key: key))
            }
        default:
            break
        }
        if case .string(let name) = key {
            if case .dict = object {
                if let method = Methods.bind(object, name) { return method }
                return .undefined(.missing(object, key: key))
            }
            return try attribute(of: object, name)
        }
        return .undefined(.missing(object, key: key))
    }

    /// Python slicing `obj[start:stop:step]`. jinja2 compiles slices to a plain Python subscript
    /// (bypassing `environment.getitem`), so unsliceable values raise instead of yielding undefined.
    func slice(_ object: Value, _ start: Value?, _ stop: Value?, _ step: Value?) throws -> Value {
        switch object {
        case .undefined(let u): throw u.error
        case .list, .tuple, .string, .view(.range, _): break
        case .dict: throw JinjaError.render("unhashable type: 'slice'")
        default: throw JinjaError.render("\(pythonRepr(object.typeName)) object is not subscriptable")
        }
        func bound(_ v: Value?) throws -> Int? {
            guard let v, !v.isNone else { return nil }
            guard let i = v.integer else {
                throw JinjaError.render("slice indices must be integers or None or have an __index__ method")
            }
            return i
        }
        let startBound = try bound(start)
        let stopBound = try bound(stop)
        let stride = try bound(step) ?? 1
        guard stride != 0 else { throw JinjaError.render("slice step cannot be zero") }
        /// CPython `PySlice_AdjustIndices`: the first index and the number of items selected.
        func indices(_ n: Int) -> (first: Int, count: Int) {
            func clamp(_ value: Int?, _ defaultValue: Int) -> Int {
                guard var v = value else { return defaultValue }
                if v < 0 { v += n }
                if stride > 0 { return min(max(v, 0), n) }
                return min(max(v, -1), n - 1)
            }
            let first = clamp(startBound, stride > 0 ? 0 : n - 1)
            let end = clamp(stopBound, stride > 0 ? n : -1)
            let count = stride > 0 ? (end > first ? (end - first + stride - 1) / stride : 0)
                : (first > end ? (first - end - stride - 1) / -stride : 0)
            return (first, count)
        }
        func select<T>(_ items: [T]) -> [T] {
            let (first, count) = indices(items.count)
            return (0..<count).map { items[first + $0 * stride] }
        }
        switch object {
        case .list(let items): return .list(select(items))
        case .tuple(let items): return .tuple(select(items))
        case .view(.range(let rangeStart, _, let rangeStep), let items):
            let (first, count) = indices(items.count)
            let newStart = rangeStart + first * rangeStep
            let newStep = rangeStep * stride
            return .view(.range(start: newStart, stop: newStart + count * newStep, step: newStep), select(items))
        default:
            guard case .string(let s) = object else { return object }
            return .string(makeString(select(scalars(s))))
        }
    }

    // MARK: - Operators

    func compare(_ op: CompareOperator, _ a: Value, _ b: Value) throws -> Bool {
        switch op {
        case .equal: return a.pythonEquals(b)
        case .notEqual: return !a.pythonEquals(b)
        case .less, .greater, .lessEqual, .greaterEqual: return try a.pythonOrder(op, b)
        case .isIn: return try b.contains(a)
        case .notIn: return !(try b.contains(a))
        }
    }

    func binary(_ op: BinaryOperator, _ a: Value, _ b: Value) throws -> Value {
        if case .undefined(let u) = a { throw u.error }
        if op == .modulo, case .string(let format) = a {
            // str.__mod__ runs before the right operand's __rmod__, even for an undefined.
            return .string(try pythonPercentFormat(format, b))
        }
        if case .undefined(let u) = b { throw u.error }
        func unsupported() -> JinjaError {
            let symbol = op == .power ? "** or pow()" : op.rawValue
            return JinjaError.render("unsupported operand type(s) for \(symbol): \(pythonRepr(a.typeName)) and \(pythonRepr(b.typeName))")
        }
        switch op {
        case .add:
            switch (a, b) {
            case (.string(let x), .string(let y)): return .string(x + y)
            case (.list(let x), .list(let y)): return .list(x + y)
            case (.tuple(let x), .tuple(let y)): return .tuple(x + y)
            case (.string, _): throw JinjaError.render("can only concatenate str (not \"\(b.typeName)\") to str")
            case (.list, _): throw JinjaError.render("can only concatenate list (not \"\(b.typeName)\") to list")
            case (.tuple, _): throw JinjaError.render("can only concatenate tuple (not \"\(b.typeName)\") to tuple")
            default:
                if let x = a.integer, let y = b.integer {
                    let (r, o) = x.addingReportingOverflow(y)
                    if o { throw overflow() }
                    return .int(r)
                }
                if let x = a.numeric, let y = b.numeric { return .double(x + y) }
                throw unsupported()
            }
        case .subtract:
            if let x = a.integer, let y = b.integer {
                let (r, o) = x.subtractingReportingOverflow(y)
                if o { throw overflow() }
                return .int(r)
            }
            if let x = a.numeric, let y = b.numeric { return .double(x - y) }
            throw unsupported()
        case .multiply:
            func repeated<T>(_ items: [T], _ n: Int) -> [T] {
                n <= 0 ? [] : Array([[T]](repeating: items, count: n).joined())
            }
            switch (a, b) {
            case (.string(let s), _) where b.integer != nil: return .string(String(repeating: s, count: max(0, b.integer ?? 0)))
            case (_, .string(let s)) where a.integer != nil: return .string(String(repeating: s, count: max(0, a.integer ?? 0)))
            case (.list(let items), _) where b.integer != nil: return .list(repeated(items, b.integer ?? 0))
            case (_, .list(let items)) where a.integer != nil: return .list(repeated(items, a.integer ?? 0))
            case (.tuple(let items), _) where b.integer != nil: return .tuple(repeated(items, b.integer ?? 0))
            case (_, .tuple(let items)) where a.integer != nil: return .tuple(repeated(items, a.integer ?? 0))
            case (.string, _), (.list, _), (.tuple, _):
                throw JinjaError.render("can't multiply sequence by non-int of type \(pythonRepr(b.typeName))")
            case (_, .string), (_, .list), (_, .tuple):
                throw JinjaError.render("can't multiply sequence by non-int of type \(pythonRepr(a.typeName))")
            default:
                if let x = a.integer, let y = b.integer {
                    let (r, o) = x.multipliedReportingOverflow(by: y)
                    if o { throw overflow() }
                    return .int(r)
                }
                if let x = a.numeric, let y = b.numeric { return .double(x * y) }
                throw unsupported()
            }
        case .divide:
            guard let x = a.numeric, let y = b.numeric else { throw unsupported() }
            if y == 0 {
                throw JinjaError.render(a.integer != nil && b.integer != nil ? "division by zero" : "float division by zero")
            }
            if let i = a.integer, let j = b.integer, abs(i) < (1 << 53), abs(j) < (1 << 53) {
                return .double(Double(i) / Double(j))
            }
            return .double(x / y)
        case .floorDivide, .modulo:
            if op == .modulo, case .string(let format) = a { return .string(try pythonPercentFormat(format, b)) }
            if let x = a.integer, let y = b.integer {
                guard y != 0 else {
                    throw JinjaError.render(op == .modulo ? "integer modulo by zero" : "integer division or modulo by zero")
                }
                if x == Int.min && y == -1 { throw overflow() }
                var q = x / y
                var r = x % y
                if r != 0 && ((r < 0) != (y < 0)) {
                    q -= 1
                    r += y
                }
                return .int(op == .modulo ? r : q)
            }
            guard let x = a.numeric, let y = b.numeric else { throw unsupported() }
            guard y != 0 else {
                throw JinjaError.render(op == .modulo ? "float modulo" : "float floor division by zero")
            }
            // CPython float_divmod.
            var mod = fmod(x, y)
            var div = (x - mod) / y
            if mod != 0 {
                if (y < 0) != (mod < 0) {
                    mod += y
                    div -= 1
                }
            } else {
                mod = copysign(0.0, y)
            }
            if op == .modulo { return .double(mod) }
            var floorDiv: Double
            if div != 0 {
                floorDiv = div.rounded(.down)
                if div - floorDiv > 0.5 { floorDiv += 1 }
            } else {
                floorDiv = copysign(0.0, x / y)
            }
            return .double(floorDiv)
        case .power:
            if let x = a.integer, let y = b.integer {
                if y >= 0 {
                    var result = 1
                    var base = x
                    var e = y
                    while e > 0 {
                        if e & 1 == 1 {
                            let (r, o) = result.multipliedReportingOverflow(by: base)
                            if o { throw overflow() }
                            result = r
                        }
                        e >>= 1
                        if e > 0 {
                            let (r, o) = base.multipliedReportingOverflow(by: base)
                            if o { throw overflow() }
                            base = r
                        }
                    }
                    return .int(result)
                }
                if x == 0 { throw JinjaError.render("0.0 cannot be raised to a negative power") }
                return .double(pow(Double(x), Double(y)))
            }
            guard let x = a.numeric, let y = b.numeric else { throw unsupported() }
            if x == 0 && y < 0 { throw JinjaError.render("0.0 cannot be raised to a negative power") }
            if x < 0 && y != y.rounded() {
                throw JinjaError.unsupported("a negative number raised to a fractional power is complex in Python")
            }
            return .double(pow(x, y))
        }
    }
}
