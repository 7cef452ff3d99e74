import FinchFormats
import FinchJinja

/// A `POST /v1/chat/completions` body: the conversation plus ``GenerationParameters``.
struct ChatCompletionRequest: Sendable {
    /// `{role, content}` objects for the chat template; the `developer` role is passed as `system`
    /// (OpenAI's newer name for it).
    var messages: [JinjaValue]
    var parameters: GenerationParameters

    static let roles: Set<String> = ["system", "developer", "user", "assistant"]

    init(_ body: JSONValue, maxTokensLimit: Int) throws(APIError) {
        let fields = try RequestFields(body, path: "")
        guard let items = try fields.array("messages") else {
            throw APIError(.badRequest, "Missing required parameter: 'messages'.", param: "messages", code: "missing_required_parameter")
        }
        guard !items.isEmpty else {
            throw APIError(.badRequest, "Invalid 'messages': empty array. Expected an array with minimum length 1, but got an empty array instead.",
                           param: "messages", code: "empty_array")
        }
        messages = []
        for (i, item) in items.enumerated() {
            let message = try RequestFields(item, path: "messages[\(i)]")
            guard let role = try message.string("role") else {
                throw APIError(.badRequest, "Missing required parameter: 'messages[\(i)].role'.", param: "messages[\(i)].role",
                               code: "missing_required_parameter")
            }
            guard Self.roles.contains(role) else {
                throw APIError.invalidValue("messages[\(i)].role", "Invalid value: '\(role)'. Supported values are: 'system', 'developer', 'user' and 'assistant'"
                                            + (role == "tool" || role == "function" ? " (Finch does not support tool calling)." : "."))
            }
            let content = try Self.text(of: message, index: i)
            messages.append(.object([("role", .string(role == "developer" ? "system" : role)), ("content", .string(content))]))
        }
        parameters = try GenerationParameters(fields, maxTokensLimit: maxTokensLimit)
    }

    /// A message's text: a string, or an array of `{"type": "text", "text": …}` parts joined by
    /// newlines (as vLLM joins them).
    static func text(of message: RequestFields, index i: Int) throws(APIError) -> String {
        let param = "messages[\(i)].content"
        guard let content = message.value("content") else {
            throw APIError(.badRequest, "Missing required parameter: '\(param)'.", param: param, code: "missing_required_parameter")
        }
        switch content {
        case .string(let s): return s
        case .array(let parts):
            var texts: [String] = []
            for (j, part) in parts.enumerated() {
                let fields = try RequestFields(part, path: "\(param)[\(j)]")
                guard let type = try fields.string("type") else {
                    throw APIError(.badRequest, "Missing required parameter: '\(param)[\(j)].type'.", param: "\(param)[\(j)].type",
                                   code: "missing_required_parameter")
                }
                guard type == "text" else {
                    throw APIError.invalidValue("\(param)[\(j)].type", "Finch serves text-only models: content parts of type '\(type)' are not supported, only 'text'.")
                }
                guard let text = try fields.string("text") else {
                    throw APIError(.badRequest, "Missing required parameter: '\(param)[\(j)].text'.", param: "\(param)[\(j)].text",
                                   code: "missing_required_parameter")
                }
                texts.append(text)
            }
            return texts.joined(separator: "\n")
        default:
            throw APIError.invalidType(param, expected: "a string or an array of content parts", got: content)
        }
    }
}
