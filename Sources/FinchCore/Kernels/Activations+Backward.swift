import Foundation

/// Elements per pool chunk of the elementwise backward kernels (≈ 10–20 ns each with `expf`/`tanhf`).
private let elementwiseGrain = 8192

extension Activations {
    /// Gradient of `swiGLU` (`out = silu(gate) · up`, `silu(x) = x·σ(x)`):
    /// - `dgate = dout · up · σ(gate) · (1 + gate · (1 − σ(gate)))` (the derivative of silu, as
    ///   PyTorch's `silu_backward`)
    /// - `dup = dout · silu(gate)`
    ///
    /// All buffers hold `count` elements. Every input element is read before the same element of
    /// either output is written, so `gateGradient` may alias `gate` or `outputGradient`, and
    /// `upGradient` may alias `up` or `outputGradient` (the two outputs must differ).
    /// Elementwise, so the result does not depend on the pool.
    public static func swiGLUBackward(gate: UnsafePointer<Float>, up: UnsafePointer<Float>, outputGradient dout: UnsafePointer<Float>,
                                      count: Int, gateGradient dgate: UnsafeMutablePointer<Float>,
                                      upGradient dup: UnsafeMutablePointer<Float>, pool: ThreadPool = .serial) {
        pool.parallelFor(count, grain: elementwiseGrain) { range in
            swiGLUBackward(gate: gate, up: up, outputGradient: dout, range: range, gateGradient: dgate, upGradient: dup)
        }
    }

    /// Gradient of `geluNew` (GPT-2's tanh approximation, transformers' `NewGELUActivation`):
    /// with `u = k·(x + 0.044715·x³)`, `k = √(2/π)`, `y = ½x(1 + tanh u)`,
    /// `dy/dx = ½(1 + tanh u) + ½x·(1 − tanh² u)·k·(1 + 3·0.044715·x²)`
    /// (PyTorch's `gelu_backward` with `approximate='tanh'` uses the same expression).
    ///
    /// `input` is the forward's input (before `geluNew` overwrote it), `count` elements each;
    /// `inputGradient` may alias `input` or `outputGradient`. Elementwise.
    public static func geluNewBackward(input x: UnsafePointer<Float>, outputGradient dy: UnsafePointer<Float>, count: Int,
                                       inputGradient dx: UnsafeMutablePointer<Float>, pool: ThreadPool = .serial) {
        let k: Float = 0.7978845608028654 // √(2/π)
        let c: Float = 0.044715
        pool.parallelFor(count, grain: elementwiseGrain) { range in
            for i in range {
                let v = x[i]
                let v2 = v * v
                let t = tanhf(k * (v + c * v2 * v))
                let derivative = 0.5 * (1 + t) + 0.5 * v * (1 - t * t) * k * (1 + 3 * c * v2)
                dx[i] = dy[i] * derivative
            }
        }
    }
}
