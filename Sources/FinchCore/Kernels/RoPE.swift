import Foundation

/// Rotary position embeddings (Su et al. 2021) in HF's `rotate_half` convention: within the
/// first `rotaryDim` dimensions of each head, dimension i pairs with i + rotaryDim/2; the rest pass
/// through (Phi's partial rotary). Frequencies are computed in Float32 as transformers does
/// (`inv_freq = 1 / θ^(2i/d)`, angle = position · inv_freq).
public struct RoPE: Sendable {
    public let headDim: Int
    public let rotaryDim: Int
    public let theta: Float
    let inverseFrequencies: [Float]

    public init(headDim: Int, rotaryDim: Int, theta: Float) {
        precondition(rotaryDim % 2 == 0 && rotaryDim <= headDim)
        self.headDim = headDim
        self.rotaryDim = rotaryDim
        self.theta = theta
        inverseFrequencies = (0..<(rotaryDim / 2)).map { i in 1 / powf(theta, Float(2 * i) / Float(rotaryDim)) }
    }

    /// Rotates x: (T, heads, headDim) in place; token t is at `positions[t]`.
    public func apply(_ x: UnsafeMutablePointer<Float>, tokens: Int, heads: Int, positions: UnsafePointer<Int>) {
        rotate(x, tokens: tokens, heads: heads, positions: positions, sineSign: 1)
    }

    /// Fills `table` (T, rotaryDim) with each token's cos (first half) and sin (second half), the
    /// values `apply` computes per call; a training pass fills it once for all its layers and both
    /// directions (`apply(_:tokens:heads:table:)`, `backward(_:tokens:heads:table:)`).
    public func fillTable(positions: UnsafePointer<Int>, tokens: Int, into table: UnsafeMutablePointer<Float>) {
        let half = rotaryDim / 2
        for t in 0..<tokens {
            let position = Float(positions[t]), row = table + t * rotaryDim
            for i in 0..<half {
                let angle = position * inverseFrequencies[i]
                row[i] = Float(cos(Double(angle)))
                row[half + i] = Float(sin(Double(angle)))
            }
        }
    }

    /// `apply` with the cos/sin rows of `fillTable` (row t for token t of `x`).
    public func apply(_ x: UnsafeMutablePointer<Float>, tokens: Int, heads: Int, table: UnsafePointer<Float>) {
        rotate(x, tokens: tokens, heads: heads, table: table, sineSign: 1)
    }

    /// Rotates each pair by `sineSign · angle` (+1: `apply`; −1: its transpose, the backward).
    func rotate(_ x: UnsafeMutablePointer<Float>, tokens: Int, heads: Int, positions: UnsafePointer<Int>, sineSign: Float) {
        withUnsafeTemporaryAllocation(of: Float.self, capacity: rotaryDim) { row in
            for t in 0..<tokens {
                fillTable(positions: positions + t, tokens: 1, into: row.baseAddress!)
                rotate(x + t * heads * headDim, tokens: 1, heads: heads, table: row.baseAddress!, sineSign: sineSign)
            }
        }
    }

    func rotate(_ x: UnsafeMutablePointer<Float>, tokens: Int, heads: Int, table: UnsafePointer<Float>, sineSign: Float) {
        let half = rotaryDim / 2
        for t in 0..<tokens {
            let cosines = table + t * rotaryDim, sines = cosines + half
            for h in 0..<heads {
                let v = x + (t * heads + h) * headDim
                for i in 0..<half {
                    let a = v[i], b = v[i + half]
                    let c = cosines[i], s = sineSign * sines[i]
                    v[i] = a * c - b * s
                    v[i + half] = b * c + a * s
                }
            }
        }
    }
}
