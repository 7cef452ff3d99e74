import Foundation

/// Elementwise activations of the MLP blocks.
public enum Activations {
    /// SwiGLU (Shazeer 2020) as Llama's MLP: `out = silu(gate) · up`, silu(x) = x·σ(x).
    /// gate, up, out: n elements; `out` may alias either input.
    public static func swiGLU(gate: UnsafePointer<Float>, up: UnsafePointer<Float>, count: Int, into out: UnsafeMutablePointer<Float>) {
        for i in 0..<count {
            let g = gate[i]
            out[i] = g / (1 + expf(-g)) * up[i]
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

    /// Numerically stable softmax in place over `count` values (max subtracted), Float32.
    public static func softmax(_ x: UnsafeMutablePointer<Float>, count: Int) {
        guard count > 0 else { return }
        var m = -Float.infinity
        for i in 0..<count { m = max(m, x[i]) }
        var sum: Float = 0
        for i in 0..<count { let e = expf(x[i] - m); x[i] = e; sum += e }
        let inv = 1 / sum
        for i in 0..<count { x[i] *= inv }
    }
}
