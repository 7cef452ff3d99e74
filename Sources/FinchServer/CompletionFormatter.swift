import FinchFormats
import FinchGeneration

/// Writes OpenAI's response objects for one request: `chat.completion` /
/// `chat.completion.chunk` for chat, `text_completion` for completions.
struct CompletionFormatter: Sendable {
    enum Kind: Sendable {
        case chat, completion
    }

    let kind: Kind
    /// `chatcmpl-…` or `cmpl-…`, the same in every chunk of a stream.
    let id: String
    /// Unix seconds.
    let created: Int
    let model: String
    /// With `stream_options.include_usage`, every chunk carries `"usage": null` and a last chunk
    /// with no choices carries the counts.
    let includeUsage: Bool

    init(kind: Kind, model: String, includeUsage: Bool, created: Int) {
        self.kind = kind
        self.model = model
        self.includeUsage = includeUsage
        self.created = created
        id = (kind == .chat ? "chatcmpl-" : "cmpl-") + Self.randomID()
    }

    static func randomID() -> String {
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789")
        return String((0..<24).map { _ in alphabet.randomElement() ?? "x" })
    }

    /// OpenAI's `finish_reason` for a finished generation: `stop` (end of sequence or a stop
    /// string) or `length` (`max_tokens` or the context reached).
    static func finishReason(_ reason: FinishReason) -> String {
        switch reason {
        case .endOfSequence, .stopString, .cancelled: "stop"
        case .maxTokens, .contextFull: "length"
        }
    }

    static func usage(promptTokens: Int, completionTokens: Int) -> JSONValue {
        .object([("prompt_tokens", .number("\(promptTokens)")), ("completion_tokens", .number("\(completionTokens)")),
                 ("total_tokens", .number("\(promptTokens + completionTokens)"))])
    }

    private func header(object: String) -> [(String, JSONValue)] {
        [("id", .string(id)), ("object", .string(object)), ("created", .number("\(created)")), ("model", .string(model))]
    }

    /// The whole (non-streamed) response.
    func response(text: String, finishReason: FinishReason, promptTokens: Int, completionTokens: Int) -> JSONValue {
        let choice: JSONValue
        switch kind {
        case .chat:
            choice = .object([
                ("index", .number("0")),
                ("message", .object([("role", .string("assistant")), ("content", .string(text)), ("refusal", .null)])),
                ("logprobs", .null),
                ("finish_reason", .string(Self.finishReason(finishReason))),
            ])
        case .completion:
            choice = .object([("text", .string(text)), ("index", .number("0")), ("logprobs", .null),
                              ("finish_reason", .string(Self.finishReason(finishReason)))])
        }
        return .object(header(object: kind == .chat ? "chat.completion" : "text_completion")
            + [("choices", .array([choice])), ("usage", Self.usage(promptTokens: promptTokens, completionTokens: completionTokens))])
    }

    /// A streamed chunk. For chat, `role` opens the stream (with empty content), `text` carries a
    /// delta, and a chunk with a finish reason has an empty delta.
    func chunk(text: String?, role: Bool = false, finishReason: FinishReason? = nil) -> JSONValue {
        let finish: JSONValue = finishReason.map { .string(Self.finishReason($0)) } ?? .null
        let choice: JSONValue
        switch kind {
        case .chat:
            var delta: [(String, JSONValue)] = []
            if role { delta.append(("role", .string("assistant"))) }
            if let text { delta.append(("content", .string(text))) }
            choice = .object([("index", .number("0")), ("delta", .object(delta)), ("logprobs", .null), ("finish_reason", finish)])
        case .completion:
            choice = .object([("text", .string(text ?? "")), ("index", .number("0")), ("logprobs", .null), ("finish_reason", finish)])
        }
        var members = header(object: kind == .chat ? "chat.completion.chunk" : "text_completion") + [("choices", .array([choice]))]
        if includeUsage { members.append(("usage", .null)) }
        return .object(members)
    }

    /// The last chunk with `include_usage`: no choices, the token counts.
    func usageChunk(promptTokens: Int, completionTokens: Int) -> JSONValue {
        .object(header(object: kind == .chat ? "chat.completion.chunk" : "text_completion")
            + [("choices", .array([])), ("usage", Self.usage(promptTokens: promptTokens, completionTokens: completionTokens))])
    }

    /// One server-sent event: `data: <json>` and a blank line.
    static func event(_ json: JSONValue) -> String { "data: \(json.compactText)\n\n" }

    /// The stream's terminator.
    static let done = "data: [DONE]\n\n"
}
