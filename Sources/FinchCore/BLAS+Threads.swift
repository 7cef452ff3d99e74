// Added for training (issue 5): lets FinchModels split its own BLAS products (LoRA's thin
// matrices) over a ThreadPool the way LinearWeight does, only when OpenBLAS itself runs on one thread.
extension BLAS {
    /// Whether each BLAS call runs on the calling thread only (OpenBLAS set to one thread, e.g.
    /// `OPENBLAS_NUM_THREADS=1`). Kernels then split their products over a `ThreadPool`; otherwise
    /// they leave the threading to BLAS, since two spinning pools on the same cores fight
    /// (see `LinearBLAS`).
    public static var isSingleThreaded: Bool { LinearBLAS.isSingleThreaded }
}
