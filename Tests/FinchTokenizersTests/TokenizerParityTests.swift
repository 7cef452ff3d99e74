import FinchCore
import FinchFormats
import FinchTokenizers
import Foundation
import XCTest

/// Token ids and decoded text identical to transformers 5.24 / tokenizers 0.23.3 on a corpus of
/// 2,197 strings (prose, code, numbers, emoji, CJK, combining marks, byte look-alikes, every added
/// token, whitespace edge cases, the empty string), for five tokenizer families, from
/// tokenizer.json and from GGUF vocabularies (reference/make_tokenizer_fixtures.py).
final class TokenizerParityTests: XCTestCase {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures").path

    static let corpus: [String] = {
        let json = try? JSONValue.parse(contentsOf: fixtures + "/corpus.json")
        return json?["strings"]?.arrayValue?.compactMap { $0["text"]?.stringValue } ?? []
    }()

    struct Case {
        var ids: [Int], idsNoSpecial: [Int]
        var decoded: String, decodedSkip: String, decodedCleanUp: String
    }

    static func expected(_ file: String) throws -> [Case] {
        let json = try JSONValue.parse(contentsOf: fixtures + "/" + file)
        let results = json["results"]?.arrayValue ?? []
        return results.map { r in
            let ids = r["ids"]?.arrayValue?.compactMap(\.intValue) ?? []
            let decoded = r["decoded"]?.stringValue ?? ""
            return Case(ids: ids, idsNoSpecial: r["ids_no_special"]?.arrayValue?.compactMap(\.intValue) ?? ids,
                        decoded: decoded, decodedSkip: r["decoded_skip"]?.stringValue ?? decoded,
                        decodedCleanUp: r["decoded_cleanup"]?.stringValue ?? decoded)
        }
    }

    /// Compares every corpus string; reports the first few mismatches with their text.
    func check(_ tokenizer: Tokenizer, _ file: String, streaming: Bool = true, file testFile: StaticString = #filePath, line: UInt = #line) throws {
        let cases = try Self.expected(file)
        XCTAssertEqual(cases.count, Self.corpus.count, "\(file) does not match corpus.json", file: testFile, line: line)
        XCTAssertGreaterThanOrEqual(cases.count, 2000, file: testFile, line: line)
        var failures: [String] = []
        for (text, want) in zip(Self.corpus, cases) {
            func fail(_ what: String) { failures.append("\(what) for \(text.debugDescription.prefix(120))") }
            let ids = tokenizer.encode(text)
            if ids != want.ids { fail("encode: \(ids.prefix(40)) ≠ \(want.ids.prefix(40))") }
            let plain = tokenizer.encode(text, addSpecialTokens: false)
            if plain != want.idsNoSpecial { fail("encode(addSpecialTokens: false): \(plain.prefix(40)) ≠ \(want.idsNoSpecial.prefix(40))") }
            let decoded = tokenizer.decode(want.ids)
            if decoded != want.decoded { fail("decode: \(decoded.debugDescription) ≠ \(want.decoded.debugDescription)") }
            let skipped = tokenizer.decode(want.ids, skipSpecialTokens: true)
            if skipped != want.decodedSkip { fail("decode(skipSpecialTokens): \(skipped.debugDescription) ≠ \(want.decodedSkip.debugDescription)") }
            let cleaned = tokenizer.decode(want.ids, cleanUpSpaces: tokenizer.cleanUpTokenizationSpaces)
            if cleaned != want.decodedCleanUp { fail("decode(cleanUpSpaces): \(cleaned.debugDescription) ≠ \(want.decodedCleanUp.debugDescription)") }
            if streaming {
                var stream = StreamingDecoder(tokenizer: tokenizer)
                var text = ""
                for id in want.ids {
                    let piece = stream.push(id)
                    if piece.unicodeScalars.last == "\u{FFFD}", want.decoded.unicodeScalars.contains("\u{FFFD}") == false {
                        fail("streaming emitted U+FFFD mid-stream")
                    }
                    text += piece
                }
                text += stream.finish()
                if text != want.decoded { fail("streaming decode: \(text.debugDescription) ≠ \(want.decoded.debugDescription)") }
            }
        }
        XCTAssertTrue(failures.isEmpty, "\(file): \(failures.count) mismatches; first: \(failures.prefix(5).joined(separator: "\n"))", file: testFile, line: line)
    }

    func folder(_ name: String) throws -> Tokenizer {
        let dir = Self.fixtures + "/" + name
        let template = dir + "/chat_template.jinja"
        return try Tokenizer(tokenizerJSON: dir + "/tokenizer.json", tokenizerConfig: dir + "/tokenizer_config.json",
                             chatTemplateFile: FileManager.default.fileExists(atPath: template) ? template : nil)
    }

    func testSmolLM2TokenizerJSON() throws { try check(folder("smollm2"), "smollm2_expected.json") }
    func testPhi2CodeGenTokenizerJSON() throws { try check(folder("phi2"), "phi2_expected.json") }
    func testLlama2LegacySentencePiece() throws { try check(folder("llama2"), "llama2_expected.json") }
    func testLlama2MetaspaceSentencePiece() throws { try check(folder("llama2_metaspace"), "llama2_metaspace_expected.json") }
    func testQwen2TokenizerJSON() throws { try check(folder("qwen2"), "qwen2_expected.json") }

    /// The real SmolLM2 GGUF: the smollm2 fixture folder was built by transformers from this file.
    func testSmolLM2FromTheDefaultModelGGUF() throws {
        let path = ModelCache.fromEnvironment().path(for: .defaultModel)
        XCTAssertTrue(FileManager.default.fileExists(atPath: path), "run `finch pull` first (scripts/test does)")
        try check(Tokenizer(gguf: GGUFFile(path: path)), "smollm2_expected.json", streaming: false)
    }

    func testPhi2FromGGUFVocabulary() throws { try check(Tokenizer(gguf: GGUFFile(path: Self.fixtures + "/phi2.vocab.gguf")), "phi2_gguf_expected.json", streaming: false) }
    func testLlama2FromGGUFVocabulary() throws { try check(Tokenizer(gguf: GGUFFile(path: Self.fixtures + "/llama2.vocab.gguf")), "llama2_gguf_expected.json", streaming: false) }
    func testQwen2FromGGUFVocabulary() throws { try check(Tokenizer(gguf: GGUFFile(path: Self.fixtures + "/qwen2.vocab.gguf")), "qwen2_gguf_expected.json", streaming: false) }

    /// llama.cpp's own test-tokenizer-0 expectations (no BOS), which the legacy SentencePiece form
    /// and the GGUF-built byte-level tokenizers reproduce (Fixtures/README.md).
    func testLlamaCppTestVectors() throws {
        for (name, tokenizer) in [("llama2", try folder("llama2")), ("qwen2", try folder("qwen2")),
                                  ("phi2", try Tokenizer(gguf: GGUFFile(path: Self.fixtures + "/phi2.vocab.gguf")))] {
            let inputs = try String(contentsOfFile: Self.fixtures + "/\(name).vocab.gguf.inp", encoding: .utf8)
                .components(separatedBy: "\n__ggml_vocab_test__\n").dropLast()
            let outputs = try String(contentsOfFile: Self.fixtures + "/\(name).vocab.gguf.out", encoding: .utf8)
                .components(separatedBy: "\n")
            XCTAssertEqual(inputs.count, 46)
            for (i, text) in inputs.enumerated() {
                let want = outputs[i].split(separator: " ").compactMap { Int($0) }
                XCTAssertEqual(tokenizer.encode(text, addSpecialTokens: false), want, "\(name) llama.cpp test \(i): \(text.debugDescription)")
            }
        }
    }

    /// Test the checker: a single changed id or character in the expectations must be reported.
    func testTheComparisonCatchesAMutatedExpectation() throws {
        let tokenizer = try folder("smollm2")
        let cases = try Self.expected("smollm2_expected.json")
        let index = cases.firstIndex { $0.ids.count > 3 } ?? 0
        var mutated = cases[index].ids
        mutated[1] += 1
        XCTAssertNotEqual(tokenizer.encode(Self.corpus[index]), mutated)
        XCTAssertNotEqual(tokenizer.decode(mutated), cases[index].decoded)
    }
}
