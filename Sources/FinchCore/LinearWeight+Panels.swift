/// Many tokens (prefill, training): panels of weight rows are dequantized bit-exactly into reusable
/// scratch (`QuantizedRows`, parallel over rows with the pool) and multiplied with `sgemm`, which
/// runs on OpenBLAS's own threads. Panels are processed one after another: the dequantization of a
/// panel costs about 1/tokens of its `sgemm` per element, so overlapping the two would gain little,
/// and calling `sgemm` from several pool workers at once would need OpenBLAS's global thread
/// count changed (a process-wide setting other callers share). Measured in `LinearWeightTests`
/// (`FINCH_BENCH=1`).
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
        // Dequantization costs ≈ 0.2–0.5 ns per element on one core; split only panels whose
        // chunks stay above `minimumChunkNanoseconds` (see there).
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
