#if canImport(CBLAS)
import CBLAS
#endif
import Dispatch
import FinchCore
import Foundation
import XCTest

/// Timings of the training kernels on SmolLM2-135M shapes (hidden 576, 9 heads / 3 key-value heads
/// of 64, intermediate 1536, vocabulary 49152) for a packed micro-batch of 512 tokens, with
/// `FINCH_BENCH=1`; otherwise the same calls once on small shapes, so the harness stays compiled.
final class BackwardBenchmarkTests: XCTestCase {
    func testBackwardBenchmark() {
        let bench = ProcessInfo.processInfo.environment["FINCH_BENCH"] == "1"
        let pool = ThreadPool(threads: bench ? 2 : 1)
        let T = bench ? 512 : 24, C = bench ? 576 : 16, I = bench ? 1536 : 32, V = bench ? 49152 : 50
        let heads = bench ? 9 : 3, kvHeads = bench ? 3 : 1, d = bench ? 64 : 8
        let lengths = bench ? [128, 200, 184] : [10, 14]
        let cu = lengths.reduce(into: [0]) { $0.append($0.last! + $1) }
        func random(_ n: Int) -> [Float] { (0..<n).map { _ in Float.random(in: -1...1) } }
        if bench {
            #if canImport(CBLAS)
            print("OpenBLAS threads: \(openblas_get_num_threads()); pool threads: \(pool.threads); tokens \(T), sequences \(lengths)")
            #endif
        }

        let x = random(T * C), w = random(C), dy = random(T * C)
        var dx = [Float](repeating: 0, count: T * C), dw = [Float](repeating: 0, count: C), db = dw
        report(bench, "RMSNorm backward (T, 576)") {
            RMSNorm.backward(dy, x: x, weight: w, epsilon: 1e-5, tokens: T, channels: C, inputGradient: &dx, weightGradient: &dw, pool: pool)
        }
        report(bench, "LayerNorm backward (T, 576)") {
            LayerNorm.backward(dy, x: x, weight: w, epsilon: 1e-5, tokens: T, channels: C, inputGradient: &dx,
                               weightGradient: &dw, biasGradient: &db, pool: pool)
        }
        let gate = random(T * I), up = random(T * I), dm = random(T * I)
        var dgate = [Float](repeating: 0, count: T * I), dup = dgate
        report(bench, "SwiGLU backward (T, 1536)") {
            Activations.swiGLUBackward(gate: gate, up: up, outputGradient: dm, count: T * I, gateGradient: &dgate, upGradient: &dup, pool: pool)
        }
        report(bench, "gelu_new backward (T, 1536)") {
            Activations.geluNewBackward(input: gate, outputGradient: dm, count: T * I, inputGradient: &dgate, pool: pool)
        }

        let logits = random(T * V), targets = (0..<T).map { $0 % V }, g = random(T)
        var logp = [Float](repeating: 0, count: T), lse = logp, dz = [Float](repeating: 0, count: T * V)
        report(bench, "log p(target) (T, 49152)") {
            CrossEntropy.logProbabilities(logits: logits, targets: targets, tokens: T, vocabularySize: V, into: &logp, logSumExp: &lse, pool: pool)
        }
        report(bench, "log p backward (T, 49152)") {
            CrossEntropy.backward(logits: logits, targets: targets, logSumExp: lse, logProbabilityGradient: g, tokens: T,
                                  vocabularySize: V, into: &dz, pool: pool)
        }

        let q = random(T * heads * d), k = random(T * kvHeads * d), v = random(T * kvHeads * d), dout = random(T * heads * d)
        var out = [Float](repeating: 0, count: T * heads * d), attentionLSE = [Float](repeating: 0, count: T * heads)
        var dq = out, dk = [Float](repeating: 0, count: T * kvHeads * d), dv = dk
        report(bench, "packed attention forward") {
            Attention.packedForward(query: q, keys: k, values: v, cumulativeLengths: cu, sequences: lengths.count, heads: heads,
                                    kvHeads: kvHeads, headDim: d, into: &out, logSumExp: &attentionLSE, pool: pool)
        }
        report(bench, "packed attention backward") {
            Attention.packedBackward(query: q, keys: k, values: v, outputGradient: dout, logSumExp: attentionLSE, cumulativeLengths: cu,
                                     sequences: lengths.count, heads: heads, kvHeads: kvHeads, headDim: d,
                                     queryGradient: &dq, keyGradient: &dk, valueGradient: &dv, pool: pool)
        }
        XCTAssertTrue(dq.allSatisfy(\.isFinite) && dk.allSatisfy(\.isFinite) && dv.allSatisfy(\.isFinite))

        let h = random(T * I)
        var dW = [Float](repeating: 0, count: C * I)
        report(bench, "weight gradient 576×1536") {
            LinearWeight.accumulateWeightGradient(outputGradient: dy, input: h, tokens: T, outFeatures: C, inFeatures: I, into: &dW, pool: pool)
        }
    }

    private func report(_ bench: Bool, _ name: String, _ body: () -> Void) {
        body() // warm-up: scratch buffers, OpenBLAS threads
        guard bench else { return }
        var times: [Double] = []
        for _ in 0..<5 {
            let start = DispatchTime.now().uptimeNanoseconds
            body()
            times.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6)
        }
        print(String(format: "  %@: median %.2f ms", name, times.sorted()[2]))
    }
}
