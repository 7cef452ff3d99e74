// Shared helpers for the DPO data tests: the files reference/make_dpo_data_fixtures.py writes
// (Fixtures/dpo_data/*, Fixtures/dpo_data_expected.json) and the two tokenizers they were made with.

import FinchFormats
import FinchTokenizers
@testable import FinchTraining
import Foundation
import XCTest

enum DPODataFixtures {
    static let data = Fixtures.directory + "/dpo_data"

    static let expected: Result<JSONValue, any Error> = Result {
        try JSONValue.parse(contentsOf: Fixtures.directory + "/dpo_data_expected.json")
    }

    /// SmolLM2-135M-Instruct's tokenizer from the default model's GGUF (CI installs it).
    static let smolLM2: Result<Tokenizer, any Error> = Result {
        try Tokenizer(source: ModelSource(path: ModelCache.fromEnvironment().path(for: .defaultModel)))
    }

    /// The Llama-2 tokenizer.json of the tokenizer tests (adds BOS, no chat template).
    static let llama2: Result<Tokenizer, any Error> = Result {
        let dir = URL(fileURLWithPath: Fixtures.directory).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("FinchTokenizersTests/Fixtures/llama2").path
        return try Tokenizer(tokenizerJSON: dir + "/tokenizer.json", tokenizerConfig: dir + "/tokenizer_config.json")
    }

    static func tokenizer(_ name: String) throws -> Tokenizer {
        switch name {
        case "smollm2": try smolLM2.get()
        case "llama2": try llama2.get()
        default: throw TrainingError(name, "no such fixture tokenizer")
        }
    }

    /// `tokenizers.NAME.datasets.DATASET` of the expected file.
    static func dataset(_ tokenizer: String, _ name: String, file: StaticString = #filePath, line: UInt = #line) throws -> JSONValue {
        try XCTUnwrap(try expected.get()["tokenizers"]?[tokenizer]?["datasets"]?[name],
                      "dpo_data_expected.json has no \(tokenizer)/\(name); run reference/make_dpo_data_fixtures.py", file: file, line: line)
    }
}

extension JSONValue {
    /// An array of integers, failing the test otherwise.
    func ints(file: StaticString = #filePath, line: UInt = #line) throws -> [Int] {
        try XCTUnwrap(arrayValue?.map { try XCTUnwrap($0.intValue, file: file, line: line) }, "not an array of integers: \(self)",
                      file: file, line: line)
    }

    func string(file: StaticString = #filePath, line: UInt = #line) throws -> String {
        try XCTUnwrap(stringValue, "not a string: \(self)", file: file, line: line)
    }
}

/// Writes `contents` (bytes) to a fresh temporary file named `name` and returns its path.
func temporaryFile(_ name: String, _ bytes: [UInt8]) throws -> String {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("finch-dpo-data-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    let path = dir.appendingPathComponent(name).path
    guard FileManager.default.createFile(atPath: path, contents: Data(bytes)) else { throw TrainingError(path, "cannot write") }
    return path
}

func temporaryFile(_ name: String, _ text: String) throws -> String {
    try temporaryFile(name, Array(text.utf8))
}
