// Executes statements. Scoping follows what jinja2's compiler produces, checked against Python:
//
// - The template's top level writes into the root scope, which shadows the render variables, which
//   shadow the globals.
// - Each `for` iteration runs in a fresh child scope: a `{% set %}` inside a loop is visible for
//   the rest of that iteration only, and the next iteration starts again from the outer values
//   (`{% set x = 1 %}{% for i in range(2) %}{{ x }}{% set x = x + 1 %}{% endfor %}` renders
//   `11`). That is why templates use `namespace()` to carry state out of loops.
// - `if` does not create a scope. Macros, call blocks, filter blocks, set blocks, `with` and
//   `block` do.
// - A macro's body sees its parameters, then the scope it was defined in (looked up at call time).
//
// `break`/`continue` are returned as a `Flow` value rather than thrown.

enum Flow {
    case normal, breakLoop, continueLoop
}

final class Scope {
    private(set) var variables: [String: Value] = [:]
    let parent: Scope?

    init(parent: Scope?) { self.parent = parent }

    func lookup(_ name: String) -> Value? {
        var scope: Scope? = self
        while let s = scope {
            if let v = s.variables[name] { return v }
            scope = s.parent
        }
        return nil
    }

    func set(_ name: String, _ value: Value) { variables[name] = value }
}

final class Interpreter {
    let root: Scope
    let globals: [String: Value]
    /// Set while evaluating a constant expression as jinja2's compiler would (see Analysis.swift).
    var compileTimeMode = false
    /// With tracking on (non-nil), the output span of each `{% generation %}` block, in Unicode
    /// scalars (Python `str` indices), in rendering order.
    var generationSpans: [Range<Int>]?

    init(variables: [String: JinjaValue]) {
        root = Scope(parent: nil)
        // An explicit `.undefined` behaves like a missing variable (so errors name it).
        for (name, value) in variables where value != .undefined { root.set(name, Value(value)) }
        globals = Globals.make()
    }

    func lookup(_ name: String, in scope: Scope) -> Value {
        scope.lookup(name) ?? globals[name] ?? .undefined(.name(name))
    }

    // MARK: - Statements

    func execute(_ body: [Stmt], _ scope: Scope, into out: inout String) throws -> Flow {
        for stmt in body {
            let flow = try execute(stmt, scope, into: &out)
            if flow != .normal { return flow }
        }
        return .normal
    }

    private func execute(_ stmt: Stmt, _ scope: Scope, into out: inout String) throws -> Flow {
        switch stmt {
        case .data(let text):
            out += text
        case .output(let expr):
            if !compileTimeMode, expr.containsSlice, let value = compileTimeValue(expr, scope),
                let text = try? value.pythonStr()
            {
                out += text
                return .normal
            }
            let value = try eval(expr, scope)
            do {
                out += try value.pythonStr()
            } catch let error as JinjaError {
                throw error.located(expr.position)
            }
        case .ifChain(let branches, let otherwise):
            for (test, body) in branches {
                if try eval(test, scope).isTruthy { return try execute(body, scope, into: &out) }
            }
            return try execute(otherwise, scope, into: &out)
        case .forLoop(let loop):
            try executeFor(loop, scope, into: &out)
        case .assign(let target, let expr, let position):
            let value = try eval(expr, scope)
            try assign(target, value, scope, position)
        case .assignBlock(let target, let filter, let body, let position):
            // Set and filter blocks render into a buffer inside the same Python function, so a
            // `break` in them leaves the loop before the assignment or output happens.
            var text = ""
            let flow = try execute(body, Scope(parent: scope), into: &text)
            if flow != .normal { return flow }
            var value = Value.string(text)
            if let filter { value = try applyFilterChain(filter, to: value, scope) }
            try assign(target, value, scope, position)
        case .macro(let definition):
            scope.set(definition.name, makeMacro(definition, scope))
        case .callBlock(let call, let caller, let position):
            guard case .call(let callee, let arguments, _) = call else { break }
            let function = try eval(callee, scope)
            var args = try evalArguments(arguments, scope)
            args.keywords.append(("caller", makeMacro(caller, scope)))
            do {
                out += try invoke(function, args).pythonStr()
            } catch let error as JinjaError {
                throw error.located(position)
            }
        case .filterBlock(let filter, let body, _):
            var text = ""
            let flow = try execute(body, Scope(parent: scope), into: &text)
            if flow != .normal { return flow }
            out += try applyFilterChain(filter, to: .string(text), scope).pythonStr()
        case .with(let targets, let values, let body):
            let evaluated = try values.map { try eval($0, scope) }
            let inner = Scope(parent: scope)
            for (target, value) in zip(targets, evaluated) {
                try assign(target, value, inner, SourcePosition(line: 0, column: 0))
            }
            return try execute(body, inner, into: &out)
        case .block(_, let scoped, let body):
            _ = try execute(body, Scope(parent: scoped ? scope : root), into: &out)
        case .generation(let body):
            // AssistantTracker compiles `{% generation %}` to a call block: the body runs as a
            // caller macro, so assignments inside it stay local.
            let start = generationSpans == nil ? 0 : out.unicodeScalars.count
            _ = try execute(body, Scope(parent: scope), into: &out)
            if generationSpans != nil { generationSpans?.append(start..<out.unicodeScalars.count) }
        case .declareUndefined(let names):
            for name in names { scope.set(name, .undefined(.name(name))) }
        case .breakLoop:
            return .breakLoop
        case .continueLoop:
            return .continueLoop
        }
        return .normal
    }

    /// Applies `{% filter %}` / `{% set x | f %}` chains, whose innermost operand is the block text.
    private func applyFilterChain(_ expr: Expr, to value: Value, _ scope: Scope) throws -> Value {
        guard case .filter(let base, let name, let arguments, let position) = expr else { return value }
        let input = try base.map { try applyFilterChain($0, to: value, scope) } ?? value
        do {
            return try Filters.apply(name, input, try evalArguments(arguments, scope), self)
        } catch let error as JinjaError {
            throw error.located(position)
        }
    }

    // MARK: - Assignment

    func assign(_ target: AssignTarget, _ value: Value, _ scope: Scope, _ position: SourcePosition) throws {
        switch target {
        case .name(let name):
            scope.set(name, value)
        case .tuple(let targets):
            let items = try value.iterate()
            if items.count < targets.count {
                throw JinjaError.render("not enough values to unpack (expected \(targets.count), got \(items.count))")
                    .located(position)
            }
            if items.count > targets.count {
                throw JinjaError.render("too many values to unpack (expected \(targets.count))").located(position)
            }
            for (t, v) in zip(targets, items) { try assign(t, v, scope, position) }
        case .namespaceAttribute(let name, let attribute):
            guard case .namespace(let ns) = lookup(name, in: scope) else {
                throw JinjaError.render("cannot assign attribute on non-namespace object").located(position)
            }
            if attribute.hasPrefix("_") {
                throw JinjaError.render(
                    "Chat templates cannot store underscore-prefixed attributes on a namespace, but got \(pythonRepr(attribute)). Please rename the attribute."
                ).located(position)
            }
            ns.attributes[.string(attribute)] = value
        }
    }

    // MARK: - Loops

    private func executeFor(_ loop: ForLoop, _ scope: Scope, into out: inout String) throws {
        let iterable: Value
        var items: [Value]
        do {
            iterable = try eval(loop.iterable, scope)
            items = try iterable.iterate()
        } catch let error as JinjaError {
            throw error.located(loop.iterable.position)
        }
        try runLoop(loop, items: items, depth: 1, scope, into: &out)
    }

    private func runLoop(_ loop: ForLoop, items allItems: [Value], depth: Int, _ scope: Scope,
                         into out: inout String) throws {
        var items = allItems
        if let condition = loop.condition {
            items = try allItems.filter { item in
                let filterScope = Scope(parent: scope)
                do {
                    try assign(loop.target, item, filterScope, loop.position)
                } catch let error as JinjaError {
                    throw error.located(loop.position)
                }
                return try eval(condition, filterScope).isTruthy
            }
        }
        let context = LoopContext(items: items, depth: depth)
        if loop.recursive {
            context.recurse = { [unowned self] value in
                var text = ""
                try self.runLoop(loop, items: try value.iterate(), depth: depth + 1, scope, into: &text)
                return text
            }
        }
        let loopValue = Value.native(context)
        // jinja2 clears its "iteration indicator" at the *end* of the loop body, so the else block
        // runs unless some iteration finished normally: after an empty loop, but also when every
        // iteration ended in `continue` or the loop was left by `break` before one completed.
        var completedIteration = false
        for (i, item) in items.enumerated() {
            context.index0 = i
            let iterationScope = Scope(parent: scope)
            iterationScope.set("loop", loopValue)
            do {
                try assign(loop.target, item, iterationScope, loop.position)
            } catch let error as JinjaError {
                throw error.located(loop.position)
            }
            let flow = try execute(loop.body, iterationScope, into: &out)
            if flow == .breakLoop { break }
            if flow == .normal { completedIteration = true }
        }
        if !completedIteration, !loop.otherwise.isEmpty {
            // The else block runs in its own frame (`else_frame = frame.inner()`).
            _ = try execute(loop.otherwise, Scope(parent: scope), into: &out)
        }
    }

    // MARK: - Macros

    func makeMacro(_ definition: MacroDefinition, _ scope: Scope) -> Value {
        .callable(CallableObject(definition.name, kind: .macro) { interpreter, args in
            try interpreter.callMacro(definition, scope, args)
        })
    }

    /// jinja2 `Macro.__call__` / `_invoke`: positional, then keyword, then default arguments;
    /// extra arguments only when the body uses `varargs` / `kwargs`.
    private func callMacro(_ m: MacroDefinition, _ definitionScope: Scope, _ args: Arguments) throws -> Value {
        let scope = Scope(parent: definitionScope)
        var keywords = args.keywords
        func takeKeyword(_ name: String) -> Value? {
            guard let i = keywords.lastIndex(where: { $0.0 == name }) else { return nil }
            return keywords.remove(at: i).1
        }
        for (i, name) in m.parameters.enumerated() {
            let value: Value
            if i < args.positional.count {
                value = args.positional[i]
            } else if let v = takeKeyword(name) {
                value = v
            } else if let d = m.defaults[i] {
                value = try eval(d, scope)
            } else {
                value = .undefined(.hint("parameter \(pythonRepr(name)) was not provided"))
            }
            scope.set(name, value)
        }
        if m.usesCaller {
            scope.set("caller", takeKeyword("caller") ?? .undefined(.hint("No caller defined")))
        }
        let extra = Array(args.positional.dropFirst(m.parameters.count))
        if m.usesVarargs {
            scope.set("varargs", .tuple(extra))
        } else if !extra.isEmpty {
            throw JinjaError.render("macro \(pythonRepr(m.name)) takes not more than \(m.parameters.count) argument(s)")
        }
        if m.usesKwargs {
            scope.set("kwargs", .dict(OrderedDict(keywords.map { (.string($0.0), $0.1) })))
        } else if let first = keywords.first {
            if first.0 == "caller" || keywords.contains(where: { $0.0 == "caller" }) {
                throw JinjaError.render(
                    "macro \(pythonRepr(m.name)) was invoked with two values for the special caller argument. This is most likely a bug.")
            }
            throw JinjaError.render("macro \(pythonRepr(m.name)) takes no keyword argument \(pythonRepr(first.0))")
        }
        var text = ""
        _ = try execute(m.body, scope, into: &text)
        return .string(text)
    }

    /// Calls any callable value (jinja2 `Context.call` through the sandbox).
    func invoke(_ function: Value, _ args: Arguments) throws -> Value {
        switch function {
        case .callable(let c): return try c.function(self, args)
        case .undefined(let u): throw u.error
        case .native(let n as LoopContext):
            guard let recurse = n.recurse else {
                throw JinjaError.render("Tried to call non recursive loop.  Maybe you forgot the 'recursive' modifier.")
            }
            guard let items = args.positional.first else { throw JinjaError.render("loop() takes exactly one argument") }
            return .string(try recurse(items))
        default:
            throw JinjaError.render("\(pythonRepr(function.typeName)) object is not callable")
        }
    }
}

/// jinja2's `LoopContext`: the `loop` variable inside `{% for %}`.
final class LoopContext: NativeObject {
    let items: [Value]
    let depth: Int
    var index0 = 0
    var recurse: ((Value) throws -> String)?
    private var lastChanged: Value? = nil

    init(items: [Value], depth: Int) {
        self.items = items
        self.depth = depth
    }

    var typeName: String { "LoopContext" }

    func repr() throws -> String { "<LoopContext \(index0 + 1)/\(items.count)>" }

    func attribute(_ name: String, interpreter: Interpreter) throws -> Value? {
        let n = items.count
        switch name {
        case "index": return .int(index0 + 1)
        case "index0": return .int(index0)
        case "revindex": return .int(n - index0)
        case "revindex0": return .int(n - index0 - 1)
        case "first": return .bool(index0 == 0)
        case "last": return .bool(index0 == n - 1)
        case "length": return .int(n)
        case "depth": return .int(depth)
        case "depth0": return .int(depth - 1)
        case "previtem":
            return index0 > 0 ? items[index0 - 1] : .undefined(.hint("there is no previous item"))
        case "nextitem":
            return index0 + 1 < n ? items[index0 + 1] : .undefined(.hint("there is no next item"))
        case "cycle":
            return .callable(CallableObject("cycle", kind: .method) { [unowned self] _, args in
                guard !args.positional.isEmpty else { throw JinjaError.render("no items for cycling given") }
                return args.positional[self.index0 % args.positional.count]
            })
        case "changed":
            return .callable(CallableObject("changed", kind: .method) { [unowned self] _, args in
                let value = Value.tuple(args.positional)
                if let last = self.lastChanged, last.pythonEquals(value) { return .bool(false) }
                self.lastChanged = value
                return .bool(true)
            })
        default: return nil
        }
    }
}
