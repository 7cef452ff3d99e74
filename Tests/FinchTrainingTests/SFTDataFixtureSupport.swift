// Shared helpers for the SFT data tests: the files reference/make_sft_data_fixtures.py writes
// (Fixtures/sft_data/*, Fixtures/sft_data_expected.json). The tokenizers are the DPO data tests'.

import FinchFormats
import FinchTokenizers
@testable import FinchTraining
import Foundation
import XCTest

enum SFTDataFixtures {
    static let data = Fixtures.directory + "/sft_data"

    static let expected: Result<JSONValue, any Error> = Result {
        try JSONValue.parse(contentsOf: Fixtures.directory + "/sft_data_expected.json")
    }

    /// `tokenizers.NAME.KEY…` of the expected file.
    static func entry(_ tokenizer: String, _ keys: String..., file: StaticString = #filePath, line: UInt = #line) throws -> JSONValue {
        var value: JSONValue? = try expected.get()["tokenizers"]?[tokenizer]
        for key in keys { value = value?[key] }
        return try XCTUnwrap(value, "sft_data_expected.json has no \(tokenizer)/\(keys.joined(separator: "/")); run reference/make_sft_data_fixtures.py",
                             file: file, line: line)
    }

    /// ChatML with `{% generation %}` around assistant turns (the fixtures' assistant_only_loss template).
    static func generationTemplate() throws -> ChatTemplate {
        let path = data + "/chatml_generation.jinja"
        let source = try String(contentsOfFile: path, encoding: .utf8)
        return try ChatTemplate(source: source, origin: path)
    }

    /// TRL's prepared rows (`input_ids`, `labels`, and `seq_lengths` when packed).
    static func rows(_ value: JSONValue, file: StaticString = #filePath, line: UInt = #line) throws -> [PreparedRow] {
        try XCTUnwrap(value.arrayValue, file: file, line: line).map { row in
            (try XCTUnwrap(row["input_ids"], file: file, line: line).ints(), try XCTUnwrap(row["labels"], file: file, line: line).ints(),
             try row["seq_lengths"]?.ints())
        }
    }
}

typealias PreparedRow = (ids: [Int], labels: [Int], seqLengths: [Int]?)

/// How sequences differ from TRL's rows: one line per differing row (empty when they agree).
func sequenceMismatches(_ sequences: [SFTSequence], _ expected: [PreparedRow]) -> [String] {
    var problems: [String] = []
    if sequences.count != expected.count { problems.append("\(sequences.count) sequences, TRL has \(expected.count)") }
    for (i, (sequence, want)) in zip(sequences, expected).enumerated() {
        if sequence.inputIDs != want.ids { problems.append("row \(i) (\(sequence.location)): ids \(sequence.inputIDs) ≠ \(want.ids)") }
        if sequence.labels != want.labels { problems.append("row \(i) (\(sequence.location)): labels \(sequence.labels) ≠ \(want.labels)") }
    }
    return problems
}

/// How packed bins differ from TRL's packed rows: the concatenated ids and labels, and where
/// each sequence starts (`seq_lengths`; a wrapped row is one sequence).
func binMismatches(_ bins: [[SFTSequence]], _ expected: [PreparedRow]) -> [String] {
    var problems: [String] = []
    if bins.count != expected.count { problems.append("\(bins.count) packed rows, TRL has \(expected.count)") }
    for (i, (bin, want)) in zip(bins, expected).enumerated() {
        if bin.flatMap(\.inputIDs) != want.ids { problems.append("row \(i): ids \(bin.flatMap(\.inputIDs)) ≠ \(want.ids)") }
        if bin.flatMap(\.labels) != want.labels { problems.append("row \(i): labels differ") }
        if bin.map(\.count) != want.seqLengths ?? [want.ids.count] {
            problems.append("row \(i): sequence lengths \(bin.map(\.count)) ≠ \(want.seqLengths ?? [want.ids.count])")
        }
    }
    return problems
}

func assertSequences(_ sequences: [SFTSequence], _ expected: [PreparedRow], _ what: String,
                     file: StaticString = #filePath, line: UInt = #line) {
    let problems = sequenceMismatches(sequences, expected)
    XCTAssertTrue(problems.isEmpty, "\(what): \(problems.prefix(3).joined(separator: "; "))", file: file, line: line)
}

func assertBins(_ bins: [[SFTSequence]], _ expected: [PreparedRow], _ what: String,
                file: StaticString = #filePath, line: UInt = #line) {
    let problems = binMismatches(bins, expected)
    XCTAssertTrue(problems.isEmpty, "\(what): \(problems.prefix(3).joined(separator: "; "))", file: file, line: line)
}
