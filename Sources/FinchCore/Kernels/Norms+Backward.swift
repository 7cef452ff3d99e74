import Foundation

// Backward of the normalization layers, in Float32, recomputing the per-row statistics from x
// (cheaper than storing them: one pass over a row that backward reads anyway).
//
// Determinism: the input gradient is computed row by row, the weight and bias gradients column by
// column with the sum over tokens in token order, so the thread partition (rows for dx, columns for
// dweight/dbias) never changes the order in which any element is summed.

/// Work, in multiply-adds, below which a norm backward runs on the calling thread only.
private let normParallelThreshold = 1 << 15

extension RMSNorm {
    /// Gradients of `forward`: `dx` and, accumulated into `weightGradient`, `dweight`.
    ///
    /// With `r = 1/√(mean(x²) + ε)` per row, `y = w ⊙ x · r`, and `g = dy ⊙ w`:
    /// - `dx = r · (g − x · r² · mean(g ⊙ x))`
    /// - `dweight += Σ_t dy ⊙ x · r`
    ///
    /// These are PyTorch's `rms_norm` autograd formulas (`FunctionsManual.cpp`,
    /// `rms_norm_backward`), i.e. the derivative of HF `LlamaRMSNorm` in Float32.
    ///
    /// Shapes: `dy`, `x`, `dx`: (T, C) row-major; `weight`, `weightGradient`: (C).
    /// `dx` may alias `dy` (each element of dy is read before the same element of dx is written);
    /// with `accumulate`, `dx += …` instead of `dx = …`. `weightGradient` is always accumulated
    /// into (pass nil for a frozen weight).
    public static func backward(_ dy: UnsafePointer<Float>, x: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                                epsilon: Float, tokens: Int, channels: Int,
                                inputGradient dx: UnsafeMutablePointer<Float>, weightGradient: UnsafeMutablePointer<Float>?,
                                accumulate: Bool = false, pool: ThreadPool = .serial) {
        precondition(tokens >= 0 && channels > 0)
        guard tokens > 0 else { return }
        let rowGrain = max(1, normParallelThreshold / channels)
        QuantizedScratch.shared.withBuffer(of: Float.self, count: tokens) { rstd in
            // Same Float32 statistics as `forward`.
            pool.parallelFor(tokens, grain: rowGrain) { rows in
                for t in rows {
                    let row = x + t * channels
                    rstd[t] = 1 / (VectorMath.sumOfSquares(row, count: channels) / Float(channels) + epsilon).squareRoot()
                }
            }
            // dweight before dx: dx may overwrite dy.
            if let dw = weightGradient {
                pool.parallelFor(channels, grain: max(1, normParallelThreshold / tokens)) { columns in
                    for t in 0..<tokens {
                        let g = dy + t * channels, row = x + t * channels, r = rstd[t]
                        for c in columns { dw[c] += g[c] * (row[c] * r) }
                    }
                }
            }
            let inverseChannels = 1 / Float(channels)
            pool.parallelFor(tokens, grain: rowGrain) { rows in
                for t in rows {
                    let g = dy + t * channels, row = x + t * channels, out = dx + t * channels
                    let r = rstd[t]
                    let k = r * r * VectorMath.dot(g, weight, row, count: channels) * inverseChannels
                    if accumulate {
                        for c in 0..<channels { out[c] += r * (g[c] * weight[c] - row[c] * k) }
                    } else {
                        for c in 0..<channels { out[c] = r * (g[c] * weight[c] - row[c] * k) }
                    }
                }
            }
        }
    }
}

extension LayerNorm {
    /// Gradients of `forward`: `dx` and, accumulated into the given buffers, `dweight` and `dbias`.
    ///
    /// With `μ`, `r = 1/√(var + ε)` (biased variance) per row, `x̂ = (x − μ)·r`, `y = x̂ ⊙ w + b`
    /// and `g = dy ⊙ w`:
    /// - `dx = r · (g − mean(g) − x̂ · mean(g ⊙ x̂))`
    /// - `dweight += Σ_t dy ⊙ x̂`, `dbias += Σ_t dy`
    ///
    /// As PyTorch's `layer_norm_backward` (`aten/src/ATen/native/cpu/layer_norm_kernel.cpp`) and
    /// llm.c's `layernorm_backward`.
    ///
    /// Shapes: `dy`, `x`, `dx`: (T, C) row-major; `weight`, `weightGradient`, `biasGradient`: (C).
    /// `dx` may alias `dy`; with `accumulate`, `dx += …`. The parameter gradients are always
    /// accumulated into (nil skips one).
    public static func backward(_ dy: UnsafePointer<Float>, x: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                                epsilon: Float, tokens: Int, channels: Int,
                                inputGradient dx: UnsafeMutablePointer<Float>,
                                weightGradient: UnsafeMutablePointer<Float>?, biasGradient: UnsafeMutablePointer<Float>?,
                                accumulate: Bool = false, pool: ThreadPool = .serial) {
        precondition(tokens >= 0 && channels > 0)
        guard tokens > 0 else { return }
        let rowGrain = max(1, normParallelThreshold / channels)
        QuantizedScratch.shared.withBuffer(of: Float.self, count: 2 * tokens) { stats in
            let means = stats, rstd = stats + tokens
            // Same Float32 statistics as `forward` (two passes: mean, then centred variance).
            pool.parallelFor(tokens, grain: rowGrain) { rows in
                for t in rows {
                    let row = x + t * channels
                    var mean: Float = 0
                    for c in 0..<channels { mean += row[c] }
                    mean /= Float(channels)
                    var variance: Float = 0
                    for c in 0..<channels { let d = row[c] - mean; variance += d * d }
                    variance /= Float(channels)
                    means[t] = mean
                    rstd[t] = 1 / (variance + epsilon).squareRoot()
                }
            }
            if weightGradient != nil || biasGradient != nil {
                pool.parallelFor(channels, grain: max(1, normParallelThreshold / tokens)) { columns in
                    for t in 0..<tokens {
                        let g = dy + t * channels, row = x + t * channels, mean = means[t], r = rstd[t]
                        if let dw = weightGradient {
                            for c in columns { dw[c] += g[c] * ((row[c] - mean) * r) }
                        }
                        if let db = biasGradient {
                            for c in columns { db[c] += g[c] }
                        }
                    }
                }
            }
            let inverseChannels = 1 / Float(channels)
            pool.parallelFor(tokens, grain: rowGrain) { rows in
                for t in rows {
                    let g = dy + t * channels, row = x + t * channels, out = dx + t * channels
                    let mean = means[t], r = rstd[t]
                    var sumG: Float = 0, sumGX: Float = 0
                    for c in 0..<channels {
                        let gw = g[c] * weight[c]
                        sumG += gw
                        sumGX += gw * ((row[c] - mean) * r)
                    }
                    let meanG = sumG * inverseChannels, meanGX = sumGX * inverseChannels
                    if accumulate {
                        for c in 0..<channels { out[c] += r * (g[c] * weight[c] - meanG - (row[c] - mean) * r * meanGX) }
                    } else {
                        for c in 0..<channels { out[c] = r * (g[c] * weight[c] - meanG - (row[c] - mean) * r * meanGX) }
                    }
                }
            }
        }
    }
}
