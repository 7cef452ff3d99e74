import FinchCore
import FinchFormats

/// One transformer block's weights. The layout differs by architecture (Llama.swift, Phi.swift);
/// both share attention over the KV cache here and packed attention in training
/// (`DecoderBlock+Training.swift`).
struct DecoderBlock: @unchecked Sendable {
    enum Kind: Sendable { case llama, phi }
    let kind: Kind
    let inputNorm: Norm
    /// Llama's second norm before the MLP (Phi feeds one norm to both branches).
    let postAttentionNorm: Norm?
    let q: Linear, k: Linear, v: Linear, o: Linear
    /// Llama: gate/up/down (SwiGLU). Phi: up = fc1, down = fc2 (gelu_new), no gate.
    let gate: Linear?
    let up: Linear, down: Linear

    func linear(_ module: LinearModule) -> Linear? {
        switch module {
        case .q: q
        case .k: k
        case .v: v
        case .o: o
        case .gate: gate
        case .up: up
        case .down: down
        }
    }

    /// Runs the block over T new tokens of one sequence in place on `x` (T, hidden), reading and
    /// extending the KV cache; `adapter` adds its LoRA branches (no dropout: inference).
    func forward(_ x: UnsafeMutablePointer<Float>, tokens T: Int, positions: UnsafePointer<Int>, cache: KVCache, layer: Int,
                 rope: RoPE, config c: ModelConfiguration, adapter: LoRAAdapter?, pool: ThreadPool) throws {
        let H = c.hiddenSize, heads = c.numAttentionHeads, kvHeads = c.numKeyValueHeads, d = c.headDim
        let qWidth = heads * d, kvWidth = kvHeads * d, I = c.intermediateSize
        let h = cache.workspace.buffer("h", T * H)
        let qOut = cache.workspace.buffer("q", T * qWidth)
        let attn = cache.workspace.buffer("attn", T * qWidth)
        let loraScratch = adapter.map { cache.workspace.buffer("lora", T * $0.configuration.r) }
        let past = cache.count
        // base + bias + s·B(A x), in PEFT's order.
        func project(_ module: LinearModule, _ input: UnsafePointer<Float>, into out: UnsafeMutablePointer<Float>, accumulate: Bool = false) {
            guard let linear = linear(module) else { return }
            linear.weight.forward(input, tokens: T, into: out, accumulate: accumulate, pool: pool)
            linear.bias?.add(to: out, rows: T)
            if let adapter, let loraScratch, let lora = adapter.module(layer: layer, module) {
                lora.forward(input, tokens: T, scaling: adapter.scaling, into: out, down: loraScratch, pool: pool)
            }
        }

        inputNorm.apply(x, tokens: T, channels: H, into: h, pool: pool)
        // Keys and values are written straight into the cache rows for these positions.
        let keys = cache.keys[layer].pointer, values = cache.values[layer].pointer
        let kNew = keys + past * kvWidth, vNew = values + past * kvWidth
        project(.q, h, into: qOut)
        project(.k, h, into: kNew)
        project(.v, h, into: vNew)
        rope.apply(qOut, tokens: T, heads: heads, positions: positions)
        rope.apply(kNew, tokens: T, heads: kvHeads, positions: positions)
        Attention.forward(query: qOut, keys: keys, values: values, tokens: T, past: past, heads: heads, kvHeads: kvHeads,
                          headDim: d, into: attn, pool: pool)
        // Residual: x += attn · Woᵀ (+ b).
        project(.o, attn, into: x, accumulate: true)

        let m = cache.workspace.buffer("mlp", T * I)
        switch kind {
        case .llama:
            postAttentionNorm?.apply(x, tokens: T, channels: H, into: h, pool: pool)
            let g = cache.workspace.buffer("gate", T * I)
            project(.gate, h, into: g)
            project(.up, h, into: m)
            Activations.swiGLU(gate: g, up: m, count: T * I, into: m, pool: pool)
        case .phi:
            // Phi: the MLP reads the same normed input as attention (parallel block).
            project(.up, h, into: m)
            Activations.geluNew(m, count: T * I)
        }
        project(.down, m, into: x, accumulate: true)
    }
}

/// The normalization layers of the supported architectures.
enum Norm: @unchecked Sendable {
    case rms(ParameterVector, epsilon: Float)
    case layer(ParameterVector, ParameterVector, epsilon: Float)

    func apply(_ x: UnsafePointer<Float>, tokens: Int, channels: Int, into out: UnsafeMutablePointer<Float>, pool: ThreadPool = .serial) {
        switch self {
        case let .rms(w, eps):
            RMSNorm.forward(x, weight: w.pointer, epsilon: eps, tokens: tokens, channels: channels, into: out, pool: pool)
        case let .layer(w, b, eps):
            LayerNorm.forward(x, weight: w.pointer, bias: b.pointer, epsilon: eps, tokens: tokens, channels: channels, into: out)
        }
    }

    /// `dx (+)= ∂/∂x` of `apply` given `dy`; parameter gradients accumulated where given.
    func backward(_ dy: UnsafePointer<Float>, x: UnsafePointer<Float>, tokens: Int, channels: Int,
                  into dx: UnsafeMutablePointer<Float>, accumulate: Bool, gradients: TrainableParameters?, pool: ThreadPool) {
        switch self {
        case let .rms(w, eps):
            RMSNorm.backward(dy, x: x, weight: w.pointer, epsilon: eps, tokens: tokens, channels: channels, inputGradient: dx,
                             weightGradient: gradients?.gradient(of: w), accumulate: accumulate, pool: pool)
        case let .layer(w, b, eps):
            LayerNorm.backward(dy, x: x, weight: w.pointer, epsilon: eps, tokens: tokens, channels: channels, inputGradient: dx,
                               weightGradient: gradients?.gradient(of: w), biasGradient: gradients?.gradient(of: b),
                               accumulate: accumulate, pool: pool)
        }
    }

    /// The parameter vectors with their PyTorch suffixes (`weight`, `bias`).
    var parameters: [(String, ParameterVector)] {
        switch self {
        case let .rms(w, _): [("weight", w)]
        case let .layer(w, b, _): [("weight", w), ("bias", b)]
        }
    }
}
