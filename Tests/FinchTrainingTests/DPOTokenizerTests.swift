import FinchTokenizers
@testable import FinchTraining
import XCTest

/// Prompt extraction, truncation, the padded collator layout and the dry-run rendering, on
/// hand-made inputs (the TRL parity of real tokenization is in DPOTokenizerParityTests).
final class DPOTokenizerTests: XCTestCase {
    func implicit(_ chosen: String, _ rejected: String) -> (String, String, String) {
        let example = PreferenceExample(prompt: nil, chosen: .text(chosen), rejected: .text(rejected), location: "t:1").extractingPrompt()
        guard case .text(let p)? = example.prompt, case .text(let c) = example.chosen, case .text(let r) = example.rejected else {
            XCTFail("not text")
            return ("", "", "")
        }
        return (p, c, r)
    }

    /// TRL's extract_prompt on strings, quirks included (reference/trl-dpo.md §1.1).
    func testPromptExtractionFollowsTRL() {
        XCTAssertTrue(implicit("Q: sky?\nA: blue", "Q: sky?\nA: green") == ("Q: sky?\nA:", " blue", " green"))
        XCTAssertTrue(implicit("Q: sky?\nA:blue", "Q: sky?\nA:green") == ("Q: sky?\nA:", "blue", "green"))
        // One is a prefix of the other: the split falls at the last compared index.
        XCTAssertTrue(implicit("abc", "abcd") == ("ab", "c", "cd"))
        XCTAssertTrue(implicit("same", "same") == ("sam", "e", "e"))
        // First characters differ and chosen ends with a space: Python's chosen[-1].
        XCTAssertTrue(implicit("Yes ", "No") == ("Yes", " ", "o"))
        XCTAssertTrue(implicit("Yes", "No") == ("", "Yes", "No"))
        // Code points, not graphemes.
        let (p, c, r) = implicit("cafe\u{301}", "cafe\u{300}")
        XCTAssertEqual(Array(p.unicodeScalars), Array("cafe".unicodeScalars))
        XCTAssertEqual(Array(c.unicodeScalars), ["\u{301}"])
        XCTAssertEqual(Array(r.unicodeScalars), ["\u{300}"])
    }

    func testPromptExtractionOnConversations() {
        let user = ChatMessage(role: "user", content: "hi"), a = ChatMessage(role: "assistant", content: "A"),
            b = ChatMessage(role: "assistant", content: "B")
        let example = PreferenceExample(prompt: nil, chosen: .messages([user, a]), rejected: .messages([user, b]), location: "t:1")
            .extractingPrompt()
        XCTAssertEqual(example.prompt, .messages([user]))
        XCTAssertEqual(example.chosen, .messages([a]))
        XCTAssertEqual(example.rejected, .messages([b]))
        // Scalar-wise message equality: canonically equivalent contents differ, as in Python.
        XCTAssertNotEqual(ChatMessage(role: "user", content: "\u{E9}"), ChatMessage(role: "user", content: "e\u{301}"))
        let explicit = PreferenceExample(prompt: .text("p"), chosen: .text("pc"), rejected: .text("pr"), location: "t:1")
        XCTAssertEqual(explicit.extractingPrompt(), explicit)
    }

    /// The collator test vector of reference/trl-dpo.md §2.1 (TRL's own docstring example).
    func testPaddedBatchIsTRLsCollatorTestVector() {
        let pairs = [TokenizedPair(prompt: [1, 2, 3], chosen: [4, 5], rejected: [6], location: "a"),
                     TokenizedPair(prompt: [7, 8], chosen: [9], rejected: [10, 11], location: "b")]
        let batch = PaddedPreferenceBatch(pairs: pairs, padTokenID: 0)
        XCTAssertEqual(batch.inputIDs, [[1, 2, 3, 4, 5], [7, 8, 9, 0, 0], [1, 2, 3, 6, 0], [7, 8, 10, 11, 0]])
        XCTAssertEqual(batch.attentionMask, [[1, 1, 1, 1, 1], [1, 1, 1, 0, 0], [1, 1, 1, 1, 0], [1, 1, 1, 1, 0]])
        XCTAssertEqual(batch.completionMask, [[0, 0, 0, 1, 1], [0, 0, 1, 0, 0], [0, 0, 0, 1, 0], [0, 0, 1, 1, 0]])
        let cut = PaddedPreferenceBatch(pairs: pairs, padTokenID: 0, maxLength: 4)
        XCTAssertEqual(cut.inputIDs[0], [1, 2, 3, 4])
        XCTAssertEqual(cut.completionMask[0], [0, 0, 0, 1])
        XCTAssertEqual(Array(cut.inputIDs[1...]), [[7, 8, 9, 0], [1, 2, 3, 6], [7, 8, 10, 11]])
        XCTAssertEqual(PaddedPreferenceBatch(pairs: pairs, padTokenID: 0, padToMultipleOf: 4).inputIDs[0], [1, 2, 3, 4, 5, 0, 0, 0])
    }

    func testPerSequenceTruncation() {
        let pair = TokenizedPair(prompt: [1, 2, 3, 4], chosen: [5, 6, 7], rejected: [8], location: "x")
        let start = pair.truncated(maxLength: 5, mode: .keepStart)
        XCTAssertEqual(start.chosenInputIDs, [1, 2, 3, 4, 5])
        XCTAssertEqual(start.rejectedInputIDs, [1, 2, 3, 4, 8])
        XCTAssertTrue(start.chosenTruncated)
        XCTAssertFalse(start.rejectedTruncated)
        XCTAssertEqual(start.truncated(maxLength: 5, mode: .keepStart), start, "idempotent")
        // keep_end cuts the head of each sequence separately.
        let end = pair.truncated(maxLength: 5, mode: .keepEnd)
        XCTAssertEqual(end.chosenInputIDs, [3, 4, 5, 6, 7])
        XCTAssertEqual(end.chosenPromptLength, 2)
        XCTAssertEqual(end.rejectedInputIDs, [1, 2, 3, 4, 8])
        XCTAssertEqual(end.rejectedPromptLength, 4)
        XCTAssertEqual(end.truncated(maxLength: 5, mode: .keepEnd), end, "idempotent")
        // keep_end past the whole prompt eats the completion's head.
        let deep = pair.truncated(maxLength: 2, mode: .keepEnd)
        XCTAssertEqual(deep.chosenInputIDs, [6, 7])
        XCTAssertEqual(deep.chosenPromptLength, 0)
        XCTAssertEqual(deep.chosen, [6, 7])
        XCTAssertEqual(deep.rejectedInputIDs, [4, 8])
        // keep_start on a prompt longer than max_length (only without the pre-filter).
        let long = pair.truncated(maxLength: 3, mode: .keepStart)
        XCTAssertEqual(long.chosenInputIDs, [1, 2, 3])
        XCTAssertTrue(long.promptTruncated)
        XCTAssertEqual(long.chosen, [])
    }

    /// Article-era options on real tokens: max_prompt_length keeps the END of the prompt,
    /// max_completion_length the start of each completion; then max_length.
    func testArticleEraPromptAndCompletionLimits() throws {
        let tokenizer = try DPODataFixtures.tokenizer("smollm2")
        let example = PreferenceExample(prompt: .text("one two three four five six seven eight"), chosen: .text(" a b c d e f"),
                                        rejected: .text(" z"), location: "x:1")
        let (full, _, _) = try DPOTokenizer.tokenize([example], tokenizer: tokenizer, options: .init(maxLength: nil))
        let (limited, statistics, _) = try DPOTokenizer.tokenize([example], tokenizer: tokenizer,
                                                                 options: .init(maxLength: 8, maxPromptLength: 3, maxCompletionLength: 4))
        XCTAssertEqual(limited[0].prompt, Array(full[0].prompt.suffix(3)))
        XCTAssertEqual(limited[0].chosen, Array(full[0].chosen.prefix(4)))
        XCTAssertEqual(limited[0].rejected, full[0].rejected, "\" z\" + EOS is 2 tokens")
        XCTAssertTrue(limited[0].promptTruncated && limited[0].chosenTruncated && !limited[0].rejectedTruncated)
        XCTAssertEqual(statistics.truncated, 1)
        XCTAssertEqual(statistics.dropped, 0, "the prompt is cut before the max_length pre-filter")
        let (short, _, _) = try DPOTokenizer.tokenize([example], tokenizer: tokenizer, options: .init(maxLength: 5, maxPromptLength: 3))
        XCTAssertEqual(short[0].chosenInputIDs, Array((Array(full[0].prompt.suffix(3)) + full[0].chosen).prefix(5)))
    }

    func testEverythingDroppedIsAnError() throws {
        let tokenizer = try DPODataFixtures.tokenizer("smollm2")
        let example = PreferenceExample(prompt: .text("a long enough prompt here"), chosen: .text(" x"), rejected: .text(" y"), location: "x:1")
        assertTrainingError(try DPOTokenizer.tokenize([example], tokenizer: tokenizer, options: .init(maxLength: 2)),
                            subject: "max_length", contains: "all 1 pairs were dropped")
        // keep_end drops nothing.
        XCTAssertEqual(try DPOTokenizer.tokenize([example], tokenizer: tokenizer, options: .init(maxLength: 2, truncationMode: .keepEnd)).pairs.count, 1)
        assertTrainingError(try DPOTokenizer.tokenize([example], tokenizer: tokenizer, options: .init(maxLength: 0)),
                            subject: "max_length", contains: "positive")
        assertTrainingError(try DPOTokenizer.tokenize([example], tokenizer: tokenizer, options: .init(maxPromptLength: -3)),
                            subject: "max_prompt_length")
        assertTrainingError(try DPOTokenizer.tokenize([], tokenizer: tokenizer), subject: "dataset")
    }

    func testStatisticsAndDescription() throws {
        let tokenizer = try DPODataFixtures.tokenizer("smollm2")
        let (examples, _) = try PreferenceDataset.load(path: DPODataFixtures.data + "/standard.jsonl")
        let (pairs, statistics, _) = try DPOTokenizer.tokenize(examples, tokenizer: tokenizer, options: .init(maxLength: 19))
        XCTAssertEqual(statistics.pairs, pairs.count)
        XCTAssertEqual(statistics.dropped, 1)
        XCTAssertEqual(statistics.droppedLocations, [DPODataFixtures.data + "/standard.jsonl:8"])
        XCTAssertEqual(statistics.truncated, pairs.filter(\.isTruncated).count)
        XCTAssertGreaterThan(statistics.truncated, 0)
        XCTAssertEqual(statistics.prompt.min, pairs.map(\.prompt.count).min())
        XCTAssertEqual(statistics.sequence.max, 19)
        XCTAssertEqual(DPODatasetStatistics.LengthSummary([4, 1, 3, 2]), .init([2, 3, 1, 4]))
        XCTAssertEqual(DPODatasetStatistics.LengthSummary([4, 1, 3, 2]).median, 2.5)
        XCTAssertTrue(statistics.description.contains("1 dropped"), statistics.description)

        let text = DPOTokenizer.describe(pairs[0], tokenizer: tokenizer)
        XCTAssertEqual(text, """
            \(DPODataFixtures.data)/standard.jsonl:1: prompt 7 tokens, chosen 3, rejected 3
              prompt    ⟨What⟩⟨ is⟩⟨ ⟩⟨2⟩⟨+⟩⟨2⟩⟨?⟩
              chosen    ⟨ ⟩⟨4⟩⟨<|im_end|>⟩
              rejected  ⟨ ⟩⟨5⟩⟨<|im_end|>⟩
            """)
        let japanese = try XCTUnwrap(pairs.first { $0.location.hasSuffix(":4") })
        let described = DPOTokenizer.describe(japanese, tokenizer: tokenizer)
        XCTAssertFalse(described.contains("\u{FFFD}"), described)
        XCTAssertTrue(described.contains("東") || described.contains("京"), described)
        let haiku = try XCTUnwrap(pairs.first { $0.location.hasSuffix(":7") })
        XCTAssertTrue(DPOTokenizer.describe(haiku, tokenizer: tokenizer).contains("\\n"))
    }
}
