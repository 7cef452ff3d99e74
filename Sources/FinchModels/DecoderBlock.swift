import FinchCore
import FinchFormats

/// One transformer block's weights. The layout differs by architecture (Llama.swift, Phi.swift);
/// both share attention over the KV cache.
struct DecoderBlock: @unchecked Sendable {
    enum Kind { case llama, phi }
    let kind: Kind
    let inputNorm: Norm
    /// Llama's second norm before the MLP (Phi feeds one norm to both branches).
    let postAttentionNorm: Norm?
    let q: LinearWeight, k: LinearWeight, v: LinearWeight, o: LinearWeight
    let qBias: [Float]?, kBias: [Float]?, vBias: [Float]?, oBias: [Float]?
    /// Llama: gate/up/down (SwiGLU). Phi: up = fc1, down = fc2 (gelu_new), no gate.
    let gate: LinearWeight?
    let up: LinearWeight, down: LinearWeight
    let upBias: [Float]?, downBias: [Float]?

    func forward(_ x: UnsafeMutablePointer<Float>, tokens T: Int, positions: UnsafePointer<Int>, cache: KVCache, layer: Int,
                 rope: RoPE, config c: ModelConfiguration, pool: ThreadPool) throws {
        let H = c.hiddenSize, heads = c.numAttentionHeads, kvHeads = c.numKeyValueHeads, d = c.headDim
        let qWidth = heads * d, kvWidth = kvHeads * d, I = c.intermediateSize
        let h = cache.workspace.buffer("h", T * H)
        let qOut = cache.workspace.buffer("q", T * qWidth)
        let attn = cache.workspace.buffer("attn", T * qWidth)
        let past = cache.count

        inputNorm.apply(x, tokens: T, channels: H, into: h, pool: pool)
        // Keys and values are written straight into the cache rows for these positions.
        let keys = cache.keys[layer].pointer, values = cache.values[layer].pointer
        let kNew = keys + past * kvWidth, vNew = values + past * kvWidth
        q.forward(h, tokens: T, into: qOut, pool: pool)
        k.forward(h, tokens: T, into: kNew, pool: pool)
        v.forward(h, tokens: T, into: vNew, pool: pool)
        addBias(qBias, to: qOut, rows: T, width: qWidth)
        addBias(kBias, to: kNew, rows: T, width: kvWidth)
        addBias(vBias, to: vNew, rows: T, width: kvWidth)
        rope.apply(qOut, tokens: T, heads: heads, positions: positions)
        rope.apply(kNew, tokens: T, heads: kvHeads, positions: positions)
        Attention.forward(query: qOut, keys: keys, values: values, tokens: T, past: past, heads: heads, kvHeads: kvHeads,
                          headDim: d, into: attn, pool: pool)
        // Residual: x += attn · Woᵀ (+ b).
        o.forward(attn, tokens: T, into: x, accumulate: true, pool: pool)
        addBias(oBias, to: x, rows: T, width: H)

        let m = cache.workspace.buffer("mlp", T * I)
        switch kind {
        case .llama:
            postAttentionNorm?.apply(x, tokens: T, channels: H, into: h, pool: pool)
            let g = cache.workspace.buffer("gate", T * I)
            gate?.forward(h, tokens: T, into: g, pool: pool)
            up.forward(h, tokens: T, into: m, pool: pool)
            Activations.swiGLU(gate: g, up: m, count: T * I, into: m, pool: pool)
        case .phi:
            // Phi: the MLP reads the same normed input as attention (parallel block).
            up.forward(h, tokens: T, into: m, pool: pool)
            addBias(upBias, to: m, rows: T, width: I)
            Activations.geluNew(m, count: T * I)
        }
        down.forward(m, tokens: T, into: x, accumulate: true, pool: pool)
        addBias(downBias, to: x, rows: T, width: H)
    }

    private func addBias(_ bias: [Float]?, to buffer: UnsafeMutablePointer<Float>, rows: Int, width: Int) {
        guard let bias else { return }
        bias.withUnsafeBufferPointer { b in
            for r in 0..<rows { Activations.add(buffer + r * width, b.baseAddress!, count: width) }
        }
    }
}
