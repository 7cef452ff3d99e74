/// Decode (few tokens) for bitsandbytes 4-bit weights, in Float32: each output row's weights are
/// dequantized bit-exactly into an L1-sized scratch row (`Quantized4Bit.dequantize`), then dotted
/// with every token's activations (`FloatDecode.dotRow`). Rows are split over the pool; every
/// output element is computed by one thread in a fixed order, so results do not depend on the
/// thread count. Many tokens and `backwardInput` go through the shared panel path
/// (`LinearWeight+Panels.swift`), which dequantizes with the same function.
enum FourBitDecode {
    /// Single-core cost in picoseconds per weight element and token (for `decodeGrain`).
    static let costPerElement = 250

    /// `y[t, r] (+)= Σ_j w[r, j]·x[t, j]` for every row and token.
    static func forward(_ weight: Quantized4Bit, _ x: UnsafePointer<Float>, tokens: Int, outFeatures: Int, inFeatures: Int,
                        into output: DecodeOutput, grain: Int, pool: ThreadPool) {
        pool.parallelFor(outFeatures, grain: grain) { rows in
            QuantizedScratch.shared.withBuffer(of: Float.self, count: inFeatures) { scratch in
                for r in rows {
                    weight.dequantize((r * inFeatures)..<((r + 1) * inFeatures), into: scratch)
                    FloatDecode.dotRow(FloatLoader.self, UnsafeRawPointer(scratch), r, inFeatures, x, tokens, output)
                }
            }
        }
    }
}

extension LinearWeight {
    /// The default `decodeTokenLimit` of 4-bit weights (see `defaultDecodeTokenLimit(for:singleThreadedBLAS:)`).
    public static func fourBitDecodeTokenLimit(singleThreadedBLAS: Bool) -> Int {
        singleThreadedBLAS ? 4 : 8
    }
}
