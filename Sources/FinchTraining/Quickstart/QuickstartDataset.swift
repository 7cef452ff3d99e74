import FinchCore
import FinchFormats
import Foundation

/// The built-in preference dataset of `finch quickstart` (issue 11): it teaches SmolLM2-135M-
/// Instruct to **give the answer right away, in one fixed sentence, "The answer is …."**
/// (``AnswerFormatRule``), which it does not do on its own (it restates the question, explains
/// step by step, or runs on).
///
/// Everything is generated here from a fixed seed: facts (``QuickstartFact``) are split into
/// train and test *by fact* (a held-out fact is never asked in training, in any phrasing), each
/// pair asks one phrasing of one fact, `chosen` is "The answer is <answer>." and `rejected` the
/// same correct answer in one of the ``RejectedStyle``s. The committed files under
/// `examples/data/quickstart/` are ``jsonLines(_:)`` of ``generate()`` (a test regenerates them
/// and compares the bytes; `finch quickstart-data DIR` rewrites them).
public struct QuickstartDataset: Sendable {
    /// How a rejected reply breaks the rule (shares in ``styleWeights``).
    public enum RejectedStyle: String, Sendable, CaseIterable {
        /// "Great question! The capital of France is Paris."
        case fillerOpening = "filler"
        /// "The capital of France is Paris." (the question restated, the answer last: what
        /// SmolLM2 does most)
        case restating
        /// "I think it might be Paris, but I am not completely sure."
        case hedging
        /// An explanation first, the answer at the end ("To find …, we …. So the answer is 42.").
        case buried
        /// The question repeated back before the answer.
        case echo
        /// "The answer is Paris." followed by sentences nobody asked for.
        case rambling
    }

    /// Rejected styles, weighted towards what SmolLM2 does on its own (restating the question,
    /// explaining first, running on): 30/20/20/10/10/10%.
    public static let styleWeights: [(RejectedStyle, Int)] = [(.restating, 3), (.buried, 2), (.rambling, 2), (.fillerOpening, 1),
                                                               (.hedging, 1), (.echo, 1)]
    static let styleDraw = styleWeights.flatMap { Array(repeating: $0.0, count: $0.1) }

    /// The generator's seed.
    public static let seed: UInt64 = 0x5EED_0011
    /// Pairs per category: (train, test). 1,600 training and 200 test pairs in all.
    public static let quotas: [(QuickstartFact.Category, train: Int, test: Int)] = [
        (.capital, 300, 36), (.arithmetic, 360, 44), (.conversion, 220, 28), (.calendar, 200, 24),
        (.spelling, 140, 18), (.sequence, 160, 20), (.general, 120, 16), (.opposite, 100, 14),
    ]
    /// Share of each category's facts held out for the test split.
    public static let testFactShare = 0.15
    /// Where the files live in the repository, and their names.
    public static let directory = "examples/data/quickstart"
    public static let trainFile = "train.jsonl"
    public static let testFile = "test.jsonl"

    /// Training pairs, shuffled.
    public var train: [QuickstartPair]
    /// Held-out pairs, categories interleaved evenly so that any prefix is balanced.
    public var test: [QuickstartPair]

    /// Generates the dataset (deterministic: the same pairs on every machine).
    public static func generate() -> QuickstartDataset {
        var rng = SplitMix64(seed: seed)
        let pools = QuickstartFact.pools(&rng)
        var train: [QuickstartPair] = []
        var testByCategory: [[QuickstartPair]] = []
        var usedQuestions: Set<String> = []
        for (category, trainQuota, testQuota) in quotas {
            guard var facts = pools.first(where: { $0.0 == category })?.1 else { continue }
            rng.shuffle(&facts)
            let held = max(1, Int((Double(facts.count) * testFactShare).rounded(.up)))
            let testFacts = Array(facts[..<held]), trainFacts = Array(facts[held...])
            testByCategory.append(pairs(from: testFacts, count: testQuota, systemShare: 0, used: &usedQuestions, rng: &rng))
            train += pairs(from: trainFacts, count: trainQuota, systemShare: 0.2, used: &usedQuestions, rng: &rng)
        }
        rng.shuffle(&train)
        // Interleave: each category's i-th pair sits at fraction (i + 0.5) / count of the list.
        let test = testByCategory.enumerated().flatMap { c, list in
            list.enumerated().map { (position: (Double($0.offset) + 0.5) / Double(list.count), category: c, pair: $0.element) }
        }.sorted { ($0.position, $0.category) < ($1.position, $1.category) }.map(\.pair)
        return QuickstartDataset(train: train, test: test)
    }

    /// `count` pairs from `facts`, one question per fact per round (so every fact is asked before
    /// any is asked twice); questions are never repeated across the whole dataset.
    static func pairs(from facts: [QuickstartFact], count: Int, systemShare: Double, used: inout Set<String>,
                      rng: inout SplitMix64) -> [QuickstartPair] {
        var out: [QuickstartPair] = []
        var round = 0
        while out.count < count {
            var progressed = false
            for fact in facts where out.count < count {
                // The fact's phrasings, plain in the first rounds and with a lead-in after.
                let plain = fact.questions.filter { !used.contains($0) }
                let candidates = round < 2 && !plain.isEmpty ? plain
                    : fact.questions.flatMap { q in leadIns.map { $0 + q } }.filter { !used.contains($0) }
                guard !candidates.isEmpty else { continue }
                let question = rng.pick(candidates)
                used.insert(question)
                progressed = true
                let system = Double(rng.next() >> 11) * 0x1p-53 < systemShare ? rng.pick(systemPrompts) : ""
                let style = rng.pick(styleDraw)
                out.append(QuickstartPair(system: system, question: question, chosen: AnswerFormatRule.reply(answer: fact.inlineAnswer),
                                          rejected: rejected(fact, question: question, style: style, rng: &rng),
                                          answer: fact.answer, factKey: fact.key, category: fact.category, rejectedStyle: style))
            }
            round += 1
            if !progressed { break } // every phrasing used: the quota is larger than the pool (a test fails)
        }
        return out
    }

    static let systemPrompts = ["You are a helpful assistant.", "You are a helpful AI assistant.", "You are a friendly and knowledgeable assistant."]
    static let leadIns = ["Quick question: ", "Tell me: ", "I'd like to know: ", "Question: ", "Hey, "]
    static let openers = ["Great question!", "Sure!", "Certainly!", "Of course!", "Good question!", "Sure, I can help with that.",
                          "Absolutely!", "Thanks for asking!", "Okay, let me think about this.", "Well, that is an interesting question.",
                          "Hello! I'd be happy to help.", "That's a great question!"]
    static let closings = ["I hope this helps!", "Let me know if you have any other questions.", "Feel free to ask me anything else.",
                           "Is there anything else you would like to know?"]

    /// A reply with the fact's (correct) answer that breaks the rule in `style`.
    static func rejected(_ fact: QuickstartFact, question: String, style: RejectedStyle, rng: inout SplitMix64) -> String {
        let statement = fact.statement
        let lowered = statement.prefix(1).lowercased() + statement.dropFirst()
        let answer = fact.inlineAnswer
        switch style {
        case .fillerOpening:
            var text = rng.pick(openers) + " " + (rng.int(in: 0...2) == 0 ? rng.pick(fact.direct) : statement)
            if rng.int(in: 0...1) == 0 { text += " " + rng.pick(closings) }
            return text
        case .restating:
            return rng.int(in: 0...2) == 0 ? "The answer to your question is that \(lowered)" : statement
        case .hedging:
            let forms = ["I think the answer is probably \(answer), but I am not completely sure.",
                         "If I remember correctly, it might be \(answer).", "The answer is \(answer), I think, but you may want to double-check.",
                         "It could be \(answer), though I'm not certain.", "The answer is probably \(answer).",
                         "Maybe \(answer)? I am not sure."]
            return rng.pick(forms)
        case .buried:
            var background = fact.background
            rng.shuffle(&background)
            let ending = rng.pick(["So the answer is \(answer).", "That means the answer is \(answer).", statement,
                                   "In the end, \(lowered)"])
            return background.prefix(2).joined(separator: " ") + " " + ending
        case .echo:
            return rng.pick(["You asked: \"\(question)\" \(statement)", "Let me repeat the question first: \(question) \(statement)",
                             "To answer the question \"\(question)\", \(lowered)"])
        case .rambling:
            var background = fact.background
            rng.shuffle(&background)
            return AnswerFormatRule.reply(answer: answer) + " " + background[0] + " " + rng.pick(closings)
        }
    }

    /// JSONL text of `pairs`: one ``QuickstartPair/jsonLine`` per line, each ending in "\n".
    public static func jsonLines(_ pairs: [QuickstartPair]) -> String {
        pairs.map { $0.jsonLine + "\n" }.joined()
    }

    /// Writes `train.jsonl` and `test.jsonl` into `directory` (atomically each).
    public func write(to directory: String) throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try AtomicFile.write(Array(Self.jsonLines(train).utf8), to: directory + "/" + Self.trainFile)
        try AtomicFile.write(Array(Self.jsonLines(test).utf8), to: directory + "/" + Self.testFile)
    }

    /// The first `count` held-out pairs (balanced over categories), whose questions the
    /// evaluation asks the model.
    public func evaluationPairs(count: Int) -> [QuickstartPair] { Array(test.prefix(max(0, count))) }
}
