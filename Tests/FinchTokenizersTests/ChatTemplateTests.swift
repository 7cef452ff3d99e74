import FinchFormats
import FinchJinja
import FinchTokenizers
import XCTest

/// Chat templates through the tokenizer: the model's own template (GGUF metadata or
/// chat_template.jinja), the ChatML fallback, and the values transformers produces (formats.md §7).
/// Byte-for-byte rendering of 78 template families against jinja2 is in FinchJinjaTests.
final class ChatTemplateTests: XCTestCase {
    /// transformers 5.24: apply_chat_template([{"role": "user", "content": "hi"}], add_generation_prompt=True,
    /// tokenize=True) on SmolLM2-135M-Instruct (formats.md §7).
    static let smolLM2HiIDs = [1, 9690, 198, 2683, 359, 253, 5356, 5646, 11173, 3365, 3511, 308, 34519, 28, 7018, 411,
                               407, 19712, 8182, 2, 198, 1, 4093, 198, 6004, 2, 198, 1, 520, 9531, 198]

    func testSmolLM2TemplateFromGGUFAndFromFolderMatchesTransformers() throws {
        let gguf = try Tokenizer(gguf: GGUFFile(path: ModelCache.fromEnvironment().path(for: .defaultModel)))
        let dir = TokenizerParityTests.fixtures + "/smollm2"
        let folder = try Tokenizer(tokenizerJSON: dir + "/tokenizer.json", tokenizerConfig: dir + "/tokenizer_config.json",
                                   chatTemplateFile: dir + "/chat_template.jinja")
        for tokenizer in [gguf, folder] {
            let template = try ChatTemplate(tokenizer: tokenizer)
            XCTAssertFalse(template.isFallback)
            let text = try template.render(messages: [["role": "user", "content": "hi"]], addGenerationPrompt: true,
                                           specialTokens: tokenizer.specialTokensMap)
            XCTAssertEqual(tokenizer.encode(text), Self.smolLM2HiIDs, text)
            XCTAssertTrue(text.hasPrefix("<|im_start|>system\n"), "SmolLM2's template injects its default system turn")
        }
    }

    func testChatMLFallbackIsTheArticlesChatMLFormat() throws {
        let dir = TokenizerParityTests.fixtures + "/phi2"
        let tokenizer = try Tokenizer(tokenizerJSON: dir + "/tokenizer.json", tokenizerConfig: dir + "/tokenizer_config.json")
        XCTAssertNil(tokenizer.chatTemplate)
        let template = try ChatTemplate(tokenizer: tokenizer)
        XCTAssertTrue(template.isFallback)
        let text = try template.render(messages: [["role": "system", "content": "You are helpful."], ["role": "user", "content": "Hi"]],
                                       addGenerationPrompt: true)
        // The DPO article's chatml_format: system + user turns, then the open assistant turn.
        XCTAssertEqual(text, "<|im_start|>system\nYou are helpful.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n")
        let noPrompt = try template.render(messages: [["role": "user", "content": "Hi"]], addGenerationPrompt: false)
        XCTAssertEqual(noPrompt, "<|im_start|>user\nHi<|im_end|>\n")
    }

    func testContinueFinalMessageLeavesTheLastTurnOpen() throws {
        let template = try ChatTemplate(source: ChatTemplate.chatMLSource, origin: "test")
        let text = try template.render(messages: [["role": "user", "content": "Hi"], ["role": "assistant", "content": "Hello, I"]],
                                       addGenerationPrompt: false, continueFinalMessage: true)
        XCTAssertEqual(text, "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nHello, I")
    }

    func testTemplateErrorsNameTheOriginLineAndColumn() throws {
        XCTAssertThrowsError(try ChatTemplate(source: "{% for m in messages %}\n{{ m.content }\n{% endfor %}", origin: "my.jinja")) { error in
            let text = String(describing: error)
            XCTAssertTrue(text.hasPrefix("my.jinja: chat template:"), text)
            XCTAssertTrue(text.contains("line 2"), text)
        }
        let template = try ChatTemplate(source: "{{ raise_exception('Conversation roles must alternate') }}", origin: "t.jinja")
        XCTAssertThrowsError(try template.render(messages: [], addGenerationPrompt: false)) { error in
            XCTAssertTrue(String(describing: error).contains("Conversation roles must alternate"), "\(error)")
        }
        XCTAssertThrowsError(try ChatTemplate(source: "{% include 'x.jinja' %}", origin: "inc.jinja")) { error in
            XCTAssertTrue(String(describing: error).contains("include"), "\(error)")
        }
    }
}
