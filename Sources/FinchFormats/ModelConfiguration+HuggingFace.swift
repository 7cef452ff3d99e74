/// `config.json` for a model whose source has none (a GGUF file), with transformers 5's key names.
extension ModelConfiguration {
    public func huggingFaceConfig(dtype: String) -> JSONValue {
        func int(_ x: Int) -> JSONValue { .number(String(x)) }
        func num(_ x: Double) -> JSONValue { .number("\(x)") }
        let (architecture, modelType): (String, String) = switch architecture {
        case .llama: ("LlamaForCausalLM", "llama")
        case .qwen2: ("Qwen2ForCausalLM", "qwen2")
        case .phi: ("PhiForCausalLM", "phi")
        }
        var m: [(String, JSONValue)] = [("architectures", .array([.string(architecture)])), ("model_type", .string(modelType))]
        m += [("vocab_size", int(vocabSize)), ("hidden_size", int(hiddenSize)), ("intermediate_size", int(intermediateSize))]
        m += [("num_hidden_layers", int(numHiddenLayers)), ("num_attention_heads", int(numAttentionHeads))]
        m += [("num_key_value_heads", int(numKeyValueHeads)), ("max_position_embeddings", int(maxPositionEmbeddings))]
        m += [("hidden_act", .string(hiddenAct)), ("tie_word_embeddings", .bool(tieWordEmbeddings))]
        m += [("bos_token_id", bosTokenID.map(int) ?? .null)]
        m += [("eos_token_id", eosTokenIDs.count == 1 ? int(eosTokenIDs[0]) : .array(eosTokenIDs.map(int)))]
        m += [("pad_token_id", padTokenID.map(int) ?? .null)]
        switch self.architecture {
        case .phi:
            m += [("layer_norm_eps", num(normEpsilon)), ("rope_theta", num(ropeTheta)), ("partial_rotary_factor", num(partialRotaryFactor))]
            m += [("qk_layernorm", .bool(false)), ("resid_pdrop", num(0)), ("embd_pdrop", num(0)), ("attention_dropout", num(0))]
        case .llama, .qwen2:
            m += [("rms_norm_eps", num(normEpsilon)), ("rope_theta", num(ropeTheta)), ("head_dim", int(headDim))]
            m += [("attention_bias", .bool(self.architecture == .qwen2)), ("mlp_bias", .bool(false)), ("attention_dropout", num(0))]
        }
        m += [("dtype", .string(dtype))]
        return .object(m)
    }
}
