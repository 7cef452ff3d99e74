/// Many tokens (prefill, training): panels of weight rows are dequantized bit-exactly into reusable
/// scratch (`QuantizedRows`) and multiplied with `sgemm`. With a pool of 2+ threads (which sets
/// OpenBLAS to one thread, `BLAS.callerThreadsOnly`), each worker dequantizes and multiplies its
/// own share of the panels; otherwise panels go one after another through OpenBLAS's threads.
/// Measured choices (`LinearWeightTests`, `FINCH_BENCH=1`, `bench/train-step.sh`):
/// - Two spinning thread pools on two cores fight: with both Finch's workers and OpenBLAS's, a
///   training step took 5.8 s instead of 3.6–4.3 s.
/// - With OpenBLAS's threads, every `sgemm` call re-packs its B panel and costs ≈ 0.3 ms of fixed
///   overhead on 2 threads, so 1 MiB or 256 KiB panels were 1.2–2× slower than 4 MiB ones there.
/// - With single-threaded `sgemm` per pool worker (what a pool of 2+ threads sets up), each
///   worker's panel is up to 1 MiB, half of a core's 2 MiB L2, so `sgemm` packs it while it is
///   still in cache: the training-step benchmark's median went from ≈ 257 to ≈ 298 tokens/s over
///   six alternating processes each (4 MiB panels spilled to L3 and doubled dequantization's share
///   of the profile on a busy host), and 512-token prefill was unchanged (≈ 735 tokens/s).
/// - Dequantization costs 0.17–0.3 ns per weight on one core, under 4% of a 512-token `sgemm`.
extension LinearWeight {
    /// Rows per panel: the whole matrix while its Float32 copy fits `panelBudget` (1 MiB per worker
    /// with single-threaded `sgemm`, 4 MiB through OpenBLAS's threads), else slices of about that
    /// size (a multiple of 16 rows, at least 64).
    static var panelBudget: Int { LinearBLAS.isSingleThreaded ? 1 << 20 : 4 << 20 }

    func panelRows() -> Int {
        let rows = Self.panelBudget / max(1, 4 * inFeatures)
        if rows >= outFeatures { return outFeatures }
        return max(64, rows & ~15)
    }

    /// Dequantizes the weights at `rows × columns` into `panel` (`rows.count × columns.count`,
    /// row-major), parallel over rows with `pool`. `columns` starts at a block boundary (bitsandbytes
    /// weights: at any column).
    func dequantizePanel(rows: Range<Int>, columns: Range<Int>, into panel: UnsafeMutablePointer<Float>, pool: ThreadPool) {
        let width = columns.count
        if let fourBit {
            let (inFeatures, destination) = (self.inFeatures, SendablePointer(panel))
            pool.parallelFor(rows.count, grain: max(1, Self.minimumChunkNanoseconds * 3 / max(1, width))) { chunk in
                for r in chunk {
                    let start = (rows.lowerBound + r) * inFeatures + columns.lowerBound
                    fourBit.dequantize(start..<(start + width), into: destination.pointer + r * width)
                }
            }
            return
        }
        if let int8Rows {
            let destination = SendablePointer(panel)
            // ≈ 0.05 ns per element on one core.
            pool.parallelFor(rows.count, grain: max(1, Self.minimumChunkNanoseconds * 20 / max(1, width))) { chunk in
                for r in chunk {
                    int8Rows.dequantize(row: rows.lowerBound + r, columns: columns, into: destination.pointer + r * width)
                }
            }
            return
        }
        let (type, base, rowBytes) = (self.type, self.base, self.rowBytes)
        let offset = columns.lowerBound / type.blockSize * type.typeSize
        let destination = SendablePointer(panel)
        // ≈ 0.17–0.3 ns per element on one core: chunks of at least `minimumChunkNanoseconds`.
        pool.parallelFor(rows.count, grain: max(1, Self.minimumChunkNanoseconds * 3 / max(1, width))) { chunk in
            for r in chunk {
                QuantizedRows.dequantize(type, base + (rows.lowerBound + r) * rowBytes + offset, count: width,
                                         into: destination.pointer + r * width)
            }
        }
    }

    /// `y = x·Wᵀ (+ y)` through panels. With single-threaded BLAS, each pool chunk of output rows runs
    /// its own panels and `sgemm`s; otherwise panels go one after another through OpenBLAS's threads.
    func panelForward(_ x: UnsafePointer<Float>, tokens: Int, into y: UnsafeMutablePointer<Float>,
                      accumulate: Bool, pool: ThreadPool) {
        guard LinearBLAS.isSingleThreaded, pool.threads > 1 else {
            forwardPanels(0..<outFeatures, x, tokens: tokens, y, accumulate: accumulate, dequantizing: pool)
            return
        }
        let output = SendablePointer(y)
        // `sgemm` runs at ≈ 0.01 ns per multiply-add per core here.
        let grain = max(1, Self.minimumChunkNanoseconds * 100 / max(1, inFeatures * tokens))
        pool.parallelFor(outFeatures, grain: grain) { rows in
            forwardPanels(rows, x, tokens: tokens, output.pointer, accumulate: accumulate, dequantizing: .serial)
        }
    }

    private func forwardPanels(_ rows: Range<Int>, _ x: UnsafePointer<Float>, tokens: Int, _ y: UnsafeMutablePointer<Float>,
                               accumulate: Bool, dequantizing pool: ThreadPool) {
        let panelRows = min(rows.count, self.panelRows())
        QuantizedScratch.shared.withBuffer(of: Float.self, count: panelRows * inFeatures) { panel in
            var start = rows.lowerBound
            while start < rows.upperBound {
                let count = min(panelRows, rows.upperBound - start)
                dequantizePanel(rows: start..<(start + count), columns: 0..<inFeatures, into: panel, pool: pool)
                // y[:, start ..< start + count] = x · panelᵀ (+ y): ldc = outFeatures.
                LinearBLAS.gemmTransposedB(m: tokens, n: count, k: inFeatures, a: x, lda: inFeatures,
                                           b: panel, ldb: inFeatures, c: y + start, ldc: outFeatures,
                                           beta: accumulate ? 1 : 0)
                start += count
            }
        }
    }

    /// `dx = dy·W (+ dx)` through panels. With single-threaded BLAS, each pool chunk of input columns
    /// (whole blocks) runs its own panels and `sgemm`s, so no partial results need summing;
    /// otherwise panels go one after another through OpenBLAS's threads. Within a chunk, panels
    /// are summed in a fixed order.
    func panelBackwardInput(_ dy: UnsafePointer<Float>, tokens: Int, into dx: UnsafeMutablePointer<Float>,
                            accumulate: Bool, pool: ThreadPool) {
        guard LinearBLAS.isSingleThreaded, pool.threads > 1 else {
            backwardPanels(0..<inFeatures, dy, tokens: tokens, dx, accumulate: accumulate, dequantizing: pool)
            return
        }
        let output = SendablePointer(dx)
        // Column chunks start on a block of the row (bitsandbytes rows dequantize from any column —
        // 4-bit rows may start inside a block — so they use 64-column units and a shorter last one).
        let unit = fourBit != nil || int8Rows != nil ? Quantized4Bit.blockSize : type.blockSize
        let inFeatures = self.inFeatures
        let grain = max(1, Self.minimumChunkNanoseconds * 100 / max(1, outFeatures * tokens * unit))
        pool.parallelFor((inFeatures + unit - 1) / unit, grain: grain) { units in
            backwardPanels((units.lowerBound * unit)..<min(inFeatures, units.upperBound * unit), dy, tokens: tokens,
                           output.pointer, accumulate: accumulate, dequantizing: .serial)
        }
    }

    private func backwardPanels(_ columns: Range<Int>, _ dy: UnsafePointer<Float>, tokens: Int, _ dx: UnsafeMutablePointer<Float>,
                                accumulate: Bool, dequantizing pool: ThreadPool) {
        let width = columns.count
        let panelRows = min(outFeatures, max(64, Self.panelBudget / max(1, 4 * width) & ~15))
        QuantizedScratch.shared.withBuffer(of: Float.self, count: panelRows * width) { panel in
            var start = 0
            while start < outFeatures {
                let count = min(panelRows, outFeatures - start)
                dequantizePanel(rows: start..<(start + count), columns: columns, into: panel, pool: pool)
                // dx[:, columns] (+)= dy[:, start ..< start + count] · panel: lda = outFeatures,
                // ldc = inFeatures. The first panel overwrites dx unless accumulating.
                LinearBLAS.gemm(m: tokens, n: width, k: count, a: dy + start, lda: outFeatures,
                                b: panel, ldb: width, c: dx + columns.lowerBound, ldc: inFeatures,
                                beta: (accumulate || start > 0) ? 1 : 0)
                start += count
            }
        }
    }
}

/// A pointer the pool's workers may share; they write disjoint ranges by construction.
public struct SendablePointer<T>: @unchecked Sendable {
    public let pointer: UnsafeMutablePointer<T>
    public init(_ pointer: UnsafeMutablePointer<T>) { self.pointer = pointer }
}
