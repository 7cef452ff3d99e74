import FinchCore
import FinchModels
import FinchTokenizers
import Foundation

/// What to generate.
public struct GenerationRequest: Sendable {
    public var promptTokens: [Int]
    public var maxNewTokens: Int
    public var sampling: SamplingParameters
    /// Generation stops when one of these appears in the output (not included in the text).
    public var stopStrings: [String]
    /// Token ids that end generation (EOS); not included in the text.
    public var stopTokenIDs: Set<Int>

    public init(promptTokens: [Int], maxNewTokens: Int = 256, sampling: SamplingParameters = .greedy,
                stopStrings: [String] = [], stopTokenIDs: Set<Int> = []) {
        self.promptTokens = promptTokens
        self.maxNewTokens = maxNewTokens
        self.sampling = sampling
        self.stopStrings = stopStrings
        self.stopTokenIDs = stopTokenIDs
    }
}

/// Why generation ended.
public enum FinishReason: String, Sendable, Codable {
    case endOfSequence = "eos", stopString = "stop", maxTokens = "length", cancelled, contextFull = "context"
}

/// Counts and timings of one generation.
public struct GenerationSummary: Sendable {
    public var promptTokens: Int
    /// Prompt tokens actually run (the rest came from a reused cache).
    public var prefilledTokens: Int
    public var generatedTokens: [Int]
    public var finishReason: FinishReason
    public var prefillSeconds: Double
    public var decodeSeconds: Double
    public var text: String

    public var prefillTokensPerSecond: Double { Double(prefilledTokens) / max(prefillSeconds, 1e-9) }
    /// Tokens generated after the first one, per second of decoding.
    public var decodeTokensPerSecond: Double { Double(max(generatedTokens.count - 1, 0)) / max(decodeSeconds, 1e-9) }
}

/// A piece of streamed output.
public enum GenerationEvent: Sendable {
    case text(String)
    case finished(GenerationSummary)
}

/// Runs a model with its tokenizer: prefill, then KV-cached decoding with sampling, stop rules and
/// streaming text that never splits a UTF-8 character or shows a partial stop string.
public final class Generator: @unchecked Sendable {
    public let model: CausalLM
    public let tokenizer: Tokenizer
    public let pool: ThreadPool
    /// A LoRA adapter applied to every forward pass (e.g. one `finch dpo` trained), or nil.
    public let adapter: LoRAAdapter?

    public init(model: CausalLM, tokenizer: Tokenizer, adapter: LoRAAdapter? = nil, pool: ThreadPool = ThreadPool()) {
        self.model = model
        self.tokenizer = tokenizer
        self.adapter = adapter
        self.pool = pool
    }

    /// The EOS ids of the model and tokenizer.
    public var defaultStopTokenIDs: Set<Int> {
        var ids = Set(model.configuration.eosTokenIDs)
        if let eos = tokenizer.eosTokenID { ids.insert(eos) }
        return ids
    }

    /// Generates synchronously; `onText` receives each final piece of text and returns false to
    /// stop (as Ctrl-C in `finch chat` does). `cache` may hold an earlier prefix of the prompt.
    /// `shouldContinue` is asked before every forward pass (the prefill and each decode step), so a
    /// caller can stop within one step even while text is held back (a partial character or a
    /// possible stop string); stopping either way ends with `FinishReason.cancelled`.
    public func generate(_ request: GenerationRequest, cache existing: KVCache? = nil,
                         onText: (String) -> Bool = { _ in true },
                         shouldContinue: () -> Bool = { true }) throws -> GenerationSummary {
        guard !request.promptTokens.isEmpty else { throw GenerationError("the prompt is empty (it has no tokens)") }
        guard request.maxNewTokens >= 0 else { throw GenerationError("max_new_tokens must be ≥ 0") }
        let context = model.contextLength
        guard request.promptTokens.count < context else {
            throw GenerationError("the prompt has \(request.promptTokens.count) tokens, more than the model's context of \(context) minus one")
        }
        var sampler = try Sampler(request.sampling)
        let cache = existing ?? model.makeCache(capacity: min(context, request.promptTokens.count + request.maxNewTokens + 1))
        // Reuse the cached prefix shared with this prompt (multi-turn chat); feed at least one token.
        var reuse = 0
        while reuse < min(cache.count, request.promptTokens.count - 1), cache.tokens[reuse] == request.promptTokens[reuse] { reuse += 1 }
        cache.truncate(to: reuse)
        let clock = ContinuousClock()
        let start = clock.now
        guard shouldContinue() else {
            return GenerationSummary(promptTokens: request.promptTokens.count, prefilledTokens: 0, generatedTokens: [],
                                     finishReason: .cancelled, prefillSeconds: 0, decodeSeconds: 0, text: "")
        }
        var logits = try model.forward(Array(request.promptTokens[reuse...]), cache: cache, adapter: adapter, pool: pool)
        let prefill = clock.now - start
        var all = request.promptTokens
        var generated: [Int] = []
        var stream = StreamingDecoder(tokenizer: tokenizer, skipSpecialTokens: false)
        var pending = ""   // decoded text held back because it could start a stop string
        var text = ""
        var reason = FinishReason.maxTokens
        let decodeStart = clock.now
        var keepGoing = true
        loop: while generated.count < request.maxNewTokens {
            let token = sampler.next(logits, context: all)
            if request.stopTokenIDs.contains(token) { reason = .endOfSequence; break }
            generated.append(token)
            all.append(token)
            pending += stream.push(token)
            if let range = Self.firstStop(in: pending, request.stopStrings) {
                let head = String(pending[..<range.lowerBound])
                text += head
                if !head.isEmpty { keepGoing = onText(head) }
                pending = ""
                reason = .stopString
                break loop
            }
            let safe = Self.safePrefixLength(pending, request.stopStrings)
            if safe > 0 {
                let out = String(pending.prefix(safe))
                pending = String(pending.dropFirst(safe))
                text += out
                keepGoing = onText(out)
                if !keepGoing { reason = .cancelled; break }
            }
            if generated.count >= request.maxNewTokens { break }
            if cache.count >= cache.capacity {
                reason = cache.capacity >= context ? .contextFull : .maxTokens
                break
            }
            guard shouldContinue() else { reason = .cancelled; break }
            logits = try model.forward([token], cache: cache, adapter: adapter, pool: pool)
        }
        if reason != .stopString && reason != .cancelled {
            pending += stream.finish()
            if let range = Self.firstStop(in: pending, request.stopStrings) {
                pending = String(pending[..<range.lowerBound])
                reason = .stopString
            }
            if !pending.isEmpty { text += pending; _ = onText(pending) }
        }
        let decode = clock.now - decodeStart
        return GenerationSummary(promptTokens: request.promptTokens.count, prefilledTokens: request.promptTokens.count - reuse, generatedTokens: generated, finishReason: reason,
                                 prefillSeconds: prefill.seconds, decodeSeconds: decode.seconds, text: text)
    }

    /// Streams text deltas, then a summary. Cancelling the consuming task stops generation.
    public func stream(_ request: GenerationRequest) -> AsyncThrowingStream<GenerationEvent, Error> {
        AsyncThrowingStream { continuation in
            let task = Task.detached { [self] in
                do {
                    let summary = try self.generate(request) { piece in
                        continuation.yield(.text(piece))
                        return !Task.isCancelled
                    }
                    continuation.yield(.finished(summary))
                    continuation.finish()
                } catch {
                    continuation.finish(throwing: error)
                }
            }
            continuation.onTermination = { _ in task.cancel() }
        }
    }

    /// The earliest occurrence of any stop string.
    static func firstStop(in text: String, _ stops: [String]) -> Range<String.Index>? {
        stops.compactMap { $0.isEmpty ? nil : text.range(of: $0) }.min { $0.lowerBound < $1.lowerBound }
    }

    /// Characters of `text` that cannot be the beginning of a stop string split across tokens.
    static func safePrefixLength(_ text: String, _ stops: [String]) -> Int {
        guard !stops.isEmpty else { return text.count }
        let chars = Array(text)
        var hold = 0
        for stop in stops where !stop.isEmpty {
            let s = Array(stop)
            for k in stride(from: min(s.count - 1, chars.count), to: 0, by: -1) where Array(chars.suffix(k)) == Array(s.prefix(k)) {
                hold = max(hold, k)
                break
            }
        }
        return chars.count - hold
    }
}

extension Duration {
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) * 1e-18 }
}
