import ArgumentParser
import FinchCore
import FinchFormats
import FinchGeneration
import FinchJinja
import FinchTokenizers
import Foundation
import Synchronization

/// Set by SIGINT while a reply streams.
private let interrupted = Atomic<Bool>(false)

struct Chat: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Chat with a model in the terminal, through its chat template, with streamed replies.",
        discussion: """
            Commands: /reset (forget the conversation), /system TEXT (set the system message and reset), \
            /exit (or end of input). Ctrl-C stops the reply being written without leaving the chat; \
            Ctrl-C at the prompt exits. The KV cache is kept between turns, so only the new part of \
            the conversation is processed each time.
            """
    )

    @Option(help: "A GGUF file, an HF model folder, or a known model name.")
    var model: String = KnownModel.defaultModel.name

    @Option(help: "A system message.")
    var system: String?

    @Option(help: ArgumentHelp("Use this Jinja template instead of the model's.", valueName: "file"))
    var chatTemplate: String?

    @OptionGroup var options: GenerationOptions

    func run() throws {
        try CLI.run {
            let session = try ModelSession(model: model, options: options)
            let template = try session.template(override: chatTemplate)
            let cache = session.generator.model.makeCache()
            var systemMessage = system
            var messages: [JinjaValue] = []
            func reset() {
                messages = systemMessage.map { [["role": "system", "content": .string($0)]] } ?? []
                cache.reset()
            }
            reset()
            CLI.log("chat ready: /reset, /system TEXT, /exit; Ctrl-C stops a reply")
            while true {
                FileHandle.standardOutput.write(Data("> ".utf8))
                guard let line = readLine(strippingNewline: true) else { print(""); return }
                let input = line.trimmingCharacters(in: .whitespaces)
                if input.isEmpty { continue }
                if input == "/exit" || input == "/quit" { return }
                if input == "/reset" { reset(); CLI.log("conversation cleared"); continue }
                if input.hasPrefix("/system") {
                    let text = input.dropFirst("/system".count).trimmingCharacters(in: .whitespaces)
                    systemMessage = text.isEmpty ? nil : text
                    reset()
                    CLI.log(text.isEmpty ? "system message removed; conversation cleared" : "system message set; conversation cleared")
                    continue
                }
                if input.hasPrefix("/") { CLI.log("unknown command \(input); try /reset, /system TEXT, /exit"); continue }
                messages.append(["role": "user", "content": .string(line)])
                let prompt = try template.render(messages: messages, addGenerationPrompt: true,
                                                 specialTokens: session.tokenizer.specialTokensMap)
                let ids = session.tokenizer.encode(prompt, addSpecialTokens: false)
                guard ids.count + options.maxNewTokens < cache.capacity else {
                    CLI.log("the conversation (\(ids.count) tokens) no longer fits the context of \(cache.capacity); /reset to start over")
                    messages.removeLast()
                    continue
                }
                let request = GenerationRequest(promptTokens: ids, maxNewTokens: options.maxNewTokens, sampling: options.sampling,
                                                stopStrings: options.stopStrings, stopTokenIDs: session.generator.defaultStopTokenIDs)
                interrupted.store(false, ordering: .relaxed)
                signal(SIGINT) { _ in interrupted.store(true, ordering: .relaxed) }
                defer { signal(SIGINT, SIG_DFL) }
                let summary = try session.generator.generate(request, cache: cache) { piece in
                    FileHandle.standardOutput.write(Data(piece.utf8))
                    return !interrupted.load(ordering: .relaxed)
                }
                signal(SIGINT, SIG_DFL)
                FileHandle.standardOutput.write(Data("\n".utf8))
                messages.append(["role": "assistant", "content": .string(summary.text)])
                CLI.log(summary.report)
            }
        }
    }
}
