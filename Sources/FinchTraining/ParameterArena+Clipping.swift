import FinchCore

extension ParameterArena {
    /// The L2 norm of all gradients jointly, ‖g‖₂ over every slice (padding excluded).
    ///
    /// Computed in Double, in a fixed order: a sum of squares per chunk of
    /// `ParameterArena.chunkSize` elements (sequential inside the chunk), then the chunk sums in
    /// slice order. The result does not depend on the thread count, and is the exact norm of the
    /// Float32 gradients to ≈1e-15 relative.
    ///
    /// torch's `clip_grad_norm_` (2.15, CPU) instead takes a Float32 norm per tensor with 8 float
    /// accumulators, then the norm of those norms. Its own rounding error grows with tensor size:
    /// measured against the exact value, ≈3e-9 relative for a few hundred elements, ≈1e-7 at LoRA
    /// sizes (≈10 k elements per tensor) and 2.2e-5 for a 1 M-element tensor
    /// (`ClippingTests`). This norm agrees with torch's to that error.
    public func gradientNorm(pool: ThreadPool = .serial) -> Double {
        let gradients = self.gradients
        let slices = self.slices
        chunks.withUnsafeBufferPointer { chunks in
            chunkScratch.withUnsafeMutableBufferPointer { partial in
                pool.parallelFor(chunks.count) { range in
                    for c in range {
                        let base = slices[chunks[c].slice].offset
                        var sum = 0.0
                        for i in chunks[c].elements {
                            let x = Double(gradients[base + i])
                            sum += x * x
                        }
                        partial[c] = sum
                    }
                }
            }
        }
        return chunkScratch.reduce(0, +).squareRoot()
    }

    /// Scales all gradients so that their joint norm is at most `maxNorm`, as
    /// `torch.nn.utils.clip_grad_norm_(params, max_norm)` (torch 2.15, `nn/utils/clip_grad.py`),
    /// and returns the norm *before* clipping — the `grad_norm` transformers logs.
    ///
    /// With N = ``gradientNorm(pool:)`` rounded to Float (torch's norm is a float32 tensor), every
    /// gradient is multiplied by `min(max_norm · (1 / (N + 1e-6)), 1)` in Float32. torch computes
    /// `max_norm / (N + 1e-6)` as `reciprocal(N + 1e-6) * max_norm` and always multiplies, so a norm
    /// just below `max_norm` (within 1e-6) still scales slightly, and a norm ≤ `max_norm` leaves the
    /// gradients bit-identical (× 1). transformers only calls this when `max_grad_norm > 0`; with
    /// `maxNorm = .infinity` it only measures.
    ///
    /// Non-finite gradients: with `errorIfNonfinite` false (torch's and transformers' default), a
    /// NaN norm makes the coefficient NaN and every gradient NaN, and an infinite norm makes it 0
    /// (finite gradients become 0, infinite ones NaN) — exactly what a TRL run does, which then
    /// logs `grad_norm: nan` and keeps training on NaN weights. With `errorIfNonfinite` true the
    /// gradients are left untouched and the call throws, naming the first slice (in layout order)
    /// that holds a NaN or infinite gradient.
    ///
    /// - Throws: ``TrainingError`` (only when `errorIfNonfinite` is true and the norm is not finite).
    @discardableResult
    public func clipGradientNorm(maxNorm: Double, errorIfNonfinite: Bool = false, pool: ThreadPool = .serial) throws -> Double {
        let norm = gradientNorm(pool: pool)
        if !norm.isFinite && errorIfNonfinite {
            let bad = slices.first { slice in gradient(of: slice).contains { !$0.isFinite } }
            throw TrainingError(bad?.name ?? "gradients", "the gradient norm is \(norm) (a NaN or infinite gradient); "
                                + "it cannot be clipped. Check the loss of this step and the learning rate")
        }
        clipGradients(maxNorm: maxNorm, totalNorm: norm, pool: pool)
        return norm
    }

    /// Multiplies every gradient by `min(max_norm · (1 / (N + 1e-6)), 1)` computed in Float32 from a
    /// norm N measured elsewhere, as `torch.nn.utils.clip_grads_with_norm_(params, max_norm, N)`.
    /// ``clipGradientNorm(maxNorm:errorIfNonfinite:pool:)`` is this with N = ``gradientNorm(pool:)``.
    public func clipGradients(maxNorm: Double, totalNorm: Double, pool: ThreadPool = .serial) {
        // torch.clamp(coef, max=1.0) keeps a NaN coefficient NaN; so does this comparison.
        let unclamped = Float(maxNorm) * (1 / (Float(totalNorm) + Float(1e-6)))
        let coefficient: Float = unclamped > 1 ? 1 : unclamped
        guard coefficient != 1 else { return }  // × 1 changes no bit
        let (gradients, slices) = (self.gradients, self.slices)
        chunks.withUnsafeBufferPointer { chunks in
            pool.parallelFor(chunks.count) { range in
                for (s, elements) in chunks[range] {
                    let base = slices[s].offset
                    for i in elements { gradients[base + i] *= coefficient }
                }
            }
        }
    }
}
