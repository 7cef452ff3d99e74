/// One message of a conversation, as chat templates receive it (`{"role": …, "content": …}`).
///
/// Equality compares Unicode scalars, as Python compares `str` (TRL's prompt extraction compares
/// whole messages), not by canonical equivalence as Swift's `String ==` does: "é" written as one
/// scalar and "e" + U+0301 are different messages.
public struct ChatMessage: Sendable, Equatable {
    public var role: String
    public var content: String

    public init(role: String, content: String) {
        self.role = role
        self.content = content
    }

    public static func == (a: ChatMessage, b: ChatMessage) -> Bool {
        a.role.utf8.elementsEqual(b.role.utf8) && a.content.utf8.elementsEqual(b.content.utf8)
    }
}

/// A prompt or a completion: plain text (TRL's *standard* format) or a list of messages (TRL's
/// *conversational* format, rendered with the model's chat template).
public enum PreferenceText: Sendable, Equatable {
    case text(String)
    case messages([ChatMessage])

    /// Scalar-wise equality (see ``ChatMessage``).
    public static func == (a: PreferenceText, b: PreferenceText) -> Bool {
        switch (a, b) {
        case let (.text(x), .text(y)): x.utf8.elementsEqual(y.utf8)
        case let (.messages(x), .messages(y)): x == y
        default: false
        }
    }

    /// True for an empty string or an empty message list.
    public var isEmpty: Bool {
        switch self {
        case .text(let s): s.isEmpty
        case .messages(let m): m.isEmpty
        }
    }

    /// True for the conversational form.
    public var isConversational: Bool {
        if case .messages = self { true } else { false }
    }
}

/// One preference pair as read from a dataset file, before any chat template or tokenizer.
///
/// - Standard and conversational rows: `prompt` (or nil when the file has no prompt column: the
///   prompt is then the longest common prefix of `chosen` and `rejected`, extracted at
///   tokenization as TRL does — see ``extractingPrompt()``), `chosen`, `rejected`; `system` is nil.
/// - Intel/orca_dpo_pairs rows (`system`, `question`, `chosen`, `rejected`): `prompt` is the
///   question as text, `system` is the system prompt ("" when the row has none), and
///   `chosen`/`rejected` are the answers. ``DPOTokenizer`` renders the conversation
///   [system (if non-empty), user] with the chat template.
public struct PreferenceExample: Sendable, Equatable {
    /// The prompt, or nil for an implicit prompt (to extract from chosen and rejected).
    public var prompt: PreferenceText?
    public var chosen: PreferenceText
    public var rejected: PreferenceText
    /// The system prompt of an orca-style row ("" when empty); nil for every other schema.
    public var system: String?
    /// Where the row comes from, for messages: `file.jsonl:17` (the line the row starts on).
    public var location: String

    public init(prompt: PreferenceText?, chosen: PreferenceText, rejected: PreferenceText, system: String? = nil,
                location: String) {
        self.prompt = prompt
        self.chosen = chosen
        self.rejected = rejected
        self.system = system
        self.location = location
    }

    /// True for an Intel/orca_dpo_pairs-style row (`system` + `question`).
    public var isQuestionSchema: Bool { system != nil }

    /// True when chosen and rejected are identical (compared scalar by scalar). Such pairs carry
    /// no preference: DPO's loss on them is constant (ln 2 at the start) and their gradient zero.
    public var hasIdenticalCompletions: Bool { chosen == rejected }
}
