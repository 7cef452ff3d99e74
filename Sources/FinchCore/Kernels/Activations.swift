import Foundation

/// Elementwise activations of the MLP blocks.
public enum Activations {
    /// SwiGLU (Shazeer 2020) as Llama's MLP: `out = silu(gate) · up`, silu(x) = x·σ(x), with the
    /// vectorized `VectorMath.exp` (≤ 2 ulp), split over `pool` for large counts.
    /// gate, up, out: n elements; `out` may alias either input.
    public static func swiGLU(gate: UnsafePointer<Float>, up: UnsafePointer<Float>, count: Int, into out: UnsafeMutablePointer<Float>,
                              pool: ThreadPool = .serial) {
        let output = SendablePointer(out)
        pool.parallelFor((count + 15) / 16, grain: 2048) { vectors in
            let out = output.pointer
            var i = vectors.lowerBound * 16
            let end = min(count, vectors.upperBound * 16)
            while i + 16 <= end {
                let g = UnsafeRawPointer(gate + i).loadUnaligned(as: SIMD16<Float>.self)
                let u = UnsafeRawPointer(up + i).loadUnaligned(as: SIMD16<Float>.self)
                let y = g / (1 + VectorMath.exp(-g)) * u
                UnsafeMutableRawPointer(out + i).storeBytes(of: y, as: SIMD16<Float>.self)
                i += 16
            }
            while i < end {
                let g = gate[i]
                out[i] = g / (1 + expf(-g)) * up[i]
                i += 1
            }
        }
    }

    /// GPT-2's tanh approximation of GELU (`gelu_new`, Phi): 0.5x(1 + tanh(√(2/π)(x + 0.044715x³))).
    public static func geluNew(_ x: UnsafeMutablePointer<Float>, count: Int) {
        let k: Float = 0.7978845608028654 // √(2/π)
        for i in 0..<count {
            let v = x[i]
            x[i] = 0.5 * v * (1 + tanhf(k * (v + 0.044715 * v * v * v)))
        }
    }

    /// a += b, n elements.
    public static func add(_ a: UnsafeMutablePointer<Float>, _ b: UnsafePointer<Float>, count: Int) {
        for i in 0..<count { a[i] += b[i] }
    }

    /// Numerically stable softmax in place over `count` values (max subtracted), Float32, with the
    /// vectorized `VectorMath.exp`.
    public static func softmax(_ x: UnsafeMutablePointer<Float>, count: Int) {
        guard count > 0 else { return }
        let raw = UnsafeMutableRawPointer(x)
        let sum = VectorMath.exponentiate(x, minus: VectorMath.maximum(x, count: count), count: count)
        let inv = 1 / sum
        var i = 0
        while i + 16 <= count {
            raw.storeBytes(of: raw.loadUnaligned(fromByteOffset: 4 * i, as: SIMD16<Float>.self) * inv, toByteOffset: 4 * i, as: SIMD16<Float>.self)
            i += 16
        }
        while i < count { x[i] *= inv; i += 1 }
    }
}
