import FinchTokenizers

/// How an Intel/orca_dpo_pairs row's prompt is rendered.
public enum OrcaPromptRendering: String, Sendable, Equatable, Codable {
    /// One chat-template call on [system (if non-empty), user] with the generation prompt. With the
    /// ChatML fallback template this is byte-identical to the article's `chatml_format`.
    case conversation
    /// The article's `chatml_format` exactly: the system turn rendered alone, then the user turn
    /// rendered alone with the generation prompt, concatenated. A template that injects a default
    /// system turn when the first message is not a system message (SmolLM2's, Qwen2's) then gives
    /// two system turns; tokenization warns about it.
    case twoCalls = "two_calls"
}

/// Tokenization and truncation settings, with TRL's names in the comments.
public struct DPOTokenizationOptions: Sendable {
    /// `max_length`: each sequence (prompt + completion) is cut to this many tokens, and with
    /// keep_start the pairs whose prompt alone reaches it are dropped (TRL ≥ 1.9). nil: no limit.
    public var maxLength: Int? = 1024
    /// `max_prompt_length` (article era, TRL ≤ 0.28): keep the last this-many prompt tokens.
    public var maxPromptLength: Int?
    /// `max_completion_length` (article era, TRL 0.12–0.28): keep the first this-many tokens of
    /// each completion.
    public var maxCompletionLength: Int?
    /// `truncation_mode` for `max_length`.
    public var truncationMode: DPOTruncationMode = .keepStart
    /// How Intel/orca_dpo_pairs prompts are rendered.
    public var orcaRendering: OrcaPromptRendering = .conversation
    /// Appended to each orca answer before TRL's EOS: "\n" as in the DPO-on-Phi-2 article's
    /// `chatml_format` (Labonne's NeuralHermes notebook writes "<|im_end|>\n" instead).
    public var orcaAnswerSuffix = "\n"
    /// A chat template to use instead of the tokenizer's (nil: the tokenizer's, or ChatML when it
    /// has none).
    public var chatTemplate: ChatTemplate?

    public init(maxLength: Int? = 1024, maxPromptLength: Int? = nil, maxCompletionLength: Int? = nil,
                truncationMode: DPOTruncationMode = .keepStart, orcaRendering: OrcaPromptRendering = .conversation,
                orcaAnswerSuffix: String = "\n", chatTemplate: ChatTemplate? = nil) {
        self.maxLength = maxLength
        self.maxPromptLength = maxPromptLength
        self.maxCompletionLength = maxCompletionLength
        self.truncationMode = truncationMode
        self.orcaRendering = orcaRendering
        self.orcaAnswerSuffix = orcaAnswerSuffix
        self.chatTemplate = chatTemplate
    }

    func validate() throws {
        for (key, value) in [("max_length", maxLength), ("max_prompt_length", maxPromptLength),
                             ("max_completion_length", maxCompletionLength)] {
            if let value, value <= 0 { throw TrainingError(key, "must be a positive number of tokens (or unset), not \(value)") }
        }
    }
}

/// Turns preference examples into token ids the way TRL 1.16's `DPOTrainer` prepares its dataset
/// (issue 7 item 2; reference/trl-dpo.md §1–§2).
public enum DPOTokenizer {
    /// Tokenizes, truncates and filters `examples`.
    ///
    /// Per example, in TRL 1.16's order:
    /// 1. An implicit prompt is extracted (``PreferenceExample/extractingPrompt()``); an orca row's
    ///    prompt is rendered with the chat template (``OrcaPromptRendering``) and each answer gets
    ///    `orcaAnswerSuffix`, which makes it a standard row.
    /// 2. Standard rows: the EOS string is appended to each completion that does not already end
    ///    with it; then `P = encode(prompt)`, `PC = encode(prompt + chosen)`,
    ///    `PR = encode(prompt + rejected)`, with the tokenizer's default special tokens (BOS for
    ///    tokenizers that add one). Conversational rows: `P` = the prompt messages rendered with
    ///    the generation prompt, `PC`/`PR` = prompt + completion messages rendered without it, each
    ///    tokenized without special tokens (the template writes them); no EOS is appended.
    /// 3. The completion starts where `P` stops being a prefix of `PC` or `PR` (TRL 1.16's
    ///    `common_prefix_length`; usually `len(P)`, earlier when tokens merge across the
    ///    boundary, which is warned about): `prompt = P[..<k]`, `chosen = PC[k...]`,
    ///    `rejected = PR[k...]`.
    /// 4. Article-era options: `max_prompt_length` keeps the prompt's last tokens,
    ///    `max_completion_length` each completion's first tokens.
    /// 5. With keep_start and `max_length`, pairs whose prompt has ≥ `max_length` tokens are
    ///    dropped and counted; then each sequence is cut to `max_length`
    ///    (``TokenizedPair/truncated(maxLength:mode:)``).
    ///
    /// Where TRL 1.16 would double a special token, Finch does not, and warns: a prompt whose text
    /// starts with the BOS string gets no second BOS from the tokenizer, and a completion that
    /// ends with the EOS string followed only by whitespace gets no second EOS.
    ///
    /// - Returns: the kept pairs in input order, statistics, and warnings for a person (each names
    ///   how many pairs it concerns and the first one's location).
    /// - Throws: ``TrainingError`` for invalid options, a chat template that fails on a row (the
    ///   row's location), or when no pair is left.
    public static func tokenize(_ examples: [PreferenceExample], tokenizer: Tokenizer,
                                options: DPOTokenizationOptions = .init()) throws
        -> (pairs: [TokenizedPair], statistics: DPODatasetStatistics, warnings: [String]) {
        try options.validate()
        guard !examples.isEmpty else { throw TrainingError("dataset", "no preference pairs to tokenize") }
        var preparation = PairPreparation(tokenizer: tokenizer, options: options)
        var pairs: [TokenizedPair] = []
        var dropped: [String] = []
        for example in examples {
            var pair = try preparation.tokenize(example)
            if let limit = options.maxPromptLength, pair.prompt.count > limit {
                pair.prompt = Array(pair.prompt.suffix(limit))
                pair.promptTruncated = true
            }
            if let limit = options.maxCompletionLength {
                if pair.chosen.count > limit { pair.chosen = Array(pair.chosen.prefix(limit)); pair.chosenTruncated = true }
                if pair.rejected.count > limit { pair.rejected = Array(pair.rejected.prefix(limit)); pair.rejectedTruncated = true }
            }
            if let maxLength = options.maxLength {
                if options.truncationMode == .keepStart, pair.prompt.count >= maxLength {
                    dropped.append(pair.location)
                    preparation.warnings.note("dropped", at: pair.location,
                                              "dropped: the prompt alone has at least max_length (\(maxLength)) tokens, so no completion token would be left")
                    continue
                }
                pair = pair.truncated(maxLength: maxLength, mode: options.truncationMode)
            }
            pairs.append(pair)
        }
        guard !pairs.isEmpty else {
            throw TrainingError("max_length", "all \(examples.count) pairs were dropped: every prompt has at least \(options.maxLength ?? 0) tokens; "
                                + "raise max_length or set max_prompt_length")
        }
        return (pairs, DPODatasetStatistics(pairs: pairs, droppedLocations: dropped), preparation.warnings.lines)
    }
}

/// The per-example part of ``DPOTokenizer/tokenize(_:tokenizer:options:)``: rendering and
/// tokenization before any truncation.
struct PairPreparation {
    let tokenizer: Tokenizer
    let options: DPOTokenizationOptions
    var context: TokenizationContext

    init(tokenizer: Tokenizer, options: DPOTokenizationOptions) {
        self.tokenizer = tokenizer
        self.options = options
        context = TokenizationContext(tokenizer: tokenizer, chatTemplate: options.chatTemplate, unit: "pair")
    }

    var warnings: WarningLog {
        get { context.warnings }
        set { context.warnings = newValue }
    }

    mutating func render(_ messages: [ChatMessage], addGenerationPrompt: Bool, location: String) throws -> String {
        try context.render(messages, addGenerationPrompt: addGenerationPrompt, location: location)
    }

    mutating func tokenize(_ input: PreferenceExample) throws -> TokenizedPair {
        var example = input.extractingPrompt()
        if let system = example.system { example = try renderQuestion(example, system: system) }
        let location = example.location
        var p: [Int], pc: [Int], pr: [Int]
        switch (example.prompt, example.chosen, example.rejected) {
        case let (.text(prompt)?, .text(chosen), .text(rejected)):
            p = tokenizer.encode(prompt)
            pc = tokenizer.encode(prompt + context.appendingEOS(chosen, location: location, what: "a completion"))
            pr = tokenizer.encode(prompt + context.appendingEOS(rejected, location: location, what: "a completion"))
            var sequences = [p, pc, pr]
            context.removeDoubledBOS(&sequences, location: location, what: "the prompt text")
            (p, pc, pr) = (sequences[0], sequences[1], sequences[2])
        case let (.messages(prompt)?, .messages(chosen), .messages(rejected)):
            p = tokenizer.encode(try render(prompt, addGenerationPrompt: true, location: location), addSpecialTokens: false)
            pc = tokenizer.encode(try render(prompt + chosen, addGenerationPrompt: false, location: location), addSpecialTokens: false)
            pr = tokenizer.encode(try render(prompt + rejected, addGenerationPrompt: false, location: location), addSpecialTokens: false)
        default:
            throw TrainingError(location, "prompt, chosen and rejected must all be strings or all be message lists")
        }
        let split = min(TokenizationContext.commonPrefixLength(p, pc), TokenizationContext.commonPrefixLength(p, pr))
        if split < p.count { context.noteBoundary(Array(p[split...]), location: location) }
        var pair = TokenizedPair(prompt: Array(p[..<split]), chosen: Array(pc[split...]), rejected: Array(pr[split...]), location: location)
        context.removeDoubledEOS(&pair.chosen, location: location, what: "a completion")
        context.removeDoubledEOS(&pair.rejected, location: location, what: "a completion")
        for (name, ids) in [("chosen", pair.chosen), ("rejected", pair.rejected)] where ids.isEmpty {
            throw TrainingError(location, "\(name): no tokens after the prompt (the completion merged into the prompt's tokens)")
        }
        return pair
    }

    /// An orca row as the standard row the article's `chatml_format` makes of it.
    mutating func renderQuestion(_ example: PreferenceExample, system: String) throws -> PreferenceExample {
        guard case .text(let question)? = example.prompt, case .text(let chosen) = example.chosen,
              case .text(let rejected) = example.rejected else {
            throw TrainingError(example.location, "question, chosen and rejected must be strings")
        }
        let location = example.location
        let user = ChatMessage(role: "user", content: question)
        let systemTurn = ChatMessage(role: "system", content: system)
        let prompt: String
        switch options.orcaRendering {
        case .conversation:
            prompt = try render(system.isEmpty ? [user] : [systemTurn, user], addGenerationPrompt: true, location: location)
        case .twoCalls:
            let head = system.isEmpty ? "" : try render([systemTurn], addGenerationPrompt: false, location: location)
            let tail = try render([user], addGenerationPrompt: true, location: location)
            prompt = head + tail
            if !system.isEmpty {
                let joint = Array(try render([systemTurn, user], addGenerationPrompt: true, location: location).utf8)
                let headBytes = Array(head.utf8), tailBytes = Array(tail.utf8)
                if joint.starts(with: headBytes), Array(joint[headBytes.count...]) != tailBytes {
                    let rest = joint[headBytes.count...]
                    if tailBytes.count > rest.count, tailBytes.reversed().starts(with: rest.reversed()) {
                        let injected = String(decoding: tailBytes[..<(tailBytes.count - rest.count)], as: UTF8.self)
                        warnings.note("two-calls", at: location, "two-call rendering: the chat template adds \(injected.debugDescription) before a user "
                                      + "turn rendered alone, so these prompts hold two system turns (the article's chatml_format does the same "
                                      + "with this template); the conversation rendering has one")
                    } else {
                        warnings.note("two-calls", at: location, "two-call rendering: the chat template renders the user turn differently "
                                      + "alone than after the system turn; the conversation rendering differs from these prompts")
                    }
                }
            }
        }
        return PreferenceExample(prompt: .text(prompt), chosen: .text(chosen + options.orcaAnswerSuffix),
                                 rejected: .text(rejected + options.orcaAnswerSuffix), location: location)
    }
}
