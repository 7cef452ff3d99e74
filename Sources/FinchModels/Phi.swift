import FinchCore
import FinchFormats

/// PhiForCausalLM (Phi-1.5, Phi-2): one LayerNorm feeds attention and the MLP in parallel
/// (`x + attn(ln(x)) + mlp(ln(x))`), partial rotary embeddings, biases everywhere, `dense` output
/// projection, gelu_new MLP (fc1/fc2), final LayerNorm and a biased lm_head (formats.md §6.1).
extension DecoderBlock {
    static func phi(_ w: WeightLoader, _ c: ModelConfiguration, layer i: Int) throws -> DecoderBlock {
        let p = "model.layers.\(i)."
        let H = c.hiddenSize, qWidth = c.numAttentionHeads * c.headDim, kvWidth = c.numKeyValueHeads * c.headDim
        if w.has(p + "self_attn.q_layernorm.weight") {
            throw ModelError(w.source.path, "Phi with qk_layernorm is not supported")
        }
        return DecoderBlock(
            kind: .phi,
            inputNorm: .layer(try w.vector(p + "input_layernorm.weight", count: H),
                              try w.vector(p + "input_layernorm.bias", count: H), epsilon: Float(c.normEpsilon)),
            postAttentionNorm: nil,
            q: try w.linear(p + "self_attn.q_proj.weight", out: qWidth, in: H),
            k: try w.linear(p + "self_attn.k_proj.weight", out: kvWidth, in: H),
            v: try w.linear(p + "self_attn.v_proj.weight", out: kvWidth, in: H),
            o: try w.linear(p + "self_attn.dense.weight", out: H, in: qWidth),
            qBias: try w.optionalVector(p + "self_attn.q_proj.bias", count: qWidth),
            kBias: try w.optionalVector(p + "self_attn.k_proj.bias", count: kvWidth),
            vBias: try w.optionalVector(p + "self_attn.v_proj.bias", count: kvWidth),
            oBias: try w.optionalVector(p + "self_attn.dense.bias", count: H),
            gate: nil,
            up: try w.linear(p + "mlp.fc1.weight", out: c.intermediateSize, in: H),
            down: try w.linear(p + "mlp.fc2.weight", out: H, in: c.intermediateSize),
            upBias: try w.optionalVector(p + "mlp.fc1.bias", count: c.intermediateSize),
            downBias: try w.optionalVector(p + "mlp.fc2.bias", count: H))
    }
}
