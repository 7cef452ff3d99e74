import FinchTraining
import XCTest

/// The quickstart's rule on hand-written replies.
final class AnswerFormatRuleTests: XCTestCase {
    let rule = AnswerFormatRule()
    let question = "What is the capital of France?"

    func violations(_ reply: String, _ question: String? = nil) -> [AnswerFormatRule.Violation] {
        rule.violations(reply: reply, question: question ?? self.question)
    }

    func testPassingReplies() {
        for reply in ["The answer is Paris.", "The answer is Paris", "  The answer is Paris.\n", "the answer is paris!",
                      "The answer is: Paris.", "The answer is Paris, on the Seine.", "The answer is the city of Paris."] {
            XCTAssertEqual(violations(reply), [], reply)
        }
        XCTAssertEqual(violations("The answer is 3.5 liters.", "How much is 7 divided by 2, in liters?"), [], "a decimal point is no sentence end")
        XCTAssertEqual(violations("The answer is 42.", "What is 17 plus 25?"), [])
        XCTAssertEqual(AnswerFormatRule.reply(answer: "42"), "The answer is 42.")
    }

    func testEachViolation() {
        XCTAssertEqual(violations(""), [.empty])
        XCTAssertEqual(violations(" \n "), [.empty])
        XCTAssertEqual(violations("The answer is Paris\nFrance"), [.multipleLines])
        XCTAssertEqual(violations("The answer is Paris. It is in France."), [.multipleSentences(2)])
        XCTAssertEqual(violations("The answer is Paris! \"Really.\" Yes"), [.multipleSentences(3)], "quotes after a terminator")
        XCTAssertEqual(violations("Paris."), [.missingFrame("paris")])
        XCTAssertEqual(violations("The capital of France is Paris."), [.missingFrame("the capital of")])
        XCTAssertEqual(violations("The answer is."), [.missingFrame("the answer is")])
        XCTAssertEqual(violations("The answers is Paris."), [.missingFrame("the answers is")])
        XCTAssertEqual(violations("The answer is Paris, a city of two million people."), [.answerTooLong(words: 7)])
        XCTAssertEqual(violations("The answer is that it is Paris."), [.fillerAnswer("that")])
        XCTAssertEqual(violations("The answer is the capital city Paris."), [.restatesQuestion("capital")], "after the article")
        XCTAssertEqual(violations("The answer is France's capital, Paris."), [.restatesQuestion("france's")], "a possessive")
        XCTAssertEqual(violations("The answer is 17 + 25 = 42.", "What is 17 plus 25?"), [.restatesQuestion("17")])
        XCTAssertEqual(violations("The answer is Paris, I think."), [.hedging("i think")])
        XCTAssertEqual(violations("The answer is probably Paris."), [.fillerAnswer("probably"), .hedging("probably")])
        XCTAssertEqual(violations("The answer is Paris, double-check."), [.hedging("double check")])
        // Several at once, in the rule's order.
        XCTAssertEqual(violations("Great question! I think the capital of France is probably Paris.\nHope this helps"),
                       [.multipleLines, .multipleSentences(3), .missingFrame("great question i"), .hedging("i think")])
    }

    func testAnswerTextWordsAndSentences() {
        XCTAssertEqual(AnswerFormatRule.answerText("The answer is: Paris!"), "Paris")
        XCTAssertEqual(AnswerFormatRule.answerText("  the ANSWER is 300 centimeters."), "300 centimeters")
        XCTAssertNil(AnswerFormatRule.answerText("The answers are Paris."))
        XCTAssertNil(AnswerFormatRule.answerText("Theory: Paris."))
        XCTAssertEqual(AnswerFormatRule.words("France's capital, Paris (49 km²)."), ["france's", "capital", "paris", "49", "km²"])
        XCTAssertEqual(AnswerFormatRule.words("'quoted' it’s"), ["quoted", "it's"])
        XCTAssertEqual(AnswerFormatRule.sentenceCount("One. Two! Three? Four"), 4)
        XCTAssertEqual(AnswerFormatRule.sentenceCount("Version 2.0 is out."), 1)
        XCTAssertEqual(AnswerFormatRule.sentenceCount("Wait... what?"), 2)
        XCTAssertEqual(AnswerFormatRule.sentenceCount("No terminator"), 1)
    }

    func testRightAnswer() {
        func gives(_ reply: String, _ answer: String) -> Bool {
            RuleScore.Sample(question: "q", answer: answer, reply: reply, violations: []).givesAnswer
        }
        XCTAssertTrue(gives("The answer is Paris.", "Paris"))
        XCTAssertTrue(gives("the answer is paris, in France", "Paris"))
        XCTAssertFalse(gives("Paris.", "Paris"), "not in the form")
        XCTAssertFalse(gives("The answer is Lyon.", "Paris"))
        XCTAssertTrue(gives("The answer is 300 centimeters.", "300 centimeters"))
        XCTAssertTrue(gives("The answer is 300.", "300 centimeters"), "the number alone")
        XCTAssertFalse(gives("The answer is 3000 centimeters.", "300 centimeters"))
        XCTAssertTrue(gives("The answer is Pacific Ocean.", "the Pacific Ocean"), "articles are skipped on both sides")
        XCTAssertFalse(gives("The answer is New York.", "New Delhi"))
        XCTAssertFalse(RuleScore.Sample(question: "q", answer: nil, reply: "The answer is x.", violations: []).givesAnswer)
        let score = RuleScore(samples: [RuleScore.Sample(question: "q", answer: "4", reply: "The answer is 4.", violations: []),
                                        RuleScore.Sample(question: "q", answer: "4", reply: "The answer is 5.", violations: []),
                                        RuleScore.Sample(question: "q", answer: "4", reply: "It is 4.", violations: ["y"]),
                                        RuleScore.Sample(question: "q", answer: "4", reply: "The answer is 4. Sure.", violations: ["z"])])
        XCTAssertEqual(score.passRate, 0.5)
        XCTAssertEqual(score.rightAnswerRate, 0.5)
        XCTAssertEqual(RuleScore(samples: []).passRate, 0)
    }
}
