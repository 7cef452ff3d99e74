/// Decode (few tokens) for bitsandbytes 4-bit weights, in Float32: each output row's weights are
/// dequantized bit-exactly into an L1-sized scratch row, then dotted with every token's
/// activations in 16-lane vectors. Rows are split over the pool; every output element is computed
/// by one thread in a fixed order, so results do not depend on the thread count. Many tokens and
/// `backwardInput` go through the shared panel path (`LinearWeight+Panels.swift`), which
/// dequantizes with the same function.
///
/// Dequantizing a row costs ≈ 0.17 ns per weight on one core (`Quantized4Bit.dequantizePairs`),
/// several times the dot product, so the row is dequantized once per call and reused for every
/// token. Dotting straight from the code bytes (no scratch) measured the same in a micro-benchmark.
enum FourBitDecode {
    /// Single-core cost in picoseconds per weight element and token (for `decodeGrain`).
    static let costPerElement = 250

    /// `y[t, r] (+)= Σ_j w[r, j]·x[t, j]` for every row and token.
    static func forward(_ weight: Quantized4Bit, _ x: UnsafePointer<Float>, tokens: Int, outFeatures: Int, inFeatures: Int,
                        into output: DecodeOutput, grain: Int, pool: ThreadPool) {
        pool.parallelFor(outFeatures, grain: grain) { rows in
            QuantizedScratch.shared.withBuffer(of: Float.self, count: inFeatures) { scratch in
                for r in rows {
                    dequantizeRow(weight, r, inFeatures: inFeatures, into: scratch)
                    for t in 0..<tokens {
                        output.store(LaneDot.dot(Float32Lanes.self, UnsafeRawPointer(scratch), x + t * inFeatures, count: inFeatures),
                                     token: t, row: r)
                    }
                }
            }
        }
    }

    /// Row r (`inFeatures` elements) into `out`: whole blocks straight from the packed bytes when
    /// rows are a whole number of blocks, else the general element-range path.
    @inline(__always)
    static func dequantizeRow(_ weight: Quantized4Bit, _ r: Int, inFeatures: Int, into out: UnsafeMutablePointer<Float>) {
        guard inFeatures % Quantized4Bit.blockSize == 0, let packed = weight.packed.baseAddress else {
            weight.dequantize((r * inFeatures)..<((r + 1) * inFeatures), into: out)
            return
        }
        let blocks = inFeatures / Quantized4Bit.blockSize, first = r * blocks
        let pairs = UnsafePointer(weight.pairs.pointer)
        let row = packed + r * (inFeatures / 2)
        for b in 0..<blocks {
            Quantized4Bit.dequantizePairs(row + 32 * b, count: 32, scale: weight.scale(block: first + b), pairs: pairs,
                                          into: out + 64 * b)
        }
    }
}

extension LinearWeight {
    /// The default `decodeTokenLimit` of 4-bit weights (see `defaultDecodeTokenLimit(for:singleThreadedBLAS:)`):
    /// with BLAS split over a 2-thread pool, decode beat panels up to 8 tokens on 1536×576 NF4
    /// (209 vs 224 µs at 8, 343 vs 253 µs at 12; `LinearWeightTests.testFourBitBenchmark`).
    public static func fourBitDecodeTokenLimit(singleThreadedBLAS: Bool) -> Int {
        singleThreadedBLAS ? 8 : 12
    }
}
