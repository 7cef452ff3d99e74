/// GGUF ↔ Hugging Face tensor names, one table per architecture (`../shared/reference/formats.md`
/// §4.7). This is the only place checkpoint key strings for GGUF live.
public struct TensorNameMap: Sendable {
    /// Top-level tensors: GGUF stem → HF stem (suffix `.weight`/`.bias` is carried over).
    let global: [String: String]
    /// Per-block tensors: GGUF stem after `blk.N.` → HF stem after `model.layers.N.`.
    let block: [String: String]

    public static func forArchitecture(_ architecture: ModelArchitecture) -> TensorNameMap {
        switch architecture {
        case .llama, .qwen2:
            TensorNameMap(
                global: [
                    "token_embd": "model.embed_tokens",
                    "output_norm": "model.norm",
                    "output": "lm_head",
                ],
                block: [
                    "attn_norm": "input_layernorm",
                    "attn_q": "self_attn.q_proj",
                    "attn_k": "self_attn.k_proj",
                    "attn_v": "self_attn.v_proj",
                    "attn_output": "self_attn.o_proj",
                    "ffn_norm": "post_attention_layernorm",
                    "ffn_gate": "mlp.gate_proj",
                    "ffn_up": "mlp.up_proj",
                    "ffn_down": "mlp.down_proj",
                ])
        case .phi:
            TensorNameMap(
                global: [
                    "token_embd": "model.embed_tokens",
                    "output_norm": "model.final_layernorm",
                    "output": "lm_head",
                ],
                block: [
                    "attn_norm": "input_layernorm",
                    "attn_q": "self_attn.q_proj",
                    "attn_k": "self_attn.k_proj",
                    "attn_v": "self_attn.v_proj",
                    "attn_output": "self_attn.dense",
                    "ffn_up": "mlp.fc1",
                    "ffn_down": "mlp.fc2",
                ])
        }
    }

    /// GGUF tensors with no Hugging Face counterpart, which loaders skip (transformers does too):
    /// llama.cpp's precomputed RoPE frequency factors.
    public static let ggufOnly: Set<String> = ["rope_freqs.weight"]

    /// The HF name for a GGUF tensor name, or nil if the table does not know it.
    public func huggingFaceName(forGGUF name: String) -> String? {
        let parts = name.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        guard let suffix = parts.last, suffix == "weight" || suffix == "bias", parts.count >= 2 else { return nil }
        if parts.count == 2, let stem = global[parts[0]] {
            return "\(stem).\(suffix)"
        }
        if parts.count == 4, parts[0] == "blk", let layer = Int(parts[1]), layer >= 0, let stem = block[parts[2]] {
            return "model.layers.\(layer).\(stem).\(suffix)"
        }
        return nil
    }

    /// The GGUF name for an HF tensor name, or nil.
    public func ggufName(forHuggingFace name: String) -> String? {
        let parts = name.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        guard let suffix = parts.last, suffix == "weight" || suffix == "bias" else { return nil }
        let stem = parts.dropLast().joined(separator: ".")
        if let g = global.first(where: { $0.value == stem })?.key { return "\(g).\(suffix)" }
        if parts.count >= 4, parts[0] == "model", parts[1] == "layers", let layer = Int(parts[2]) {
            let rest = parts[3..<(parts.count - 1)].joined(separator: ".")
            if let g = block.first(where: { $0.value == rest })?.key { return "blk.\(layer).\(g).\(suffix)" }
        }
        return nil
    }
}
