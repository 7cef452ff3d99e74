import Foundation

// Added for training (issue 5): the exp-heavy loops of the log-softmax (CrossEntropy) and of the
// SwiGLU backward with `VectorMath.exp` (≤ 2 ulp) instead of scalar `expf`: ≈ 5% of a LoRA step
// on SmolLM2 (4 × 128 tokens), where they ran 38 M + 24 M scalar exps. The kernels call these in
// place of their former inner loops; summation orders are unchanged (16 lanes, then the tail).

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
