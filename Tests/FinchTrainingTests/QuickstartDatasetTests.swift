import FinchFormats
import FinchTraining
import Foundation
import XCTest

/// The built-in dataset of `finch quickstart`: the committed files are the generator's output,
/// the split is clean, every pair teaches the rule, and the computed facts are right.
final class QuickstartDatasetTests: XCTestCase {
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().path
    static let data = QuickstartDataset.generate()

    /// The files in examples/data/quickstart are, byte for byte, what the generator writes
    /// (regenerate them with `scripts/make-quickstart-data`).
    func testCommittedFilesAreTheGeneratorsOutput() throws {
        let directory = Self.repository + "/" + QuickstartDataset.directory
        for (name, pairs) in [(QuickstartDataset.trainFile, Self.data.train), (QuickstartDataset.testFile, Self.data.test)] {
            let committed = try XCTUnwrap(FileManager.default.contents(atPath: directory + "/" + name), "\(name) is missing")
            let generated = Data(QuickstartDataset.jsonLines(pairs).utf8)
            XCTAssertEqual(committed.count, generated.count, "\(name): size differs from the generator's output; run scripts/make-quickstart-data")
            XCTAssertTrue(committed == generated, "\(name) differs from the generator's output; run scripts/make-quickstart-data")
        }
    }

    func testGenerationIsDeterministic() {
        let again = QuickstartDataset.generate()
        XCTAssertEqual(again.train, Self.data.train)
        XCTAssertEqual(again.test, Self.data.test)
    }

    /// Sizes, and held-out prompts (and facts) that never appear in training.
    func testSizesAndCleanSplit() {
        let train = Self.data.train, test = Self.data.test
        XCTAssertGreaterThanOrEqual(train.count, 1500)
        XCTAssertGreaterThanOrEqual(test.count, 200)
        XCTAssertEqual(train.count, QuickstartDataset.quotas.reduce(0) { $0 + $1.train })
        XCTAssertEqual(test.count, QuickstartDataset.quotas.reduce(0) { $0 + $1.test })
        let trainQuestions = Set(train.map(\.question))
        XCTAssertEqual(trainQuestions.count, train.count, "training questions are unique")
        XCTAssertEqual(Set(test.map(\.question)).count, test.count, "test questions are unique")
        let leaked = test.filter { trainQuestions.contains($0.question) }
        XCTAssertEqual(leaked.map(\.question), [], "test prompts found in training")
        // Not even a phrasing away: no test question contains a training question or vice versa
        // once lead-ins are stripped, and the facts are disjoint.
        let trainFacts = Set(train.map(\.factKey))
        XCTAssertEqual(test.filter { trainFacts.contains($0.factKey) }.map(\.factKey), [])
        let trainPrompts = Set(train.map { $0.system + "\u{0}" + $0.question })
        XCTAssertTrue(test.allSatisfy { !trainPrompts.contains($0.system + "\u{0}" + $0.question) })
        // Every category and every rejected style is represented in both splits.
        for category in QuickstartFact.Category.allCases {
            XCTAssertTrue(train.contains { $0.category == category }, "\(category) in train")
            XCTAssertTrue(test.contains { $0.category == category }, "\(category) in test")
        }
        let totalWeight = QuickstartDataset.styleWeights.reduce(0) { $0 + $1.1 }
        for (style, weight) in QuickstartDataset.styleWeights {
            let share = Double(train.filter { $0.rejectedStyle == style }.count) / Double(train.count)
            XCTAssertEqual(share, Double(weight) / Double(totalWeight), accuracy: 0.03, "\(style)'s share")
            XCTAssertTrue(test.contains { $0.rejectedStyle == style }, "\(style) in test")
        }
        XCTAssertEqual(Set(QuickstartDataset.styleWeights.map(\.0)), Set(QuickstartDataset.RejectedStyle.allCases))
        // The evaluation prompts (a prefix of the test split) cover every category.
        let prompts = Self.data.evaluationPairs(count: 50)
        XCTAssertEqual(prompts.count, 50)
        XCTAssertEqual(Set(prompts.map(\.category)).count, QuickstartFact.Category.allCases.count)
    }

    /// Chosen replies follow the rule, rejected ones break it, both give the same (right) answer.
    func testEveryChosenPassesAndEveryRejectedFailsTheRule() {
        let rule = AnswerFormatRule()
        for pair in Self.data.train + Self.data.test {
            XCTAssertEqual(rule.violations(reply: pair.chosen, question: pair.question), [], "chosen: \(pair.question) → \(pair.chosen)")
            XCTAssertFalse(rule.passes(reply: pair.rejected, question: pair.question), "rejected: \(pair.question) → \(pair.rejected)")
            XCTAssertNotEqual(pair.chosen, pair.rejected)
            let sample = RuleScore.Sample(question: pair.question, answer: pair.answer, reply: pair.chosen, violations: [])
            XCTAssertTrue(sample.givesAnswer, "chosen gives the answer: \(pair.chosen) / \(pair.answer)")
            let answerWords = AnswerFormatRule.words(pair.answer)
            XCTAssertTrue(AnswerFormatRule.words(pair.rejected.lowercased()).contains(answerWords.last ?? "?"),
                          "rejected carries the answer too: \(pair.rejected) / \(pair.answer)")
        }
    }

    /// The computed facts, recomputed here from the question text alone (the fact key only says
    /// which kind of question it is).
    func testComputedAnswersAreRight() throws {
        var checked = 0
        let months = ["january", "february", "march", "april", "may", "june", "july", "august", "september", "october",
                      "november", "december"]
        let monthDays = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
        let days = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
        let factors = ["meters": 100, "kilometers": 1000, "hours": 60, "minutes": 60, "days": 24, "weeks": 7, "kilograms": 1000,
                       "liters": 1000, "feet": 12, "yards": 3, "centuries": 100, "decades": 10, "years": 12, "dollars": 100]
        for pair in Self.data.train + Self.data.test {
            let q = AnswerFormatRule.words(pair.question)
            let n = q.compactMap { Int($0) }
            let answer = AnswerFormatRule.words(AnswerFormatRule.answerText(pair.chosen) ?? "").first ?? ""
            let kind = String(pair.factKey.prefix { $0 != ":" })
            let quoted = pair.question.split(separator: "\"").dropFirst().first.map(String.init) ?? ""
            let month = q.compactMap { months.firstIndex(of: $0) }.first, day = q.compactMap { days.firstIndex(of: $0) }.first
            var expected: String?
            switch kind {
            case "add" where n.count == 2: expected = String(n[0] + n[1])
            case "sub" where n.count == 2: expected = String(q.contains("subtract") ? n[1] - n[0] : n[0] - n[1])
            case "mul" where n.count == 2: expected = String(n[0] * n[1])
            case "div" where n.count == 2:
                let (a, b) = q.contains("into") ? (n[1], n[0]) : (n[0], n[1])
                XCTAssertEqual(a % b, 0, pair.question)
                expected = String(a / b)
            case "convert" where n.count == 1:
                let unit = q.drop { $0 != String(n[0]) }.dropFirst().first ?? ""
                expected = factors[unit].map { String(n[0] * $0) }
            case "after" where n.count == 1: expected = String(n[0] + 1)
            case "before" where n.count == 1: expected = String(n[0] - 1)
            case "next-even" where n.count == 1: expected = String(n[0] + (n[0] % 2 == 0 ? 2 : 1))
            case "next-odd" where n.count == 1: expected = String(n[0] + (n[0] % 2 == 1 ? 2 : 1))
            case "ten-more": expected = n.last.map { String($0 + 10) }
            case "double" where n.count == 1: expected = String(2 * n[0])
            case "month-after": expected = month.map { months[($0 + 1) % 12] }
            case "month-before": expected = month.map { months[($0 + 11) % 12] }
            case "month-shift" where n.count == 1: expected = month.map { months[($0 + n[0]) % 12] }
            case "month-days": expected = month.map { String(monthDays[$0]) }
            case "month-number":
                expected = q.compactMap { w in Int(w.prefix { $0.isNumber }) }.first.map { months[$0 - 1] }
            case "day-after": expected = day.map { days[($0 + 1) % 7] }
            case "day-before": expected = day.map { days[($0 + 6) % 7] }
            case "first-letter": expected = quoted.first.map { String($0) }
            case "last-letter": expected = quoted.last.map { String($0) }
            case "letter-count": expected = String(quoted.count)
            default: continue
            }
            XCTAssertNotNil(expected, "could not recompute: \(pair.question)")
            XCTAssertEqual(answer, expected, pair.question)
            checked += 1
        }
        XCTAssertGreaterThan(checked, 1200, "most facts are computed ones, and all of those were recomputed")
    }

    /// The files load as Intel/orca_dpo_pairs rows with `finch dpo`'s reader.
    func testFilesLoadAsOrcaRows() throws {
        let directory = Self.repository + "/" + QuickstartDataset.directory
        let (train, report) = try PreferenceDataset.load(path: directory + "/" + QuickstartDataset.trainFile)
        XCTAssertEqual(report.schema, .question)
        XCTAssertEqual(train.count, Self.data.train.count)
        XCTAssertEqual(report.skipped.count, 0)
        XCTAssertEqual(train.first?.prompt, .text(Self.data.train[0].question))
        XCTAssertEqual(train.first?.system, Self.data.train[0].system)
        let (test, _) = try PreferenceDataset.load(path: directory + "/" + QuickstartDataset.testFile)
        XCTAssertEqual(test.count, Self.data.test.count)
    }

    /// JSON escaping of the writer, read back by the JSON parser.
    func testJSONLineEscaping() throws {
        let pair = QuickstartPair(system: "", question: "Say \"hi\"\\\n\tnow\u{1}", chosen: "é.", rejected: "x", answer: "x", factKey: "k",
                                  category: .general, rejectedStyle: .echo)
        let value = try JSONValue.parse(pair.jsonLine, path: "line")
        XCTAssertEqual(value["question"]?.stringValue, "Say \"hi\"\\\n\tnow\u{1}")
        XCTAssertEqual(value["chosen"]?.stringValue, "é.")
        XCTAssertEqual(value.objectValue?.map(\.0), ["system", "question", "chosen", "rejected"])
    }
}
