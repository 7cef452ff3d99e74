/// How the next token is chosen, with the names and semantics of transformers' `generate`.
public struct SamplingParameters: Sendable, Codable, Equatable {
    /// 0 means greedy (argmax); otherwise logits are divided by it.
    public var temperature: Double
    /// Keep only the k most likely tokens (0: off).
    public var topK: Int
    /// Nucleus sampling: keep the smallest set whose probability reaches topP (1: off).
    public var topP: Double
    /// Keep tokens whose probability is at least minP × the top probability (0: off).
    public var minP: Double
    /// CTRL-style penalty for tokens already in the context (1: off).
    public var repetitionPenalty: Double
    /// Seed of the sampling RNG; the same seed gives the same text.
    public var seed: UInt64

    public init(temperature: Double = 0, topK: Int = 0, topP: Double = 1, minP: Double = 0,
                repetitionPenalty: Double = 1, seed: UInt64 = 0) {
        self.temperature = temperature
        self.topK = topK
        self.topP = topP
        self.minP = minP
        self.repetitionPenalty = repetitionPenalty
        self.seed = seed
    }

    public static let greedy = SamplingParameters()

    /// Throws a clear error for values transformers would reject.
    public func validate() throws {
        guard temperature >= 0, temperature.isFinite else { throw GenerationError("temperature must be ≥ 0 (0 = greedy), got \(temperature)") }
        guard topK >= 0 else { throw GenerationError("top_k must be ≥ 0 (0 = off), got \(topK)") }
        guard topP > 0, topP <= 1 else { throw GenerationError("top_p must be in (0, 1], got \(topP)") }
        guard minP >= 0, minP <= 1 else { throw GenerationError("min_p must be in [0, 1], got \(minP)") }
        guard repetitionPenalty > 0, repetitionPenalty.isFinite else {
            throw GenerationError("repetition_penalty must be > 0 (1 = off), got \(repetitionPenalty)")
        }
    }
}

/// The error thrown by FinchGeneration.
public struct GenerationError: Error, CustomStringConvertible, Sendable {
    public var description: String
    public init(_ description: String) { self.description = description }
}
