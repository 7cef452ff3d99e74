import FinchGeneration
import FinchModels
import FinchTokenizers
import Foundation
import Hummingbird

/// `finch serve`: one loaded model behind the web chat page and an OpenAI-compatible API, on
/// Hummingbird.
///
/// Generation is serialized: requests queue first come, first served (``GenerationQueue``) and
/// run one at a time on a dedicated thread; there is no continuous batching. Each request is
/// prefilled from scratch (the KV cache's memory is reused, its contents are not), so the same
/// request with the same seed gives the same text whatever came before it — the text of
/// `finch generate` with the same prompt and settings.
public final class ModelServer: Sendable {
    /// The id clients name in `model` and that `/v1/models` lists.
    public let modelID: String
    public let configuration: ServerConfiguration
    let generator: Generator
    let template: ChatTemplate
    let queue: GenerationQueue
    /// The worker's KV cache, at the model's full context; touched only by the worker thread.
    let cache: KVCache
    /// Unix seconds at start (`created` of the model object).
    let created: Int
    let log: @Sendable (String) -> Void

    /// - Parameters:
    ///   - template: the chat template `/v1/chat/completions` renders (as `finch generate --chat`).
    ///   - modelID: the known-model name or the model folder/file's base name.
    ///   - log: receives one line per request (and the listening address); stderr in `finch serve`.
    public init(generator: Generator, template: ChatTemplate, modelID: String, configuration: ServerConfiguration,
                log: @escaping @Sendable (String) -> Void) throws {
        try configuration.validate()
        self.generator = generator
        self.template = template
        self.modelID = modelID
        self.configuration = configuration
        self.log = log
        queue = GenerationQueue(capacity: configuration.maxQueue)
        cache = generator.model.makeCache()
        created = Int(Date().timeIntervalSince1970)
    }

    var tokenizer: Tokenizer { generator.tokenizer }

    /// The Hummingbird application (tests drive it with HummingbirdTesting). `onListening`
    /// receives the bound port (useful with port 0).
    public func application(onListening: @escaping @Sendable (Int) -> Void = { _ in }) -> some ApplicationProtocol {
        var app = Application(
            responder: APIResponder(server: self),
            configuration: .init(address: .hostname(configuration.host, port: configuration.port)),
            onServerRunning: { channel in onListening(channel.localAddress?.port ?? 0) }
        )
        // Hummingbird's own logger says little we need; the request lines are ours, on `log`.
        app.logger.logLevel = .warning
        return app
    }

    /// Serves until SIGINT or SIGTERM, which cancel queued and running generations (each stream
    /// ends with an error event) and then stop the server gracefully.
    public func run() async throws {
        let sources = [SIGINT, SIGTERM].map { number in
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler { [queue] in queue.shutdown() }
            source.resume()
            return source
        }
        defer { sources.forEach { $0.cancel() } }
        let host = configuration.host
        let app = application { [log, modelID, configuration] port in
            let shown = host.contains(":") ? "[\(host)]" : host
            log("serving \(modelID) on http://\(shown):\(port)/ (one generation at a time, up to \(configuration.maxQueue) waiting"
                + (configuration.apiKey == nil ? ")" : "; /v1 needs the API key)"))
        }
        try await app.runService()
    }

    /// One line per request: method, path, status, tokens in/out, milliseconds, and with
    /// `--log-prompts` the rendered prompt.
    func logRequest(_ record: RequestRecord, status: Int) {
        log(record.line(status: status, includePrompt: configuration.logPrompts))
    }
}
