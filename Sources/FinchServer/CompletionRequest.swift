import FinchFormats

/// A `POST /v1/completions` body: a raw prompt plus ``GenerationParameters``.
struct CompletionRequest: Sendable {
    /// What to continue: text (tokenized with the tokenizer's special tokens, as `finch generate`
    /// does without `--chat`) or token ids as given.
    enum Prompt: Sendable {
        case text(String)
        case tokens([Int])
    }

    var prompt: Prompt
    var parameters: GenerationParameters

    init(_ body: JSONValue, maxTokensLimit: Int) throws(APIError) {
        let fields = try RequestFields(body, path: "")
        guard let value = fields.value("prompt") else {
            throw APIError(.badRequest, "Missing required parameter: 'prompt'.", param: "prompt", code: "missing_required_parameter")
        }
        prompt = try Self.prompt(value)
        for key in ["suffix"] where fields.value(key) != nil {
            throw APIError.invalidValue(key, "'\(key)' is not supported by Finch.")
        }
        if try fields.bool("echo") == true { throw APIError.invalidValue("echo", "'echo' is not supported by Finch.") }
        if let bestOf = try fields.integer("best_of"), bestOf != 1 {
            throw APIError.invalidValue("best_of", "Finch generates one choice per request: 'best_of' must be 1, got \(bestOf).")
        }
        if let logprobs = try fields.integer("logprobs"), logprobs > 0 {
            throw APIError.invalidValue("logprobs", "Finch does not return log-probabilities; 'logprobs' must be 0 or absent.")
        }
        // `logprobs` is an integer here (a boolean in chat), checked above.
        parameters = try GenerationParameters(RequestFields(members: fields.members.filter { $0.0 != "logprobs" }, path: ""),
                                              maxTokensLimit: maxTokensLimit)
    }

    /// A string, one string in an array, token ids, or one array of token ids in an array
    /// (OpenAI's batch forms are refused: one prompt per request).
    static func prompt(_ value: JSONValue) throws(APIError) -> Prompt {
        switch value {
        case .string(let s): return .text(s)
        case .array(let items):
            if items.count == 1, case .string(let s) = items[0] { return .text(s) }
            if items.count == 1, case .array(let inner) = items[0] { return .tokens(try tokenIDs(inner, param: "prompt[0]")) }
            if items.allSatisfy({ if case .number = $0 { true } else { false } }), !items.isEmpty {
                return .tokens(try tokenIDs(items, param: "prompt"))
            }
            throw APIError.invalidValue("prompt", "Finch takes one prompt per request: a string, a one-element array, or an array of token ids.")
        default:
            throw APIError.invalidType("prompt", expected: "a string or an array", got: value)
        }
    }

    static func tokenIDs(_ items: [JSONValue], param: String) throws(APIError) -> [Int] {
        var ids: [Int] = []
        for (i, item) in items.enumerated() {
            guard let id = item.intValue else { throw APIError.invalidType("\(param)[\(i)]", expected: "an integer token id", got: item) }
            ids.append(id)
        }
        return ids
    }
}
