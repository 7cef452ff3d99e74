import FinchGeneration
import FinchJinja
import FinchTokenizers

/// The rule-based score of greedy generations: each held-out question is sent as a user turn
/// through the chat template (as `finch generate --chat` does), answered greedily up to
/// `maxNewTokens`, and the reply checked with ``AnswerFormatRule``; a reply still going at
/// `maxNewTokens` fails too (it is not a short answer, and what it would have said is unknown).
/// Also counts how many replies give the right answer in that form (a check of knowledge, not
/// of form, reported alongside).
public struct RuleScore: Sendable, Equatable, Codable {
    /// One question and the model's reply.
    public struct Sample: Sendable, Equatable, Codable {
        public var question: String
        /// The known answer, when there is one.
        public var answer: String?
        public var reply: String
        /// ``AnswerFormatRule`` violations (as text); empty when the reply passes.
        public var violations: [String]

        public init(question: String, answer: String?, reply: String, violations: [String]) {
            self.question = question
            self.answer = answer
            self.reply = reply
            self.violations = violations
        }

        public var passes: Bool { violations.isEmpty }

        /// Whether the reply says "The answer is" and then the known answer: the words after the
        /// frame (and an article) begin with the answer's, or, for an answer with a unit
        /// ("300 centimeters"), with the number.
        public var givesAnswer: Bool {
            guard let answer, let given = AnswerFormatRule.answerText(reply) else { return false }
            func content(_ text: String) -> [String] {
                let words = AnswerFormatRule.words(text)
                return words.count > 1 && AnswerFormatRule.articles.contains(words[0]) ? Array(words.dropFirst()) : words
            }
            let replyWords = content(given), answerWords = content(answer)
            guard let first = answerWords.first else { return false }
            if replyWords.starts(with: answerWords) { return true }
            return first.allSatisfy(\.isNumber) && replyWords.first == first
        }
    }

    public var samples: [Sample]

    public init(samples: [Sample]) { self.samples = samples }

    /// Share of replies that pass the rule.
    public var passRate: Double { share(\.passes) }
    /// Share of replies that give the right answer in the rule's form.
    public var rightAnswerRate: Double { share(\.givesAnswer) }

    private func share(_ property: (Sample) -> Bool) -> Double {
        samples.isEmpty ? 0 : Double(samples.filter(property).count) / Double(samples.count)
    }

    /// Generates a reply to every question with `generator` (its adapter on, if any) and checks it.
    /// `progress` gets the number of questions done.
    public static func measure(_ questions: [(question: String, answer: String?)], generator: Generator, template: ChatTemplate,
                               maxNewTokens: Int, rule: AnswerFormatRule = AnswerFormatRule(),
                               progress: (Int) -> Void = { _ in }) throws -> RuleScore {
        var samples: [Sample] = []
        for (question, answer) in questions {
            let (reply, finished) = try self.reply(to: question, generator: generator, template: template, maxNewTokens: maxNewTokens)
            var violations = rule.violations(reply: reply, question: question).map(\.description)
            if !finished { violations.append("unfinished after \(maxNewTokens) tokens") }
            samples.append(Sample(question: question, answer: answer, reply: reply, violations: violations))
            progress(samples.count)
        }
        return RuleScore(samples: samples)
    }

    /// The greedy reply to `question` as a single user turn, whitespace-trimmed, and whether it
    /// ended before `maxNewTokens` (at EOS).
    public static func reply(to question: String, generator: Generator, template: ChatTemplate,
                             maxNewTokens: Int) throws -> (text: String, finished: Bool) {
        let messages: [JinjaValue] = [["role": "user", "content": .string(question)]]
        let text = try template.render(messages: messages, addGenerationPrompt: true, specialTokens: generator.tokenizer.specialTokensMap)
        // The template writes any BOS itself, as in apply_chat_template (and `finch generate --chat`).
        let ids = generator.tokenizer.encode(text, addSpecialTokens: false)
        let request = GenerationRequest(promptTokens: ids, maxNewTokens: maxNewTokens, sampling: .greedy,
                                        stopTokenIDs: generator.defaultStopTokenIDs)
        let summary = try generator.generate(request)
        return (summary.text.trimmingWhiteSpace, summary.finishReason != .maxTokens)
    }
}
