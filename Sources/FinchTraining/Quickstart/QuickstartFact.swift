/// One fact of the quickstart dataset, with everything the generator needs to write preference
/// pairs about it: ways to ask, the short answer, answer-first replies (the behaviour taught),
/// a statement that restates the question and puts the answer last, and background sentences
/// that a rambling reply buries the answer under.
///
/// Facts are computed (arithmetic, unit conversions, calendar and counting facts, spelling) or
/// come from small hand-written tables (`QuickstartFact+Tables.swift`); no text is taken from
/// another dataset.
public struct QuickstartFact: Sendable, Equatable {
    /// The kind of fact; the dataset is balanced over them.
    public enum Category: String, Sendable, CaseIterable {
        case capital, arithmetic, conversion, calendar, spelling, sequence, general, opposite
    }

    /// Unique over the dataset (`capital:France`, `add:17:25`); the train/test split is by key,
    /// so a held-out fact is never asked in training, in any phrasing.
    public var key: String
    public var category: Category
    /// Phrasings of the question (each a distinct prompt).
    public var questions: [String]
    /// The answer as a reply would start with it ("Paris", "42", "300 centimeters").
    public var answer: String
    /// Replies that give the answer first, in one short sentence (`chosen`).
    public var direct: [String]
    /// The question restated with the answer at the end ("The capital of France is Paris.").
    public var statement: String
    /// Sentences about the question that say nothing of the answer (at least two).
    public var background: [String]
    /// The answer inside a sentence ("cold" where a reply starting with it says "Cold").
    public var inlineAnswer: String

    public init(key: String, category: Category, questions: [String], answer: String, direct: [String],
                statement: String, background: [String], inlineAnswer: String? = nil) {
        self.key = key
        self.category = category
        self.questions = questions
        self.answer = answer
        self.direct = direct
        self.statement = statement
        self.background = background
        self.inlineAnswer = inlineAnswer ?? answer
    }
}
