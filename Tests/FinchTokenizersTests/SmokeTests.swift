import FinchFormats
import FinchTokenizers
import XCTest

/// The smoke values of formats.md §7, recorded from transformers 5.24 on SmolLM2's GGUF tokenizer.
final class SmokeTests: XCTestCase {
    func testSmolLM2SmokeValues() throws {
        let dir = ProcessInfo.processInfo.environment["FINCH_SMOKE_TOKENIZER"] ?? "/tmp/smoltok"
        let t = try Tokenizer(tokenizerJSON: dir + "/tokenizer.json", tokenizerConfig: dir + "/tokenizer_config.json")
        XCTAssertEqual(t.encode("The capital of France is"), [504, 3575, 282, 4649, 314])
        XCTAssertEqual(t.encode("Hello world! 12345 <|im_start|>user\nhi<|im_end|>"), [19556, 905, 17, 216, 33, 34, 35, 36, 37, 216, 1, 4093, 198, 6004, 2])
        XCTAssertEqual(t.encode("  hello\n\nworld  "), [216, 33662, 198, 198, 6693, 256])
        XCTAssertEqual(t.decode([19556, 905, 17, 216, 33, 34, 35, 36, 37, 216, 1, 4093, 198, 6004, 2]), "Hello world! 12345 <|im_start|>user\nhi<|im_end|>")
    }
}

final class GGUFSmokeTests: XCTestCase {
    func testSmolLM2FromGGUF() throws {
        let path = ModelCache.fromEnvironment().path(for: .defaultModel)
        let t = try Tokenizer(gguf: GGUFFile(path: path))
        XCTAssertEqual(t.encode("The capital of France is"), [504, 3575, 282, 4649, 314])
        XCTAssertEqual(t.encode("Hello world! 12345 <|im_start|>user\nhi<|im_end|>"), [19556, 905, 17, 216, 33, 34, 35, 36, 37, 216, 1, 4093, 198, 6004, 2])
        XCTAssertEqual(t.encode("  hello\n\nworld  "), [216, 33662, 198, 198, 6693, 256])
        XCTAssertEqual(t.bosToken, "<|im_start|>")
        XCTAssertNotNil(t.chatTemplate)
    }
}
