import Foundation
#if canImport(Accelerate)
import Accelerate
#else
import CBLAS
#endif

/// Matrix products through the platform BLAS (OpenBLAS on Linux, Accelerate on Apple platforms).
public enum BLAS {
    /// `c = alpha · a · bᵀ + beta · c`, row-major Float32.
    ///
    /// Shapes: `a: (m, k)`, `b: (n, k)` (a Linear weight stored `[out, in]`), `c: (m, n)`.
    /// This is the layout of `y = x·Wᵀ`, the forward of every linear layer.
    public static func matmulTransposedB(
        m: Int, n: Int, k: Int,
        a: UnsafePointer<Float>, b: UnsafePointer<Float>, c: UnsafeMutablePointer<Float>,
        alpha: Float = 1, beta: Float = 0
    ) {
        precondition(m >= 0 && n >= 0 && k >= 0)
        guard m > 0, n > 0 else { return }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(m), Int32(n), Int32(k),
                    alpha, a, Int32(max(k, 1)), b, Int32(max(k, 1)), beta, c, Int32(n))
    }

    /// `c = alpha · a · b + beta · c`, row-major Float32. Shapes: `a: (m, k)`, `b: (k, n)`, `c: (m, n)`.
    /// This is the layout of `dx = dy·W` for a weight stored `[out, in]`.
    public static func matmul(
        m: Int, n: Int, k: Int,
        a: UnsafePointer<Float>, b: UnsafePointer<Float>, c: UnsafeMutablePointer<Float>,
        alpha: Float = 1, beta: Float = 0
    ) {
        precondition(m >= 0 && n >= 0 && k >= 0)
        guard m > 0, n > 0 else { return }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(m), Int32(n), Int32(k),
                    alpha, a, Int32(max(k, 1)), b, Int32(max(n, 1)), beta, c, Int32(n))
    }

    /// General row-major `c = alpha · op(a) · op(b) + beta · c` with explicit leading dimensions,
    /// for strided views such as one attention head inside a (T, heads, d) buffer.
    public static func gemm(transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int,
                            a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
                            c: UnsafeMutablePointer<Float>, ldc: Int, alpha: Float = 1, beta: Float = 0) {
        guard m > 0, n > 0 else { return }
        cblas_sgemm(CblasRowMajor, transposeA ? CblasTrans : CblasNoTrans, transposeB ? CblasTrans : CblasNoTrans,
                    Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    }
}

extension BLAS {
    /// Makes every BLAS call run on its calling thread only, once per process, unless
    /// `OPENBLAS_NUM_THREADS` is set explicitly. `ThreadPool` does this when it has more than one
    /// thread: Finch splits BLAS work over its own pool (`LinearBLAS`), and OpenBLAS's workers,
    /// which spin after each call, would otherwise fight the pool's for the same cores (measured:
    /// prefill of 512 tokens 390 → 470 tokens/s, and a decode step after a prefill 105 → 9 ms).
    static let callerThreadsOnly: Void = {
        #if !canImport(Accelerate)
        if getenv("OPENBLAS_NUM_THREADS") == nil { openblas_set_num_threads(1) }
        #endif
    }()
}
