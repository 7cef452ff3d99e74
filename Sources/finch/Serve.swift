import ArgumentParser
import FinchFormats
import FinchServer
import Foundation

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Serve a model: a web chat page at / and an OpenAI-compatible API under /v1.",
        discussion: """
            Routes: GET / (chat page), GET /health, GET /v1/models, POST /v1/chat/completions, \
            POST /v1/completions (streaming with stream: true). One generation runs at a time; \
            other requests wait in a first-come, first-served queue (429 when --max-queue are \
            waiting). Sampling follows OpenAI's defaults (temperature 1, top_p 1, a random seed), \
            not finch generate's (greedy); the same seed and settings give finch generate's text. \
            One log line per request goes to stderr. The API key may also come from FINCH_API_KEY.
            """
    )

    @Option(help: "A GGUF file, an HF model folder, a known model name, or 'default'.")
    var model: String = KnownModel.defaultModel.name

    @Option(help: ArgumentHelp("A LoRA adapter folder to apply (PEFT format).", valueName: "path"))
    var adapter: String?

    @Option(help: ArgumentHelp("A LoRA adapter folder to merge into the base first.", valueName: "path"))
    var mergeAdapter: String?

    @Option(help: ArgumentHelp("Use this Jinja chat template instead of the model's.", valueName: "file"))
    var chatTemplate: String?

    @Option(help: "The address to listen on (loopback by default: nothing outside this machine can connect).")
    var host: String = "127.0.0.1"

    @Option(help: "The TCP port (0: any free port; the chosen one is logged).")
    var port: Int = 8080

    @Option(help: "Require 'Authorization: Bearer KEY' on every /v1 request (default: FINCH_API_KEY, else none).")
    var apiKey: String?

    @Flag(help: "Also log each request's rendered prompt (off: no prompt text is logged).")
    var logPrompts = false

    @Option(help: "Requests that may wait behind the running one; more get 429.")
    var maxQueue: Int = 64

    @Option(help: "The largest max_tokens a request may ask for, and the budget of one that names none.")
    var maxTokensLimit: Int = 4096

    @Option(help: "The largest request body in bytes; larger ones get 413.")
    var maxBodyBytes: Int = 1 << 20

    @Option(help: "Seconds a generation request may take, queue wait included; then 504 (or an error event in a stream).")
    var requestTimeout: Double = 600

    @Option(help: "Threads for the forward pass (default: FINCH_THREADS or all cores).")
    var threads: Int?

    @Flag(help: "Round activations to 16-bit integers for the quantized-weight products (faster; logits within ~0.02).")
    var quantizedActivations = false

    /// The id clients name: the known model's name, or the file or folder's base name.
    static func modelID(for argument: String) -> String {
        if let known = KnownModel.named(argument) { return known.name }
        let url = URL(fileURLWithPath: argument).standardizedFileURL
        return url.lastPathComponent.isEmpty ? argument : url.lastPathComponent
    }

    func run() async throws {
        try await CLI.runAsync {
            let argument = model.lowercased() == "default" ? KnownModel.defaultModel.name : model
            let settings = ServerConfiguration(
                host: host, port: port, apiKey: apiKey ?? ProcessInfo.processInfo.environment["FINCH_API_KEY"].flatMap { $0.isEmpty ? nil : $0 },
                logPrompts: logPrompts, maxQueue: maxQueue, maxTokensLimit: maxTokensLimit, maxBodyBytes: maxBodyBytes,
                requestTimeout: requestTimeout)
            do { try settings.validate() } catch let error as ServerError { throw ValidationError(error.description) }
            var flags: [String] = []
            if let adapter { flags += ["--adapter", adapter] }
            if let mergeAdapter { flags += ["--merge-adapter", mergeAdapter] }
            if let threads { flags += ["--threads", "\(threads)"] }
            if quantizedActivations { flags.append("--quantized-activations") }
            let session = try ModelSession(model: argument, options: GenerationOptions.parse(flags))
            let server = try ModelServer(generator: session.generator, template: session.template(override: chatTemplate),
                                         modelID: Self.modelID(for: argument), configuration: settings, log: CLI.log)
            try await server.run()
        }
    }
}

extension CLI {
    /// ``CLI/run(_:)`` for async commands: a Finch error becomes one line on stderr and exit status 1.
    static func runAsync(_ body: () async throws -> Void) async throws {
        do {
            try await body()
        } catch {
            guard let line = (error as? ServerError)?.description ?? oneLine(error) else { throw error }
            FileHandle.standardError.write(Data("error: \(line)\n".utf8))
            throw ExitCode.failure
        }
    }
}
