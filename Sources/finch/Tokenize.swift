import ArgumentParser
import FinchFormats
import FinchJinja
import FinchTokenizers
import Foundation

struct Tokenize: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show the token ids and pieces a model's tokenizer produces for a text.",
        discussion: """
            Prints one line per token: id, the token as stored in the vocabulary, and the text it \
            decodes to (escaped). Special tokens such as <|im_start|> in the text are matched as \
            the tokenizer would (added tokens are extracted before the pre-tokenizer).
            """
    )

    @Argument(help: "A GGUF file, an HF model folder (or a folder with just tokenizer.json), or a known model name.")
    var model: String

    @Argument(help: "The text to tokenize (or use --file, or standard input when neither is given).")
    var text: [String] = []

    @Option(help: "Read the text from this file.")
    var file: String?

    @Flag(help: "Do not add the special tokens the tokenizer's post-processor adds (e.g. BOS).")
    var noSpecialTokens = false

    @Option(help: ArgumentHelp("Render a chat with the model's template and tokenize it: a JSON list of {role, content} messages, inline or @FILE.", valueName: "json"))
    var messages: String?

    @Option(help: ArgumentHelp("JSON list of tool schemas for the template (inline or @FILE).", valueName: "json"))
    var tools: String?

    @Flag(help: "With --messages: end with the assistant header, as for generation.")
    var addGenerationPrompt = false

    @Option(help: ArgumentHelp("Use this Jinja chat template instead of the model's.", valueName: "file"))
    var chatTemplate: String?

    @Flag(help: "Print JSON: ids, tokens and the decoded text.")
    var json = false

    @Flag(help: "Print only the token count, the input size and the encoding speed (as JSON).")
    var count = false

    @Flag(help: "Encode each line separately (keeping its newline), as for a file of one example per line.")
    var lines = false

    func run() throws {
        try CLI.run {
            let (tokenizer, origin) = try CLI.loadTokenizer(model)
            let input: String
            var addSpecial = !noSpecialTokens
            if let messages {
                // As transformers' apply_chat_template(tokenize=True): the template writes BOS itself,
                // so the rendered text is tokenized without adding special tokens.
                addSpecial = false
                let template: ChatTemplate
                if let chatTemplate {
                    template = try ChatTemplate(source: CLI.readText(chatTemplate), origin: chatTemplate)
                } else {
                    template = try ChatTemplate(tokenizer: tokenizer)
                    if template.isFallback { CLI.log("warning: \(origin) has no chat template; using ChatML") }
                }
                let chat = try CLI.jinjaJSON(messages, what: "--messages")
                guard case .array(let list) = chat else { throw FormatError("--messages", "must be a JSON list of messages") }
                var toolList: [JinjaValue]?
                if let tools {
                    guard case .array(let t) = try CLI.jinjaJSON(tools, what: "--tools") else { throw FormatError("--tools", "must be a JSON list") }
                    toolList = t
                }
                input = try template.render(messages: list, addGenerationPrompt: addGenerationPrompt, tools: toolList,
                                            specialTokens: tokenizer.specialTokensMap)
                if !json && !count { print("rendered (\(input.utf8.count) bytes):\n\(input)\n---") }
            } else if let file {
                guard let data = FileManager.default.contents(atPath: file) else { throw FormatError(file, "cannot read the file") }
                guard let s = String(data: data, encoding: .utf8) else { throw FormatError(file, "not valid UTF-8") }
                input = s
            } else if !text.isEmpty {
                input = text.joined(separator: " ")
            } else {
                input = String(decoding: FileHandle.standardInput.readDataToEndOfFile(), as: UTF8.self)
            }
            let clock = ContinuousClock()
            let start = clock.now
            var ids: [Int] = []
            if lines {
                var rest = Substring(input)
                while !rest.isEmpty {
                    let end = rest.firstIndex(of: "\n").map { rest.index(after: $0) } ?? rest.endIndex
                    ids += tokenizer.encode(String(rest[..<end]), addSpecialTokens: addSpecial)
                    rest = rest[end...]
                }
            } else {
                ids = tokenizer.encode(input, addSpecialTokens: addSpecial)
            }
            let elapsed = clock.now - start
            if count {
                let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18
                let bytes = input.utf8.count
                print("{\"tokens\": \(ids.count), \"bytes\": \(bytes), \"seconds\": \(seconds), \"mb_per_s\": \(Double(bytes) / 1e6 / max(seconds, 1e-9))}")
                return
            }
            if json {
                let object: [String: Any] = [
                    "text": input,
                    "ids": ids,
                    "tokens": ids.map { tokenizer.token(of: $0) ?? "" },
                    "decoded": tokenizer.decode(ids),
                ]
                let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])
                print(String(decoding: data, as: UTF8.self))
                return
            }
            print("\(ids.count) tokens")
            let width = String(ids.max() ?? 0).count
            for id in ids {
                let idText = String(id)
                let piece = tokenizer.token(of: id) ?? "?"
                let decoded = tokenizer.decode([id])
                let special = tokenizer.isSpecial(id) ? "  (special)" : ""
                print(String(repeating: " ", count: width - idText.count) + idText + "  " + escape(piece) + "  " + quote(decoded) + special)
            }
        }
    }

    private func quote(_ s: String) -> String { "\"" + escape(s) + "\"" }

    private func escape(_ s: String) -> String {
        var out = ""
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\n": out += "\\n"
            case "\t": out += "\\t"
            case "\r": out += "\\r"
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            default:
                if scalar.value < 0x20 || scalar.value == 0x7F { out += "\\u{\(String(scalar.value, radix: 16))}" } else { out.unicodeScalars.append(scalar) }
            }
        }
        return out
    }
}
