import FinchTraining
import XCTest

/// The quickstart's rule on hand-written replies.
final class DirectAnswerRuleTests: XCTestCase {
    let rule = DirectAnswerRule()
    let question = "What is the capital of France?"

    func violations(_ reply: String, _ question: String? = nil) -> [DirectAnswerRule.Violation] {
        rule.violations(reply: reply, question: question ?? self.question)
    }

    func testPassingReplies() {
        for reply in ["Paris.", "Paris", "  Paris.\n", "Paris is the capital of France.", "Paris, the capital city of France.",
                      "Paris!", "Paris (on the Seine)."] {
            XCTAssertEqual(violations(reply), [], reply)
        }
        XCTAssertEqual(violations("3.5 liters.", "How much is 7 divided by 2, in liters?"), [], "a decimal point is no sentence end")
        XCTAssertEqual(violations("42.", "What is 17 plus 25?"), [])
    }

    func testEachViolation() {
        XCTAssertEqual(violations(""), [.empty])
        XCTAssertEqual(violations(" \n "), [.empty])
        XCTAssertEqual(violations("Paris\nFrance"), [.multipleLines])
        XCTAssertEqual(violations("Paris. It is in France."), [.multipleSentences(2)])
        XCTAssertEqual(violations("Paris. It is in France. Nice city"), [.multipleSentences(3)])
        XCTAssertEqual(violations("Paris! \"Really.\" Yes"), [.multipleSentences(3)], "quotes after a terminator")
        XCTAssertEqual(violations("Paris is a city that has been the capital of France for a very long time now indeed"),
                       [.tooLong(words: 18)])
        XCTAssertEqual(violations("Sure, Paris."), [.fillerOpening("sure")])
        XCTAssertEqual(violations("The capital of France is Paris."), [.fillerOpening("the")])
        XCTAssertEqual(violations("It's Paris."), [.fillerOpening("it's")])
        XCTAssertEqual(violations("France's capital is Paris."), [.restatesQuestion("france's")], "a possessive of a question word")
        XCTAssertEqual(violations("Capital: Paris."), [.restatesQuestion("capital")])
        XCTAssertEqual(violations("17 plus 25 is 42.", "What is 17 plus 25?"), [.restatesQuestion("17")])
        XCTAssertEqual(violations("Paris, I think."), [.hedging("i think")])
        XCTAssertEqual(violations("Probably Paris."), [.hedging("probably")])
        XCTAssertEqual(violations("Paris, but please double-check."), [.hedging("double check")])
        // Several at once, in the rule's order.
        XCTAssertEqual(violations("Great question! I think the capital of France is probably Paris.\nHope this helps"),
                       [.multipleLines, .multipleSentences(3), .fillerOpening("great"), .hedging("i think")])
    }

    /// Words keep inner apostrophes; sentences end at terminators followed by space or the end.
    func testWordsAndSentences() {
        XCTAssertEqual(DirectAnswerRule.words("France's capital, Paris (49 km²)."), ["france's", "capital", "paris", "49", "km²"])
        XCTAssertEqual(DirectAnswerRule.words("'quoted' it’s"), ["quoted", "it's"])
        XCTAssertEqual(DirectAnswerRule.sentenceCount("One. Two! Three? Four"), 4)
        XCTAssertEqual(DirectAnswerRule.sentenceCount("Version 2.0 is out."), 1)
        XCTAssertEqual(DirectAnswerRule.sentenceCount("Wait... what?"), 2)
        XCTAssertEqual(DirectAnswerRule.sentenceCount("No terminator"), 1)
    }

    func testAnswerFirst() {
        func starts(_ reply: String, _ answer: String) -> Bool {
            RuleScore.Sample(question: "q", answer: answer, reply: reply, violations: []).startsWithAnswer
        }
        XCTAssertTrue(starts("Paris.", "Paris"))
        XCTAssertTrue(starts("paris is it", "Paris"))
        XCTAssertFalse(starts("The capital is Paris.", "Paris"))
        XCTAssertTrue(starts("300 centimeters.", "300 centimeters"))
        XCTAssertTrue(starts("300.", "300 centimeters"), "the number alone")
        XCTAssertFalse(starts("3000 centimeters.", "300 centimeters"))
        XCTAssertFalse(starts("New York.", "New Delhi"))
        XCTAssertTrue(starts("New Delhi, India.", "New Delhi"))
        XCTAssertFalse(RuleScore.Sample(question: "q", answer: nil, reply: "x", violations: []).startsWithAnswer)
        let score = RuleScore(samples: [RuleScore.Sample(question: "q", answer: "4", reply: "4.", violations: []),
                                        RuleScore.Sample(question: "q", answer: "4", reply: "Five.", violations: ["x"]),
                                        RuleScore.Sample(question: "q", answer: "4", reply: "It is 4.", violations: ["y"]),
                                        RuleScore.Sample(question: "q", answer: "4", reply: "4, yes. Sure.", violations: ["z"])])
        XCTAssertEqual(score.passRate, 0.25)
        XCTAssertEqual(score.answerFirstRate, 0.5)
        XCTAssertEqual(RuleScore(samples: []).passRate, 0)
    }
}
