// The public entry point: parse a Jinja2 template once, render it many times.
//
// FinchJinja is an interpreter for the Jinja2 dialect Hugging Face chat templates are written in,
// aiming at byte-identical output to Python jinja2 3.1 configured the way transformers configures
// it in `_compile_jinja_template` (transformers/utils/chat_template_utils.py):
// `ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
// extensions=[AssistantTracker, jinja2.ext.loopcontrols])` with `tojson`, `raise_exception`,
// `strftime_now`, `dict` and `namespace` replaced or added. Golden outputs produced by that exact
// environment pin the behaviour (see Tests/FinchJinjaTests and reference/make_template_fixtures.py).
//
// Deliberately not supported (each throws a clear ``JinjaError`` instead of rendering something
// wrong): `include`/`extends`/`import` (no loader), `autoescape`, line statements, the `do`
// extension (transformers does not enable it, so jinja2 rejects it too), and a handful of filters
// listed in Filters.swift.

/// A parsed Jinja2 template.
///
/// ```swift
/// let template = try JinjaTemplate(chatTemplate)
/// let prompt = try template.render([
///     "messages": [["role": "user", "content": "Hello"]],
///     "add_generation_prompt": true,
///     "bos_token": "<s>", "eos_token": "</s>",
/// ])
/// ```
///
/// A template is immutable and `Sendable`; `render` may be called concurrently.
public struct JinjaTemplate: Sendable {
    /// Lexer settings, named after jinja2's `Environment` arguments.
    public struct Options: Sendable, Equatable {
        /// Remove the first newline after a block tag (`%}`) or comment (`#}`).
        public var trimBlocks: Bool
        /// Remove spaces and tabs from the start of a line up to a block tag or comment.
        public var lstripBlocks: Bool
        /// Keep a single trailing newline of the template source (jinja2 drops it by default).
        public var keepTrailingNewline: Bool

        public init(trimBlocks: Bool = false, lstripBlocks: Bool = false, keepTrailingNewline: Bool = false) {
            self.trimBlocks = trimBlocks
            self.lstripBlocks = lstripBlocks
            self.keepTrailingNewline = keepTrailingNewline
        }

        /// transformers' chat-template settings: `trim_blocks=True, lstrip_blocks=True`,
        /// `keep_trailing_newline=False` (jinja2's default).
        public static let huggingFace = Options(trimBlocks: true, lstripBlocks: true, keepTrailingNewline: false)

        /// jinja2's `Environment()` defaults.
        public static let jinjaDefaults = Options()
    }

    /// The options the template was parsed with.
    public let options: Options
    let body: [Stmt]

    /// Parses `source`.
    ///
    /// - Throws: ``JinjaError`` of kind `.syntax` (or `.unsupported`) naming the line and column.
    public init(_ source: String, options: Options = .huggingFace) throws {
        self.options = options
        var lexer = Lexer(source, options: options)
        var parser = Parser(tokens: try lexer.tokenize())
        self.body = try parser.parseTemplate()
    }

    /// Renders the template with `variables` as the top-level names.
    ///
    /// Variables shadow the globals (`range`, `namespace`, `raise_exception`, ...). A name that is
    /// neither renders as jinja2's `Undefined` (empty and falsy), matching transformers, which uses
    /// the default `Undefined`, not `StrictUndefined`.
    ///
    /// - Throws: ``JinjaError`` with the line and column of the failing construct; kind `.raised`
    ///   for `raise_exception(message)`, whose ``JinjaError/message`` is exactly `message`.
    public func render(_ variables: [String: JinjaValue]) throws -> String {
        let interpreter = Interpreter(variables: variables)
        var out = ""
        _ = try interpreter.execute(body, interpreter.root, into: &out)
        return out
    }

    /// Renders as ``render(_:)`` and also returns where each `{% generation %}` block's output
    /// stands in the text, as transformers' `AssistantTracker` records it for
    /// `return_assistant_tokens_mask`: `start..<end` in Unicode scalars (Python `str` indices),
    /// in rendering order. Blocks inside macros or set/filter blocks are measured in that inner
    /// buffer (transformers measures them from the text rendered so far; real chat templates put
    /// them at top level, where both agree).
    public func renderTrackingGeneration(_ variables: [String: JinjaValue]) throws -> (text: String, generationSpans: [Range<Int>]) {
        let interpreter = Interpreter(variables: variables)
        interpreter.generationSpans = []
        var out = ""
        _ = try interpreter.execute(body, interpreter.root, into: &out)
        return (out, interpreter.generationSpans ?? [])
    }

    /// Whether the template has `{% generation %}` markers, by TRL 1.16's test
    /// (`has_generation_markers`: the regex `\{%-?\s*generation\s*-?%\}` on the source).
    public static func hasGenerationMarkers(_ source: String) -> Bool {
        source.contains(#/\{%-?\s*generation\s*-?%\}/#)
    }
}
