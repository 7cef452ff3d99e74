import Foundation

/// Chooses tokens from logits: repetition penalty, then temperature, top-k, top-p and min-p, in
/// the order transformers applies its logits processors, then a draw from the remaining
/// distribution with a seeded xoshiro256** generator. Temperature 0 is greedy (first argmax).
public struct Sampler: Sendable {
    public let parameters: SamplingParameters
    private var rng: Xoshiro256

    public init(_ parameters: SamplingParameters) throws {
        try parameters.validate()
        self.parameters = parameters
        rng = Xoshiro256(seed: parameters.seed)
    }

    /// The next token for `logits`, given the ids already in the context (for the penalty).
    public mutating func next(_ logits: [Float], context: [Int]) -> Int {
        var l = logits
        let p = Float(parameters.repetitionPenalty)
        if p != 1 {
            for id in Set(context) where id >= 0 && id < l.count {
                l[id] = l[id] > 0 ? l[id] / p : l[id] * p
            }
        }
        if parameters.temperature == 0 { return Self.argmax(l) }
        let t = Float(parameters.temperature)
        // Candidates sorted by logit, descending (ties by id, for determinism).
        var order = Array(l.indices)
        order.sort { l[$0] != l[$1] ? l[$0] > l[$1] : $0 < $1 }
        if parameters.topK > 0 { order = Array(order.prefix(parameters.topK)) }
        let maxLogit = l[order[0]] / t
        var probs = order.map { Double(expf(l[$0] / t - maxLogit)) }
        var total = probs.reduce(0, +)
        if parameters.topP < 1 {
            var cumulative = 0.0
            var keep = 0
            for prob in probs {
                cumulative += prob / total
                keep += 1
                if cumulative >= parameters.topP { break }
            }
            order = Array(order.prefix(keep))
            probs = Array(probs.prefix(keep))
            total = probs.reduce(0, +)
        }
        if parameters.minP > 0 {
            let threshold = parameters.minP * probs[0]
            let keep = max(1, probs.firstIndex { $0 < threshold } ?? probs.count)
            order = Array(order.prefix(keep))
            probs = Array(probs.prefix(keep))
            total = probs.reduce(0, +)
        }
        var r = rng.nextDouble() * total
        for (i, prob) in probs.enumerated() {
            r -= prob
            if r < 0 { return order[i] }
        }
        return order[order.count - 1]
    }

    /// Index of the largest value (the first on ties, as torch.argmax).
    public static func argmax(_ values: [Float]) -> Int {
        var best = 0
        for i in values.indices where values[i] > values[best] { best = i }
        return best
    }
}

/// xoshiro256** (Blackman & Vigna 2018), seeded through SplitMix64.
struct Xoshiro256: Sendable {
    private var s: (UInt64, UInt64, UInt64, UInt64)

    init(seed: UInt64) {
        var x = seed
        func splitMix() -> UInt64 {
            x &+= 0x9E37_79B9_7F4A_7C15
            var z = x
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        s = (splitMix(), splitMix(), splitMix(), splitMix())
    }

    mutating func next() -> UInt64 {
        let result = ((s.1 &* 5) << 7 | (s.1 &* 5) >> 57) &* 9
        let t = s.1 << 17
        s.2 ^= s.0
        s.3 ^= s.1
        s.1 ^= s.2
        s.0 ^= s.3
        s.2 ^= t
        s.3 = (s.3 << 45) | (s.3 >> 19)
        return result
    }

    /// Uniform in [0, 1).
    mutating func nextDouble() -> Double { Double(next() >> 11) * 0x1p-53 }
}
