#if canImport(CBLAS)
import CBLAS
#endif
import FinchCore
import Foundation
import XCTest

/// Every backward kernel against finite differences of a Double forward, and against a Double
/// analytic backward (`DoubleReference`), on tiny shapes.
///
/// Each test takes a fixed random `r` and the scalar loss `L = Σ r·y` of the kernel's output y, so
/// `dL/dy = r` is the upstream gradient given to the Float32 backward. The inputs are Float32
/// values (exactly representable in Double), so the three gradients differ only by rounding:
///
/// - **Finite differences vs the Double analytic backward**: central differences with step
///   `h = 1e-6·max(1, |x_i|)` of the Double forward. Their error is the truncation `h²·|L'''|/6`
///   (≈ 1e-12·|L|) plus the cancellation of the two loss values, ≈ (a few ε₆₄ ≈ 1e-15)·Σ|r·y| / h ≈
///   1e-9·Σ|r·y|. Tolerance: `1e-8 · Σ|r·y|` absolute, ≈ 10× that estimate. This pins the formula:
///   a wrong derivative is off by O(max|∇L|), 10⁴–10⁶ times more on these shapes.
/// - **Float32 kernel vs the Double analytic backward**: `rtol · max|∇L|` per element (normwise),
///   with `rtol = 1e-5` (≈ 170 u, u = 2⁻²⁴) unless a test says otherwise. On these shapes every
///   gradient element is a Float32 computation over at most a few dozen terms of magnitude
///   ≲ max|∇L|, whose worst-case rounding is ≈ n·u relative; the observed worst ratios
///   (`FINCH_TOLERANCE_REPORT=1` prints them) are 1–2 orders of magnitude below the tolerance.
/// - **Float32 kernel vs finite differences**: the sum of the two tolerances.
final class BackwardTests: XCTestCase {
    // MARK: - Embedding

    func testEmbeddingBackward() {
        var rng = SplitMix64(seed: 0xE1)
        let V = 7, C = 5, ids = [3, 0, 3, 6, 3, 1]   // token 3 three times: its rows add up
        let T = ids.count
        let table = random(V * C, &rng)
        var y = [Float](repeating: .nan, count: T * C)
        Embedding.forward(table: table, tokenIDs: ids, tokens: T, vocabularySize: V, channels: C, into: &y)
        XCTAssertEqual(y, ids.flatMap { Array(table[($0 * C)..<(($0 + 1) * C)]) })

        let r = random(T * C, &rng)
        let initial = random(V * C, &rng)  // accumulates into what is there
        var dE = initial
        Embedding.backward(r, tokenIDs: ids, tokens: T, vocabularySize: V, channels: C, tableGradient: &dE)
        let forward: ([Double]) -> [Double] = { e in ids.flatMap { Array(e[($0 * C)..<(($0 + 1) * C)]) } }
        var analytic = [Double](repeating: 0, count: V * C)
        for (t, id) in ids.enumerated() { for c in 0..<C { analytic[id * C + c] += Double(r[t * C + c]) } }
        check("embedding dE", float32: zip(dE, initial).map { $0 - $1 }, analytic: analytic,
              lossMagnitude: magnitude(forward(doubles(table)), r), numeric: numeric(doubles(table), r: r, forward))
        XCTAssertEqual(dE[2 * C], initial[2 * C], "a row no token uses is untouched")
    }

    // MARK: - Norms

    func testRMSNormBackward() {
        var rng = SplitMix64(seed: 0x125)
        let T = 4, C = 12, epsilon: Float = 1e-5
        let x = random(T * C, &rng, 3), w = random(C, &rng, 1.5), r = random(T * C, &rng)
        var dx = [Float](repeating: .nan, count: T * C), dw = [Float](repeating: 0, count: C)
        RMSNorm.backward(r, x: x, weight: w, epsilon: epsilon, tokens: T, channels: C, inputGradient: &dx, weightGradient: &dw)

        let (xd, wd, e) = (doubles(x), doubles(w), Double(epsilon))
        let analytic = DoubleReference.rmsNormBackward(doubles(r), x: xd, weight: wd, epsilon: e, channels: C)
        let L = magnitude(DoubleReference.rmsNorm(xd, weight: wd, epsilon: e, channels: C), r)
        check("rmsNorm dx", float32: dx, analytic: analytic.dx, lossMagnitude: L,
              numeric: numeric(xd, r: r) { DoubleReference.rmsNorm($0, weight: wd, epsilon: e, channels: C) })
        check("rmsNorm dw", float32: dw, analytic: analytic.dw, lossMagnitude: L,
              numeric: numeric(wd, r: r) { DoubleReference.rmsNorm(xd, weight: $0, epsilon: e, channels: C) })

        // dx aliasing dy, accumulating: the buffer ends as dy + dx.
        var buffer = r
        buffer.withUnsafeMutableBufferPointer { b in
            RMSNorm.backward(b.baseAddress!, x: x, weight: w, epsilon: epsilon, tokens: T, channels: C,
                             inputGradient: b.baseAddress!, weightGradient: nil, accumulate: true)
        }
        check("rmsNorm dx aliased, accumulated", float32: zip(buffer, r).map { $0 - $1 }, analytic: analytic.dx, lossMagnitude: L, numeric: nil)
    }

    func testLayerNormBackward() {
        var rng = SplitMix64(seed: 0x1A7)
        let T = 4, C = 12, epsilon: Float = 1e-5
        var x = random(T * C, &rng, 3)
        for c in 0..<C { x[C + c] += 20 }  // a row with a large mean: x̂ must be centred
        let w = random(C, &rng, 1.5), b = random(C, &rng), r = random(T * C, &rng)
        var dx = [Float](repeating: .nan, count: T * C), dw = [Float](repeating: 0, count: C), db = dw
        LayerNorm.backward(r, x: x, weight: w, epsilon: epsilon, tokens: T, channels: C, inputGradient: &dx,
                           weightGradient: &dw, biasGradient: &db)

        let (xd, wd, bd, e) = (doubles(x), doubles(w), doubles(b), Double(epsilon))
        let analytic = DoubleReference.layerNormBackward(doubles(r), x: xd, weight: wd, epsilon: e, channels: C)
        let L = magnitude(DoubleReference.layerNorm(xd, weight: wd, bias: bd, epsilon: e, channels: C), r)
        check("layerNorm dx", float32: dx, analytic: analytic.dx, lossMagnitude: L,
              numeric: numeric(xd, r: r) { DoubleReference.layerNorm($0, weight: wd, bias: bd, epsilon: e, channels: C) })
        check("layerNorm dw", float32: dw, analytic: analytic.dw, lossMagnitude: L,
              numeric: numeric(wd, r: r) { DoubleReference.layerNorm(xd, weight: $0, bias: bd, epsilon: e, channels: C) })
        check("layerNorm db", float32: db, analytic: analytic.db, lossMagnitude: L,
              numeric: numeric(bd, r: r) { DoubleReference.layerNorm(xd, weight: wd, bias: $0, epsilon: e, channels: C) })

        var buffer = r
        buffer.withUnsafeMutableBufferPointer { g in
            LayerNorm.backward(g.baseAddress!, x: x, weight: w, epsilon: epsilon, tokens: T, channels: C,
                               inputGradient: g.baseAddress!, weightGradient: nil, biasGradient: nil, accumulate: true)
        }
        check("layerNorm dx aliased, accumulated", float32: zip(buffer, r).map { $0 - $1 }, analytic: analytic.dx, lossMagnitude: L, numeric: nil)
    }

    // MARK: - RoPE

    func testRoPEBackwardFullAndPartial() {
        var rng = SplitMix64(seed: 0x20E)
        // Positions restart per packed sequence; 300 makes the Float32 angles inexact.
        let positions = [0, 1, 2, 0, 1, 300]
        for (headDim, rotaryDim) in [(16, 16), (20, 8)] {
            let heads = 3, T = positions.count
            let rope = RoPE(headDim: headDim, rotaryDim: rotaryDim, theta: 10000)
            let x = random(T * heads * headDim, &rng), r = random(T * heads * headDim, &rng)
            var dx = r
            rope.backward(&dx, tokens: T, heads: heads, positions: positions)
            let forward: ([Double]) -> [Double] = {
                DoubleReference.rope($0, heads: heads, headDim: headDim, rotaryDim: rotaryDim, theta: 10000, positions: positions)
            }
            // The Jacobian transpose of a rotation is the rotation by −angle.
            let analytic = DoubleReference.rope(doubles(r), heads: heads, headDim: headDim, rotaryDim: rotaryDim, theta: 10000,
                                                positions: positions, sign: -1)
            check("rope dx (headDim \(headDim), rotary \(rotaryDim))", float32: dx, analytic: analytic,
                  lossMagnitude: magnitude(forward(doubles(x)), r), numeric: numeric(doubles(x), r: r, forward))
            for i in 0..<T * heads * headDim where i % headDim >= rotaryDim {
                XCTAssertEqual(dx[i], r[i], "dimensions past rotaryDim pass through")
            }
            // backward ∘ apply is the identity up to rounding.
            var roundTrip = x
            rope.apply(&roundTrip, tokens: T, heads: heads, positions: positions)
            rope.backward(&roundTrip, tokens: T, heads: heads, positions: positions)
            XCTAssertLessThanOrEqual(zip(roundTrip, x).map { abs($0 - $1) }.max() ?? 0, 1e-6)
        }
    }

    // MARK: - Activations

    func testSwiGLUBackward() {
        var rng = SplitMix64(seed: 0x5A1)
        let n = 64
        let gate = random(n, &rng, 8), up = random(n, &rng, 2), r = random(n, &rng)
        var dgate = [Float](repeating: .nan, count: n), dup = dgate
        Activations.swiGLUBackward(gate: gate, up: up, outputGradient: r, count: n, gateGradient: &dgate, upGradient: &dup)
        let (gd, ud) = (doubles(gate), doubles(up))
        let analytic = DoubleReference.swiGLUBackward(gate: gd, up: ud, dy: doubles(r))
        let L = magnitude(DoubleReference.swiGLU(gate: gd, up: ud), r)
        check("swiGLU dgate", float32: dgate, analytic: analytic.dgate, lossMagnitude: L,
              numeric: numeric(gd, r: r) { DoubleReference.swiGLU(gate: $0, up: ud) })
        check("swiGLU dup", float32: dup, analytic: analytic.dup, lossMagnitude: L,
              numeric: numeric(ud, r: r) { DoubleReference.swiGLU(gate: gd, up: $0) })

        // In place: gradients over the gate and up buffers.
        var g2 = gate, u2 = up
        g2.withUnsafeMutableBufferPointer { g in
            u2.withUnsafeMutableBufferPointer { u in
                Activations.swiGLUBackward(gate: g.baseAddress!, up: u.baseAddress!, outputGradient: r, count: n,
                                           gateGradient: g.baseAddress!, upGradient: u.baseAddress!)
            }
        }
        XCTAssertEqual(g2, dgate)
        XCTAssertEqual(u2, dup)
    }

    func testGeluNewBackward() {
        var rng = SplitMix64(seed: 0x6E1)
        let n = 64
        var x = random(n, &rng, 6)
        x[0] = 0; x[1] = -12; x[2] = 12  // the flat tails and the origin
        let r = random(n, &rng)
        var dx = [Float](repeating: .nan, count: n)
        Activations.geluNewBackward(input: x, outputGradient: r, count: n, inputGradient: &dx)
        let xd = doubles(x)
        check("gelu_new dx", float32: dx, analytic: DoubleReference.geluNewBackward(xd, dy: doubles(r)),
              lossMagnitude: magnitude(DoubleReference.geluNew(xd), r), numeric: numeric(xd, r: r, DoubleReference.geluNew))
        var inPlace = x
        inPlace.withUnsafeMutableBufferPointer { b in
            Activations.geluNewBackward(input: b.baseAddress!, outputGradient: r, count: n, inputGradient: b.baseAddress!)
        }
        XCTAssertEqual(inPlace, dx)
    }

    // MARK: - Cross-entropy

    func testLogProbabilitiesAndBackwardWithMaskedTokens() {
        var rng = SplitMix64(seed: 0xCE)
        // V = 37: two 16-lane blocks of the log-sum-exp and a tail of 5.
        let V = 37, targets = [3, -100, 0, 36, 17, -100, 5, 5]
        let T = targets.count
        let logits = random(T * V, &rng, 4)
        // Upstream gradient ∂L/∂log p: 0 on masked tokens, and 0 on one unmasked token (index 6).
        var g = random(T, &rng)
        for t in 0..<T where targets[t] < 0 || t == 6 { g[t] = 0 }

        var logp = [Float](repeating: .nan, count: T), lse = logp
        CrossEntropy.logProbabilities(logits: logits, targets: targets, tokens: T, vocabularySize: V, into: &logp, logSumExp: &lse)
        let zd = doubles(logits)
        let reference = DoubleReference.logProbabilities(zd, targets: targets, vocabularySize: V)
        for t in 0..<T {
            XCTAssertEqual(Double(logp[t]), reference.logp[t], accuracy: 1e-5, "log p of token \(t)")
            XCTAssertEqual(Double(lse[t]), reference.lse[t], accuracy: 1e-5, "logsumexp of token \(t)")
        }
        XCTAssertEqual(logp[1], 0, "masked tokens have log p = 0")
        XCTAssertEqual(logp[5], 0)

        var dz = [Float](repeating: .nan, count: T * V)
        CrossEntropy.backward(logits: logits, targets: targets, logSumExp: lse, logProbabilityGradient: g, tokens: T,
                              vocabularySize: V, into: &dz)
        let forward: ([Double]) -> [Double] = { DoubleReference.logProbabilities($0, targets: targets, vocabularySize: V).logp }
        check("log-softmax gather dlogits", float32: dz,
              analytic: DoubleReference.logProbabilitiesBackward(zd, targets: targets, g: doubles(g), vocabularySize: V),
              lossMagnitude: magnitude(forward(zd), g), numeric: numeric(zd, r: g, forward))
        for t in [1, 5, 6] {
            XCTAssertTrue(dz[(t * V)..<((t + 1) * V)].allSatisfy { $0 == 0 }, "row \(t) (masked or g = 0) is zero")
        }
        // Each unmasked row sums to 0 (softmax sums to 1).
        for t in [0, 2, 3, 4, 7] {
            XCTAssertEqual(dz[(t * V)..<((t + 1) * V)].reduce(0, +), 0, accuracy: 1e-6)
        }

        // In place over the logits: same bits.
        var inPlace = logits
        inPlace.withUnsafeMutableBufferPointer { b in
            CrossEntropy.backward(logits: b.baseAddress!, targets: targets, logSumExp: lse, logProbabilityGradient: g, tokens: T,
                                  vocabularySize: V, into: b.baseAddress!)
        }
        XCTAssertEqual(inPlace.map(\.bitPattern), dz.map(\.bitPattern))

        // The row maximum is subtracted: logits around ±1000 (e^1000 overflows Float32 and Double).
        let far: [Float] = (0..<V).map { Float($0 % 5) + 1000 } + (0..<V).map { -1000 - Float($0 % 3) }
        var farLogp = [Float](repeating: .nan, count: 2), farLse = farLogp
        CrossEntropy.logProbabilities(logits: far, targets: [4, 0], tokens: 2, vocabularySize: V, into: &farLogp, logSumExp: &farLse)
        let farReference = DoubleReference.logProbabilities(doubles(far), targets: [4, 0], vocabularySize: V)
        for t in 0..<2 {
            XCTAssertTrue(farLogp[t].isFinite && farLse[t].isFinite)
            // |lse| ≈ 1000: Float32 spacing there is 6e-5.
            XCTAssertEqual(Double(farLogp[t]), farReference.logp[t], accuracy: 2e-4)
        }
    }

    // MARK: - Linear layers

    func testLinearGradients() {
        var rng = SplitMix64(seed: 0x11E)
        let T = 5, n = 12, out = 7
        let x = random(T * n, &rng), w = random(out * n, &rng), b = random(out, &rng), r = random(T * out, &rng)
        let weight = LinearWeight(outFeatures: out, inFeatures: n, float32: w)
        let pool = ThreadPool(threads: 2)
        var dx = [Float](repeating: .nan, count: T * n), dw = [Float](repeating: 0, count: out * n), db = [Float](repeating: 0, count: out)
        weight.backwardInput(r, tokens: T, into: &dx, pool: pool)
        LinearWeight.accumulateWeightGradient(outputGradient: r, input: x, tokens: T, outFeatures: out, inFeatures: n, into: &dw, pool: pool)
        LinearWeight.accumulateBiasGradient(outputGradient: r, tokens: T, outFeatures: out, into: &db)

        let (xd, wd, bd) = (doubles(x), doubles(w), doubles(b))
        let analytic = DoubleReference.linearBackward(doubles(r), x: xd, weight: wd, out: out, in: n)
        let L = magnitude(DoubleReference.linear(xd, weight: wd, bias: bd, out: out, in: n), r)
        check("linear dx", float32: dx, analytic: analytic.dx, lossMagnitude: L,
              numeric: numeric(xd, r: r) { DoubleReference.linear($0, weight: wd, bias: bd, out: out, in: n) })
        check("linear dW", float32: dw, analytic: analytic.dw, lossMagnitude: L,
              numeric: numeric(wd, r: r) { DoubleReference.linear(xd, weight: $0, bias: bd, out: out, in: n) })
        check("linear db", float32: db, analytic: analytic.db, lossMagnitude: L,
              numeric: numeric(bd, r: r) { DoubleReference.linear(xd, weight: wd, bias: $0, out: out, in: n) })

        // Accumulation with a scale: dW = dW₀ + 0.25·dyᵀx.
        let initial = random(out * n, &rng)
        var scaled = initial
        LinearWeight.accumulateWeightGradient(outputGradient: r, input: x, tokens: T, outFeatures: out, inFeatures: n, scale: 0.25,
                                              into: &scaled, pool: pool)
        check("linear dW scaled, accumulated", float32: zip(scaled, initial).map { $0 - $1 }, analytic: analytic.dw.map { 0.25 * $0 },
              lossMagnitude: L, numeric: nil)
    }

    /// A LoRA-adapted layer `y = W x + s·B(A x)` (reference/trl-dpo.md §8.2) through the public
    /// kernels: dA, dB and dx against finite differences, W frozen.
    func testLoRABranchGradients() {
        var rng = SplitMix64(seed: 0x10AA)
        let T = 4, n = 12, out = 7, rank = 3, s: Float = 16 / 3
        let x = random(T * n, &rng), w = random(out * n, &rng), a = random(rank * n, &rng), bWeights = random(out * rank, &rng)
        let dy = random(T * out, &rng)
        let pool = ThreadPool.serial
        let W = LinearWeight(outFeatures: out, inFeatures: n, float32: w)
        let A = LinearWeight(outFeatures: rank, inFeatures: n, float32: a)
        let B = LinearWeight(outFeatures: out, inFeatures: rank, float32: bWeights)

        var h = [Float](repeating: 0, count: T * rank)   // A x, saved by the forward
        A.forward(x, tokens: T, into: &h, pool: pool)
        var dA = [Float](repeating: 0, count: rank * n), dB = [Float](repeating: 0, count: out * rank)
        LinearWeight.accumulateWeightGradient(outputGradient: dy, input: h, tokens: T, outFeatures: out, inFeatures: rank, scale: s,
                                              into: &dB, pool: pool)
        var dh = [Float](repeating: 0, count: T * rank)   // dy·B (s applied below)
        B.backwardInput(dy, tokens: T, into: &dh, pool: pool)
        LinearWeight.accumulateWeightGradient(outputGradient: dh, input: x, tokens: T, outFeatures: rank, inFeatures: n, scale: s,
                                              into: &dA, pool: pool)
        var dx = [Float](repeating: 0, count: T * n)
        W.backwardInput(dy, tokens: T, into: &dx, pool: pool)
        let scaledDh = dh.map { $0 * s }
        A.backwardInput(scaledDh, tokens: T, into: &dx, accumulate: true, pool: pool)

        let (xd, wd, ad, bd, sd) = (doubles(x), doubles(w), doubles(a), doubles(bWeights), Double(s))
        func forward(_ x: [Double], _ a: [Double], _ b: [Double]) -> [Double] {
            let base = DoubleReference.linear(x, weight: wd, bias: nil, out: out, in: n)
            let branch = DoubleReference.linear(DoubleReference.linear(x, weight: a, bias: nil, out: rank, in: n),
                                                weight: b, bias: nil, out: out, in: rank)
            return zip(base, branch).map { $0 + sd * $1 }
        }
        let hd = DoubleReference.linear(xd, weight: ad, bias: nil, out: rank, in: n)
        let analyticB = DoubleReference.linearBackward(doubles(dy), x: hd, weight: bd, out: out, in: rank)
        let dhd = analyticB.dx.map { sd * $0 }
        let analyticA = DoubleReference.linearBackward(dhd, x: xd, weight: ad, out: rank, in: n)
        let analyticW = DoubleReference.linearBackward(doubles(dy), x: xd, weight: wd, out: out, in: n)
        let L = magnitude(forward(xd, ad, bd), dy)
        check("LoRA dB", float32: dB, analytic: analyticB.dw.map { sd * $0 }, lossMagnitude: L,
              numeric: numeric(bd, r: dy) { forward(xd, ad, $0) })
        check("LoRA dA", float32: dA, analytic: analyticA.dw, lossMagnitude: L, numeric: numeric(ad, r: dy) { forward(xd, $0, bd) })
        check("LoRA dx", float32: dx, analytic: zip(analyticW.dx, analyticA.dx).map { $0 + $1 }, lossMagnitude: L,
              numeric: numeric(xd, r: dy) { forward($0, ad, bd) })
    }

    // MARK: - Packed attention

    /// (heads, kvHeads, headDim, sequence lengths): GQA 4/2 over lengths 5, 2, 7; groups of 3 with
    /// an empty sequence, a single token and one longer than the KV forward's 16-token BLAS switch;
    /// plain multi-head.
    static let attentionCases: [(heads: Int, kvHeads: Int, d: Int, lengths: [Int])] = [
        (4, 2, 8, [5, 2, 7]),
        (6, 2, 4, [1, 0, 20, 3]),
        (2, 2, 8, [6]),
    ]

    func testPackedAttentionForwardMatchesReferenceAndKVForward() {
        var rng = SplitMix64(seed: 0xA77)
        for (heads, kvHeads, d, lengths) in Self.attentionCases {
            let cu = cumulative(lengths), T = cu.last!
            let q = random(T * heads * d, &rng, 2), k = random(T * kvHeads * d, &rng, 2), v = random(T * kvHeads * d, &rng)
            var out = [Float](repeating: .nan, count: T * heads * d), lse = [Float](repeating: .nan, count: T * heads)
            Attention.packedForward(query: q, keys: k, values: v, cumulativeLengths: cu, sequences: lengths.count,
                                    heads: heads, kvHeads: kvHeads, headDim: d, into: &out, logSumExp: &lse, pool: ThreadPool(threads: 2))
            let reference = DoubleReference.packedAttention(q: doubles(q), k: doubles(k), v: doubles(v), cumulativeLengths: cu,
                                                            heads: heads, kvHeads: kvHeads, headDim: d)
            let context = "heads \(heads)/\(kvHeads) d \(d) lengths \(lengths)"
            XCTAssertLessThanOrEqual(worst(out, reference.out), 1e-5, context)
            XCTAssertLessThanOrEqual(worst(lse, reference.lse), 1e-5, context)
            // Each sequence alone through the KV-cache forward (past = 0): the same attention.
            for s in 0..<lengths.count where lengths[s] > 0 {
                let range = cu[s]..<cu[s + 1]
                var alone = [Float](repeating: .nan, count: lengths[s] * heads * d)
                Attention.forward(query: Array(q[(range.lowerBound * heads * d)..<(range.upperBound * heads * d)]),
                                  keys: Array(k[(range.lowerBound * kvHeads * d)..<(range.upperBound * kvHeads * d)]),
                                  values: Array(v[(range.lowerBound * kvHeads * d)..<(range.upperBound * kvHeads * d)]),
                                  tokens: lengths[s], past: 0, heads: heads, kvHeads: kvHeads, headDim: d, into: &alone, pool: .serial)
                XCTAssertLessThanOrEqual(worst(alone, Array(out[(range.lowerBound * heads * d)..<(range.upperBound * heads * d)])), 1e-5,
                                         context + " sequence \(s)")
            }
        }
    }

    func testPackedAttentionBackward() {
        var rng = SplitMix64(seed: 0xA7B)
        for (heads, kvHeads, d, lengths) in Self.attentionCases {
            let cu = cumulative(lengths), T = cu.last!
            let q = random(T * heads * d, &rng, 2), k = random(T * kvHeads * d, &rng, 2), v = random(T * kvHeads * d, &rng)
            let r = random(T * heads * d, &rng)
            let (dq, dk, dv) = packedAttentionGradients(q: q, k: k, v: v, dout: r, cu: cu, heads: heads, kvHeads: kvHeads, d: d,
                                                        pool: ThreadPool(threads: 2))
            let (qd, kd, vd) = (doubles(q), doubles(k), doubles(v))
            let analytic = DoubleReference.packedAttentionBackward(q: qd, k: kd, v: vd, dout: doubles(r), cumulativeLengths: cu,
                                                                   heads: heads, kvHeads: kvHeads, headDim: d)
            func forward(_ q: [Double], _ k: [Double], _ v: [Double]) -> [Double] {
                DoubleReference.packedAttention(q: q, k: k, v: v, cumulativeLengths: cu, heads: heads, kvHeads: kvHeads, headDim: d).out
            }
            let L = magnitude(forward(qd, kd, vd), r)
            let context = "heads \(heads)/\(kvHeads) d \(d) lengths \(lengths)"
            check("attention dq, " + context, float32: dq, analytic: analytic.dq, lossMagnitude: L,
                  numeric: numeric(qd, r: r) { forward($0, kd, vd) })
            check("attention dk, " + context, float32: dk, analytic: analytic.dk, lossMagnitude: L,
                  numeric: numeric(kd, r: r) { forward(qd, $0, vd) })
            check("attention dv, " + context, float32: dv, analytic: analytic.dv, lossMagnitude: L,
                  numeric: numeric(vd, r: r) { forward(qd, kd, $0) })
        }
    }

    /// RoPE (partial rotary, positions restarting per sequence) then packed GQA attention, as a
    /// decoder block runs them: gradients with respect to the un-rotated q and k.
    func testRoPEThenPackedAttentionChain() {
        var rng = SplitMix64(seed: 0xC4A1)
        let heads = 4, kvHeads = 2, d = 8, rotaryDim = 4, lengths = [5, 2, 7]
        let cu = cumulative(lengths), T = cu.last!
        let positions = lengths.flatMap { Array(0..<$0) }
        let rope = RoPE(headDim: d, rotaryDim: rotaryDim, theta: 10000)
        let q0 = random(T * heads * d, &rng, 2), k0 = random(T * kvHeads * d, &rng, 2), v = random(T * kvHeads * d, &rng)
        let r = random(T * heads * d, &rng)

        var q = q0, k = k0
        rope.apply(&q, tokens: T, heads: heads, positions: positions)
        rope.apply(&k, tokens: T, heads: kvHeads, positions: positions)
        let gradients = packedAttentionGradients(q: q, k: k, v: v, dout: r, cu: cu, heads: heads, kvHeads: kvHeads, d: d, pool: .serial)
        var dq = gradients.dq, dk = gradients.dk
        let dv = gradients.dv
        rope.backward(&dq, tokens: T, heads: heads, positions: positions)
        rope.backward(&dk, tokens: T, heads: kvHeads, positions: positions)

        func rotate(_ x: [Double], _ h: Int, sign: Double = 1) -> [Double] {
            DoubleReference.rope(x, heads: h, headDim: d, rotaryDim: rotaryDim, theta: 10000, positions: positions, sign: sign)
        }
        func forward(_ q0: [Double], _ k0: [Double], _ v: [Double]) -> [Double] {
            DoubleReference.packedAttention(q: rotate(q0, heads), k: rotate(k0, kvHeads), v: v, cumulativeLengths: cu,
                                            heads: heads, kvHeads: kvHeads, headDim: d).out
        }
        let (qd, kd, vd) = (doubles(q0), doubles(k0), doubles(v))
        let analytic = DoubleReference.packedAttentionBackward(q: rotate(qd, heads), k: rotate(kd, kvHeads), v: vd, dout: doubles(r),
                                                               cumulativeLengths: cu, heads: heads, kvHeads: kvHeads, headDim: d)
        let L = magnitude(forward(qd, kd, vd), r)
        check("rope∘attention dq", float32: dq, analytic: rotate(analytic.dq, heads, sign: -1), lossMagnitude: L,
              numeric: numeric(qd, r: r) { forward($0, kd, vd) })
        check("rope∘attention dk", float32: dk, analytic: rotate(analytic.dk, kvHeads, sign: -1), lossMagnitude: L,
              numeric: numeric(kd, r: r) { forward(qd, $0, vd) })
        check("rope∘attention dv", float32: dv, analytic: analytic.dv, lossMagnitude: L,
              numeric: numeric(vd, r: r) { forward(qd, kd, $0) })
    }

    // MARK: - Determinism

    /// The parallel kernels on shapes large enough to split: the same bits for 1, 2 and 3 threads
    /// (and, for the BLAS kernels, with OpenBLAS threading the products or the pool splitting them).
    func testBackwardsDoNotDependOnThreadCount() {
        var rng = SplitMix64(seed: 0xD7)
        let T = 96, C = 576, V = 2051
        let x = random(T * C, &rng, 3), w = random(C, &rng), dy = random(T * C, &rng), up = random(T * C, &rng)
        let ids = (0..<T).map { _ in Int.random(in: 0..<50, using: &rng) }
        let logits = random(T * V, &rng, 5), targets = (0..<T).map { $0 % 7 == 0 ? -100 : Int.random(in: 0..<V, using: &rng) }
        let g = random(T, &rng)
        let heads = 6, kvHeads = 2, d = 64, lengths = [40, 17, 1, 38]
        let cu = cumulative(lengths)
        let q = random(T * heads * d, &rng), k = random(T * kvHeads * d, &rng), v = random(T * kvHeads * d, &rng)
        let dout = random(T * heads * d, &rng)
        let out = 67, n = 512
        let lx = random(T * n, &rng), ldy = random(T * out, &rng)

        func run(_ pool: ThreadPool) -> [[UInt32]] {
            var results: [[Float]] = []
            var dx = [Float](repeating: 0, count: T * C), dw = [Float](repeating: 0, count: C), db = dw
            RMSNorm.backward(dy, x: x, weight: w, epsilon: 1e-5, tokens: T, channels: C, inputGradient: &dx, weightGradient: &dw, pool: pool)
            results += [dx, dw]
            dw = [Float](repeating: 0, count: C)
            LayerNorm.backward(dy, x: x, weight: w, epsilon: 1e-5, tokens: T, channels: C, inputGradient: &dx,
                               weightGradient: &dw, biasGradient: &db, pool: pool)
            results += [dx, dw, db]
            var dE = [Float](repeating: 0, count: 50 * C)
            Embedding.backward(dy, tokenIDs: ids, tokens: T, vocabularySize: 50, channels: C, tableGradient: &dE, pool: pool)
            results.append(dE)
            var dgate = [Float](repeating: 0, count: T * C), dup = dgate
            Activations.swiGLUBackward(gate: x, up: up, outputGradient: dy, count: T * C, gateGradient: &dgate, upGradient: &dup, pool: pool)
            Activations.geluNewBackward(input: x, outputGradient: dy, count: T * C, inputGradient: &dx, pool: pool)
            results += [dgate, dup, dx]
            var logp = [Float](repeating: 0, count: T), lse = logp, dz = [Float](repeating: 0, count: T * V)
            CrossEntropy.logProbabilities(logits: logits, targets: targets, tokens: T, vocabularySize: V, into: &logp, logSumExp: &lse, pool: pool)
            CrossEntropy.backward(logits: logits, targets: targets, logSumExp: lse, logProbabilityGradient: g, tokens: T,
                                  vocabularySize: V, into: &dz, pool: pool)
            results += [logp, lse, dz]
            var attention = [Float](repeating: 0, count: T * heads * d), attentionLSE = [Float](repeating: 0, count: T * heads)
            Attention.packedForward(query: q, keys: k, values: v, cumulativeLengths: cu, sequences: lengths.count, heads: heads,
                                    kvHeads: kvHeads, headDim: d, into: &attention, logSumExp: &attentionLSE, pool: pool)
            let (dq, dk, dv) = packedAttentionGradients(q: q, k: k, v: v, dout: dout, cu: cu, heads: heads, kvHeads: kvHeads, d: d, pool: pool)
            results += [attention, attentionLSE, dq, dk, dv]
            var dW = [Float](repeating: 0, count: out * n)
            LinearWeight.accumulateWeightGradient(outputGradient: ldy, input: lx, tokens: T, outFeatures: out, inFeatures: n,
                                                  into: &dW, pool: pool)
            var dBias = [Float](repeating: 0, count: out)
            LinearWeight.accumulateBiasGradient(outputGradient: ldy, tokens: T, outFeatures: out, into: &dBias, pool: pool)
            results += [dW, dBias]
            return results.map { $0.map(\.bitPattern) }
        }

        let baseline = run(.serial)
        for threads in [2, 3] {
            XCTAssertEqual(run(ThreadPool(threads: threads)), baseline, "\(threads) threads")
        }
        #if canImport(CBLAS)
        // Single-threaded OpenBLAS: attention items and weight-gradient rows are split over the pool.
        let previous = openblas_get_num_threads()
        openblas_set_num_threads(1)
        defer { openblas_set_num_threads(previous) }
        for threads in [1, 2, 3] {
            XCTAssertEqual(run(ThreadPool(threads: threads)), baseline, "\(threads) threads, single-threaded BLAS")
        }
        #endif
    }

    // MARK: - The checker itself

    /// A gradient with a known mistake fails the comparison: RMSNorm's dx without the projection
    /// term (`r·g` instead of `r·(g − x·r²·mean(g⊙x))`), and one element moved by 3 tolerances.
    func testCheckerRejectsWrongGradients() {
        var rng = SplitMix64(seed: 0xBAD)
        let T = 3, C = 8, epsilon: Float = 1e-5
        let x = random(T * C, &rng, 3), w = random(C, &rng), r = random(T * C, &rng)
        var dx = [Float](repeating: 0, count: T * C)
        RMSNorm.backward(r, x: x, weight: w, epsilon: epsilon, tokens: T, channels: C, inputGradient: &dx, weightGradient: nil)
        let (xd, wd) = (doubles(x), doubles(w))
        let analytic = DoubleReference.rmsNormBackward(doubles(r), x: xd, weight: wd, epsilon: 1e-5, channels: C).dx
        let fd = numeric(xd, r: r) { DoubleReference.rmsNorm($0, weight: wd, epsilon: Double(epsilon), channels: C) }
        let L = magnitude(DoubleReference.rmsNorm(xd, weight: wd, epsilon: Double(epsilon), channels: C), r)
        let good = GradientComparison(float32: dx, analytic: analytic, numeric: fd, lossMagnitude: L, relativeTolerance: 1e-5)
        XCTAssertTrue(good.failures().isEmpty, "\(good.failures())")

        var wrong = dx
        for t in 0..<T {
            let row = x[(t * C)..<((t + 1) * C)]
            let rstd = 1 / (row.reduce(0) { $0 + $1 * $1 } / Float(C) + epsilon).squareRoot()
            for c in 0..<C { wrong[t * C + c] = rstd * r[t * C + c] * w[c] }
        }
        XCTAssertFalse(GradientComparison(float32: wrong, analytic: analytic, numeric: fd, lossMagnitude: L, relativeTolerance: 1e-5)
            .failures().isEmpty)
        let wrongDouble = wrong.map(Double.init)   // the same mistake in the Double backward: caught by the finite differences
        XCTAssertFalse(GradientComparison(float32: wrong, analytic: wrongDouble, numeric: fd, lossMagnitude: L, relativeTolerance: 1e-5)
            .failures().isEmpty)
        var moved = dx
        moved[5] += Float(3 * good.float32Tolerance)
        let failures = GradientComparison(float32: moved, analytic: analytic, numeric: fd, lossMagnitude: L, relativeTolerance: 1e-5).failures()
        XCTAssertEqual(Set(failures.map(\.index)), [5])
    }

    // MARK: - Helpers

    private func packedAttentionGradients(q: [Float], k: [Float], v: [Float], dout: [Float], cu: [Int], heads: Int, kvHeads: Int, d: Int,
                                          pool: ThreadPool) -> (dq: [Float], dk: [Float], dv: [Float]) {
        let T = cu.last!
        var out = [Float](repeating: 0, count: T * heads * d), lse = [Float](repeating: 0, count: T * heads)
        Attention.packedForward(query: q, keys: k, values: v, cumulativeLengths: cu, sequences: cu.count - 1, heads: heads, kvHeads: kvHeads,
                                headDim: d, into: &out, logSumExp: &lse, pool: pool)
        var dq = [Float](repeating: .nan, count: q.count), dk = [Float](repeating: .nan, count: k.count), dv = dk
        Attention.packedBackward(query: q, keys: k, values: v, outputGradient: dout, logSumExp: lse, cumulativeLengths: cu,
                                 sequences: cu.count - 1, heads: heads, kvHeads: kvHeads, headDim: d,
                                 queryGradient: &dq, keyGradient: &dk, valueGradient: &dv, pool: pool)
        return (dq, dk, dv)
    }

    private func check(_ name: String, float32: [Float], analytic: [Double], lossMagnitude: Double, numeric: [Double]?,
                       relativeTolerance: Double = 1e-5, file: StaticString = #filePath, line: UInt = #line) {
        let comparison = GradientComparison(float32: float32, analytic: analytic, numeric: numeric, lossMagnitude: lossMagnitude,
                                            relativeTolerance: relativeTolerance)
        if ProcessInfo.processInfo.environment["FINCH_TOLERANCE_REPORT"] == "1" {
            print(String(format: "%@: worst error/tolerance  float32 %.3g  finite differences %.3g  (max|∇| %.3g, Σ|r·y| %.3g)",
                         name, comparison.worstFloat32Ratio, comparison.worstNumericRatio, comparison.scale, lossMagnitude))
        }
        let failures = comparison.failures()
        if !failures.isEmpty {
            XCTFail("\(name): \(failures.count) mismatches, worst: \(failures.sorted { $0.ratio > $1.ratio }.prefix(5))", file: file, line: line)
        }
    }

    private func cumulative(_ lengths: [Int]) -> [Int] { lengths.reduce(into: [0]) { $0.append($0.last! + $1) } }
    private func doubles(_ x: [Float]) -> [Double] { x.map(Double.init) }
    private func worst(_ a: [Float], _ b: [Double]) -> Double { zip(a, b).map { abs(Double($0) - $1) }.max() ?? 0 }
    private func worst(_ a: [Float], _ b: [Float]) -> Float { zip(a, b).map { abs($0 - $1) }.max() ?? 0 }
    private func random(_ n: Int, _ rng: inout SplitMix64, _ scale: Float = 1) -> [Float] {
        (0..<n).map { _ in Float.random(in: -scale...scale, using: &rng) }
    }

    /// Σ|r·y|, the scale of the finite differences' cancellation error.
    private func magnitude(_ y: [Double], _ r: [Float]) -> Double { zip(y, r).reduce(0) { $0 + abs($1.0 * Double($1.1)) } }

    /// Central differences of `L(x) = Σ r·forward(x)`, step `h = 1e-6·max(1, |x_i|)`.
    private func numeric(_ x: [Double], r: [Float], _ forward: ([Double]) -> [Double]) -> [Double] {
        let rd = doubles(r)
        func loss(_ x: [Double]) -> Double { zip(forward(x), rd).reduce(0) { $0 + $1.0 * $1.1 } }
        var point = x
        return (0..<x.count).map { i in
            let xi = x[i], h = 1e-6 * max(1, abs(xi))
            let up = xi + h, down = xi - h
            point[i] = up
            let lossUp = loss(point)
            point[i] = down
            let lossDown = loss(point)
            point[i] = xi
            return (lossUp - lossDown) / (up - down)
        }
    }
}

/// The three comparisons of a gradient (see `BackwardTests`), returning the elements that fail.
struct GradientComparison {
    struct Failure: CustomStringConvertible {
        let comparison: String, index: Int, got: Double, expected: Double, tolerance: Double
        var ratio: Double { abs(got - expected) / tolerance }
        var description: String { "\(comparison)[\(index)]: \(got) vs \(expected) (tolerance \(tolerance))" }
    }

    let float32: [Float]
    let analytic: [Double]
    /// Finite differences, or nil where the check only concerns the Float32 kernel (aliasing, accumulation).
    let numeric: [Double]?
    let lossMagnitude: Double
    let relativeTolerance: Double

    var scale: Double { analytic.map(abs).max() ?? 0 }
    var float32Tolerance: Double { relativeTolerance * scale }
    var numericTolerance: Double { 1e-8 * lossMagnitude }

    func failures() -> [Failure] {
        precondition(float32.count == analytic.count && (numeric?.count ?? analytic.count) == analytic.count, "gradient sizes differ")
        var failures: [Failure] = []
        for i in 0..<analytic.count {
            let f = Double(float32[i])
            // `!(≤)` so that NaN fails.
            if !(abs(f - analytic[i]) <= float32Tolerance) {
                failures.append(Failure(comparison: "float32 vs Double analytic", index: i, got: f, expected: analytic[i], tolerance: float32Tolerance))
            }
            guard let numeric else { continue }
            if !(abs(analytic[i] - numeric[i]) <= numericTolerance) {
                failures.append(Failure(comparison: "Double analytic vs finite differences", index: i, got: analytic[i], expected: numeric[i],
                                        tolerance: numericTolerance))
            }
            if !(abs(f - numeric[i]) <= float32Tolerance + numericTolerance) {
                failures.append(Failure(comparison: "float32 vs finite differences", index: i, got: f, expected: numeric[i],
                                        tolerance: float32Tolerance + numericTolerance))
            }
        }
        return failures
    }

    var worstFloat32Ratio: Double {
        (0..<analytic.count).map { abs(Double(float32[$0]) - analytic[$0]) / float32Tolerance }.max() ?? 0
    }

    var worstNumericRatio: Double {
        guard let numeric else { return 0 }
        return (0..<analytic.count).map { abs(analytic[$0] - numeric[$0]) / numericTolerance }.max() ?? 0
    }
}

