import Foundation

/// Double-precision forwards and analytic backwards written from the formulas, for
/// `BackwardTests`: the forwards feed the finite differences, the backwards are compared with both
/// the finite differences and the Float32 kernels. Shapes as the kernels' (row-major).
enum DoubleReference {
    // MARK: Norms

    static func rmsNorm(_ x: [Double], weight w: [Double], epsilon: Double, channels C: Int) -> [Double] {
        var y = x
        for t in 0..<(x.count / C) {
            let row = Array(x[(t * C)..<((t + 1) * C)])
            let r = 1 / (row.reduce(0) { $0 + $1 * $1 } / Double(C) + epsilon).squareRoot()
            for c in 0..<C { y[t * C + c] = w[c] * row[c] * r }
        }
        return y
    }

    /// dx = r·(g − x·r²·mean(g⊙x)), g = dy⊙w; dw = Σ_t dy⊙x·r.
    static func rmsNormBackward(_ dy: [Double], x: [Double], weight w: [Double], epsilon: Double, channels C: Int)
        -> (dx: [Double], dw: [Double]) {
        var dx = x, dw = [Double](repeating: 0, count: C)
        for t in 0..<(x.count / C) {
            let row = Array(x[(t * C)..<((t + 1) * C)]), g = (0..<C).map { dy[t * C + $0] * w[$0] }
            let r = 1 / (row.reduce(0) { $0 + $1 * $1 } / Double(C) + epsilon).squareRoot()
            let meanGX = (0..<C).reduce(0.0) { $0 + g[$1] * row[$1] } / Double(C)
            for c in 0..<C {
                dx[t * C + c] = r * (g[c] - row[c] * r * r * meanGX)
                dw[c] += dy[t * C + c] * row[c] * r
            }
        }
        return (dx, dw)
    }

    static func layerNorm(_ x: [Double], weight w: [Double], bias b: [Double], epsilon: Double, channels C: Int) -> [Double] {
        var y = x
        for t in 0..<(x.count / C) {
            let row = Array(x[(t * C)..<((t + 1) * C)])
            let mean = row.reduce(0, +) / Double(C)
            let r = 1 / (row.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(C) + epsilon).squareRoot()
            for c in 0..<C { y[t * C + c] = (row[c] - mean) * r * w[c] + b[c] }
        }
        return y
    }

    /// dx = r·(g − mean(g) − x̂·mean(g⊙x̂)); dw = Σ dy⊙x̂; db = Σ dy.
    static func layerNormBackward(_ dy: [Double], x: [Double], weight w: [Double], epsilon: Double, channels C: Int)
        -> (dx: [Double], dw: [Double], db: [Double]) {
        var dx = x, dw = [Double](repeating: 0, count: C), db = dw
        for t in 0..<(x.count / C) {
            let row = Array(x[(t * C)..<((t + 1) * C)])
            let mean = row.reduce(0, +) / Double(C)
            let r = 1 / (row.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(C) + epsilon).squareRoot()
            let xhat = row.map { ($0 - mean) * r }, g = (0..<C).map { dy[t * C + $0] * w[$0] }
            let meanG = g.reduce(0, +) / Double(C)
            let meanGX = (0..<C).reduce(0.0) { $0 + g[$1] * xhat[$1] } / Double(C)
            for c in 0..<C {
                dx[t * C + c] = r * (g[c] - meanG - xhat[c] * meanGX)
                dw[c] += dy[t * C + c] * xhat[c]
                db[c] += dy[t * C + c]
            }
        }
        return (dx, dw, db)
    }

    // MARK: RoPE

    /// The Float32 angles of `RoPE` (position · inv_freq, both Float32, as transformers), as Double.
    static func ropeAngles(position: Int, rotaryDim: Int, theta: Float) -> [Double] {
        (0..<(rotaryDim / 2)).map { i in
            Double(Float(position) * (1 / powf(theta, Float(2 * i) / Float(rotaryDim))))
        }
    }

    /// rotate_half by `sign · angle` over the first rotaryDim dimensions of each head.
    static func rope(_ x: [Double], heads: Int, headDim: Int, rotaryDim: Int, theta: Float, positions: [Int], sign: Double = 1) -> [Double] {
        var y = x
        let half = rotaryDim / 2
        for t in 0..<positions.count {
            let angles = ropeAngles(position: positions[t], rotaryDim: rotaryDim, theta: theta)
            for h in 0..<heads {
                let base = (t * heads + h) * headDim
                for i in 0..<half {
                    let a = x[base + i], b = x[base + i + half], c = cos(angles[i]), s = sign * sin(angles[i])
                    y[base + i] = a * c - b * s
                    y[base + i + half] = b * c + a * s
                }
            }
        }
        return y
    }

    // MARK: Activations

    static func sigmoid(_ x: Double) -> Double { 1 / (1 + exp(-x)) }

    static func swiGLU(gate: [Double], up: [Double]) -> [Double] {
        (0..<gate.count).map { gate[$0] * sigmoid(gate[$0]) * up[$0] }
    }

    static func swiGLUBackward(gate: [Double], up: [Double], dy: [Double]) -> (dgate: [Double], dup: [Double]) {
        let dgate = (0..<gate.count).map { i in
            let s = sigmoid(gate[i])
            return dy[i] * up[i] * (s + gate[i] * s * (1 - s))
        }
        return (dgate, (0..<gate.count).map { dy[$0] * gate[$0] * sigmoid(gate[$0]) })
    }

    static let geluK = (2 / Double.pi).squareRoot()

    static func geluNew(_ x: [Double]) -> [Double] {
        x.map { 0.5 * $0 * (1 + tanh(geluK * ($0 + 0.044715 * $0 * $0 * $0))) }
    }

    static func geluNewBackward(_ x: [Double], dy: [Double]) -> [Double] {
        (0..<x.count).map { i in
            let v = x[i], t = tanh(geluK * (v + 0.044715 * v * v * v))
            return dy[i] * (0.5 * (1 + t) + 0.5 * v * (1 - t * t) * geluK * (1 + 3 * 0.044715 * v * v))
        }
    }

    // MARK: Cross-entropy

    /// Per-token log p(target) (0 for negative targets) and the row log-sum-exps.
    static func logProbabilities(_ z: [Double], targets: [Int], vocabularySize V: Int) -> (logp: [Double], lse: [Double]) {
        var logp = [Double](), lse = [Double]()
        for t in 0..<targets.count {
            let row = z[(t * V)..<((t + 1) * V)]
            let m = row.max() ?? 0
            let l = m + log(row.reduce(0) { $0 + exp($1 - m) })
            lse.append(l)
            logp.append(targets[t] < 0 ? 0 : z[t * V + targets[t]] - l)
        }
        return (logp, lse)
    }

    /// dz = g·(onehot − softmax), zero rows for negative targets.
    static func logProbabilitiesBackward(_ z: [Double], targets: [Int], g: [Double], vocabularySize V: Int) -> [Double] {
        let lse = logProbabilities(z, targets: targets, vocabularySize: V).lse
        var dz = [Double](repeating: 0, count: z.count)
        for t in 0..<targets.count where targets[t] >= 0 {
            for v in 0..<V { dz[t * V + v] = g[t] * ((v == targets[t] ? 1 : 0) - exp(z[t * V + v] - lse[t])) }
        }
        return dz
    }

    // MARK: Linear

    /// y = x·Wᵀ + b; x: (T, in), W: (out, in).
    static func linear(_ x: [Double], weight w: [Double], bias b: [Double]?, out: Int, in n: Int) -> [Double] {
        let T = x.count / n
        var y = [Double](repeating: 0, count: T * out)
        for t in 0..<T {
            for o in 0..<out {
                y[t * out + o] = (0..<n).reduce(b?[o] ?? 0) { $0 + x[t * n + $1] * w[o * n + $1] }
            }
        }
        return y
    }

    /// (dx = dy·W, dW = dyᵀ·x, db = Σ_t dy).
    static func linearBackward(_ dy: [Double], x: [Double], weight w: [Double], out: Int, in n: Int)
        -> (dx: [Double], dw: [Double], db: [Double]) {
        let T = x.count / n
        var dx = [Double](repeating: 0, count: T * n), dw = [Double](repeating: 0, count: out * n), db = [Double](repeating: 0, count: out)
        for t in 0..<T {
            for o in 0..<out {
                let g = dy[t * out + o]
                db[o] += g
                for i in 0..<n {
                    dx[t * n + i] += g * w[o * n + i]
                    dw[o * n + i] += g * x[t * n + i]
                }
            }
        }
        return (dx, dw, db)
    }

    // MARK: Packed attention

    /// Causal GQA attention inside each packed sequence; returns the output and the per-(token, head)
    /// log-sum-exp of the scaled scores.
    static func packedAttention(q: [Double], k: [Double], v: [Double], cumulativeLengths cu: [Int], heads: Int, kvHeads: Int, headDim d: Int)
        -> (out: [Double], lse: [Double]) {
        let group = heads / kvHeads, scale = 1 / Double(d).squareRoot()
        var out = [Double](repeating: 0, count: q.count), lse = [Double](repeating: 0, count: q.count / d)
        for s in 0..<(cu.count - 1) {
            for h in 0..<heads {
                let g = h / group
                for t in cu[s]..<cu[s + 1] {
                    let keys = Array(cu[s]...t)
                    let scores = keys.map { j in (0..<d).reduce(0.0) { $0 + q[(t * heads + h) * d + $1] * k[(j * kvHeads + g) * d + $1] } * scale }
                    let m = scores.max() ?? 0
                    let sum = scores.reduce(0) { $0 + exp($1 - m) }
                    lse[t * heads + h] = m + log(sum)
                    for (n, j) in keys.enumerated() {
                        let p = exp(scores[n] - m) / sum
                        for c in 0..<d { out[(t * heads + h) * d + c] += p * v[(j * kvHeads + g) * d + c] }
                    }
                }
            }
        }
        return (out, lse)
    }

    /// dV = Pᵀ dO, dS = P⊙(dP − rowsum(P⊙dP)) with dP = dO Vᵀ, dQ = dS K·scale, dK = dSᵀ Q·scale, row by row.
    static func packedAttentionBackward(q: [Double], k: [Double], v: [Double], dout: [Double], cumulativeLengths cu: [Int],
                                        heads: Int, kvHeads: Int, headDim d: Int) -> (dq: [Double], dk: [Double], dv: [Double]) {
        let group = heads / kvHeads, scale = 1 / Double(d).squareRoot()
        var dq = [Double](repeating: 0, count: q.count), dk = [Double](repeating: 0, count: k.count), dv = dk
        func dot(_ a: [Double], _ ai: Int, _ b: [Double], _ bi: Int) -> Double { (0..<d).reduce(0.0) { $0 + a[ai + $1] * b[bi + $1] } }
        for s in 0..<(cu.count - 1) {
            for h in 0..<heads {
                let g = h / group
                for t in cu[s]..<cu[s + 1] {
                    let qi = (t * heads + h) * d
                    let keys = Array(cu[s]...t)
                    let scores = keys.map { dot(q, qi, k, ($0 * kvHeads + g) * d) * scale }
                    let m = scores.max() ?? 0
                    let sum = scores.reduce(0) { $0 + exp($1 - m) }
                    let p = scores.map { exp($0 - m) / sum }
                    let dp = keys.map { dot(dout, qi, v, ($0 * kvHeads + g) * d) }
                    let D = zip(p, dp).reduce(0) { $0 + $1.0 * $1.1 }
                    for (n, j) in keys.enumerated() {
                        let kj = (j * kvHeads + g) * d
                        let ds = p[n] * (dp[n] - D)
                        for c in 0..<d {
                            dv[kj + c] += p[n] * dout[qi + c]
                            dq[qi + c] += ds * k[kj + c] * scale
                            dk[kj + c] += ds * q[qi + c] * scale
                        }
                    }
                }
            }
        }
        return (dq, dk, dv)
    }
}
