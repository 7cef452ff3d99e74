import FinchJinja
import FinchTokenizers
@testable import FinchTraining
import XCTest

/// The options' checks and TRL's guards around assistant_only_loss, the masks on small rows, the
/// dropped-row accounting and the dry-run description.
final class SFTTokenizerTests: XCTestCase {
    func smolLM2() throws -> Tokenizer { try DPODataFixtures.tokenizer("smollm2") }

    func testLabelsMaskThePromptOfPromptCompletionRows() throws {
        let tokenizer = try smolLM2()
        let example = SFTExample(.promptCompletion(prompt: "What is 2+2?", completion: " 4"), location: "x:1")
        let (sequences, statistics, _) = try SFTTokenizer.tokenize([example], tokenizer: tokenizer)
        let prompt = tokenizer.encode("What is 2+2?")
        let eos = try XCTUnwrap(tokenizer.eosTokenID)
        XCTAssertEqual(sequences[0].inputIDs, tokenizer.encode("What is 2+2? 4<|im_end|>"))
        XCTAssertEqual(sequences[0].inputIDs.last, eos)
        XCTAssertEqual(sequences[0].labels, [Int](repeating: -100, count: prompt.count) + Array(sequences[0].inputIDs[prompt.count...]))
        XCTAssertTrue(statistics.completionOnlyLoss)
        XCTAssertEqual(statistics.labeledTokens, sequences[0].count - prompt.count)
    }

    func testEOSOption() throws {
        let tokenizer = try smolLM2()
        let example = SFTExample(.text("Hello"), location: "x:1")
        let (sequences, _, _) = try SFTTokenizer.tokenize([example], tokenizer: tokenizer, options: .init(eosToken: "<|endoftext|>"))
        XCTAssertEqual(sequences[0].inputIDs.last, tokenizer.id(of: "<|endoftext|>"))
        assertTrainingError(try SFTTokenizer.tokenize([example], tokenizer: tokenizer, options: .init(eosToken: "<not a token>")),
                            subject: "eos_token", contains: "not a token of the tokenizer's vocabulary")
    }

    func testOptionErrors() throws {
        let tokenizer = try smolLM2()
        let text = SFTExample(.text("Hello"), location: "x:1")
        assertTrainingError(try SFTTokenizer.tokenize([text], tokenizer: tokenizer, options: .init(maxLength: 0)), subject: "max_length", contains: "positive")
        assertTrainingError(try SFTTokenizer.tokenize([], tokenizer: tokenizer), subject: "dataset", contains: "no SFT examples")
        // assistant_only_loss needs conversations, and a template with {% generation %} markers.
        assertTrainingError(try SFTTokenizer.tokenize([text], tokenizer: tokenizer, options: .init(assistantOnlyLoss: true)),
                            subject: "assistant_only_loss", contains: "only conversational datasets")
        let chat = SFTExample(.messages([ChatMessage(role: "user", content: "Hi"), ChatMessage(role: "assistant", content: "Hello")]), location: "x:1")
        assertTrainingError(try SFTTokenizer.tokenize([chat], tokenizer: tokenizer, options: .init(assistantOnlyLoss: true)),
                            subject: "assistant_only_loss", contains: "no {% generation %} markers")
    }

    func testAssistantOnlyLossGuards() throws {
        let tokenizer = try smolLM2()
        let template = try SFTDataFixtures.generationTemplate()
        // A row without an assistant turn has no assistant token: TRL raises, so does Finch.
        let user = SFTExample(.messages([ChatMessage(role: "user", content: "Hi")]), location: "x:3")
        assertTrainingError(try SFTTokenizer.tokenize([user], tokenizer: tokenizer, options: .init(assistantOnlyLoss: true, chatTemplate: template)),
                            subject: "x:3", contains: "no assistant token")
        // The end-of-turn token outside the generation block: warned (the model would not learn to stop).
        let leaky = try ChatTemplate(source: template.source.replacingOccurrences(
            of: "{% generation %}{{ message['content'] + '<|im_end|>' }}{% endgeneration %}",
            with: "{% generation %}{{ message['content'] }}{% endgeneration %}{{ '<|im_end|>' }}"), origin: "leaky")
        XCTAssertNotEqual(leaky.source, template.source)
        let chat = SFTExample(.messages([ChatMessage(role: "user", content: "Hi"), ChatMessage(role: "assistant", content: "Hello there")]), location: "x:1")
        let (sequences, _, warnings) = try SFTTokenizer.tokenize([chat], tokenizer: tokenizer, options: .init(assistantOnlyLoss: true, chatTemplate: leaky))
        XCTAssertTrue(warnings.contains { $0.contains("end-of-turn token") }, "\(warnings)")
        XCTAssertEqual(tokenizer.decode(sequences[0].labels.filter { $0 != -100 }), "Hello there")
        let (good, _, quiet) = try SFTTokenizer.tokenize([chat], tokenizer: tokenizer, options: .init(assistantOnlyLoss: true, chatTemplate: template))
        XCTAssertEqual(tokenizer.decode(good[0].labels.filter { $0 != -100 }), "Hello there<|im_end|>")
        XCTAssertFalse(quiet.contains { $0.contains("end-of-turn") }, "\(quiet)")
    }

    /// `{% generation %}` spans are measured in Unicode scalars (Python `str` indices), and the
    /// markers are found as TRL's `has_generation_markers` finds them.
    func testGenerationSpansAndMarkers() throws {
        let template = try ChatTemplate(source: "{% for m in messages %}<{{ m['role'] }}>{% generation %}{{ m['content'] }}{% endgeneration %}{% endfor %}",
                                        origin: "spans")
        let messages: [JinjaValue] = [.object([("role", .string("a")), ("content", .string("é🇫🇷"))]),
                                      .object([("role", .string("b")), ("content", .string("x"))])]
        let rendered = try template.renderTrackingGeneration(messages: messages, addGenerationPrompt: false)
        XCTAssertEqual(rendered.text, "<a>é🇫🇷<b>x")
        XCTAssertEqual(rendered.generationSpans, [3..<6, 9..<10])
        XCTAssertEqual(try template.render(messages: messages, addGenerationPrompt: false), rendered.text)
        XCTAssertTrue(template.hasGenerationMarkers)
        for (source, marked) in [("{%- generation -%}x{% endgeneration %}", true), ("{%generation%}x{%endgeneration%}", true),
                                 ("{{ generation }}", false), ("{% if generation %}{% endif %}", false)] {
            XCTAssertEqual(JinjaTemplate.hasGenerationMarkers(source), marked, source)
        }
    }

    func testCompletionOnlyLossOnTextRowsChangesNothingAndWarns() throws {
        let tokenizer = try smolLM2()
        let text = SFTExample(.text("Hello"), location: "x:1")
        let (sequences, statistics, warnings) = try SFTTokenizer.tokenize([text], tokenizer: tokenizer, options: .init(completionOnlyLoss: true))
        XCTAssertEqual(sequences[0].labels, sequences[0].inputIDs)
        XCTAssertTrue(statistics.completionOnlyLoss)
        XCTAssertTrue(warnings.contains { $0.contains("every token is trained") }, "\(warnings)")
    }

    /// keep_start truncation that leaves only prompt tokens drops the row (TRL filters it); with
    /// packing nothing is truncated or dropped here (packing cuts).
    func testDroppedRowsAndPacking() throws {
        let tokenizer = try smolLM2()
        let long = SFTExample(.promptCompletion(prompt: String(repeating: "word ", count: 40), completion: " end"), location: "x:1")
        let short = SFTExample(.promptCompletion(prompt: "Hi", completion: " there"), location: "x:2")
        let (kept, statistics, warnings) = try SFTTokenizer.tokenize([long, short], tokenizer: tokenizer, options: .init(maxLength: 10))
        XCTAssertEqual(kept.map(\.location), ["x:2"])
        XCTAssertEqual(statistics.droppedLocations, ["x:1"])
        XCTAssertTrue(warnings.contains { $0.hasPrefix("1 example (first: x:1): dropped") }, "\(warnings)")
        assertTrainingError(try SFTTokenizer.tokenize([long], tokenizer: tokenizer, options: .init(maxLength: 10)), subject: "max_length",
                            contains: "all 1 examples were dropped")
        let (packed, packedStatistics, _) = try SFTTokenizer.tokenize([long, short], tokenizer: tokenizer, options: .init(maxLength: 10, packing: true))
        XCTAssertEqual(packed.count, 2)
        XCTAssertEqual(packedStatistics.truncated, 0)
        XCTAssertGreaterThan(packed[0].count, 10)
    }

    func testDescribeShowsMaskedAndTrainedRuns() throws {
        let tokenizer = try smolLM2()
        let example = SFTExample(.promptCompletion(prompt: "Hi", completion: " there"), location: "x:2")
        let (sequences, statistics, _) = try SFTTokenizer.tokenize([example], tokenizer: tokenizer)
        let text = SFTTokenizer.describe(sequences[0], tokenizer: tokenizer)
        XCTAssertEqual(text, "x:2: 3 tokens, 2 labeled\n  masked   ⟨Hi⟩\n  trained  ⟨ there⟩⟨<|im_end|>⟩")
        XCTAssertTrue(statistics.description.contains("loss on completion only"), statistics.description)
    }
}
