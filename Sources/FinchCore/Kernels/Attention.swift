import Foundation

/// Causal scaled-dot-product attention with grouped-query heads (Ainslie et al. 2023) over a key/value
/// history, Float32 with a max-subtracted softmax (as HF eager attention).
public enum Attention {
    /// q: (T, heads, d) for the T newest positions; keys/values: (past + T, kvHeads, d) including
    /// them; out: (T, heads, d). Query t attends keys 0 … past + t.
    public static func forward(query q: UnsafePointer<Float>, keys k: UnsafePointer<Float>, values v: UnsafePointer<Float>,
                               tokens: Int, past: Int, heads: Int, kvHeads: Int, headDim d: Int,
                               into out: UnsafeMutablePointer<Float>, pool: ThreadPool) {
        let group = heads / kvHeads
        let scale = 1 / Float(d).squareRoot()
        let total = past + tokens
        if tokens >= 16 {
            blocked(query: q, keys: k, values: v, tokens: tokens, past: past, heads: heads, kvHeads: kvHeads, headDim: d,
                    into: out, pool: LinearBLAS.isSingleThreaded ? pool : .serial)
            return
        }
        pool.parallelFor(heads * tokens) { range in
            withUnsafeTemporaryAllocation(of: Float.self, capacity: total) { scores in
                let s = scores.baseAddress!
                for work in range {
                    let h = work % heads, t = work / heads
                    let kvh = h / group
                    let qv = q + (t * heads + h) * d
                    let visible = past + t + 1
                    for j in 0..<visible {
                        let kv = k + (j * kvHeads + kvh) * d
                        var dot: Float = 0
                        for c in 0..<d { dot += qv[c] * kv[c] }
                        s[j] = dot * scale
                    }
                    Activations.softmax(s, count: visible)
                    let o = out + (t * heads + h) * d
                    for c in 0..<d { o[c] = 0 }
                    for j in 0..<visible {
                        let p = s[j]
                        let vv = v + (j * kvHeads + kvh) * d
                        for c in 0..<d { o[c] += p * vv[c] }
                    }
                }
            }
        }
    }

    /// Prefill path: per head, scores = Q·Kᵀ and output = P·V as matrix products (BLAS), with the
    /// causal mask applied between them. Same math as the loop path; summation order differs.
    /// Heads are split over the pool (each worker its own score buffer, BLAS on the calling
    /// thread), and queries go in blocks of `queryBlock` rows whose products only span the keys
    /// those rows can see, which skips most of the masked upper triangle.
    static func blocked(query q: UnsafePointer<Float>, keys k: UnsafePointer<Float>, values v: UnsafePointer<Float>,
                        tokens: Int, past: Int, heads: Int, kvHeads: Int, headDim d: Int, into out: UnsafeMutablePointer<Float>,
                        pool: ThreadPool = .serial) {
        let group = heads / kvHeads
        let total = past + tokens
        let queryBlock = 128
        let output = SendablePointer(out)
        pool.parallelFor(heads) { headRange in
            QuantizedScratch.shared.withBuffer(of: Float.self, count: min(queryBlock, tokens) * total) { scores in
                for h in headRange {
                    let kvh = h / group
                    var t0 = 0
                    while t0 < tokens {
                        let rows = min(queryBlock, tokens - t0)
                        let visible = past + t0 + rows // keys the last row of the block sees
                        BLAS.gemm(transposeA: false, transposeB: true, m: rows, n: visible, k: d,
                                  a: q + t0 * heads * d + h * d, lda: heads * d, b: k + kvh * d, ldb: kvHeads * d,
                                  c: scores, ldc: visible, alpha: 1 / Float(d).squareRoot())
                        for t in 0..<rows {
                            let row = scores + t * visible
                            let seen = past + t0 + t + 1
                            Activations.softmax(row, count: seen)
                            if seen < visible { (row + seen).update(repeating: 0, count: visible - seen) }
                        }
                        BLAS.gemm(transposeA: false, transposeB: false, m: rows, n: d, k: visible,
                                  a: scores, lda: visible, b: v + kvh * d, ldb: kvHeads * d,
                                  c: output.pointer + t0 * heads * d + h * d, ldc: heads * d)
                        t0 += rows
                    }
                }
            }
        }
    }
}
