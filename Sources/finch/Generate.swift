import ArgumentParser
import FinchCore
import FinchFormats
import FinchGeneration
import FinchJinja
import FinchModels
import FinchTokenizers
import Foundation

struct Generate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Generate a continuation of a prompt, streamed to stdout; speeds go to stderr.",
        discussion: "With --chat the prompt is sent as a user message through the model's chat template."
    )

    @Option(help: "A GGUF file, an HF model folder, or a known model name.")
    var model: String = KnownModel.defaultModel.name

    @Option(help: "The prompt (default: read standard input).")
    var prompt: String?

    @Flag(help: "Wrap the prompt in the chat template as a user turn, with the assistant header after it.")
    var chat = false

    @Option(help: "With --chat: a system message.")
    var system: String?

    @Option(help: ArgumentHelp("With --chat: use this Jinja template instead of the model's.", valueName: "file"))
    var chatTemplate: String?

    @Flag(help: "Print one JSON object (prompt and generated token ids, text, finish reason, speeds) instead of streaming the text.")
    var json = false

    @OptionGroup var options: GenerationOptions

    func run() throws {
        try CLI.run {
            let session = try ModelSession(model: model, options: options)
            var text = prompt ?? String(decoding: FileHandle.standardInput.readDataToEndOfFile(), as: UTF8.self)
            var addSpecial = true
            if chat {
                var messages: [JinjaValue] = []
                if let system { messages.append(["role": "system", "content": .string(system)]) }
                messages.append(["role": "user", "content": .string(text)])
                text = try session.template(override: chatTemplate).render(
                    messages: messages, addGenerationPrompt: true, specialTokens: session.tokenizer.specialTokensMap)
                addSpecial = false // the template writes BOS itself, as in apply_chat_template
            }
            let ids = session.tokenizer.encode(text, addSpecialTokens: addSpecial)
            let request = GenerationRequest(promptTokens: ids, maxNewTokens: options.maxNewTokens, sampling: options.sampling,
                                            stopStrings: options.stopStrings,
                                            stopTokenIDs: options.ignoreEOS ? [] : session.generator.defaultStopTokenIDs)
            let summary = try session.generator.generate(request) { piece in
                if !json { FileHandle.standardOutput.write(Data(piece.utf8)) }
                return true
            }
            if json {
                func numbers(_ ids: [Int]) -> JSONValue { .array(ids.map { .number(String($0)) }) }
                let object: JSONValue = .object([
                    ("prompt_tokens", numbers(ids)), ("tokens", numbers(summary.generatedTokens)), ("text", .string(summary.text)),
                    ("finish_reason", .string(summary.finishReason.rawValue)),
                    ("prefill_tokens_per_second", .number(String(format: "%.2f", summary.prefillTokensPerSecond))),
                    ("decode_tokens_per_second", .number(String(format: "%.2f", summary.decodeTokensPerSecond))),
                ])
                FileHandle.standardOutput.write(Data(object.compactText.utf8))
            }
            FileHandle.standardOutput.write(Data("\n".utf8))
            CLI.log(summary.report)
        }
    }
}

/// A loaded model with its tokenizer and generator, shared by generate and chat.
struct ModelSession {
    let source: ModelSource
    let tokenizer: Tokenizer
    let generator: Generator

    init(model: String, options: GenerationOptions) throws {
        let clock = ContinuousClock()
        let start = clock.now
        source = try ModelSource(path: CLI.resolveModel(model))
        var load = ModelLoadOptions(quantizedActivations: options.quantizedActivations)
        load.llamaCppArithmetic = options.llamaCppArithmetic
        var lm = try CausalLM(source: source, options: load)
        if let path = options.mergeAdapter {
            lm = try lm.mergingLoRA(LoRAAdapter(peftFolder: path, name: "merged", model: lm))
            CLI.log("merged the adapter \(path) into the base (Float32 weights for the merged modules)")
        }
        tokenizer = try Tokenizer(source: source)
        let adapter = try options.adapter.map { try LoRAAdapter(peftFolder: $0, model: lm) }
        if let adapter, let path = options.adapter {
            CLI.log("adapter \(path): LoRA r \(adapter.configuration.r) on \(adapter.moduleNames.count) modules")
        }
        generator = Generator(model: lm, tokenizer: tokenizer, adapter: adapter, pool: ThreadPool(threads: options.threads))
        let c = source.configuration
        CLI.log("loaded \(c.architecture.rawValue) (\(c.numHiddenLayers) layers, hidden \(c.hiddenSize)) from \(source.path) in \(String(format: "%.2f", (clock.now - start).seconds)) s")
    }

    func template(override path: String?) throws -> ChatTemplate {
        if let path { return try ChatTemplate(source: CLI.readText(path), origin: path) }
        let template = try ChatTemplate(tokenizer: tokenizer)
        if template.isFallback { CLI.log("warning: \(source.path) has no chat template; using ChatML") }
        return template
    }
}

extension GenerationSummary {
    var report: String {
        String(format: "prefill %d tokens, %.1f tokens/s; decode %d tokens, %.1f tokens/s; finished: %@",
               prefilledTokens, prefillTokensPerSecond, generatedTokens.count, decodeTokensPerSecond, finishReason.rawValue)
    }
}

extension Duration {
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) * 1e-18 }
}
