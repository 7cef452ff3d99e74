import FinchGeneration

/// The sampling and length fields shared by `/v1/chat/completions` and `/v1/completions`, with
/// OpenAI's names and defaults: `temperature` 1 and `top_p` 1 (so a request that names neither
/// samples from the full distribution, where `finch generate` defaults to greedy), `seed` random
/// when absent, `max_tokens` up to the server's limit. Extensions, with vLLM's names: `top_k`,
/// `min_p`, `repetition_penalty`, `ignore_eos`.
struct GenerationParameters: Sendable {
    var model: String?
    var stream = false
    var includeUsage = false
    var sampling = SamplingParameters(temperature: 1, topP: 1)
    /// The `max_completion_tokens` or `max_tokens` asked for, nil when neither was given.
    var maxTokens: Int?
    var stop: [String] = []
    var ignoreEOS = false

    /// Reads and checks the fields of a request object; `maxTokensLimit` is `--max-tokens-limit`.
    init(_ fields: RequestFields, maxTokensLimit: Int) throws(APIError) {
        model = try fields.string("model")
        stream = try fields.bool("stream") ?? false
        if let options = try fields.object("stream_options") {
            guard stream else {
                throw APIError.invalidValue("stream_options", "The 'stream_options' parameter is only allowed when 'stream' is enabled.")
            }
            includeUsage = try options.bool("include_usage") ?? false
        }
        if let n = try fields.integer("n"), n != 1 {
            throw APIError.invalidValue("n", "Finch generates one choice per request: 'n' must be 1, got \(n).")
        }

        let temperature = try fields.number("temperature") ?? 1
        guard temperature >= 0, temperature <= 2 else {
            throw APIError.invalidValue("temperature", "'temperature' must be between 0 and 2 (0 is greedy), got \(temperature).")
        }
        let topP = try fields.number("top_p") ?? 1
        guard topP >= 0, topP <= 1 else { throw APIError.invalidValue("top_p", "'top_p' must be between 0 and 1, got \(topP).") }
        let topK = try fields.integer("top_k") ?? 0
        guard topK >= 0 else { throw APIError.invalidValue("top_k", "'top_k' must be ≥ 0 (0 is off), got \(topK).") }
        let minP = try fields.number("min_p") ?? 0
        guard minP >= 0, minP <= 1 else { throw APIError.invalidValue("min_p", "'min_p' must be between 0 and 1, got \(minP).") }
        let penalty = try fields.number("repetition_penalty") ?? 1
        guard penalty > 0 else {
            throw APIError.invalidValue("repetition_penalty", "'repetition_penalty' must be > 0 (1 is off), got \(penalty).")
        }
        // OpenAI's seed is a signed 64-bit integer; its bits seed the sampler.
        let seed: UInt64
        if let given = try fields.integer("seed") { seed = UInt64(bitPattern: Int64(given)) } else { seed = UInt64.random(in: .min ... .max) }
        // top_p 0 keeps only the most likely token: greedy, which the sampler spells temperature 0.
        sampling = SamplingParameters(temperature: topP == 0 ? 0 : temperature, topK: topK, topP: topP == 0 ? 1 : topP,
                                      minP: minP, repetitionPenalty: penalty, seed: seed)

        for key in ["max_completion_tokens", "max_tokens"] {
            guard let value = try fields.integer(key) else { continue }
            guard value >= 1 else { throw APIError.invalidValue(key, "'\(key)' must be at least 1, got \(value).") }
            guard value <= maxTokensLimit else {
                throw APIError.invalidValue(key, "'\(key)' is \(value), more than this server's limit of \(maxTokensLimit) (--max-tokens-limit).")
            }
            maxTokens = value
            break
        }

        if let value = fields.value("stop") {
            switch value {
            case .string(let s): stop = [s]
            case .array(let items):
                guard items.count <= 4 else { throw APIError.invalidValue("stop", "'stop' takes at most 4 sequences, got \(items.count).") }
                stop = try items.enumerated().map { (i, item) throws(APIError) in
                    guard case .string(let s) = item else { throw APIError.invalidType("stop[\(i)]", expected: "a string", got: item) }
                    return s
                }
            default: throw APIError.invalidType("stop", expected: "a string or an array of strings", got: value)
            }
            stop = stop.filter { !$0.isEmpty }
        }
        ignoreEOS = try fields.bool("ignore_eos") ?? false

        // Fields OpenAI accepts that Finch cannot honour: refused rather than silently ignored.
        for key in ["frequency_penalty", "presence_penalty"] {
            if let value = try fields.number(key), value != 0 {
                throw APIError.invalidValue(key, "'\(key)' is not supported by Finch (use repetition_penalty); it must be 0 or absent.")
            }
        }
        if try fields.bool("logprobs") == true || fields.value("top_logprobs") != nil {
            throw APIError.invalidValue("logprobs", "Finch does not return log-probabilities; 'logprobs' must be false or absent.")
        }
        if let bias = try fields.object("logit_bias"), !bias.members.isEmpty {
            throw APIError.invalidValue("logit_bias", "'logit_bias' is not supported by Finch.")
        }
        for key in ["tools", "functions"] {
            if let items = try fields.array(key), !items.isEmpty {
                throw APIError.invalidValue(key, "Finch does not support tool or function calling; '\(key)' must be empty or absent.")
            }
        }
        if let format = try fields.object("response_format"), let type = try format.string("type"), type != "text" {
            throw APIError.invalidValue("response_format.type", "Finch produces plain text only; 'response_format.type' must be 'text', got '\(type)'.")
        }
    }
}
