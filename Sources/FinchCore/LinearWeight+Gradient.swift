/// Parameter gradients of a linear layer `y = x·Wᵀ + b` whose weight is trainable and therefore
/// Float32 (full fine-tuning, or LoRA's A and B). The input gradient is `LinearWeight.backwardInput`,
/// which works for every storage kind.
extension LinearWeight {
    /// `weightGradient += scale · dyᵀ·x`, through BLAS.
    ///
    /// Shapes: `dy: (T, out)`, `x: (T, in)` row-major (the forward's input), `weightGradient: (out, in)`
    /// row-major, PyTorch's layout (`grad_W = grad_yᵀ · x`, as `torch.nn.functional.linear`'s
    /// autograd). `scale` folds in a constant factor, e.g. LoRA's `s = alpha/r`: for
    /// `y = s·B(A x)`, `dB += s · dyᵀ·(A x)` and `dA += s · (dy·B)ᵀ·x` (reference/trl-dpo.md §8.2).
    ///
    /// Each element is one dot product over the T tokens computed by `sgemm`. With single-threaded
    /// BLAS and a pool of several threads, the output rows are split over the pool (no element is
    /// split, so the thread count does not change which products are summed together); otherwise
    /// OpenBLAS threads the product itself. OpenBLAS 0.3.21 gave the same bits either way and for
    /// 1–3 pool threads (`BackwardTests.testBackwardsDoNotDependOnThreadCount`).
    public static func accumulateWeightGradient(outputGradient dy: UnsafePointer<Float>, input x: UnsafePointer<Float>, tokens: Int,
                                                outFeatures: Int, inFeatures: Int, scale: Float = 1,
                                                into weightGradient: UnsafeMutablePointer<Float>, pool: ThreadPool) {
        precondition(tokens >= 0 && outFeatures >= 0 && inFeatures >= 0)
        guard tokens > 0, outFeatures > 0, inFeatures > 0 else { return }
        let grain = LinearBLAS.isSingleThreaded
            ? max(1, minimumChunkNanoseconds * 100 / max(1, inFeatures * tokens)) : .max
        pool.parallelFor(outFeatures, grain: grain) { rows in
            // dW[rows, :] += scale · dy[:, rows]ᵀ · x: a = dy viewed (T, rows) with lda = out.
            BLAS.gemm(transposeA: true, transposeB: false, m: rows.count, n: inFeatures, k: tokens,
                      a: dy + rows.lowerBound, lda: outFeatures, b: x, ldb: inFeatures,
                      c: weightGradient + rows.lowerBound * inFeatures, ldc: inFeatures, alpha: scale, beta: 1)
        }
    }

    /// `biasGradient += Σ_t dy[t]` (shapes `dy: (T, out)`, `biasGradient: (out)`), summed in token
    /// order for every element whatever the pool (it splits the output features).
    public static func accumulateBiasGradient(outputGradient dy: UnsafePointer<Float>, tokens: Int, outFeatures: Int,
                                              into biasGradient: UnsafeMutablePointer<Float>, pool: ThreadPool = .serial) {
        pool.parallelFor(outFeatures, grain: max(1, (1 << 15) / max(1, tokens))) { columns in
            for t in 0..<tokens {
                let row = dy + t * outFeatures
                for c in columns { biasGradient[c] += row[c] }
            }
        }
    }
}
