/// Many tokens (prefill, training): panels of weight rows are dequantized bit-exactly into reusable
/// scratch (`QuantizedRows`, parallel over rows with the pool) and multiplied with `sgemm`, which
/// runs on OpenBLAS's own threads. Measured choices (`LinearWeightTests`, `FINCH_BENCH=1`):
/// - Panels are processed one after another, each `sgemm` using OpenBLAS's threads. Giving each pool
///   worker its own panels and a single-threaded `sgemm` was no faster (196 vs 194 GFLOP/s for
///   512 × 576 × 576 Q4_1) and needs OpenBLAS's process-wide thread count changed.
/// - Panels are large (up to 4 MiB of Float32): every `sgemm` call re-packs its B panel and costs
///   ≈ 0.3 ms of fixed overhead on 2 threads, so 1 MiB or 256 KiB panels were 1.2–2× slower.
/// - Dequantization costs 0.17–0.3 ns per weight on one core, under 4% of a 512-token `sgemm`.
extension LinearWeight {
    /// Rows per panel: the whole matrix while its Float32 copy fits `panelBudget`, else slices of
    /// about that size (a multiple of 16 rows, at least 64).
    static let panelBudget = 4 << 20

    func panelRows() -> Int {
        let rows = Self.panelBudget / max(1, 4 * inFeatures)
        if rows >= outFeatures { return outFeatures }
        return max(64, rows & ~15)
    }

    /// Dequantizes rows `start ..< start + count` into `panel` (`count × inFeatures`), in parallel.
    func dequantizePanel(start: Int, count: Int, into panel: UnsafeMutablePointer<Float>, pool: ThreadPool) {
        let (type, base, rowBytes, inFeatures) = (self.type, self.base, self.rowBytes, self.inFeatures)
        let destination = SendablePointer(panel)
        // ≈ 0.17–0.3 ns per element on one core: chunks of at least `minimumChunkNanoseconds`.
        let grain = max(1, Self.minimumChunkNanoseconds * 3 / max(1, inFeatures))
        pool.parallelFor(count, grain: grain) { rows in
            for r in rows {
                QuantizedRows.dequantize(type, base + (start + r) * rowBytes, count: inFeatures,
                                         into: destination.pointer + r * inFeatures)
            }
        }
    }

    func panelForward(_ x: UnsafePointer<Float>, tokens: Int, into y: UnsafeMutablePointer<Float>,
                      accumulate: Bool, pool: ThreadPool) {
        let panelRows = panelRows()
        QuantizedScratch.shared.withBuffer(of: Float.self, count: panelRows * inFeatures) { panel in
            var start = 0
            while start < outFeatures {
                let count = min(panelRows, outFeatures - start)
                dequantizePanel(start: start, count: count, into: panel, pool: pool)
                // y[:, start ..< start + count] = x · panelᵀ (+ y): ldc = outFeatures.
                LinearBLAS.gemmTransposedB(m: tokens, n: count, k: inFeatures, a: x, lda: inFeatures,
                                           b: panel, ldb: inFeatures, c: y + start, ldc: outFeatures,
                                           beta: accumulate ? 1 : 0)
                start += count
            }
        }
    }

    func panelBackwardInput(_ dy: UnsafePointer<Float>, tokens: Int, into dx: UnsafeMutablePointer<Float>,
                            accumulate: Bool, pool: ThreadPool) {
        let panelRows = panelRows()
        QuantizedScratch.shared.withBuffer(of: Float.self, count: panelRows * inFeatures) { panel in
            var start = 0
            while start < outFeatures {
                let count = min(panelRows, outFeatures - start)
                dequantizePanel(start: start, count: count, into: panel, pool: pool)
                // dx += dy[:, start ..< start + count] · panel: lda = outFeatures. The first panel
                // overwrites dx unless accumulating; panels are summed in a fixed order.
                LinearBLAS.gemm(m: tokens, n: inFeatures, k: count, a: dy + start, lda: outFeatures,
                                b: panel, ldb: inFeatures, c: dx, ldc: inFeatures,
                                beta: (accumulate || start > 0) ? 1 : 0)
                start += count
            }
        }
    }
}

/// A pointer the pool's workers may share; they write disjoint ranges by construction.
struct SendablePointer<T>: @unchecked Sendable {
    let pointer: UnsafeMutablePointer<T>
    init(_ pointer: UnsafeMutablePointer<T>) { self.pointer = pointer }
}
