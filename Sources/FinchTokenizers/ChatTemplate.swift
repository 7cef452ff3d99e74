import FinchJinja
import Foundation

/// A chat template, rendered as transformers' `apply_chat_template` renders it: Jinja2 with
/// `trim_blocks`, `lstrip_blocks`, loop controls and transformers' globals (FinchJinja), and the
/// variables `messages`, `tools`, `documents`, `add_generation_prompt` and the named special tokens.
public struct ChatTemplate: Sendable {
    public let source: String
    /// Where the template came from (a file, tokenizer_config.json, GGUF metadata, or the ChatML fallback).
    public let origin: String
    /// True when the model ships no template and ChatML is used instead.
    public let isFallback: Bool
    let compiled: JinjaTemplate

    /// ChatML, the fallback for models without a template: what transformers' old default template
    /// and the DPO article's `chatml_format` produce.
    public static let chatMLSource = """
        {% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}
        """

    /// Compiles `source`; a syntax error names `origin` with the template's line and column.
    public init(source: String, origin: String, isFallback: Bool = false) throws {
        self.source = source
        self.origin = origin
        self.isFallback = isFallback
        do {
            compiled = try JinjaTemplate(source, options: .huggingFace)
        } catch let error as JinjaError {
            throw TokenizerError(origin, "chat template: \(error.description)")
        }
    }

    /// The template of `tokenizer`, or the ChatML fallback (then `isFallback` is true and the
    /// caller should warn).
    public init(tokenizer: Tokenizer) throws {
        if let source = tokenizer.chatTemplate {
            try self.init(source: source, origin: tokenizer.path)
        } else {
            try self.init(source: Self.chatMLSource, origin: "ChatML fallback", isFallback: true)
        }
    }

    /// Renders a conversation.
    /// - Parameters:
    ///   - messages: `{role, content, …}` objects (any extra fields, e.g. `tool_calls`, pass through).
    ///   - addGenerationPrompt: end with the assistant header, ready for generation.
    ///   - continueFinalMessage: leave the last message open so generation continues it
    ///     (transformers' `continue_final_message`).
    ///   - tools: JSON-schema tool descriptions, or nil.
    ///   - specialTokens: `bos_token`, `eos_token`, … as the tokenizer names them.
    ///   - extra: further template variables (e.g. `date_string`), overriding the special tokens.
    public func render(messages: [JinjaValue], addGenerationPrompt: Bool, continueFinalMessage: Bool = false,
                       tools: [JinjaValue]? = nil, specialTokens: [String: String] = [:],
                       extra: [String: JinjaValue] = [:]) throws -> String {
        try render(messages: messages, addGenerationPrompt: addGenerationPrompt, continueFinalMessage: continueFinalMessage,
                   tools: tools, specialTokens: specialTokens, extra: extra, trackingGeneration: false).text
    }

    /// Renders a conversation as ``render(messages:addGenerationPrompt:continueFinalMessage:tools:specialTokens:extra:)``
    /// and returns where the template's `{% generation %}` blocks stand in the text (transformers'
    /// `return_assistant_tokens_mask`): `start..<end` in Unicode scalars, in order. Empty when the
    /// template has no such block.
    public func renderTrackingGeneration(messages: [JinjaValue], addGenerationPrompt: Bool, tools: [JinjaValue]? = nil,
                                         specialTokens: [String: String] = [:],
                                         extra: [String: JinjaValue] = [:]) throws -> (text: String, generationSpans: [Range<Int>]) {
        try render(messages: messages, addGenerationPrompt: addGenerationPrompt, continueFinalMessage: false,
                   tools: tools, specialTokens: specialTokens, extra: extra, trackingGeneration: true)
    }

    /// Whether the template marks assistant text with `{% generation %}` (TRL's `has_generation_markers`).
    public var hasGenerationMarkers: Bool { JinjaTemplate.hasGenerationMarkers(source) }

    func render(messages: [JinjaValue], addGenerationPrompt: Bool, continueFinalMessage: Bool, tools: [JinjaValue]?,
                specialTokens: [String: String], extra: [String: JinjaValue],
                trackingGeneration: Bool) throws -> (text: String, generationSpans: [Range<Int>]) {
        var chat = messages
        let tag = "CONTINUE_FINAL_MESSAGE_TAG "
        var finalContent: String?
        if continueFinalMessage {
            guard let last = chat.last, case .object(var fields) = last,
                  let index = fields.firstIndex(where: { $0.0 == "content" }), case .string(let content) = fields[index].1 else {
                throw TokenizerError(origin, "continue_final_message needs a last message with string content")
            }
            finalContent = content
            fields[index].1 = .string(content + tag)
            chat[chat.count - 1] = .object(fields)
        }
        var variables: [String: JinjaValue] = [:]
        for (key, value) in specialTokens { variables[key] = .string(value) }
        for (key, value) in extra { variables[key] = value }
        variables["messages"] = .array(chat)
        variables["tools"] = tools.map { .array($0) } ?? JinjaValue.none
        variables["documents"] = JinjaValue.none
        variables["add_generation_prompt"] = .bool(addGenerationPrompt)
        var rendered: String
        var spans: [Range<Int>] = []
        do {
            if trackingGeneration {
                let tracked = try compiled.renderTrackingGeneration(variables)
                rendered = tracked.text
                spans = tracked.generationSpans
            } else {
                rendered = try compiled.render(variables)
            }
        } catch let error as JinjaError {
            throw TokenizerError(origin, "chat template: \(error.description)")
        }
        if let finalContent {
            let trimmedTag = String(tag.dropLast())
            guard rendered.contains(finalContent.trimmingCharacters(in: .whitespacesAndNewlines)),
                  let range = rendered.range(of: trimmedTag, options: .backwards) else {
                throw TokenizerError(origin, "continue_final_message: the template does not keep the final message's text")
            }
            if rendered[range.lowerBound...].hasPrefix(tag) {
                rendered = String(rendered[..<range.lowerBound])
            } else {
                var head = Substring(rendered[..<range.lowerBound])
                while let last = head.unicodeScalars.last, last.properties.isWhitespace { head.unicodeScalars.removeLast() }
                rendered = String(head)
            }
        }
        return (rendered, spans)
    }
}

extension Tokenizer {
    /// The named special tokens transformers passes to chat templates (`special_tokens_map`).
    public var specialTokensMap: [String: String] {
        var map: [String: String] = [:]
        if let bosToken { map["bos_token"] = bosToken }
        if let eosToken { map["eos_token"] = eosToken }
        if let unknownToken { map["unk_token"] = unknownToken }
        if let padToken { map["pad_token"] = padToken }
        return map
    }
}
