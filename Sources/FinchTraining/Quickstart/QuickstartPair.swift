import FinchFormats

/// One preference pair of the quickstart dataset: the Intel/orca_dpo_pairs columns (`system`,
/// `question`, `chosen`, `rejected`) that go into the JSONL files, and what the generator knows
/// about it (not written to the files; recomputed from the generator when needed).
public struct QuickstartPair: Sendable, Equatable {
    /// The system prompt; empty for most pairs (the chat template's default system turn).
    public var system: String
    public var question: String
    /// The answer first, in one sentence.
    public var chosen: String
    /// The same answer with filler, restating, hedging or rambling.
    public var rejected: String
    /// The fact's answer ("Paris", "42", "300 centimeters").
    public var answer: String
    /// The fact's key (``QuickstartFact/key``).
    public var factKey: String
    public var category: QuickstartFact.Category
    /// How the rejected reply breaks the rule (``QuickstartDataset/RejectedStyle``).
    public var rejectedStyle: QuickstartDataset.RejectedStyle

    public init(system: String, question: String, chosen: String, rejected: String, answer: String, factKey: String,
                category: QuickstartFact.Category, rejectedStyle: QuickstartDataset.RejectedStyle) {
        self.system = system
        self.question = question
        self.chosen = chosen
        self.rejected = rejected
        self.answer = answer
        self.factKey = factKey
        self.category = category
        self.rejectedStyle = rejectedStyle
    }

    /// The pair as one JSONL line (no trailing newline): the four orca columns, in that order.
    public var jsonLine: String {
        "{\"system\": \(Self.quoted(system)), \"question\": \(Self.quoted(question)), \"chosen\": \(Self.quoted(chosen)), "
            + "\"rejected\": \(Self.quoted(rejected))}"
    }

    /// A JSON string literal (RFC 8259 escapes; non-ASCII characters written as they are).
    static func quoted(_ text: String) -> String { JSONValue.string(text).compactText }
}
