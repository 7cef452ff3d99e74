import Foundation

/// Root-mean-square normalization (Zhang & Sennrich 2019), as HF `LlamaRMSNorm` computes it in
/// Float32: `y = x · 1/√(mean(x²) + ε) · weight`.
public enum RMSNorm {
    /// x: (T, C) row-major, weight: (C), out: (T, C). `out` may alias `x`.
    public static func forward(_ x: UnsafePointer<Float>, weight: UnsafePointer<Float>, epsilon: Float,
                               tokens: Int, channels: Int, into out: UnsafeMutablePointer<Float>, pool: ThreadPool = .serial) {
        let output = SendablePointer(out)
        pool.parallelFor(tokens, grain: max(1, 32_768 / max(1, channels))) { range in
            forward(x, weight: weight, epsilon: epsilon, tokens: range, channels: channels, into: output.pointer)
        }
    }

    static func forward(_ x: UnsafePointer<Float>, weight: UnsafePointer<Float>, epsilon: Float,
                        tokens: Range<Int>, channels: Int, into out: UnsafeMutablePointer<Float>) {
        for t in tokens {
            let row = x + t * channels, o = out + t * channels
            let scale = 1 / (VectorMath.sumOfSquares(row, count: channels) / Float(channels) + epsilon).squareRoot()
            for c in 0..<channels { o[c] = weight[c] * (row[c] * scale) }
        }
    }

    /// Plain reference in Double, for tests.
    public static func reference(_ x: [Float], weight: [Float], epsilon: Float, channels: Int) -> [Float] {
        var out = x
        for t in 0..<(x.count / channels) {
            let row = x[(t * channels)..<((t + 1) * channels)].map(Double.init)
            let scale = 1 / (row.reduce(0) { $0 + $1 * $1 } / Double(channels) + Double(epsilon)).squareRoot()
            for c in 0..<channels { out[t * channels + c] = Float(Double(weight[c]) * row[c] * scale) }
        }
        return out
    }
}

/// LayerNorm with bias (Ba et al. 2016), as `torch.nn.LayerNorm`: biased variance, Float32.
public enum LayerNorm {
    /// x: (T, C), weight/bias: (C), out: (T, C). `out` may alias `x`.
    public static func forward(_ x: UnsafePointer<Float>, weight: UnsafePointer<Float>, bias: UnsafePointer<Float>,
                               epsilon: Float, tokens: Int, channels: Int, into out: UnsafeMutablePointer<Float>) {
        for t in 0..<tokens {
            let row = x + t * channels, o = out + t * channels
            var mean: Float = 0
            for c in 0..<channels { mean += row[c] }
            mean /= Float(channels)
            var variance: Float = 0
            for c in 0..<channels { let d = row[c] - mean; variance += d * d }
            variance /= Float(channels)
            let scale = 1 / (variance + epsilon).squareRoot()
            for c in 0..<channels { o[c] = (row[c] - mean) * scale * weight[c] + bias[c] }
        }
    }

    public static func reference(_ x: [Float], weight: [Float], bias: [Float], epsilon: Float, channels: Int) -> [Float] {
        var out = x
        for t in 0..<(x.count / channels) {
            let row = x[(t * channels)..<((t + 1) * channels)].map(Double.init)
            let mean = row.reduce(0, +) / Double(channels)
            let variance = row.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(channels)
            let scale = 1 / (variance + Double(epsilon)).squareRoot()
            for c in 0..<channels { out[t * channels + c] = Float((row[c] - mean) * scale * Double(weight[c]) + Double(bias[c])) }
        }
        return out
    }
}
