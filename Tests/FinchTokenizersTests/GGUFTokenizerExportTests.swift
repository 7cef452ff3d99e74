import FinchFormats
import FinchTokenizers
import Foundation
import XCTest

/// `tokenizer.json` written from GGUF metadata (what `finch merge` puts next to a model merged
/// from a GGUF base): read back, it tokenizes and decodes the 2,197-string corpus exactly as the
/// GGUF tokenizer does — which TokenizerParityTests holds to transformers' own GGUF conversion —
/// and for the SentencePiece-style Llama-2 vocabulary its pipeline pieces equal the tokenizer.json
/// transformers 5.24 builds (recorded in llama2_gguf_expected.json).
final class GGUFTokenizerExportTests: XCTestCase {
    func roundTrip(_ vocabulary: String) throws -> (written: JSONValue, fromJSON: Tokenizer, fromGGUF: Tokenizer) {
        let gguf = try GGUFFile(path: TokenizerParityTests.fixtures + "/" + vocabulary)
        let (json, config) = try Tokenizer.huggingFaceFiles(gguf: gguf, modelMaxLength: 2048)
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("finch-tokenizer-export-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(atPath: dir) }
        try Data(json.compactText.utf8).write(to: URL(fileURLWithPath: dir + "/tokenizer.json"))
        try Data(config.compactText.utf8).write(to: URL(fileURLWithPath: dir + "/tokenizer_config.json"))
        let fromJSON = try Tokenizer(tokenizerJSON: dir + "/tokenizer.json", tokenizerConfig: dir + "/tokenizer_config.json")
        return (json, fromJSON, try Tokenizer(gguf: gguf))
    }

    func checkCorpus(_ vocabulary: String) throws {
        let (_, ours, reference) = try roundTrip(vocabulary)
        let corpus = TokenizerParityTests.corpus
        XCTAssertGreaterThan(corpus.count, 2000)
        var mismatches: [String] = []
        for text in corpus {
            let ids = ours.encode(text)
            if ids != reference.encode(text) || ours.encode(text, addSpecialTokens: false) != reference.encode(text, addSpecialTokens: false)
                || ours.decode(ids) != reference.decode(ids) || ours.decode(ids, skipSpecialTokens: true) != reference.decode(ids, skipSpecialTokens: true) {
                mismatches.append(text)
            }
        }
        XCTAssertTrue(mismatches.isEmpty, "\(vocabulary): \(mismatches.count) strings differ, e.g. \(mismatches.prefix(3))")
        XCTAssertEqual(ours.bosToken, reference.bosToken)
        XCTAssertEqual(ours.eosToken, reference.eosToken)
    }

    func testLlama2SentencePieceVocabulary() throws { try checkCorpus("llama2.vocab.gguf") }
    func testQwen2ByteLevelVocabulary() throws { try checkCorpus("qwen2.vocab.gguf") }
    func testPhi2ByteLevelVocabulary() throws { try checkCorpus("phi2.vocab.gguf") }

    func testLlama2PipelineEqualsTransformersConversion() throws {
        let (written, _, _) = try roundTrip("llama2.vocab.gguf")
        let expected = try XCTUnwrap(JSONValue.parse(contentsOf: TokenizerParityTests.fixtures + "/llama2_gguf_expected.json")["gguf_tokenizer_json"])
        /// Objects compared without regard to member order (Python sorted the recorded keys).
        func canonical(_ v: JSONValue) -> JSONValue {
            switch v {
            case .object(let members): .object(members.map { ($0.0, canonical($0.1)) }.sorted { $0.0 < $1.0 })
            case .array(let items): .array(items.map(canonical))
            default: v
            }
        }
        for key in ["decoder", "normalizer", "post_processor", "pre_tokenizer"] {
            XCTAssertEqual(canonical(try XCTUnwrap(written[key])), canonical(try XCTUnwrap(expected[key])), key)
        }
    }
}
