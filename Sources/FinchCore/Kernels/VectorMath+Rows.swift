import Foundation

// Added for training (issue 5): the exp-heavy loops of the log-softmax (CrossEntropy) and of the
// SwiGLU backward with `VectorMath.exp` (≤ 2 ulp) instead of scalar `expf`: ≈ 5% of a LoRA step
// on SmolLM2 (4 × 128 tokens), where they ran 38 M + 24 M scalar exps. The kernels call these in
// place of their former inner loops; summation orders are unchanged (16 lanes, then the tail).
// Issue 5 again: RMSNorm's Σx² and Σ(g·w)·x and packed attention's softmax rows (max, exp, sum)
// use the same 16-lane helpers instead of scalar loops (one serial chain of adds each, and scalar
// `expf`): the SmolLM2 training step ≈ 3.72 → 3.58 s. Their sums are now in lane order, a
// different Float32 rounding than the scalar loops had (parity tests' tolerances cover it).

extension VectorMath {
    /// The largest of `count` values (−∞ for none; NaNs are skipped as `max` skips them).
    static func maximum(_ x: UnsafePointer<Float>, count: Int) -> Float {
        let raw = UnsafeRawPointer(x)
        var lanes = SIMD16<Float>(repeating: -.infinity)
        var i = 0
        while i + 16 <= count {
            let v = raw.loadUnaligned(fromByteOffset: 4 * i, as: SIMD16<Float>.self)
            lanes.replace(with: v, where: v .> lanes)
            i += 16
        }
        var m = lanes.max()
        while i < count { m = max(m, x[i]); i += 1 }
        return m
    }

    /// `Σ exp(x_i − shift)`: sixteen lane sums over the full vectors, added, plus the scalar tail.
    static func sumOfExp(_ x: UnsafePointer<Float>, minus shift: Float, count: Int) -> Float {
        let raw = UnsafeRawPointer(x)
        var lanes = SIMD16<Float>()
        var i = 0
        while i + 16 <= count {
            lanes += exp(raw.loadUnaligned(fromByteOffset: 4 * i, as: SIMD16<Float>.self) - shift)
            i += 16
        }
        var tail: Float = 0
        while i < count { tail += expf(x[i] - shift); i += 1 }
        return lanes.sum() + tail
    }

    /// `x_i ← exp(x_i − shift)` in place, returning their sum (the sixteen lane sums added, then
    /// the tail's terms one by one): the numerator of `Activations.softmax` and of packed
    /// attention's rows.
    static func exponentiate(_ x: UnsafeMutablePointer<Float>, minus shift: Float, count: Int) -> Float {
        let raw = UnsafeMutableRawPointer(x)
        var lanes = SIMD16<Float>()
        var i = 0
        while i + 16 <= count {
            let e = exp(raw.loadUnaligned(fromByteOffset: 4 * i, as: SIMD16<Float>.self) - shift)
            raw.storeBytes(of: e, toByteOffset: 4 * i, as: SIMD16<Float>.self)
            lanes += e
            i += 16
        }
        var sum = lanes.sum()
        while i < count { let e = expf(x[i] - shift); x[i] = e; sum += e; i += 1 }
        return sum
    }

    /// `Σ x_i²`, sixteen lane sums, added, plus the scalar tail (RMSNorm's statistic: a scalar
    /// loop is one serial chain of adds the compiler may not reorder, ≈ 4× slower).
    static func sumOfSquares(_ x: UnsafePointer<Float>, count: Int) -> Float {
        let raw = UnsafeRawPointer(x)
        var lanes = SIMD16<Float>()
        var i = 0
        while i + 16 <= count {
            let v = raw.loadUnaligned(fromByteOffset: 4 * i, as: SIMD16<Float>.self)
            lanes += v * v
            i += 16
        }
        var tail: Float = 0
        while i < count { tail += x[i] * x[i]; i += 1 }
        return lanes.sum() + tail
    }

    /// `Σ (a_i · b_i) · c_i`, summed as `sumOfSquares` sums.
    static func dot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ c: UnsafePointer<Float>, count: Int) -> Float {
        let (ra, rb, rc) = (UnsafeRawPointer(a), UnsafeRawPointer(b), UnsafeRawPointer(c))
        var lanes = SIMD16<Float>()
        var i = 0
        while i + 16 <= count {
            let product = ra.loadUnaligned(fromByteOffset: 4 * i, as: SIMD16<Float>.self) * rb.loadUnaligned(fromByteOffset: 4 * i, as: SIMD16<Float>.self)
            lanes += product * rc.loadUnaligned(fromByteOffset: 4 * i, as: SIMD16<Float>.self)
            i += 16
        }
        var tail: Float = 0
        while i < count { tail += a[i] * b[i] * c[i]; i += 1 }
        return lanes.sum() + tail
    }

    /// `out_i = scale · exp(x_i − shift)`; `out` may alias `x`.
    static func scaledExp(_ x: UnsafePointer<Float>, minus shift: Float, scale: Float, count: Int, into out: UnsafeMutablePointer<Float>) {
        let raw = UnsafeRawPointer(x), destination = UnsafeMutableRawPointer(out)
        var i = 0
        while i + 16 <= count {
            let e = exp(raw.loadUnaligned(fromByteOffset: 4 * i, as: SIMD16<Float>.self) - shift)
            destination.storeBytes(of: scale * e, toByteOffset: 4 * i, as: SIMD16<Float>.self)
            i += 16
        }
        while i < count { out[i] = scale * expf(x[i] - shift); i += 1 }
    }
}

extension Activations {
    /// `swiGLUBackward`'s formulas over `range`, 16 elements at a time (same aliasing rules).
    static func swiGLUBackward(gate: UnsafePointer<Float>, up: UnsafePointer<Float>, outputGradient dout: UnsafePointer<Float>,
                               range: Range<Int>, gateGradient dgate: UnsafeMutablePointer<Float>, upGradient dup: UnsafeMutablePointer<Float>) {
        var i = range.lowerBound
        while i + 16 <= range.upperBound {
            let g = UnsafeRawPointer(gate + i).loadUnaligned(as: SIMD16<Float>.self)
            let u = UnsafeRawPointer(up + i).loadUnaligned(as: SIMD16<Float>.self)
            let d = UnsafeRawPointer(dout + i).loadUnaligned(as: SIMD16<Float>.self)
            let sigmoid = 1 / (1 + VectorMath.exp(-g))
            UnsafeMutableRawPointer(dgate + i).storeBytes(of: d * u * (sigmoid * (1 + g * (1 - sigmoid))), as: SIMD16<Float>.self)
            UnsafeMutableRawPointer(dup + i).storeBytes(of: d * (g * sigmoid), as: SIMD16<Float>.self)
            i += 16
        }
        while i < range.upperBound {
            let g = gate[i], u = up[i], d = dout[i]
            let sigmoid = 1 / (1 + expf(-g))
            dgate[i] = d * u * (sigmoid * (1 + g * (1 - sigmoid)))
            dup[i] = d * (g * sigmoid)
            i += 1
        }
    }
}
