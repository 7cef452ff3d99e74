/// The shape of an SFT dataset's rows, decided by its first row (see ``SFTDataset/load(path:columns:format:skipInvalid:)``).
public enum SFTExampleFormat: String, Sendable, Equatable, CaseIterable {
    /// TRL's *language modeling* rows: one `text` string, trained on every token.
    case text
    /// TRL's *prompt-completion* rows with strings: `prompt` and `completion`.
    case promptCompletion = "prompt_completion"
    /// TRL's *prompt-completion* rows with conversations: `prompt` and `completion` message lists.
    case conversationalPromptCompletion = "conversational_prompt_completion"
    /// TRL's *conversational language modeling* rows: one `messages` list (or ShareGPT's
    /// `conversations` of `{from, value}`), rendered whole with the chat template.
    case messages
    /// Stanford Alpaca rows (`instruction`, optional `input`, `output`), made prompt-completion
    /// rows with Alpaca's prompt template (``SFTExample/alpacaPrompt(instruction:input:)``).
    case alpaca

    /// True for the forms with a prompt and a completion (where TRL's `completion_only_loss`
    /// defaults to on).
    public var hasCompletion: Bool { self == .promptCompletion || self == .conversationalPromptCompletion || self == .alpaca }

    /// True for the forms rendered with the chat template.
    public var isConversational: Bool { self == .conversationalPromptCompletion || self == .messages }
}

/// One SFT row as read from a dataset file, before any chat template or tokenizer.
///
/// Equality compares strings scalar by scalar, as Python compares `str` (see ``ChatMessage``).
public struct SFTExample: Sendable, Equatable {
    /// The row in one of the ``SFTExampleFormat`` forms.
    public enum Content: Sendable, Equatable {
        case text(String)
        case promptCompletion(prompt: String, completion: String)
        case conversationalPromptCompletion(prompt: [ChatMessage], completion: [ChatMessage])
        case messages([ChatMessage])
        /// `input` is "" when the row has none (or null).
        case alpaca(instruction: String, input: String, output: String)

        public static func == (a: Content, b: Content) -> Bool {
            func same(_ x: String, _ y: String) -> Bool { x.utf8.elementsEqual(y.utf8) }
            switch (a, b) {
            case let (.text(x), .text(y)): return same(x, y)
            case let (.promptCompletion(p1, c1), .promptCompletion(p2, c2)): return same(p1, p2) && same(c1, c2)
            case let (.conversationalPromptCompletion(p1, c1), .conversationalPromptCompletion(p2, c2)): return p1 == p2 && c1 == c2
            case let (.messages(x), .messages(y)): return x == y
            case let (.alpaca(i1, n1, o1), .alpaca(i2, n2, o2)): return same(i1, i2) && same(n1, n2) && same(o1, o2)
            default: return false
            }
        }
    }

    public var content: Content
    /// Where the row comes from, for messages: `file.jsonl:17` (the line the row starts on).
    public var location: String

    public init(_ content: Content, location: String) {
        self.content = content
        self.location = location
    }

    public var format: SFTExampleFormat {
        switch content {
        case .text: .text
        case .promptCompletion: .promptCompletion
        case .conversationalPromptCompletion: .conversationalPromptCompletion
        case .messages: .messages
        case .alpaca: .alpaca
        }
    }

    /// Stanford Alpaca's prompt (tatsu-lab/stanford_alpaca `PROMPT_DICT`, as the `text` column of
    /// the tatsu-lab/alpaca dataset writes it, with the newline after "### Response:"). With a
    /// non-empty input:
    ///
    ///     Below is an instruction that describes a task, paired with an input that provides further context. Write a response that appropriately completes the request.\n\n### Instruction:\n{instruction}\n\n### Input:\n{input}\n\n### Response:\n
    ///
    /// With an empty input:
    ///
    ///     Below is an instruction that describes a task. Write a response that appropriately completes the request.\n\n### Instruction:\n{instruction}\n\n### Response:\n
    ///
    /// The completion is the output as is (TRL then appends EOS).
    public static func alpacaPrompt(instruction: String, input: String) -> String {
        if input.isEmpty {
            return "Below is an instruction that describes a task. Write a response that appropriately completes the request.\n\n"
                + "### Instruction:\n\(instruction)\n\n### Response:\n"
        }
        return "Below is an instruction that describes a task, paired with an input that provides further context. "
            + "Write a response that appropriately completes the request.\n\n"
            + "### Instruction:\n\(instruction)\n\n### Input:\n\(input)\n\n### Response:\n"
    }

    /// The row with an Alpaca row made a prompt-completion row; other rows unchanged.
    public var normalized: SFTExample {
        guard case let .alpaca(instruction, input, output) = content else { return self }
        return SFTExample(.promptCompletion(prompt: Self.alpacaPrompt(instruction: instruction, input: input), completion: output),
                          location: location)
    }
}
