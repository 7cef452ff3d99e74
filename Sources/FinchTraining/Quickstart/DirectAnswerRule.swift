/// The behaviour the quickstart teaches, as a rule a program can check on any reply: **the fact
/// first, in one short sentence, no filler**.
///
/// A reply passes when all of these hold (after trimming surrounding white space):
/// 1. it is not empty and is a single line;
/// 2. it is one sentence: no `.`, `!` or `?` followed by white space before its end (a period
///    inside a number such as `3.5` does not count);
/// 3. it has at most ``maxWords`` words (white-space separated);
/// 4. its first word is not a filler or framing word (``fillerWords``: "Sure", "Great", "The",
///    "It", "I", "To", "Let's", …);
/// 5. its first word is not a word of the question, nor its possessive (which is how a reply
///    restates the question: "17 plus 25 is 42", "France's capital is Paris");
/// 6. it contains no hedge (``hedges``: "I think", "probably", "might", "not sure", …).
///
/// Words are compared in lower case, split at anything that is not a letter, digit or inner
/// apostrophe. The rule judges the form only; whether the answer is right is another question
/// (``QuickstartEvaluation`` also reports that, from the known answers).
public struct DirectAnswerRule: Sendable {
    /// Why a reply fails the rule.
    public enum Violation: Sendable, Equatable, CustomStringConvertible {
        case empty
        case multipleLines
        case multipleSentences(Int)
        case tooLong(words: Int)
        case fillerOpening(String)
        case restatesQuestion(String)
        case hedging(String)

        public var description: String {
            switch self {
            case .empty: "empty reply"
            case .multipleLines: "more than one line"
            case .multipleSentences(let n): "\(n) sentences"
            case .tooLong(let n): "\(n) words"
            case .fillerOpening(let w): "opens with filler \"\(w)\""
            case .restatesQuestion(let w): "opens by restating the question (\"\(w)\")"
            case .hedging(let h): "hedges (\"\(h)\")"
            }
        }
    }

    /// Longest reply in words that still counts as short.
    public var maxWords = 16

    /// Opening words that are not the fact itself: articles, pronouns, interjections, question
    /// and framing words.
    public static let fillerWords: Set<String> = [
        "a", "an", "the", "it", "it's", "its", "this", "that", "these", "those", "there", "there's", "here", "here's",
        "i", "i'm", "i'd", "i'll", "we", "we're", "let's", "let", "you", "your", "you're", "my", "our", "they",
        "sure", "certainly", "course", "absolutely", "definitely", "yes", "no", "well", "so", "okay", "ok", "great",
        "good", "hmm", "oh", "ah", "hello", "hi", "hey", "thanks", "thank", "interesting", "wow",
        "to", "as", "in", "based", "according", "answer", "answer:", "what", "what's", "which", "who", "how", "when",
        "where", "why", "is", "are", "do", "does", "can", "could", "would", "will", "and", "but", "because", "since",
        "if", "for", "from", "on", "at", "of", "by", "with", "after", "before", "one", "step", "first", "firstly",
        "that's", "please", "actually", "basically", "honestly", "alright",
    ]

    /// Phrases (as word sequences) that hedge an answer.
    public static let hedges: [[String]] = [
        ["i", "think"], ["i", "believe"], ["i", "guess"], ["i", "suppose"], ["probably"], ["maybe"], ["perhaps"],
        ["possibly"], ["might"], ["not", "sure"], ["not", "certain"], ["not", "completely"], ["if", "i", "remember"],
        ["if", "i", "recall"], ["likely"], ["could", "be"], ["double", "check"], ["i'm", "not"], ["not", "100"],
        ["as", "far", "as", "i", "know"],
    ]

    public init(maxWords: Int = 16) {
        self.maxWords = maxWords
    }

    /// Every way `reply` breaks the rule, in the order of the list above (empty: it passes).
    public func violations(reply: String, question: String) -> [Violation] {
        let text = reply.trimmingWhiteSpace
        guard !text.isEmpty else { return [.empty] }
        var found: [Violation] = []
        if text.contains(where: \.isNewline) { found.append(.multipleLines) }
        let sentences = Self.sentenceCount(text)
        if sentences > 1 { found.append(.multipleSentences(sentences)) }
        let wordCount = text.split(whereSeparator: { $0.isWhitespace }).count
        if wordCount > maxWords { found.append(.tooLong(words: wordCount)) }
        let words = Self.words(text)
        if let first = words.first {
            if Self.fillerWords.contains(first) {
                found.append(.fillerOpening(first))
            } else if case let asked = Set(Self.words(question)),
                      asked.contains(first) || (first.hasSuffix("'s") && asked.contains(String(first.dropLast(2)))) {
                found.append(.restatesQuestion(first))
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
