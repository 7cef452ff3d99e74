import FinchCore
import Foundation
import XCTest

/// Each forward kernel against a plain Double implementation written from the formula (the
/// model-level parity with transformers is in FinchModelsTests).
final class KernelTests: XCTestCase {
    var rng = SystemRandomNumberGenerator()
    func random(_ n: Int, _ scale: Float = 1) -> [Float] { (0..<n).map { _ in Float.random(in: -scale...scale, using: &rng) } }

    func assertClose(_ a: [Float], _ b: [Float], _ tol: Float, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(a.count, b.count, file: file, line: line)
        let worst = zip(a, b).map { abs($0 - $1) }.max() ?? 0
        XCTAssertLessThanOrEqual(worst, tol, file: file, line: line)
    }

    func testNorms() {
        let x = random(3 * 40, 3), w = random(40), bias = random(40)
        var out = [Float](repeating: 0, count: x.count)
        RMSNorm.forward(x, weight: w, epsilon: 1e-5, tokens: 3, channels: 40, into: &out)
        assertClose(out, RMSNorm.reference(x, weight: w, epsilon: 1e-5, channels: 40), 1e-5)
        LayerNorm.forward(x, weight: w, bias: bias, epsilon: 1e-5, tokens: 3, channels: 40, into: &out)
        assertClose(out, LayerNorm.reference(x, weight: w, bias: bias, epsilon: 1e-5, channels: 40), 1e-5)
    }

    func testRoPEFullAndPartial() {
        for (headDim, rotary) in [(16, 16), (20, 8)] {
            let heads = 3, tokens = 4
            let x = random(tokens * heads * headDim)
            var y = x
            let positions = [0, 1, 7, 300]
            RoPE(headDim: headDim, rotaryDim: rotary, theta: 10000).apply(&y, tokens: tokens, heads: heads, positions: positions)
            // rotate_half: pairs (i, i + rotary/2) rotated by position · θ^(-2i/rotary); the rest unchanged.
            var want = x
            for t in 0..<tokens {
                for h in 0..<heads {
                    let base = (t * heads + h) * headDim
                    for i in 0..<(rotary / 2) {
                        let angle = Double(positions[t]) * pow(10000, -Double(2 * i) / Double(rotary))
                        let a = Double(x[base + i]), b = Double(x[base + i + rotary / 2])
                        want[base + i] = Float(a * cos(angle) - b * sin(angle))
                        want[base + i + rotary / 2] = Float(b * cos(angle) + a * sin(angle))
                    }
                }
            }
            // Float32 angles at position 300 carry ~3e-5 relative error, as in transformers.
            assertClose(y, want, 1e-4)
        }
    }

    func testCausalGroupedQueryAttentionMatchesNaive() {
        // 2 tokens take the loop path, 20 the BLAS (prefill) path, 300 several 128-row query blocks
        // (with single-threaded BLAS, heads split over the pool).
        for tokens in [2, 20, 300] { checkAttention(tokens: tokens) }
    }

    func checkAttention(tokens: Int) {
        let heads = 4, kvHeads = 2, d = 8, past = 3
        let q = random(tokens * heads * d), k = random((past + tokens) * kvHeads * d), v = random((past + tokens) * kvHeads * d)
        var out = [Float](repeating: 0, count: q.count)
        Attention.forward(query: q, keys: k, values: v, tokens: tokens, past: past, heads: heads, kvHeads: kvHeads, headDim: d,
                          into: &out, pool: ThreadPool(threads: 2))
        var want = [Float](repeating: 0, count: q.count)
        for t in 0..<tokens {
            for h in 0..<heads {
                let g = h / (heads / kvHeads)
                let visible = past + t + 1
                var scores = (0..<visible).map { j in
                    (0..<d).reduce(0.0) { $0 + Double(q[(t * heads + h) * d + $1]) * Double(k[(j * kvHeads + g) * d + $1]) } / Double(d).squareRoot()
                }
                let m = scores.max() ?? 0
                scores = scores.map { exp($0 - m) }
                let s = scores.reduce(0, +)
                for c in 0..<d {
                    want[(t * heads + h) * d + c] = Float((0..<visible).reduce(0.0) { $0 + scores[$1] / s * Double(v[($1 * kvHeads + g) * d + c]) })
                }
            }
        }
        assertClose(out, want, 1e-5)
    }

    func testActivations() {
        let g = random(50, 6), u = random(50, 2)
        var out = [Float](repeating: 0, count: 50)
        Activations.swiGLU(gate: g, up: u, count: 50, into: &out)
        assertClose(out, (0..<50).map { Float(Double(g[$0]) / (1 + exp(-Double(g[$0]))) * Double(u[$0])) }, 1e-5)
        var x = g
        Activations.geluNew(&x, count: 50)
        assertClose(x, g.map { v in let v = Double(v); return Float(0.5 * v * (1 + tanh((2 / Double.pi).squareRoot() * (v + 0.044715 * v * v * v)))) }, 1e-5)
        var s: [Float] = [1000, 1001, 999]
        Activations.softmax(&s, count: 3)
        assertClose(s, [0.24472847, 0.66524096, 0.09003057], 1e-6)
    }
}
