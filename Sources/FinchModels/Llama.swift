import FinchCore
import FinchFormats

/// LlamaForCausalLM and relatives (SmolLM2, TinyLlama, Mistral without sliding window, Qwen2 with
/// q/k/v biases): pre-norm blocks, RMSNorm, RoPE over all head dimensions, grouped-query attention,
/// SwiGLU MLP (formats.md §6.2, §6.3).
extension DecoderBlock {
    static func llama(_ w: WeightLoader, _ c: ModelConfiguration, layer i: Int) throws -> DecoderBlock {
        let p = "model.layers.\(i)."
        let H = c.hiddenSize, qWidth = c.numAttentionHeads * c.headDim, kvWidth = c.numKeyValueHeads * c.headDim
        let eps = Float(c.normEpsilon)
        return DecoderBlock(
            kind: .llama,
            inputNorm: .rms(try w.vector(p + "input_layernorm.weight", count: H), epsilon: eps),
            postAttentionNorm: .rms(try w.vector(p + "post_attention_layernorm.weight", count: H), epsilon: eps),
            q: try w.linear(p + "self_attn.q_proj", out: qWidth, in: H),
            k: try w.linear(p + "self_attn.k_proj", out: kvWidth, in: H),
            v: try w.linear(p + "self_attn.v_proj", out: kvWidth, in: H),
            o: try w.linear(p + "self_attn.o_proj", out: H, in: qWidth),
            gate: try w.linear(p + "mlp.gate_proj", out: c.intermediateSize, in: H),
            up: try w.linear(p + "mlp.up_proj", out: c.intermediateSize, in: H),
            down: try w.linear(p + "mlp.down_proj", out: H, in: c.intermediateSize))
    }
}
