/// SplitMix64 (Steele, Lea & Flood 2014): a small, fast, seeded generator — the one Finch uses
/// wherever a reproducible stream is needed (adapter initialization, dropout masks, tests).
public struct SplitMix64: RandomNumberGenerator, Sendable {
    public var state: UInt64

    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        return SplitMix64.mix(state)
    }

    /// The SplitMix64 output function, also a good 64-bit hash of a counter.
    public static func mix(_ value: UInt64) -> UInt64 {
        var z = value
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Uniform in [−bound, bound) from the top 24 bits (every value exact in Float32).
    public mutating func uniform(bound: Float) -> Float {
        let u = Float(next() >> 40) * 0x1p-24 // [0, 1)
        return (2 * u - 1) * bound
    }
}
