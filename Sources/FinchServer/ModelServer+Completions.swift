import FinchFormats
import FinchGeneration
import Foundation
import Hummingbird

/// `/v1/chat/completions` and `/v1/completions`: read and check the request, render and tokenize
/// the prompt, queue the generation, and answer with one JSON object or a server-sent-event stream.
extension ModelServer {
    /// A checked request, ready for the queue.
    struct PreparedCompletion: Sendable {
        var request: GenerationRequest
        var parameters: GenerationParameters
        var promptText: String?
    }

    /// What a finished job gave (collected from its events).
    struct Outcome: Sendable {
        var text = ""
        var summary: GenerationSummary?
        var failure: String?
    }

    func complete(_ kind: CompletionFormatter.Kind, _ request: Request, record: inout RequestRecord) async throws -> Response {
        let body = try await readBody(request)
        // The collected body goes back into the request (Hummingbird keeps the connection's
        // stream behind it), so `untilClientLeaves` can watch for the client closing.
        var watched = request
        watched.body = RequestBody(buffer: body)
        let request = watched
        let prepared = try prepare(kind, body: Array(body.readableBytesView))
        record.promptTokens = prepared.request.promptTokens.count
        if configuration.logPrompts { record.prompt = prepared.promptText }

        let job = GenerationJob { [generator, cache, request = prepared.request] job, emit in
            cache.reset() // reuse the memory, not the contents: every request is prefilled whole
            return try generator.generate(request, cache: cache, onText: { piece in
                emit(piece)
                return !job.isCancelled
            }, shouldContinue: { !job.isCancelled })
        }
        try queue.submit(job)
        let timer = Task { [queue, timeout = configuration.requestTimeout] in
            try? await Task.sleep(for: .seconds(timeout))
            if !Task.isCancelled { queue.cancel(job, .timeout) }
        }
        let formatter = CompletionFormatter(kind: kind, model: modelID, includeUsage: prepared.parameters.includeUsage,
                                            created: Int(Date().timeIntervalSince1970))
        let promptCount = prepared.request.promptTokens.count

        guard prepared.parameters.stream else {
            defer { timer.cancel() }
            let outcome = try await untilClientLeaves(request, job) { await Self.collect(job.events) }
            record.completionTokens = outcome.summary?.generatedTokens.count ?? 0
            if let error = failure(of: job, outcome, record: &record) { throw error }
            guard let summary = outcome.summary else { throw APIError(.internalServerError, "generation ended without a result", type: "server_error") }
            return APIResponder.json(.ok, formatter.response(text: outcome.text, finishReason: summary.finishReason,
                                                             promptTokens: promptCount, completionTokens: summary.generatedTokens.count),
                                     headers: [.connection: "close"])
        }

        record.deferred = true
        let opened = record
        return Response(status: .ok, headers: [.contentType: "text/event-stream", .cacheControl: "no-cache", .connection: "close"],
                        body: ResponseBody { [self] writer in
            var record = opened
            defer {
                timer.cancel()
                logRequest(record, status: 200)
            }
            do {
                try await untilClientLeaves(request, job) {
                    try await stream(job, formatter, promptTokens: promptCount, writer: &writer, record: &record)
                }
            } catch {
                queue.cancel(job, .clientGone)
                if record.note == nil { record.note = "client gone" }
                throw error
            }
        })
    }

    /// Sends the events of `job` as OpenAI's chunks: (chat) a first chunk with the role, one
    /// chunk per text piece, a chunk with the finish reason, the usage chunk if asked for, then
    /// `[DONE]`. A timeout or shutdown ends the stream with an error event before `[DONE]`.
    func stream(_ job: GenerationJob, _ formatter: CompletionFormatter, promptTokens: Int,
                writer: inout any ResponseBodyWriter, record: inout RequestRecord) async throws {
        if formatter.kind == .chat {
            try await writer.write(ByteBuffer(string: CompletionFormatter.event(formatter.chunk(text: "", role: true))))
        }
        var outcome = Outcome()
        for await event in job.events {
            switch event {
            case .started: break
            case .text(let piece):
                outcome.text += piece
                try await writer.write(ByteBuffer(string: CompletionFormatter.event(formatter.chunk(text: piece))))
            case .finished(let summary): outcome.summary = summary
            case .failed(let message): outcome.failure = message
            }
        }
        record.completionTokens = outcome.summary?.generatedTokens.count ?? 0
        if let error = failure(of: job, outcome, record: &record) {
            if job.cancelReason == .clientGone { return } // nobody is listening
            try await writer.write(ByteBuffer(string: CompletionFormatter.event(error.json) + CompletionFormatter.done))
        } else if let summary = outcome.summary {
            var tail = CompletionFormatter.event(formatter.chunk(text: formatter.kind == .chat ? nil : "", finishReason: summary.finishReason))
            if formatter.includeUsage {
                tail += CompletionFormatter.event(formatter.usageChunk(promptTokens: promptTokens, completionTokens: summary.generatedTokens.count))
            }
            try await writer.write(ByteBuffer(string: tail + CompletionFormatter.done))
        }
        try await writer.finish(nil)
    }

    /// The error a job ended with, if it did not finish normally (and the log note saying so).
    func failure(of job: GenerationJob, _ outcome: Outcome, record: inout RequestRecord) -> APIError? {
        if let message = outcome.failure {
            record.note = "failed: \(message)"
            return APIError(.internalServerError, "Generation failed: \(message)", type: "server_error")
        }
        guard outcome.summary == nil || outcome.summary?.finishReason == .cancelled else { return nil }
        let delay = job.releaseDelay.withLock { $0 }.map { String(format: "; model free %.0f ms after it", $0 * 1000) } ?? ""
        switch job.cancelReason {
        case .timeout:
            record.note = "timeout" + delay
            return APIError(.gatewayTimeout, "The request took longer than this server's limit of \(String(format: "%g", configuration.requestTimeout)) s (--request-timeout).",
                            type: "timeout_error", code: "timeout")
        case .shutdown:
            record.note = "shutdown" + delay
            return APIError(.serviceUnavailable, "The server is shutting down.", type: "server_error", code: "shutting_down")
        case .clientGone, nil:
            record.note = "client gone" + delay
            return APIError(HTTPResponse.Status(code: 499, reasonPhrase: "Client Closed Request"), "The client closed the connection.",
                            code: "client_closed_request")
        }
    }

    static func collect(_ events: AsyncStream<GenerationJob.Event>) async -> Outcome {
        var outcome = Outcome()
        for await event in events {
            switch event {
            case .started: break
            case .text(let piece): outcome.text += piece
            case .finished(let summary): outcome.summary = summary
            case .failed(let message): outcome.failure = message
            }
        }
        return outcome
    }

    /// Runs `body` and cancels `job` if the client closes its connection meanwhile, or if this
    /// task is cancelled. (Hummingbird then closes the connection after the response: generation
    /// responses say `Connection: close`.)
    func untilClientLeaves<T: Sendable>(_ request: Request, _ job: GenerationJob, _ body: () async throws -> T) async throws -> T {
        try await withTaskCancellationHandler {
            try await request.body.consumeWithInboundCloseHandler({ _ in try await body() },
                                                                  onInboundClosed: { [queue] in queue.cancel(job, .clientGone) })
        } onCancel: { [queue] in
            queue.cancel(job, .clientGone)
        }
    }

    /// The request body, refused with 413 past `--max-body-bytes` (by its Content-Length before
    /// reading, or while reading).
    func readBody(_ request: Request) async throws -> ByteBuffer {
        let limit = configuration.maxBodyBytes
        func tooLarge(_ size: String) -> APIError {
            APIError(.contentTooLarge, "The request body is \(size) bytes, more than this server's limit of \(limit) bytes (--max-body-bytes).",
                     code: "request_too_large")
        }
        if let declared = request.headers[.contentLength].flatMap({ Int($0) }), declared > limit { throw tooLarge("\(declared)") }
        var collected = ByteBuffer()
        for try await buffer in request.body {
            guard collected.readableBytes + buffer.readableBytes <= limit else { throw tooLarge("over \(limit)") }
            var part = buffer
            collected.writeBuffer(&part)
        }
        return collected
    }

    /// Parses and checks a body; renders and tokenizes its prompt; fixes the token budget.
    func prepare(_ kind: CompletionFormatter.Kind, body: [UInt8]) throws(APIError) -> PreparedCompletion {
        let json: JSONValue
        do {
            json = try body.withUnsafeBytes { try JSONValue.parse($0, path: "request body") }
        } catch {
            let detail = (error as? FormatError)?.reason ?? "\(error)"
            throw APIError(.badRequest, "We could not parse the JSON body of your request: \(detail). The body must be a JSON object.")
        }
        let parameters: GenerationParameters
        let tokens: [Int]
        var promptText: String?
        let promptParam: String
        switch kind {
        case .chat:
            let chat = try ChatCompletionRequest(json, maxTokensLimit: configuration.maxTokensLimit)
            parameters = chat.parameters
            try checkModel(parameters.model, param: "model")
            // Exactly `finch generate --chat`: the model's template with the generation prompt;
            // the template writes any BOS itself, so no special tokens are added.
            let text: String
            do {
                text = try template.render(messages: chat.messages, addGenerationPrompt: true, specialTokens: tokenizer.specialTokensMap)
            } catch {
                throw APIError.invalidValue("messages", "The model's chat template refused these messages: \(error)")
            }
            promptText = text
            tokens = tokenizer.encode(text, addSpecialTokens: false)
            promptParam = "messages"
        case .completion:
            let completion = try CompletionRequest(json, maxTokensLimit: configuration.maxTokensLimit)
            parameters = completion.parameters
            try checkModel(parameters.model, param: "model")
            switch completion.prompt {
            case .text(let text):
                promptText = text
                tokens = tokenizer.encode(text, addSpecialTokens: true) // as `finch generate` without --chat
            case .tokens(let ids):
                let vocabulary = generator.model.configuration.vocabSize
                if let bad = ids.first(where: { $0 < 0 || $0 >= vocabulary }) {
                    throw APIError.invalidValue("prompt", "Token id \(bad) is outside the model's vocabulary of \(vocabulary).")
                }
                tokens = ids
            }
            promptParam = "prompt"
        }
        let context = generator.model.contextLength
        guard !tokens.isEmpty else { throw APIError.invalidValue(promptParam, "The prompt is empty: it has no tokens.") }
        let room = context - tokens.count
        guard room >= 1 else {
            throw APIError(.badRequest, "This model's maximum context length is \(context) tokens. However, your prompt has \(tokens.count) tokens. Please shorten it.",
                           param: promptParam, code: "context_length_exceeded")
        }
        if let asked = parameters.maxTokens, asked > room {
            throw APIError(.badRequest, "This model's maximum context length is \(context) tokens. However, you requested \(tokens.count + asked) tokens (\(tokens.count) in the prompt, \(asked) for the completion). Please reduce the prompt or the completion length.",
                           param: "max_tokens", code: "context_length_exceeded")
        }
        let budget = parameters.maxTokens ?? min(configuration.maxTokensLimit, room)
        let request = GenerationRequest(promptTokens: tokens, maxNewTokens: budget, sampling: parameters.sampling,
                                        stopStrings: parameters.stop,
                                        stopTokenIDs: parameters.ignoreEOS ? [] : generator.defaultStopTokenIDs)
        return PreparedCompletion(request: request, parameters: parameters, promptText: promptText)
    }

    /// 404 `model_not_found` unless `name` is nil (the served model) or the served model's id.
    func checkModel(_ name: String?, param: String?) throws(APIError) {
        guard let name, name != modelID else { return }
        throw APIError(.notFound, "The model '\(name)' does not exist: this server serves '\(modelID)'.",
                       param: param, code: "model_not_found")
    }
}
