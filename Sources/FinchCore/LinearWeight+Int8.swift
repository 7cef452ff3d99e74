/// Decode (few tokens) for LLM.int8 rows (`Int8RowQuantized`), in Float32 and fused: for each output
/// row r and token t, `y[t, r] = s_r · Σ_j c[r, j]·x[t, j]`, the int8 codes converted exactly to
/// Float32 in 16-lane registers and multiplied into two accumulators, the row multiplier
/// `s_r = SCB[r]·(1/127)` applied once to the sum. Nothing is written to memory but the outputs.
/// This is the product with the dequantized weight (`w = c·s_r`, what the panels and `row(_:)`
/// give) up to Float32 rounding: the weights are not rounded one by one, the sum is scaled instead.
///
/// Rows are split over the pool; every output element is computed by one thread in a fixed order,
/// so results do not depend on the thread count. Many tokens and `backwardInput` go through the
/// shared panel path (`LinearWeight+Panels.swift`), which dequantizes with `Int8RowQuantized.dequantize`.
enum Int8RowDecode {
    /// Single-core cost in picoseconds per weight element and token (for `decodeGrain`).
    static let costPerElement = 100

    /// `y[t, r] (+)= Σ_j w[r, j]·x[t, j]` for every row and token.
    static func forward(_ weight: Int8RowQuantized, _ x: UnsafePointer<Float>, tokens: Int, into output: DecodeOutput,
                        grain: Int, pool: ThreadPool) {
        guard let codes = weight.codes.baseAddress else { return }
        let n = weight.columns
        pool.parallelFor(weight.rows, grain: grain) { rows in
            for r in rows {
                let row = codes + r * n
                let scale = weight.rowScale(r)
                for t in 0..<tokens {
                    output.store(scale * LaneDot.dot(Int8Lanes.self, UnsafeRawPointer(row), x + t * n, count: n), token: t, row: r)
                }
            }
        }
    }
}

extension LinearWeight {
    /// The default `decodeTokenLimit` of LLM.int8 rows (see `defaultDecodeTokenLimit(for:singleThreadedBLAS:)`):
    /// with BLAS split over a 2-thread pool, decode beat panels up to 8 tokens on 1536×576 int8
    /// (536 vs 565 µs at 8, 702 vs 621 µs at 12; `LinearWeightTests.testFourBitBenchmark`, measured
    /// on a busy machine, so the crossover is approximate), as for 4-bit weights.
    public static func int8DecodeTokenLimit(singleThreadedBLAS: Bool) -> Int {
        singleThreadedBLAS ? 8 : 12
    }
}
