import Foundation

/// Causal attention over **packed variable-length sequences** (training and batched prefill without
/// padding, DESIGN.md §3): several sequences are concatenated along the token axis of one
/// `(T, heads, d)` buffer, described by cumulative lengths as FlashAttention's `cu_seqlens`
/// (`cumulativeLengths[0] = 0`, sequence s is tokens `cumulativeLengths[s] ..< cumulativeLengths[s+1]`,
/// the last entry is T). A token attends to the tokens of its own sequence up to itself. Positions
/// (for RoPE, applied before) are the caller's: normally they restart at 0 for each sequence.
///
/// The forward saves one log-sum-exp per (token, head), as FlashAttention-2 does (Dao 2023), and the
/// backward recomputes the probabilities from it instead of storing the (L × L) matrices.
///
/// Work item: (sequence, head) in the forward, (sequence, key/value head) in the backward, so that
/// every output element — `out`, `dq`, and `dk`/`dv` summed over the query heads of a group, in
/// head order — is produced by one item in a fixed order. Each item multiplies through BLAS
/// (`sgemm` on strided head views; the full L × L block is computed and the causal part kept).
/// With single-threaded BLAS and a pool of several threads, items are spread over the pool;
/// otherwise they run one after another and OpenBLAS threads each product. Either way an item
/// computes the same thing, so results do not depend on the thread count.
extension Attention {
    /// Packed causal attention with grouped-query heads (query head h reads key/value head
    /// `h / (heads / kvHeads)`), scale `1/√d`, Float32 with a max-subtracted softmax: the same math as
    /// `forward` with `past = 0`, run separately on each sequence.
    ///
    /// Shapes: `q: (T, heads, d)`, `k`, `v: (T, kvHeads, d)`, `out: (T, heads, d)` row-major;
    /// `cumulativeLengths: (sequences + 1)`; `logSumExp: (T, heads)` receives, for each query row,
    /// `m + log Σ_j exp(s_j − m)` over its visible scaled scores `s_j = q·k_j/√d` (m their maximum),
    /// for `packedBackward`.
    public static func packedForward(query q: UnsafePointer<Float>, keys k: UnsafePointer<Float>, values v: UnsafePointer<Float>,
                                     cumulativeLengths: UnsafePointer<Int>, sequences: Int, heads: Int, kvHeads: Int, headDim d: Int,
                                     into out: UnsafeMutablePointer<Float>, logSumExp: UnsafeMutablePointer<Float>, pool: ThreadPool) {
        let longest = checkPacking(cumulativeLengths, sequences: sequences, heads: heads, kvHeads: kvHeads, headDim: d)
        guard longest > 0 else { return }
        let group = heads / kvHeads
        let scale = 1 / Float(d).squareRoot()
        forEachItem(sequences * heads, longest: longest, matrices: 1, pool: pool) { item, scores in
            let s = item / heads, h = item % heads, g = h / group
            let start = cumulativeLengths[s], L = cumulativeLengths[s + 1] - start
            guard L > 0 else { return }
            let qh = q + (start * heads + h) * d, kg = k + (start * kvHeads + g) * d, vg = v + (start * kvHeads + g) * d
            // scores (L × L) = scale · Q_h K_gᵀ
            BLAS.gemm(transposeA: false, transposeB: true, m: L, n: L, k: d, a: qh, lda: heads * d, b: kg, ldb: kvHeads * d,
                      c: scores, ldc: L, alpha: scale)
            for t in 0..<L {
                let row = scores + t * L
                let m = VectorMath.maximum(row, count: t + 1)
                let sum = VectorMath.exponentiate(row, minus: m, count: t + 1)
                let inverse = 1 / sum
                for j in 0...t { row[j] *= inverse }
                for j in (t + 1)..<L { row[j] = 0 }
                logSumExp[(start + t) * heads + h] = m + logf(sum)
            }
            // out_h = P V_g
            BLAS.gemm(transposeA: false, transposeB: false, m: L, n: d, k: L, a: scores, lda: L, b: vg, ldb: kvHeads * d,
                      c: out + (start * heads + h) * d, ldc: heads * d)
        }
    }

    /// Gradients of `packedForward`: `dq`, `dk`, `dv` (overwritten) from `dout`.
    ///
    /// Per sequence and head, with `S = Q Kᵀ/√d` (causal), `P = exp(S − logSumExp)` (recomputed) and
    /// `dP = dO Vᵀ` (FlashAttention-2, Dao 2023, Algorithm 2; the softmax Jacobian as PyTorch's
    /// `_softmax_backward_data`):
    /// - `dV = Pᵀ dO`
    /// - `dS = P ⊙ (dP − D)` with `D_t = Σ_j P_tj dP_tj` (= `rowsum(dO ⊙ O)`, the form
    ///   FlashAttention uses; this one needs no saved output)
    /// - `dQ = dS K/√d`, `dK = dSᵀ Q/√d`
    ///
    /// `dk` and `dv` of a key/value head are the sums over the `heads / kvHeads` query heads that
    /// read it, added in head order.
    ///
    /// Shapes: `q`, `dout`, `dq: (T, heads, d)`; `k`, `v`, `dk`, `dv: (T, kvHeads, d)`;
    /// `logSumExp: (T, heads)` from `packedForward` on the same inputs.
    public static func packedBackward(query q: UnsafePointer<Float>, keys k: UnsafePointer<Float>, values v: UnsafePointer<Float>,
                                      outputGradient dout: UnsafePointer<Float>, logSumExp: UnsafePointer<Float>,
                                      cumulativeLengths: UnsafePointer<Int>, sequences: Int, heads: Int, kvHeads: Int, headDim d: Int,
                                      queryGradient dq: UnsafeMutablePointer<Float>, keyGradient dk: UnsafeMutablePointer<Float>,
                                      valueGradient dv: UnsafeMutablePointer<Float>, pool: ThreadPool) {
        let longest = checkPacking(cumulativeLengths, sequences: sequences, heads: heads, kvHeads: kvHeads, headDim: d)
        guard longest > 0 else { return }
        let group = heads / kvHeads
        let scale = 1 / Float(d).squareRoot()
        forEachItem(sequences * kvHeads, longest: longest, matrices: 2, pool: pool) { item, scratch in
            let s = item / kvHeads, g = item % kvHeads
            let start = cumulativeLengths[s], L = cumulativeLengths[s + 1] - start
            guard L > 0 else { return }
            let p = scratch, dp = scratch + L * L
            let kg = k + (start * kvHeads + g) * d, vg = v + (start * kvHeads + g) * d
            let dkg = dk + (start * kvHeads + g) * d, dvg = dv + (start * kvHeads + g) * d
            for h in (g * group)..<((g + 1) * group) {
                let qh = q + (start * heads + h) * d, doh = dout + (start * heads + h) * d, dqh = dq + (start * heads + h) * d
                let first: Float = h == g * group ? 0 : 1 // beta: the group's first head overwrites dk, dv
                // P = exp(scale · Q_h K_gᵀ − lse), zero above the diagonal.
                BLAS.gemm(transposeA: false, transposeB: true, m: L, n: L, k: d, a: qh, lda: heads * d, b: kg, ldb: kvHeads * d,
                          c: p, ldc: L, alpha: scale)
                for t in 0..<L {
                    let row = p + t * L, lse = logSumExp[(start + t) * heads + h]
                    VectorMath.scaledExp(row, minus: lse, scale: 1, count: t + 1, into: row)
                    for j in (t + 1)..<L { row[j] = 0 }
                }
                // dV_g (+)= Pᵀ dO_h
                BLAS.gemm(transposeA: true, transposeB: false, m: L, n: d, k: L, a: p, lda: L, b: doh, ldb: heads * d,
                          c: dvg, ldc: kvHeads * d, beta: first)
                // dP = dO_h V_gᵀ, then dS = P ⊙ (dP − D) in place, zero above the diagonal.
                BLAS.gemm(transposeA: false, transposeB: true, m: L, n: L, k: d, a: doh, lda: heads * d, b: vg, ldb: kvHeads * d,
                          c: dp, ldc: L)
                for t in 0..<L {
                    let pr = p + t * L, dr = dp + t * L
                    var D: Float = 0
                    for j in 0...t { D += pr[j] * dr[j] }
                    for j in 0...t { dr[j] = pr[j] * (dr[j] - D) }
                    for j in (t + 1)..<L { dr[j] = 0 }
                }
                // dQ_h = scale · dS K_g;  dK_g (+)= scale · dSᵀ Q_h
                BLAS.gemm(transposeA: false, transposeB: false, m: L, n: d, k: L, a: dp, lda: L, b: kg, ldb: kvHeads * d,
                          c: dqh, ldc: heads * d, alpha: scale)
                BLAS.gemm(transposeA: true, transposeB: false, m: L, n: d, k: L, a: dp, lda: L, b: qh, ldb: heads * d,
                          c: dkg, ldc: kvHeads * d, alpha: scale, beta: first)
            }
        }
    }

    /// Validates the packing and returns the longest sequence.
    private static func checkPacking(_ cumulativeLengths: UnsafePointer<Int>, sequences: Int, heads: Int, kvHeads: Int, headDim d: Int) -> Int {
        precondition(sequences >= 0 && d > 0 && kvHeads > 0 && heads % kvHeads == 0,
                     "Attention: \(heads) heads are not a multiple of \(kvHeads) key/value heads")
        guard sequences > 0 else { return 0 }
        precondition(cumulativeLengths[0] == 0, "Attention: cumulativeLengths must start at 0")
        var longest = 0
        for s in 0..<sequences {
            let length = cumulativeLengths[s + 1] - cumulativeLengths[s]
            precondition(length >= 0, "Attention: cumulativeLengths decrease at sequence \(s)")
            longest = max(longest, length)
        }
        return longest
    }

    /// Runs `body(item, scratch)` for each item in `0..<count`, with `matrices` (longest × longest)
    /// Float32 scratch matrices per thread (reused across items and calls).
    private static func forEachItem(_ count: Int, longest: Int, matrices: Int, pool: ThreadPool,
                                    _ body: (Int, UnsafeMutablePointer<Float>) -> Void) {
        let scratchCount = matrices * longest * longest
        let parallel = LinearBLAS.isSingleThreaded && pool.threads > 1
        if parallel {
            pool.parallelFor(count) { items in
                QuantizedScratch.shared.withBuffer(of: Float.self, count: scratchCount) { scratch in
                    for item in items { body(item, scratch) }
                }
            }
        } else {
            QuantizedScratch.shared.withBuffer(of: Float.self, count: scratchCount) { scratch in
                for item in 0..<count { body(item, scratch) }
            }
        }
    }
}
