import FinchFormats
import FinchTokenizers
@testable import FinchTraining
import XCTest

/// Token ids identical to TRL 1.16's `DPOTrainer._prepare_dataset` and `DataCollatorForPreference`
/// (reference/make_dpo_data_fixtures.py → Fixtures/dpo_data_expected.json) for standard,
/// conversational, implicit-prompt and orca rows, with SmolLM2's tokenizer (ChatML template with
/// an injected default system turn, no BOS) and Llama-2's (adds BOS, ChatML fallback).
final class DPOTokenizerParityTests: XCTestCase {
    /// Each dataset file and the orca renderings, against both tokenizers.
    static let cases: [(dataset: String, file: String, rendering: OrcaPromptRendering)] = [
        ("standard", "standard.jsonl", .conversation),
        ("conversational", "conversational.jsonl", .conversation),
        ("implicit_standard", "implicit_standard.jsonl", .conversation),
        ("implicit_conversational", "implicit_conversational.jsonl", .conversation),
        ("orca_conversation", "orca.jsonl", .conversation),
        ("orca_two_calls", "orca.jsonl", .twoCalls),
    ]

    /// One dataset file tokenized one way, with what TRL made of it.
    struct Case {
        var name: String
        var tokenizer: Tokenizer
        var rendering: OrcaPromptRendering
        var expected: JSONValue
        var rows: [JSONValue]
        var examples: [PreferenceExample]
        var path: String
    }

    /// Every case of `cases` with both tokenizers.
    func forEachCase(_ body: (Case) throws -> Void) throws {
        for tokenizerName in ["smollm2", "llama2"] {
            let tokenizer = try DPODataFixtures.tokenizer(tokenizerName)
            for (dataset, file, rendering) in Self.cases {
                let expected = try DPODataFixtures.dataset(tokenizerName, dataset)
                let path = DPODataFixtures.data + "/" + file
                try body(Case(name: "\(tokenizerName)/\(dataset)", tokenizer: tokenizer, rendering: rendering, expected: expected,
                              rows: try XCTUnwrap(expected["rows"]?.arrayValue), examples: try PreferenceDataset.load(path: path).examples,
                              path: path))
            }
        }
    }

    func testTokenIDsMatchTRLWithoutTruncation() throws {
        try forEachCase { c in
            let (pairs, statistics, _) = try DPOTokenizer.tokenize(
                c.examples, tokenizer: c.tokenizer, options: DPOTokenizationOptions(maxLength: nil, orcaRendering: c.rendering))
            XCTAssertEqual(pairs.count, c.rows.count, c.name)
            XCTAssertEqual(statistics.dropped, 0)
            for (pair, row) in zip(pairs, c.rows) {
                let what = "\(c.name) \(pair.location)"
                XCTAssertEqual(pair.location, "\(c.path):\(try XCTUnwrap(row["line"]?.intValue))", what)
                XCTAssertEqual(pair.prompt, try XCTUnwrap(row["prompt_ids"]).ints(), "\(what): prompt")
                XCTAssertEqual(pair.chosen, try XCTUnwrap(row["chosen_ids"]).ints(), "\(what): chosen")
                XCTAssertEqual(pair.rejected, try XCTUnwrap(row["rejected_ids"]).ints(), "\(what): rejected")
                XCTAssertFalse(pair.isTruncated, what)
            }
        }
    }

    /// The strings TRL tokenized (after prompt extraction, the orca rendering and the EOS step)
    /// are the ones Finch builds.
    func testRenderedStringsMatchTRL() throws {
        try forEachCase { c in
            var preparation = PairPreparation(tokenizer: c.tokenizer, options: DPOTokenizationOptions(orcaRendering: c.rendering))
            for (example, row) in zip(c.examples, c.rows) {
                var prepared = example.extractingPrompt()
                if let system = prepared.system { prepared = try preparation.renderQuestion(prepared, system: system) }
                let what = "\(c.name) \(example.location)"
                switch (prepared.prompt, prepared.chosen, prepared.rejected) {
                case let (.text(prompt)?, .text(chosen), .text(rejected)):
                    XCTAssertEqual(Array(prompt.unicodeScalars), Array(try XCTUnwrap(row["prompt"]).string().unicodeScalars), what)
                    let eosChosen = preparation.context.appendingEOS(chosen, location: example.location, what: "a completion")
                    let eosRejected = preparation.context.appendingEOS(rejected, location: example.location, what: "a completion")
                    XCTAssertEqual(Array(eosChosen.unicodeScalars), Array(try XCTUnwrap(row["chosen"]).string().unicodeScalars), what)
                    XCTAssertEqual(Array(eosRejected.unicodeScalars), Array(try XCTUnwrap(row["rejected"]).string().unicodeScalars), what)
                case let (.messages(prompt)?, .messages(chosen), .messages(rejected)):
                    func messages(_ value: JSONValue?) throws -> [ChatMessage] {
                        try XCTUnwrap(value?.arrayValue).map {
                            ChatMessage(role: try XCTUnwrap($0["role"]).string(), content: try XCTUnwrap($0["content"]).string())
                        }
                    }
                    XCTAssertEqual(prompt, try messages(row["prompt"]), what)
                    XCTAssertEqual(chosen, try messages(row["chosen"]), what)
                    XCTAssertEqual(rejected, try messages(row["rejected"]), what)
                default:
                    XCTFail("\(what): mixed forms")
                }
            }
        }
    }

    /// TRL's pre-filter (prompt ≥ max_length dropped, keep_start) and the collator's per-sequence
    /// truncation, keep_start and keep_end, for max_length values that drop and cut.
    func testTruncationMatchesTRLCollator() throws {
        try forEachCase { c in
            let (tokenizer, rows, examples) = (c.tokenizer, c.rows, c.examples)
            var sawDrop = false, sawCut = false
            for entry in try XCTUnwrap(c.expected["truncation"]?.arrayValue) {
                let maxLength = try XCTUnwrap(entry["max_length"]?.intValue)
                let kept = try XCTUnwrap(entry["kept"]).ints()
                for mode in [DPOTruncationMode.keepStart, .keepEnd] {
                    let what = "\(c.name) max_length \(maxLength) \(mode.rawValue)"
                    let options = DPOTokenizationOptions(maxLength: maxLength, truncationMode: mode, orcaRendering: c.rendering)
                    let (pairs, statistics, warnings) = try DPOTokenizer.tokenize(examples, tokenizer: tokenizer, options: options)
                    let indices = mode == .keepStart ? kept : Array(rows.indices)
                    XCTAssertEqual(pairs.map(\.location), indices.map { examples[$0].location }, what)
                    XCTAssertEqual(statistics.dropped, examples.count - pairs.count, what)
                    if statistics.dropped > 0 {
                        sawDrop = true
                        XCTAssertTrue(warnings.contains { $0.contains("max_length (\(maxLength))") }, "\(what): \(warnings)")
                    }
                    let sequences = try XCTUnwrap(entry[mode.rawValue]?.arrayValue)
                    XCTAssertEqual(sequences.count, pairs.count, what)
                    for (pair, sequence) in zip(pairs, sequences) {
                        sawCut = sawCut || pair.chosenTruncated || pair.rejectedTruncated
                        XCTAssertEqual(pair.chosenInputIDs, try XCTUnwrap(sequence["chosen_input_ids"]).ints(), "\(what) \(pair.location)")
                        XCTAssertEqual(pair.rejectedInputIDs, try XCTUnwrap(sequence["rejected_input_ids"]).ints(), "\(what) \(pair.location)")
                        let chosenMask = Array(repeating: 0, count: pair.chosenPromptLength) + Array(repeating: 1, count: pair.chosen.count)
                        let rejectedMask = Array(repeating: 0, count: pair.rejectedPromptLength) + Array(repeating: 1, count: pair.rejected.count)
                        XCTAssertEqual(chosenMask, try XCTUnwrap(sequence["chosen_completion_mask"]).ints(), "\(what) \(pair.location)")
                        XCTAssertEqual(rejectedMask, try XCTUnwrap(sequence["rejected_completion_mask"]).ints(), "\(what) \(pair.location)")
                        XCTAssertLessThanOrEqual(pair.chosenInputIDs.count, maxLength)
                    }
                }
            }
            XCTAssertTrue(sawDrop && sawCut, "\(c.name): the fixture's max_length values should both drop and cut")
        }
    }

    /// Where Finch deliberately differs from TRL 1.16: no doubled BOS (a prompt text that starts
    /// with "<s>" under a BOS-adding tokenizer) and no doubled EOS (a completion ending in the EOS
    /// string and a newline). Everything else is TRL's.
    func testNoDoubledBOSOrEOSWhereTRLDoublesThem() throws {
        let path = DPODataFixtures.data + "/eos_bos_edge.jsonl"
        let (examples, _) = try PreferenceDataset.load(path: path)
        for tokenizerName in ["smollm2", "llama2"] {
            let tokenizer = try DPODataFixtures.tokenizer(tokenizerName)
            let rows = try XCTUnwrap(try DPODataFixtures.dataset(tokenizerName, "eos_bos_edge")["rows"]?.arrayValue)
            let (pairs, _, warnings) = try DPOTokenizer.tokenize(examples, tokenizer: tokenizer, options: .init(maxLength: nil))
            var trl = try rows.map { (try XCTUnwrap($0["prompt_ids"]).ints(), try XCTUnwrap($0["chosen_ids"]).ints(),
                                      try XCTUnwrap($0["rejected_ids"]).ints()) }
            let eos = try XCTUnwrap(tokenizer.eosTokenID)
            if tokenizerName == "llama2" {
                let bos = try XCTUnwrap(tokenizer.bosTokenID)
                XCTAssertEqual(Array(trl[0].0.prefix(2)), [bos, bos], "TRL doubles BOS here")
                trl[0].0.removeFirst()
                XCTAssertEqual(trl[1].2.last, eos)
                trl[1].2.removeLast() // "No.</s>\n" + "</s>"
                XCTAssertTrue(warnings.contains { $0.contains("one BOS kept") }, "\(warnings)")
            } else {
                XCTAssertEqual(trl[1].1.last, eos)
                trl[1].1.removeLast() // "Hi!<|im_end|>\n" + "<|im_end|>"
            }
            XCTAssertTrue(warnings.contains { $0.contains("no EOS appended") }, "\(warnings)")
            for (pair, want) in zip(pairs, trl) {
                XCTAssertEqual(pair.prompt, want.0, "\(tokenizerName) \(pair.location)")
                XCTAssertEqual(pair.chosen, want.1, "\(tokenizerName) \(pair.location)")
                XCTAssertEqual(pair.rejected, want.2, "\(tokenizerName) \(pair.location)")
                XCTAssertEqual(pair.chosen.suffix(2).filter { $0 == eos }.count <= 1, true)
            }
        }
    }

    /// With the ChatML fallback template both orca renderings are byte-identical to the article's
    /// `chatml_format` output (computed by Python with transformers' former default template).
    func testOrcaRenderingWithChatMLFallbackIsTheArticlesChatMLFormat() throws {
        let tokenizer = try DPODataFixtures.tokenizer("llama2")
        XCTAssertNil(tokenizer.chatTemplate)
        let article = try XCTUnwrap(try DPODataFixtures.expected.get()["article_chatml_format"]?.arrayValue)
        let (examples, report) = try PreferenceDataset.load(path: DPODataFixtures.data + "/orca.jsonl")
        XCTAssertEqual(report.schema, .question)
        XCTAssertEqual(examples.count, article.count)
        for rendering in [OrcaPromptRendering.conversation, .twoCalls] {
            var preparation = PairPreparation(tokenizer: tokenizer, options: DPOTokenizationOptions(orcaRendering: rendering))
            for (example, want) in zip(examples, article) {
                let rendered = try preparation.renderQuestion(example, system: try XCTUnwrap(example.system))
                for (ours, key) in [(rendered.prompt, "prompt"), (rendered.chosen, "chosen"), (rendered.rejected, "rejected")] {
                    guard case .text(let text)? = ours else { return XCTFail("not text") }
                    XCTAssertEqual(Array(text.utf8), Array(try XCTUnwrap(want[key]).string().utf8), "\(rendering) \(example.location) \(key)")
                }
            }
            XCTAssertEqual(preparation.warnings.lines.count, 1, "only the fallback warning: \(preparation.warnings.lines)")
            XCTAssertTrue(preparation.warnings.lines.first?.contains("ChatML") ?? false)
        }
    }

    /// SmolLM2's template injects its default system turn into the article's second call: the
    /// two-call prompt holds two system turns, and tokenization says so.
    func testTwoCallRenderingWarnsAboutTheInjectedSystemTurn() throws {
        let tokenizer = try DPODataFixtures.tokenizer("smollm2")
        let (examples, _) = try PreferenceDataset.load(path: DPODataFixtures.data + "/orca.jsonl")
        let (_, _, twoCalls) = try DPOTokenizer.tokenize(examples, tokenizer: tokenizer, options: .init(orcaRendering: .twoCalls))
        let warning = try XCTUnwrap(twoCalls.first { $0.contains("two system turns") }, "\(twoCalls)")
        XCTAssertTrue(warning.contains("You are a helpful AI assistant named SmolLM"), warning)
        // Rows 1, 3 and 4 have a system prompt; row 2 has none (one call, nothing injected twice).
        XCTAssertTrue(warning.hasPrefix("3 pairs (first: \(DPODataFixtures.data)/orca.jsonl:1)"), warning)
        let (_, _, conversation) = try DPOTokenizer.tokenize(examples, tokenizer: tokenizer, options: .init(orcaRendering: .conversation))
        XCTAssertFalse(conversation.contains { $0.contains("system turn") }, "\(conversation)")
    }
}
