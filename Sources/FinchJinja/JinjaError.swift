/// An error from parsing or rendering a template.
///
/// The ``message`` is the text Python's jinja2 (or the transformers environment) would put in its
/// exception where the two agree, so callers can show the same text a Python stack would, e.g.
/// `raise_exception('Conversation roles must alternate user/assistant/user/assistant/...')`
/// produces exactly that message. ``line`` and ``column`` locate the construct in the template
/// source (1-based; the column counts Unicode scalars after newline normalisation).
public struct JinjaError: Error, CustomStringConvertible, Sendable, Equatable {
    /// What went wrong, broadly. Tests and callers use it to tell a template bug (syntax) from a
    /// conversation the template rejects (raised).
    public enum Kind: String, Sendable {
        /// The template source is not valid Jinja2 (jinja2's `TemplateSyntaxError` and
        /// compile-time `TemplateAssertionError`).
        case syntax
        /// Evaluation failed (jinja2's `UndefinedError`, `TypeError`, `SecurityError`, ...).
        case render
        /// The template called `raise_exception(message)` (transformers' `TemplateError`).
        case raised
        /// A valid Jinja2 construct this interpreter deliberately does not implement.
        case unsupported
    }

    public var kind: Kind
    /// The message without the location.
    public var message: String
    /// 1-based line in the template, or 0 when unknown.
    public var line: Int
    /// 1-based column in the template, or 0 when unknown.
    public var column: Int

    public init(_ kind: Kind, _ message: String, line: Int = 0, column: Int = 0) {
        self.kind = kind
        self.message = message
        self.line = line
        self.column = column
    }

    public var description: String {
        let what: String
        switch kind {
        case .syntax: what = "template syntax error"
        case .render: what = "template render error"
        case .raised: what = "template raised an exception"
        case .unsupported: what = "unsupported template construct"
        }
        return "\(what) at line \(line), column \(column): \(message)"
    }

    /// Fills in a location if none is set yet, so the innermost node that knows its position wins.
    func located(_ position: SourcePosition) -> JinjaError {
        guard line == 0 else { return self }
        var copy = self
        copy.line = position.line
        copy.column = position.column
        return copy
    }

    static func render(_ message: String) -> JinjaError { JinjaError(.render, message) }
    static func unsupported(_ message: String) -> JinjaError { JinjaError(.unsupported, message) }
}

/// A 1-based line and column in the normalised template source.
struct SourcePosition: Sendable, Equatable {
    var line: Int
    var column: Int
}
