/// The behaviour the quickstart teaches, as a rule a program can check on any reply: **the answer
/// right away, in one fixed sentence: "The answer is …."** — no opening filler, no restating of
/// the question, no explanation before or after, no hedging. A reply in this form is short and
/// can be read by a program as well as a person (everything after "The answer is" is the answer).
///
/// A reply passes when all of these hold (after trimming surrounding white space):
/// 1. it is not empty and is a single line;
/// 2. it is one sentence: no `.`, `!` or `?` followed by white space before its end (a period
///    inside a number such as `3.5` does not count);
/// 3. its first three words are "the answer is" (any case; a colon after "is" is allowed);
/// 4. the answer after them has at most ``maxAnswerWords`` words;
/// 5. the answer's first word, after an article (a, an, the), is not a filler or framing word
///    (``fillerWords``: "that", "it", "to", "probably", …) and not a word of the question or its
///    possessive — which is how a reply restates the question ("The answer is 17 plus 25 …");
/// 6. it contains no hedge (``hedges``: "I think", "probably", "might", "not sure", …).
///
/// Words are compared in lower case, split at anything that is not a letter, digit or inner
/// apostrophe. The rule judges the form only; whether the answer is right is another question
/// (``RuleScore`` also reports that, from the known answers).
public struct AnswerFormatRule: Sendable {
    /// Why a reply fails the rule.
    public enum Violation: Sendable, Equatable, CustomStringConvertible {
        case empty
        case multipleLines
        case multipleSentences(Int)
        /// The reply does not start with "The answer is" (its first words).
        case missingFrame(String)
        case answerTooLong(words: Int)
        case fillerAnswer(String)
        case restatesQuestion(String)
        case hedging(String)

        public var description: String {
            switch self {
            case .empty: "empty reply"
            case .multipleLines: "more than one line"
            case .multipleSentences(let n): "\(n) sentences"
            case .missingFrame(let w): "does not start with \"The answer is\" (\"\(w)\")"
            case .answerTooLong(let n): "an answer of \(n) words"
            case .fillerAnswer(let w): "the answer opens with filler \"\(w)\""
            case .restatesQuestion(let w): "the answer restates the question (\"\(w)\")"
            case .hedging(let h): "hedges (\"\(h)\")"
            }
        }
    }

    /// The fixed opening, as words.
    public static let frame = ["the", "answer", "is"]

    /// Longest answer (after the frame) in words.
    public var maxAnswerWords = 6

    /// Words that cannot open the answer itself: pronouns, framing and filler words, question
    /// words.
    public static let fillerWords: Set<String> = [
        "it", "it's", "its", "this", "that", "these", "those", "there", "there's", "here", "here's",
        "i", "i'm", "i'd", "we", "let's", "let", "you", "your", "my", "our", "they",
        "sure", "certainly", "course", "absolutely", "definitely", "yes", "no", "well", "so", "okay", "ok", "great",
        "good", "hmm", "oh", "ah", "hello", "hi", "hey", "thanks", "thank", "interesting", "wow",
        "to", "as", "in", "based", "according", "answer", "what", "what's", "which", "who", "how", "when",
        "where", "why", "is", "are", "do", "does", "can", "could", "would", "will", "and", "but", "because", "since",
        "if", "for", "from", "on", "at", "of", "by", "with", "simple", "simply", "not", "unknown", "probably",
        "maybe", "perhaps", "approximately", "about", "around", "please", "actually", "basically", "honestly",
    ]

    /// Phrases (as word sequences) that hedge an answer.
    public static let hedges: [[String]] = [
        ["i", "think"], ["i", "believe"], ["i", "guess"], ["i", "suppose"], ["probably"], ["maybe"], ["perhaps"],
        ["possibly"], ["might"], ["not", "sure"], ["not", "certain"], ["not", "completely"], ["if", "i", "remember"],
        ["if", "i", "recall"], ["likely"], ["could", "be"], ["double", "check"], ["i'm", "not"], ["not", "100"],
        ["as", "far", "as", "i", "know"],
    ]

    static let articles: Set<String> = ["a", "an", "the"]

    public init(maxAnswerWords: Int = 6) {
        self.maxAnswerWords = maxAnswerWords
    }

    /// The reply as this rule wants it for `answer`: "The answer is \(answer)."
    public static func reply(answer: String) -> String { "The answer is \(answer)." }

    /// Every way `reply` breaks the rule, in the order of the list above (empty: it passes).
    public func violations(reply: String, question: String) -> [Violation] {
        let text = reply.trimmingWhiteSpace
        guard !text.isEmpty else { return [.empty] }
        var found: [Violation] = []
        if text.contains(where: \.isNewline) { found.append(.multipleLines) }
        let sentences = Self.sentenceCount(text)
        if sentences > 1 { found.append(.multipleSentences(sentences)) }
        let words = Self.words(text)
        if Array(words.prefix(3)) != Self.frame || words.count == 3 {
            found.append(.missingFrame(words.prefix(3).joined(separator: " ")))
        } else if let answer = Self.answerText(text) {
            let answerWords = answer.split(whereSeparator: { $0.isWhitespace }).count
            if answerWords > maxAnswerWords { found.append(.answerTooLong(words: answerWords)) }
            var content = Self.words(answer)
            if let first = content.first, Self.articles.contains(first), content.count > 1 { content.removeFirst() }
            if let first = content.first {
                let asked = Set(Self.words(question))
                if Self.fillerWords.contains(first) {
                    found.append(.fillerAnswer(first))
                } else if asked.contains(first) || (first.hasSuffix("'s") && asked.contains(String(first.dropLast(2)))) {
                    found.append(.restatesQuestion(first))
                }
            }
        }
        for hedge in Self.hedges where Self.contains(words, hedge) {
            found.append(.hedging(hedge.joined(separator: " ")))
            break
        }
        return found
    }

    /// Whether `reply` follows the rule.
    public func passes(reply: String, question: String) -> Bool { violations(reply: reply, question: question).isEmpty }

    /// What follows "The answer is" (and an optional colon) in `reply`, without the final
    /// punctuation; nil when the reply does not start with the frame.
    public static func answerText(_ reply: String) -> String? {
        var rest = Substring(reply.trimmingWhiteSpace)
        for word in frame {
            rest = rest.drop { $0.isWhitespace }
            guard rest.prefix(word.count).lowercased() == word else { return nil }
            rest = rest.dropFirst(word.count)
            if let next = rest.first, next.isLetter || next.isNumber { return nil } // "theory", "answers"
        }
        rest = rest.drop { $0.isWhitespace || $0 == ":" }
        var answer = String(rest)
        while let last = answer.last, ".!?".contains(last) { answer.removeLast() }
        return answer.trimmingWhiteSpace
    }

    /// Lower-cased words: runs of letters and digits, with apostrophes kept inside a word.
    public static func words(_ text: String) -> [String] {
        var out: [String] = [], current = ""
        let characters = Array(text.lowercased())
        for (i, c) in characters.enumerated() {
            let inner = (c == "'" || c == "\u{2019}") && !current.isEmpty && i + 1 < characters.count
                && (characters[i + 1].isLetter || characters[i + 1].isNumber)
            if c.isLetter || c.isNumber || inner {
                current.append(c == "\u{2019}" ? "'" : c)
            } else if !current.isEmpty {
                out.append(current)
                current = ""
            }
        }
        if !current.isEmpty { out.append(current) }
        return out
    }

    /// Sentences: runs of `.`, `!`, `?` (or `…`) followed by white space or the end, with closing
    /// quotes or brackets allowed between; a trailing fragment without one counts as a sentence.
    public static func sentenceCount(_ text: String) -> Int {
        let c = Array(text)
        var count = 0, i = 0, trailing = false
        while i < c.count {
            if ".!?\u{2026}".contains(c[i]) {
                var j = i
                while j < c.count, ".!?\u{2026}".contains(c[j]) { j += 1 }
                var k = j
                while k < c.count, "\"')]\u{201D}\u{2019}".contains(c[k]) { k += 1 }
                if k == c.count || c[k].isWhitespace {
                    count += 1
                    trailing = false
                } else {
                    trailing = true
                }
                i = k
            } else {
                if !c[i].isWhitespace { trailing = true }
                i += 1
            }
        }
        return count + (trailing ? 1 : 0)
    }

    static func contains(_ words: [String], _ phrase: [String]) -> Bool {
        guard words.count >= phrase.count else { return false }
        for start in 0...(words.count - phrase.count) where Array(words[start..<(start + phrase.count)]) == phrase { return true }
        return false
    }
}

extension String {
    /// The string without leading and trailing white space and newlines (no Foundation needed).
    var trimmingWhiteSpace: String {
        guard let first = firstIndex(where: { !$0.isWhitespace }), let last = lastIndex(where: { !$0.isWhitespace }) else { return "" }
        return String(self[first...last])
    }
}
