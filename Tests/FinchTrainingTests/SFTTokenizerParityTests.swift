import FinchFormats
import FinchTokenizers
@testable import FinchTraining
import XCTest

/// Token ids, labels and packed rows identical to TRL 1.16's `SFTTrainer._prepare_dataset`
/// (reference/make_sft_data_fixtures.py → Fixtures/sft_data_expected.json) for text,
/// prompt-completion (strings and conversations), messages, ShareGPT and Alpaca rows, with
/// SmolLM2's tokenizer (ChatML template with an injected default system turn, no BOS) and
/// Llama-2's (adds BOS, ChatML fallback).
final class SFTTokenizerParityTests: XCTestCase {
    static let datasets = ["text", "prompt_completion", "conversational", "messages", "sharegpt", "alpaca"]
    static let tokenizers = ["smollm2", "llama2"]

    func examples(_ dataset: String) throws -> [SFTExample] {
        try SFTDataset.load(path: SFTDataFixtures.data + "/\(dataset).jsonl").examples
    }

    /// Every variant listed under `tokenizers.NAME.datasets.DATASET.KEY`, for both tokenizers and
    /// every dataset: (tokenizer name, tokenizer, dataset, variant with `max_length` and `rows`).
    func forEachVariant(_ key: String, _ body: (String, Tokenizer, String, JSONValue, Int, [PreparedRow]) throws -> Void) throws {
        for name in Self.tokenizers {
            let tokenizer = try DPODataFixtures.tokenizer(name)
            for dataset in Self.datasets {
                for variant in try XCTUnwrap(try SFTDataFixtures.entry(name, "datasets", dataset, key).arrayValue) {
                    try body(name, tokenizer, dataset, variant, try XCTUnwrap(variant["max_length"]?.intValue),
                             try SFTDataFixtures.rows(try XCTUnwrap(variant["rows"])))
                }
            }
        }
    }

    /// Without max_length: every row's ids and labels (completion-only loss by TRL's default:
    /// on for prompt-completion and Alpaca rows, off for text and conversations).
    func testRowsMatchTRL() throws {
        for name in Self.tokenizers {
            let tokenizer = try DPODataFixtures.tokenizer(name)
            for dataset in Self.datasets {
                let (sequences, statistics, _) = try SFTTokenizer.tokenize(try examples(dataset), tokenizer: tokenizer, options: .init(maxLength: nil))
                assertSequences(sequences, try SFTDataFixtures.rows(try SFTDataFixtures.entry(name, "datasets", dataset, "rows")), "\(name)/\(dataset)")
                XCTAssertEqual(statistics.completionOnlyLoss, ["prompt_completion", "conversational", "alpaca"].contains(dataset), dataset)
                XCTAssertEqual(statistics.dropped, 0)
            }
        }
    }

    /// completion_only_loss=False: every token labeled.
    func testCompletionOnlyLossOffMatchesTRL() throws {
        for name in Self.tokenizers {
            let tokenizer = try DPODataFixtures.tokenizer(name)
            for dataset in Self.datasets {
                let options = SFTTokenizationOptions(maxLength: nil, completionOnlyLoss: false)
                let (sequences, _, _) = try SFTTokenizer.tokenize(try examples(dataset), tokenizer: tokenizer, options: options)
                assertSequences(sequences, try SFTDataFixtures.rows(try SFTDataFixtures.entry(name, "datasets", dataset, "completion_only_loss_off")),
                                "\(name)/\(dataset) full loss")
                XCTAssertTrue(sequences.allSatisfy { $0.labels == $0.inputIDs })
            }
        }
    }

    /// max_length with keep_start and keep_end, and TRL's filter of rows left with no label.
    func testTruncationMatchesTRL() throws {
        var droppedSomewhere = false
        try forEachVariant("truncation") { name, tokenizer, dataset, variant, maxLength, expected in
            let mode = try XCTUnwrap(DPOTruncationMode(rawValue: try XCTUnwrap(variant["mode"]).string()))
            let examples = try examples(dataset)
            let (sequences, statistics, warnings) = try SFTTokenizer.tokenize(examples, tokenizer: tokenizer,
                                                                               options: .init(maxLength: maxLength, truncationMode: mode))
            assertSequences(sequences, expected, "\(name)/\(dataset) max_length \(maxLength) \(mode.rawValue)")
            XCTAssertTrue(sequences.allSatisfy { $0.count <= maxLength })
            XCTAssertEqual(statistics.dropped, examples.count - expected.count)
            if statistics.dropped > 0 {
                droppedSomewhere = true
                XCTAssertTrue(warnings.contains { $0.contains("dropped") }, "\(warnings)")
            }
        }
        XCTAssertTrue(droppedSomewhere, "the fixtures should exercise TRL's filter of fully masked rows")
    }

    /// Packing (bfd, bfd_split, wrapped) at two lengths: the same packed rows, in the same order.
    func testPackingMatchesTRL() throws {
        try forEachVariant("packing") { name, tokenizer, dataset, variant, maxLength, expected in
            let strategy = try XCTUnwrap(SFTPackingStrategy(rawValue: try XCTUnwrap(variant["strategy"]).string()))
            let options = SFTTokenizationOptions(maxLength: maxLength, packing: true)
            let (sequences, _, _) = try SFTTokenizer.tokenize(try examples(dataset), tokenizer: tokenizer, options: options)
            let bins = SFTPacking.pack(sequences, maxLength: maxLength, strategy: strategy)
            assertBins(bins, expected, "\(name)/\(dataset) \(strategy.rawValue) \(maxLength)")
            XCTAssertTrue(bins.allSatisfy { $0.reduce(0) { $0 + $1.count } <= maxLength })
        }
    }

    /// assistant_only_loss with a template that has {% generation %} markers: messages rows, and
    /// conversational prompt-completion rows with and without the completion mask.
    func testAssistantOnlyLossMatchesTRL() throws {
        let template = try SFTDataFixtures.generationTemplate()
        for name in Self.tokenizers {
            let tokenizer = try DPODataFixtures.tokenizer(name)
            let cases: [(String, String, Bool?)] = [("messages", "messages", nil), ("conversational", "conversational", nil),
                                                    ("conversational", "conversational_full_loss", false)]
            for (dataset, key, completionOnly) in cases {
                let options = SFTTokenizationOptions(maxLength: nil, completionOnlyLoss: completionOnly, assistantOnlyLoss: true, chatTemplate: template)
                let (sequences, statistics, warnings) = try SFTTokenizer.tokenize(try examples(dataset), tokenizer: tokenizer, options: options)
                assertSequences(sequences, try SFTDataFixtures.rows(try SFTDataFixtures.entry(name, "assistant_only", key)), "\(name)/\(key)")
                XCTAssertTrue(statistics.assistantOnlyLoss)
                // Llama-2 has no <|im_end|> token: the mask ends on ">", which TRL warns about too.
                XCTAssertEqual(warnings.contains { $0.contains("end-of-turn") }, name == "llama2", "\(warnings)")
            }
        }
    }

    /// Where TRL 1.16 appends a second EOS (text or completion already ending with EOS + "\n"),
    /// Finch keeps one and warns; everything else is TRL's.
    func testNoDoubledEOSWhereTRLDoublesIt() throws {
        let (examples, _) = try SFTDataset.load(path: SFTDataFixtures.data + "/eos_edge.jsonl")
        for name in Self.tokenizers {
            let tokenizer = try DPODataFixtures.tokenizer(name)
            let eos = try XCTUnwrap(tokenizer.eosTokenID)
            var trl = try SFTDataFixtures.rows(try SFTDataFixtures.entry(name, "datasets", "eos_edge", "rows"))
            let doubled = name == "smollm2" ? 0 : 1
            XCTAssertEqual(trl[doubled].ids.last, eos)
            trl[doubled].ids.removeLast()
            trl[doubled].labels.removeLast()
            let (sequences, _, warnings) = try SFTTokenizer.tokenize(examples, tokenizer: tokenizer, options: .init(maxLength: nil))
            assertSequences(sequences, trl, "\(name)/eos_edge")
            XCTAssertTrue(warnings.contains { $0.contains("no EOS appended") }, "\(warnings)")
        }
    }

    /// The checkers fail on a changed fixture (one label, one token, one packed boundary).
    func testCheckerCatchesAMutatedFixture() throws {
        let tokenizer = try DPODataFixtures.tokenizer("smollm2")
        let (sequences, _, _) = try SFTTokenizer.tokenize(try examples("prompt_completion"), tokenizer: tokenizer, options: .init(maxLength: nil))
        let expected = try SFTDataFixtures.rows(try SFTDataFixtures.entry("smollm2", "datasets", "prompt_completion", "rows"))
        XCTAssertEqual(sequenceMismatches(sequences, expected), [])
        var label = expected
        label[1].labels[label[1].labels.count - 2] = SFTSequence.ignoreIndex
        XCTAssertEqual(sequenceMismatches(sequences, label).count, 1)
        var token = expected
        token[0].ids[0] += 1
        XCTAssertEqual(sequenceMismatches(sequences, token).count, 1)
        XCTAssertEqual(sequenceMismatches(Array(sequences.dropLast()), expected).count, 1)

        let packed = try XCTUnwrap(try SFTDataFixtures.entry("smollm2", "datasets", "prompt_completion", "packing").arrayValue?.first)
        let maxLength = try XCTUnwrap(packed["max_length"]?.intValue)
        var rows = try SFTDataFixtures.rows(try XCTUnwrap(packed["rows"]))
        let (unpacked, _, _) = try SFTTokenizer.tokenize(try examples("prompt_completion"), tokenizer: tokenizer,
                                                         options: .init(maxLength: maxLength, packing: true))
        let bins = SFTPacking.pack(unpacked, maxLength: maxLength)
        XCTAssertEqual(binMismatches(bins, rows), [])
        let row = try XCTUnwrap(rows.firstIndex { ($0.seqLengths?.count ?? 0) > 1 }, "a packed row with two sequences")
        rows[row].seqLengths?.reverse()
        if rows[row].seqLengths?.first == rows[row].seqLengths?.last { rows[row].seqLengths = [rows[row].ids.count] }
        XCTAssertEqual(binMismatches(bins, rows).count, 1)
    }
}
