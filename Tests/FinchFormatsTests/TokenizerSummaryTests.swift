import FinchFormats
import XCTest

/// How `finch inspect` classifies tokenizer.json files. The inputs are minimal hand-written
/// tokenizer.json skeletons with the fields transformers writes for each family (byte-level BPE:
/// ByteLevel pre-tokenizer; SentencePiece BPE: Metaspace + byte_fallback); parsing the full files
/// is the tokenizer issue's job, with fixtures from `tokenizers`.
final class TokenizerSummaryTests: XCTestCase {
    func folder(tokenizer: String, config: String?, template: Bool = false) throws -> (TemporaryDirectory, ModelSource) {
        let dir = try TemporaryDirectory()
        _ = try dir.write("config.json", String(contentsOfFile: Fixtures.path("tiny_llama/config.json"), encoding: .utf8))
        try SafeTensorsWriter.write([.init(name: "model.embed_tokens.weight", shape: [2, 2], float32: [1, 2, 3, 4])], to: dir.path + "/model.safetensors")
        _ = try dir.write("tokenizer.json", tokenizer)
        if let config { _ = try dir.write("tokenizer_config.json", config) }
        if template { _ = try dir.write("chat_template.jinja", "{{ messages }}") }
        return (dir, try ModelSource(path: dir.path))
    }

    func testByteLevelBPEWithSpecialTokensAndTemplateFile() throws {
        let (dir, source) = try folder(tokenizer: #"""
            {"added_tokens": [{"id": 0, "content": "<|endoftext|>", "special": true}, {"id": 3, "content": "<x>", "special": false},
                              {"id": 1, "content": "<|im_start|>", "special": true}],
             "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": false},
             "decoder": {"type": "ByteLevel"},
             "model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "c": 2}, "merges": []}}
            """#, config: #"{"bos_token": "<|im_start|>", "eos_token": {"content": "<|endoftext|>"}}"#, template: true)
        let t = try withExtendedLifetime(dir) { try TokenizerSummary(source: source) }
        XCTAssertEqual(t.kind, "byte-level BPE")
        XCTAssertEqual(t.specialTokens.map(\.id), [0, 1])
        XCTAssertEqual(t.vocabularySize, 4)
        XCTAssertEqual(t.bosToken, "<|im_start|>")
        XCTAssertEqual(t.eosToken, "<|endoftext|>")
        XCTAssertTrue(t.hasChatTemplate)
    }

    func testSentencePieceBPEAndTemplateInConfig() throws {
        let (dir, source) = try folder(tokenizer: #"""
            {"added_tokens": [], "normalizer": null,
             "pre_tokenizer": {"type": "Metaspace", "replacement": "▁"},
             "model": {"type": "BPE", "byte_fallback": true, "vocab": {"<unk>": 0}, "merges": []}}
            """#, config: #"{"chat_template": "{% for m in messages %}{{ m }}{% endfor %}"}"#)
        let t = try withExtendedLifetime(dir) { try TokenizerSummary(source: source) }
        XCTAssertEqual(t.kind, "SentencePiece BPE")
        XCTAssertTrue(t.hasChatTemplate)
        XCTAssertNil(t.bosToken)
    }

    func testBrokenTokenizerJSONNamesTheFile() throws {
        let dir = try TemporaryDirectory()
        _ = try dir.write("config.json", String(contentsOfFile: Fixtures.path("tiny_llama/config.json"), encoding: .utf8))
        try SafeTensorsWriter.write([.init(name: "w", shape: [1], float32: [1])], to: dir.path + "/model.safetensors")
        let bad = try dir.write("tokenizer.json", "{\"model\": [")
        let source = try ModelSource(path: dir.path)
        assertFormatError(try TokenizerSummary(source: source), path: bad, contains: "invalid JSON")
    }
}
