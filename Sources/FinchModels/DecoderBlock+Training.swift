import FinchCore
import FinchFormats

/// What one block's training forward keeps for its backward, for T tokens (Float32, row-major).
/// The norm outputs and activation outputs are not kept: the backward recomputes them from the
/// block input, `mid` and the pre-activations (one cheap pass each), which also makes a
/// checkpointing recompute produce exactly these values.
struct BlockActivations {
    /// (T, heads, d) after bias and RoPE.
    let q: UnsafeMutablePointer<Float>
    /// (T, kvHeads, d) after bias and RoPE; `v` (T, kvHeads, d).
    let k: UnsafeMutablePointer<Float>, v: UnsafeMutablePointer<Float>
    /// Attention output (T, heads, d), the input of o_proj/dense.
    let attn: UnsafeMutablePointer<Float>
    /// (T, heads), from `Attention.packedForward`.
    let logSumExp: UnsafeMutablePointer<Float>
    /// Llama: x + attention branch (T, hidden), the post-attention norm's input. Phi: unused.
    let mid: UnsafeMutablePointer<Float>
    /// Llama: gate_proj output (T, intermediate). Phi: unused.
    let gate: UnsafeMutablePointer<Float>
    /// Llama: up_proj output; Phi: fc1 output before gelu (T, intermediate).
    let up: UnsafeMutablePointer<Float>
    /// LoRA's `x·Aᵀ` per input group (`LoRAGroup`: `(T, G·r)` at `LoRAInput.slot`), when an
    /// adapter is active.
    let loraDown: UnsafeMutablePointer<Float>
    let loraStride: Int

    func down(_ input: LoRAInput) -> UnsafeMutablePointer<Float> { loraDown + input.slot * loraStride }

    /// Floats for T tokens.
    static func count(tokens T: Int, _ c: ModelConfiguration, _ kind: DecoderBlock.Kind, rank: Int) -> Int {
        let qWidth = c.numAttentionHeads * c.headDim, kvWidth = c.numKeyValueHeads * c.headDim
        let mlp = kind == .llama ? c.hiddenSize + 2 * c.intermediateSize : c.intermediateSize
        return T * (2 * qWidth + 2 * kvWidth + c.numAttentionHeads + mlp + LoRAInput.slotCount * rank)
    }

    init(_ base: UnsafeMutablePointer<Float>, tokens T: Int, _ c: ModelConfiguration, _ kind: DecoderBlock.Kind, rank: Int) {
        let qWidth = c.numAttentionHeads * c.headDim, kvWidth = c.numKeyValueHeads * c.headDim
        var p = base
        func take(_ n: Int) -> UnsafeMutablePointer<Float> { defer { p += n }; return p }
        q = take(T * qWidth)
        k = take(T * kvWidth)
        v = take(T * kvWidth)
        attn = take(T * qWidth)
        logSumExp = take(T * c.numAttentionHeads)
        if kind == .llama {
            mid = take(T * c.hiddenSize)
            gate = take(T * c.intermediateSize)
        } else {
            mid = base
            gate = base
        }
        up = take(T * c.intermediateSize)
        loraStride = T * rank
        loraDown = take(LoRAInput.slotCount * loraStride)
        assert(p - base == Self.count(tokens: T, c, kind, rank: rank))
    }
}

/// Everything a block's training forward and backward share within one pass: the packed batch,
/// the active adapter and its dropout, where parameter gradients go, and scratch buffers.
struct PassContext {
    let tokens: Int
    let config: ModelConfiguration
    let rope: RoPE
    let positions: UnsafePointer<Int>
    /// RoPE's cos/sin for each token, (T, rotaryDim), filled once per pass.
    let ropeTable: UnsafePointer<Float>
    let cumulativeLengths: UnsafePointer<Int>
    let sequences: Int
    let adapter: LoRAAdapter?
    let dropout: DropoutPlan?
    /// The full fine-tuning arena (nil: frozen base).
    let gradients: TrainableParameters?
    let pool: ThreadPool
    // Scratch, reused by every block (shapes for T tokens).
    let h: UnsafeMutablePointer<Float>          // (T, hidden): a norm's output
    let act: UnsafeMutablePointer<Float>        // (T, intermediate): the MLP activation
    let dropped: UnsafeMutablePointer<Float>    // (T, widest input): an adapter's input after dropout
    let loraE: UnsafeMutablePointer<Float>      // (T, 4r): a LoRA group's s·dy·B side by side
    let loraInputGradient: UnsafeMutablePointer<Float> // (T, widest input)
    let dH: UnsafeMutablePointer<Float>         // (T, hidden)
    let dAttn: UnsafeMutablePointer<Float>      // (T, heads·d)
    let dq: UnsafeMutablePointer<Float>, dk: UnsafeMutablePointer<Float>, dv: UnsafeMutablePointer<Float>
    let dAct: UnsafeMutablePointer<Float>, dGate: UnsafeMutablePointer<Float>, dUp: UnsafeMutablePointer<Float> // (T, intermediate)

    /// Runs a row-wise kernel over chunks of the T rows on the pool (rows are independent, so the
    /// result does not depend on the partition); at least ≈ 16 K elements per chunk.
    func rows(width: Int, _ body: (Range<Int>) -> Void) {
        pool.parallelFor(tokens, grain: max(1, 16_384 / max(1, width)), body)
    }

    func normalize(_ norm: Norm, _ x: UnsafePointer<Float>, into out: UnsafeMutablePointer<Float>) {
        let H = config.hiddenSize
        rows(width: H) { r in norm.apply(x + r.lowerBound * H, tokens: r.count, channels: H, into: out + r.lowerBound * H) }
    }

    func swiGLU(gate: UnsafePointer<Float>, up: UnsafePointer<Float>, into out: UnsafeMutablePointer<Float>) {
        let I = config.intermediateSize
        rows(width: I) { r in
            let o = r.lowerBound * I
            Activations.swiGLU(gate: gate + o, up: up + o, count: r.count * I, into: out + o)
        }
    }

    /// `out = gelu_new(x)`.
    func gelu(_ x: UnsafePointer<Float>, into out: UnsafeMutablePointer<Float>) {
        let I = config.intermediateSize
        rows(width: I) { r in
            let o = r.lowerBound * I
            (out + o).update(from: x + o, count: r.count * I)
            Activations.geluNew(out + o, count: r.count * I)
        }
    }

    /// RoPE (or its transpose) on `x: (T, heads, headDim)` at the batch's positions.
    func rotate(_ x: UnsafeMutablePointer<Float>, heads: Int, backward: Bool = false) {
        let width = heads * config.headDim
        rows(width: width) { r in
            let p = x + r.lowerBound * width, table = ropeTable + r.lowerBound * rope.rotaryDim
            if backward {
                rope.backward(p, tokens: r.count, heads: heads, table: table)
            } else {
                rope.apply(p, tokens: r.count, heads: heads, table: table)
            }
        }
    }
}

extension DecoderBlock {
    /// `y = block(x)` over a packed batch (x, y: (T, hidden), distinct), keeping in `saved` what
    /// `trainingBackward` needs. Same math as `forward` (attention restricted to each sequence).
    func trainingForward(_ x: UnsafePointer<Float>, into y: UnsafeMutablePointer<Float>, saving saved: BlockActivations,
                         layer: Int, context ctx: PassContext) {
        let c = ctx.config, T = ctx.tokens, H = c.hiddenSize
        let heads = c.numAttentionHeads, kvHeads = c.numKeyValueHeads
        let h = ctx.h
        // Where each module's output goes (base + bias, then LoRA adds to it).
        func output(_ module: LinearModule) -> UnsafeMutablePointer<Float> {
            switch module {
            case .q: saved.q
            case .k: saved.k
            case .v: saved.v
            case .o: kind == .llama ? saved.mid : y
            case .gate: saved.gate
            case .up: saved.up
            case .down: y
            }
        }
        ctx.normalize(inputNorm, x, into: h)
        project(.q, h, into: saved.q, ctx)
        project(.k, h, into: saved.k, ctx)
        project(.v, h, into: saved.v, ctx)
        if kind == .phi { project(.up, h, into: saved.up, ctx) } // fc1 reads the same h
        lora(.attentionInput, h, saved: saved, layer: layer, output: output, ctx)
        ctx.rotate(saved.q, heads: heads)
        ctx.rotate(saved.k, heads: kvHeads)
        Attention.packedForward(query: saved.q, keys: saved.k, values: saved.v, cumulativeLengths: ctx.cumulativeLengths,
                                sequences: ctx.sequences, heads: heads, kvHeads: kvHeads, headDim: c.headDim,
                                into: saved.attn, logSumExp: saved.logSumExp, pool: ctx.pool)
        let residual = output(.o) // Llama: mid = x + attention; Phi: y = x + attention (+ MLP below)
        residual.update(from: x, count: T * H)
        project(.o, saved.attn, into: residual, accumulate: true, ctx)
        lora(.attentionOutput, saved.attn, saved: saved, layer: layer, output: output, ctx)
        switch kind {
        case .llama:
            ctx.normalize(postAttentionNorm!, saved.mid, into: h)
            project(.gate, h, into: saved.gate, ctx)
            project(.up, h, into: saved.up, ctx)
            lora(.mlpInput, h, saved: saved, layer: layer, output: output, ctx)
            ctx.swiGLU(gate: saved.gate, up: saved.up, into: ctx.act)
            y.update(from: saved.mid, count: T * H)
        case .phi:
            ctx.gelu(saved.up, into: ctx.act)
        }
        project(.down, ctx.act, into: y, accumulate: true, ctx)
        lora(.mlpHidden, ctx.act, saved: saved, layer: layer, output: output, ctx)
    }

    /// Given `d = ∂L/∂y` (T, hidden), overwrites `d` with `∂L/∂x` and accumulates the gradients of
    /// the adapter's A and B and, for a trainable model, of the block's parameters. `x` and
    /// `saved` are the input and activations of `trainingForward` (unchanged here).
    func trainingBackward(_ d: UnsafeMutablePointer<Float>, input x: UnsafePointer<Float>, saved: BlockActivations,
                          layer: Int, context ctx: PassContext) {
        let c = ctx.config, T = ctx.tokens, H = c.hiddenSize, I = c.intermediateSize
        let h = ctx.h, pool = ctx.pool
        // MLP branch: dAct = d·W_down (+ LoRA), then through the activation.
        switch kind {
        case .llama:
            ctx.normalize(postAttentionNorm!, saved.mid, into: h)
            ctx.swiGLU(gate: saved.gate, up: saved.up, into: ctx.act)
        case .phi:
            ctx.normalize(inputNorm, x, into: h)
            ctx.gelu(saved.up, into: ctx.act)
        }
        projectBackward(.down, d, input: ctx.act, into: ctx.dAct, accumulate: false, ctx)
        loraBackward(.mlpHidden, ctx.act, into: ctx.dAct, saved: saved, layer: layer, ctx) { _ in UnsafePointer(d) }
        switch kind {
        case .llama:
            Activations.swiGLUBackward(gate: saved.gate, up: saved.up, outputGradient: ctx.dAct, count: T * I,
                                       gateGradient: ctx.dGate, upGradient: ctx.dUp, pool: pool)
            projectBackward(.gate, ctx.dGate, input: h, into: ctx.dH, accumulate: false, ctx)
            projectBackward(.up, ctx.dUp, input: h, into: ctx.dH, accumulate: true, ctx)
            loraBackward(.mlpInput, h, into: ctx.dH, saved: saved, layer: layer, ctx) { UnsafePointer($0 == .gate ? ctx.dGate : ctx.dUp) }
            // d becomes ∂L/∂mid: the residual plus the post-attention norm's input gradient.
            postAttentionNorm!.backward(ctx.dH, x: saved.mid, tokens: T, channels: H, into: d, accumulate: true,
                                        gradients: ctx.gradients, pool: pool)
        case .phi:
            // dAct becomes ∂L/∂(fc1 output); fc1's LoRA waits for q, k, v (same input h).
            Activations.geluNewBackward(input: saved.up, outputGradient: ctx.dAct, count: T * I, inputGradient: ctx.dAct, pool: pool)
            projectBackward(.up, ctx.dAct, input: h, into: ctx.dH, accumulate: false, ctx)
        }
        projectBackward(.o, d, input: saved.attn, into: ctx.dAttn, accumulate: false, ctx)
        loraBackward(.attentionOutput, saved.attn, into: ctx.dAttn, saved: saved, layer: layer, ctx) { _ in UnsafePointer(d) }
        if kind == .llama { ctx.normalize(inputNorm, x, into: h) }
        attentionBackward(saved, ctx)
        projectBackward(.q, ctx.dq, input: h, into: ctx.dH, accumulate: kind == .phi, ctx)
        projectBackward(.k, ctx.dk, input: h, into: ctx.dH, accumulate: true, ctx)
        projectBackward(.v, ctx.dv, input: h, into: ctx.dH, accumulate: true, ctx)
        loraBackward(.attentionInput, h, into: ctx.dH, saved: saved, layer: layer, ctx) { module in
            switch module {
            case .q: UnsafePointer(ctx.dq)
            case .k: UnsafePointer(ctx.dk)
            case .v: UnsafePointer(ctx.dv)
            default: UnsafePointer(ctx.dAct) // Phi's fc1
            }
        }
        inputNorm.backward(ctx.dH, x: x, tokens: T, channels: H, into: d, accumulate: true, gradients: ctx.gradients, pool: pool)
    }

    /// dAttn → dq, dk, dv (before RoPE, i.e. of the projections' outputs).
    private func attentionBackward(_ saved: BlockActivations, _ ctx: PassContext) {
        let c = ctx.config
        Attention.packedBackward(query: saved.q, keys: saved.k, values: saved.v, outputGradient: ctx.dAttn, logSumExp: saved.logSumExp,
                                 cumulativeLengths: ctx.cumulativeLengths, sequences: ctx.sequences, heads: c.numAttentionHeads,
                                 kvHeads: c.numKeyValueHeads, headDim: c.headDim, queryGradient: ctx.dq, keyGradient: ctx.dk,
                                 valueGradient: ctx.dv, pool: ctx.pool)
        ctx.rotate(ctx.dq, heads: c.numAttentionHeads, backward: true)
        ctx.rotate(ctx.dk, heads: c.numKeyValueHeads, backward: true)
    }

    /// `out (+)= input·Wᵀ + b` for one module (its LoRA branch is added per input group by `lora`,
    /// as PEFT's `lora.Linear` adds it to the base result).
    private func project(_ module: LinearModule, _ input: UnsafePointer<Float>, into out: UnsafeMutablePointer<Float>,
                         accumulate: Bool = false, _ ctx: PassContext) {
        guard let linear = linear(module) else { return }
        linear.weight.forward(input, tokens: ctx.tokens, into: out, accumulate: accumulate, pool: ctx.pool)
        linear.bias?.add(to: out, rows: ctx.tokens)
    }

    /// The active adapter's branches of the modules reading `input`: `y_m += s·B_m(A_m(drop(input)))`.
    private func lora(_ group: LoRAInput, _ input: UnsafePointer<Float>, saved: BlockActivations, layer: Int,
                      output: (LinearModule) -> UnsafeMutablePointer<Float>, _ ctx: PassContext) {
        guard let adapter = ctx.adapter, let g = adapter.group(layer: layer, group) else { return }
        g.forward(input, tokens: ctx.tokens, scaling: adapter.scaling, dropout: ctx.dropout, dropped: ctx.dropped,
                  down: saved.down(group), output: output, pool: ctx.pool)
    }

    /// Backward of `project` without LoRA: `dx (+)= dy·W`, and for a trainable model W's and b's
    /// gradients. `input` is the module's input.
    private func projectBackward(_ module: LinearModule, _ dy: UnsafePointer<Float>, input: UnsafePointer<Float>,
                                 into dx: UnsafeMutablePointer<Float>, accumulate: Bool, _ ctx: PassContext) {
        guard let linear = linear(module) else { return }
        let T = ctx.tokens, pool = ctx.pool
        linear.weight.backwardInput(dy, tokens: T, into: dx, accumulate: accumulate, pool: pool)
        guard let gradients = ctx.gradients else { return }
        if let dW = gradients.gradient(of: linear.weight) {
            LinearWeight.accumulateWeightGradient(outputGradient: dy, input: input, tokens: T, outFeatures: linear.outFeatures,
                                                  inFeatures: linear.inFeatures, into: dW, pool: pool)
        }
        if let bias = linear.bias, let db = gradients.gradient(of: bias) {
            LinearWeight.accumulateBiasGradient(outputGradient: dy, tokens: T, outFeatures: linear.outFeatures, into: db, pool: pool)
        }
    }

    /// Backward of `lora` for one input group: the adapter's A and B gradients, and the branches'
    /// input gradient added to `dx` (which holds the base part). `outputGradient(m)` is ∂L/∂y_m.
    private func loraBackward(_ group: LoRAInput, _ input: UnsafePointer<Float>, into dx: UnsafeMutablePointer<Float>,
                              saved: BlockActivations, layer: Int, _ ctx: PassContext,
                              outputGradient: (LinearModule) -> UnsafePointer<Float>) {
        guard let adapter = ctx.adapter, let g = adapter.group(layer: layer, group) else { return }
        g.backward(input, tokens: ctx.tokens, scaling: adapter.scaling, dropout: ctx.dropout, down: saved.down(group),
                   outputGradient: outputGradient, inputGradient: dx, e: ctx.loraE, dropped: ctx.dropped,
                   product: ctx.loraInputGradient, pool: ctx.pool)
    }
}
