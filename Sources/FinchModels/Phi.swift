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
            q: try w.linear(p + "self_attn.q_proj", out: qWidth, in: H),
            k: try w.linear(p + "self_attn.k_proj", out: kvWidth, in: H),
            v: try w.linear(p + "self_attn.v_proj", out: kvWidth, in: H),
            o: try w.linear(p + "self_attn.dense", out: H, in: qWidth),
            gate: nil,
            up: try w.linear(p + "mlp.fc1", out: c.intermediateSize, in: H),
            down: try w.linear(p + "mlp.fc2", out: H, in: c.intermediateSize))
    }
}
