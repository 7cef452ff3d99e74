// Static analyses over the parsed tree that mirror decisions jinja2 makes at compile time:
//
// - scoping (`ScopeAnalysis`). jinja2 resolves names per frame at compile time
//   (jinja2/idtracking.py). A name a frame (template, loop body, macro, with/call/filter/set block)
//   stores before it ever reads it, and which no enclosing frame binds, starts as undefined for the
//   whole frame, hiding a render variable of the same name from the frame's nested loops and
//   macros until the assignment runs: `{% for m in xs %}{{ a }}{% endfor %}{% set a = 1 %}`
//   renders `a` empty even if the caller passed `a`. Stores inside `if` branches count as
//   conditional and do not do this. Everything else is ordinary lexical lookup (Interpreter.swift).
// - which names a macro body reads (jinja2 decides from the macro's symbols whether it accepts
//   `caller`, `varargs` and `kwargs`);
// - constant folding. jinja2's optimizer evaluates constant sub-expressions at compile time with
//   `as_const`, and `{{ }}` outputs whose expression is constant are rendered at compile time too.
//   The results are the same as at run time except for one thing: a constant slice such as
//   `none[1:]` goes through `environment.getitem` at compile time (giving an undefined) but is a
//   plain Python subscript at run time (raising "'NoneType' object is not subscriptable"). So an
//   expression containing a slice is first evaluated the compile-time way (where reaching a name,
//   a call or a context filter is `Impossible`), and that value is kept when jinja2 would have kept
//   it: when it has a "safe repr" (`Const.from_untrusted`), or for any value when it is the whole
//   expression of a `{{ }}` output.

/// Collects every variable name a statement list reads, to decide whether a macro uses
/// `caller`, `varargs` or `kwargs` (jinja2 makes the same decision from the macro's symbols).
enum NameCollector {
    static func names(in body: [Stmt]) -> Set<String> {
        var names = Set<String>()
        for stmt in body { visit(stmt, &names) }
        return names
    }

    private static func visit(_ stmt: Stmt, _ names: inout Set<String>) {
        switch stmt {
        case .data, .breakLoop, .continueLoop, .declareUndefined: break
        case .output(let e): visit(e, &names)
        case .ifChain(let branches, let otherwise):
            for (test, body) in branches {
                visit(test, &names)
                body.forEach { visit($0, &names) }
            }
            otherwise.forEach { visit($0, &names) }
        case .forLoop(let loop):
            visit(loop.iterable, &names)
            if let c = loop.condition { visit(c, &names) }
            (loop.body + loop.otherwise).forEach { visit($0, &names) }
        case .assign(_, let e, _): visit(e, &names)
        case .assignBlock(_, let filter, let body, _):
            if let filter { visit(filter, &names) }
            body.forEach { visit($0, &names) }
        case .macro(let m): m.defaults.forEach { if let d = $0 { visit(d, &names) } }
        case .callBlock(let call, _, _): visit(call, &names)
        case .filterBlock(let filter, let body, _):
            visit(filter, &names)
            body.forEach { visit($0, &names) }
        case .with(_, let values, let body):
            values.forEach { visit($0, &names) }
            body.forEach { visit($0, &names) }
        case .block(_, _, let body), .generation(let body):
            body.forEach { visit($0, &names) }
        }
    }

    private static func visit(_ expr: Expr, _ names: inout Set<String>) {
        func args(_ a: CallArguments) {
            a.positional.forEach { visit($0, &names) }
            a.keywords.forEach { visit($0.1, &names) }
            if let s = a.starArgs { visit(s, &names) }
            if let s = a.starKwargs { visit(s, &names) }
        }
        switch expr {
        case .constant: break
        case .name(let n, _): names.insert(n)
        case .list(let items, _), .tuple(let items, _), .concat(let items, _): items.forEach { visit($0, &names) }
        case .dict(let pairs, _): pairs.forEach { visit($0.0, &names); visit($0.1, &names) }
        case .getattr(let e, _, _), .negate(let e, _), .plus(let e, _), .not(let e, _): visit(e, &names)
        case .getitem(let a, let b, _), .binary(_, let a, let b, _), .and(let a, let b, _), .or(let a, let b, _):
            visit(a, &names)
            visit(b, &names)
        case .slice(let a, let b, let c, _): [a, b, c].forEach { if let e = $0 { visit(e, &names) } }
        case .call(let f, let a, _):
            visit(f, &names)
            args(a)
        case .filter(let e, _, let a, _):
            if let e { visit(e, &names) }
            args(a)
        case .test(let e, _, let a, _):
            visit(e, &names)
            args(a)
        case .compare(let first, let rest, _):
            visit(first, &names)
            rest.forEach { visit($0.1, &names) }
        case .conditional(let t, let a, let b, _):
            visit(t, &names)
            visit(a, &names)
            if let b { visit(b, &names) }
        }
    }
}

extension Expr {
    /// Whether the tree contains a `[start:stop]` subscript (the only construct whose compile-time
    /// and run-time evaluation differ).
    var containsSlice: Bool {
        switch self {
        case .constant, .name: return false
        case .slice: return true
        case .list(let items, _), .tuple(let items, _), .concat(let items, _): return items.contains(where: \.containsSlice)
        case .dict(let pairs, _): return pairs.contains { $0.0.containsSlice || $0.1.containsSlice }
        case .getattr(let e, _, _), .negate(let e, _), .plus(let e, _), .not(let e, _): return e.containsSlice
        case .getitem(let a, let b, _), .binary(_, let a, let b, _), .and(let a, let b, _), .or(let a, let b, _):
            return a.containsSlice || b.containsSlice
        case .call(let f, let a, _): return f.containsSlice || a.positional.contains(where: \.containsSlice)
        case .filter(let e, _, let a, _): return (e?.containsSlice ?? false) || a.positional.contains(where: \.containsSlice)
        case .test(let e, _, let a, _): return e.containsSlice || a.positional.contains(where: \.containsSlice)
        case .compare(let first, let rest, _): return first.containsSlice || rest.contains { $0.1.containsSlice }
        case .conditional(let t, let a, let b, _): return t.containsSlice || a.containsSlice || (b?.containsSlice ?? false)
        }
    }
}

extension Value {
    /// jinja2 `has_safe_repr`: the values `Const.from_untrusted` accepts as folded constants.
    var hasSafeRepr: Bool {
        switch self {
        case .none, .bool, .int, .double, .string: return true
        case .list(let items), .tuple(let items): return items.allSatisfy(\.hasSafeRepr)
        case .dict(let d): return d.keys.allSatisfy(\.hasSafeRepr) && d.values.allSatisfy(\.hasSafeRepr)
        default: return false
        }
    }
}

/// jinja2's `nodes.Impossible`: the expression cannot be evaluated at compile time.
struct CompileTimeImpossible: Error {}

/// Filters declared `@pass_context` in jinja2, which `as_const` refuses to call.
let contextFilters: Set<String> = ["map", "select", "reject", "selectattr", "rejectattr", "random"]

extension Interpreter {
    /// Evaluates an expression the way jinja2's `as_const` does: names, calls and context filters
    /// are `Impossible` (but only when reached: `false and name` is constant), and slices degrade
    /// to undefined. nil when that evaluation fails.
    func compileTimeValue(_ expr: Expr, _ scope: Scope) -> Value? {
        let saved = compileTimeMode
        compileTimeMode = true
        defer { compileTimeMode = saved }
        return try? eval(expr, scope)
    }
}

enum ScopeAnalysis {
    /// Annotates one frame's statements (and, recursively, its child frames) with the names jinja2
    /// binds to undefined on entry.
    ///
    /// - Parameters:
    ///   - outerNames: every name the enclosing frames reference (jinja2's `find_ref` on parents).
    ///   - parameters: names bound on entry anyway (loop targets, macro parameters, with targets).
    static func annotate(_ body: [Stmt], outerNames: Set<String>, parameters: Set<String>) -> [Stmt] {
        var refs = parameters
        var startsUndefined: [String] = []
        func load(_ expr: Expr?) {
            guard let expr else { return }
            for name in NameCollector.names(in: [.output(expr)]) { refs.insert(name) }
        }
        func store(_ target: AssignTarget, conditional: Bool) {
            switch target {
            case .name(let name):
                if !refs.contains(name), !conditional, !outerNames.contains(name), name != "loop" {
                    startsUndefined.append(name)
                }
                refs.insert(name)
            case .tuple(let targets): targets.forEach { store($0, conditional: conditional) }
            case .namespaceAttribute(let name, _): refs.insert(name)
            }
        }
        func visit(_ statements: [Stmt], conditional: Bool) {
            for stmt in statements {
                switch stmt {
                case .data, .breakLoop, .continueLoop, .declareUndefined, .block: break
                case .output(let e): load(e)
                case .ifChain(let branches, let otherwise):
                    for (test, branch) in branches {
                        load(test)
                        visit(branch, conditional: true)
                    }
                    visit(otherwise, conditional: true)
                case .forLoop(let loop): load(loop.iterable)
                case .assign(let target, let e, _):
                    load(e)
                    store(target, conditional: conditional)
                case .assignBlock(let target, _, _, _): store(target, conditional: conditional)
                case .macro(let m): store(.name(m.name), conditional: conditional)
                case .callBlock(let call, _, _): load(call)
                case .filterBlock(let filter, _, _): load(filter)
                case .with(_, let values, _): values.forEach { load($0) }
                case .generation: break
                }
            }
        }
        visit(body, conditional: false)

        let inner = outerNames.union(refs)
        func child(_ statements: [Stmt], _ parameters: Set<String> = []) -> [Stmt] {
            annotate(statements, outerNames: inner, parameters: parameters)
        }
        func childMacro(_ m: MacroDefinition) -> MacroDefinition {
            var copy = m
            copy.body = child(m.body, Set(m.parameters).union(["caller", "varargs", "kwargs"]))
            return copy
        }
        func rewrite(_ statements: [Stmt]) -> [Stmt] {
            statements.map { stmt in
                switch stmt {
                case .ifChain(let branches, let otherwise):
                    return .ifChain(branches.map { ($0.0, rewrite($0.1)) }, otherwise: rewrite(otherwise))
                case .forLoop(var loop):
                    loop.body = child(loop.body, targetNames(loop.target).union(["loop"]))
                    loop.otherwise = child(loop.otherwise)
                    return .forLoop(loop)
                case .assignBlock(let target, let filter, let body, let position):
                    return .assignBlock(target, filter: filter, body: child(body), position)
                case .macro(let m): return .macro(childMacro(m))
                case .callBlock(let call, let caller, let position):
                    return .callBlock(call: call, caller: childMacro(caller), position)
                case .filterBlock(let filter, let body, let position):
                    return .filterBlock(filter: filter, body: child(body), position)
                case .with(let targets, let values, let body):
                    return .with(targets: targets, values: values,
                                 body: child(body, Set(targets.flatMap { targetNames($0) })))
                case .block(let name, let scoped, let body):
                    // A block is a separate function over the template context.
                    return .block(name: name, scoped: scoped, body: annotate(body, outerNames: [], parameters: []))
                case .generation(let body): return .generation(child(body))
                default: return stmt
                }
            }
        }
        let rewritten = rewrite(body)
        return startsUndefined.isEmpty ? rewritten : [.declareUndefined(startsUndefined)] + rewritten
    }

    private static func targetNames(_ target: AssignTarget) -> Set<String> {
        switch target {
        case .name(let n): return [n]
        case .tuple(let targets): return Set(targets.flatMap { targetNames($0) })
        case .namespaceAttribute: return []
        }
    }
}
