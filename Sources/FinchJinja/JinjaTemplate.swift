/// A compiled Jinja2 template (placeholder until the interpreter lands).
public struct JinjaTemplate: Sendable {
    public let source: String
    public init(_ source: String) { self.source = source }
}
