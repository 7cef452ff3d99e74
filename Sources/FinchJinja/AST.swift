// The parsed form of a template: jinja2's `nodes` module reduced to what the interpreter needs.
// Every node carries its source position so render errors can point at the construct that failed.
// All types are value types and `Sendable`, so a parsed ``JinjaTemplate`` can be shared across
// tasks and rendered concurrently.

/// A literal folded at parse time (jinja2 `nodes.Const`).
enum Constant: Sendable {
    case none
    case bool(Bool)
    case int(Int)
    case double(Double)
    case string(String)
}

/// Arguments of a call, filter or test: `f(a, b, key=c, *args, **kwargs)`.
struct CallArguments: Sendable {
    var positional: [Expr] = []
    var keywords: [(String, Expr)] = []
    var starArgs: Expr? = nil
    var starKwargs: Expr? = nil
}

enum BinaryOperator: String, Sendable {
    case add = "+", subtract = "-", multiply = "*", divide = "/", floorDivide = "//"
    case modulo = "%", power = "**"
}

enum CompareOperator: String, Sendable {
    case equal = "==", notEqual = "!=", less = "<", lessEqual = "<=", greater = ">", greaterEqual = ">="
    case isIn = "in", notIn = "not in"
}

indirect enum Expr: Sendable {
    case constant(Constant, SourcePosition)
    case name(String, SourcePosition)
    case list([Expr], SourcePosition)
    case tuple([Expr], SourcePosition)
    case dict([(Expr, Expr)], SourcePosition)
    /// `obj.name` (jinja2 `Getattr`): attribute first, then item.
    case getattr(Expr, String, SourcePosition)
    /// `obj[key]` (jinja2 `Getitem`): item first, then attribute.
    case getitem(Expr, Expr, SourcePosition)
    /// `start:stop:step` inside a subscript.
    case slice(Expr?, Expr?, Expr?, SourcePosition)
    case call(Expr, CallArguments, SourcePosition)
    /// `value | name(args)`. A nil value is the block content of `{% filter %}` / `{% set %}`.
    case filter(Expr?, String, CallArguments, SourcePosition)
    /// `value is name(args)`.
    case test(Expr, String, CallArguments, SourcePosition)
    case negate(Expr, SourcePosition)
    case plus(Expr, SourcePosition)
    case not(Expr, SourcePosition)
    case binary(BinaryOperator, Expr, Expr, SourcePosition)
    case and(Expr, Expr, SourcePosition)
    case or(Expr, Expr, SourcePosition)
    /// `a ~ b ~ c`: string concatenation of `str()` of each operand.
    case concat([Expr], SourcePosition)
    /// A Python comparison chain `a < b <= c`.
    case compare(Expr, [(CompareOperator, Expr)], SourcePosition)
    /// `then if test else otherwise`; a missing else yields undefined.
    case conditional(test: Expr, then: Expr, otherwise: Expr?, SourcePosition)

    var position: SourcePosition {
        switch self {
        case .constant(_, let p), .name(_, let p), .list(_, let p), .tuple(_, let p), .dict(_, let p),
            .getattr(_, _, let p), .getitem(_, _, let p), .slice(_, _, _, let p), .call(_, _, let p),
            .filter(_, _, _, let p), .test(_, _, _, let p), .negate(_, let p), .plus(_, let p),
            .not(_, let p), .binary(_, _, _, let p), .and(_, _, let p), .or(_, _, let p),
            .concat(_, let p), .compare(_, _, let p), .conditional(_, _, _, let p):
            return p
        }
    }
}

/// The left-hand side of `set`, `for` and `with`.
indirect enum AssignTarget: Sendable {
    case name(String)
    case tuple([AssignTarget])
    /// `ns.attr`, only valid on a `namespace()` object.
    case namespaceAttribute(String, String)
}

/// A macro or the body of a `{% call %}` block.
struct MacroDefinition: Sendable {
    var name: String
    var parameters: [String]
    /// Default expressions for the trailing parameters, aligned to `parameters` (nil = required).
    var defaults: [Expr?]
    var body: [Stmt]
    /// Whether the body references `caller`, `varargs` or `kwargs` (jinja2 decides at compile time
    /// whether the macro accepts extra arguments this way).
    var usesCaller: Bool
    var usesVarargs: Bool
    var usesKwargs: Bool
    var position: SourcePosition
}

struct ForLoop: Sendable {
    var target: AssignTarget
    var iterable: Expr
    var condition: Expr?
    var recursive: Bool
    var body: [Stmt]
    var otherwise: [Stmt]
    var position: SourcePosition
}

indirect enum Stmt: Sendable {
    /// Literal template text.
    case data(String)
    /// `{{ expr }}` or `{% print expr %}`.
    case output(Expr)
    case ifChain([(Expr, [Stmt])], otherwise: [Stmt])
    case forLoop(ForLoop)
    case assign(AssignTarget, Expr, SourcePosition)
    /// `{% set x | filters %}body{% endset %}`.
    case assignBlock(AssignTarget, filter: Expr?, body: [Stmt], SourcePosition)
    case macro(MacroDefinition)
    /// `{% call(params) macro(args) %}body{% endcall %}`.
    case callBlock(call: Expr, caller: MacroDefinition, SourcePosition)
    case filterBlock(filter: Expr, body: [Stmt], SourcePosition)
    case with(targets: [AssignTarget], values: [Expr], body: [Stmt])
    /// `{% block name %}`: rendered in place, as jinja2 does for a template without `extends`.
    case block(name: String, scoped: Bool, body: [Stmt])
    /// transformers' `{% generation %}` (AssistantTracker): the body renders unchanged.
    case generation([Stmt])
    /// Inserted by `ScopeAnalysis` at the start of a frame: names that jinja2 binds to undefined
    /// on entry (stored in this frame before any read, with no outer binding).
    case declareUndefined([String])
    case breakLoop(SourcePosition)
    case continueLoop(SourcePosition)
}
