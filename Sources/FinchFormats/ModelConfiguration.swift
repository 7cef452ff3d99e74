/// The model families Finch can load.
public enum ModelArchitecture: String, Sendable, Codable, CaseIterable {
    /// LlamaForCausalLM and its relatives with the same layout: SmolLM2, TinyLlama, Mistral
    /// (without sliding window).
    case llama
    /// Qwen2ForCausalLM: Llama layout with q/k/v biases.
    case qwen2
    /// PhiForCausalLM (Phi-1.5, Phi-2): parallel attention + MLP, LayerNorm, partial rotary.
    case phi

    /// Hugging Face `model_type` values accepted for each architecture.
    static func fromHuggingFace(modelType: String) -> ModelArchitecture? {
        switch modelType {
        case "llama", "mistral": .llama
        case "qwen2": .qwen2
        case "phi": .phi
        default: nil
        }
    }

    /// GGUF `general.architecture` values accepted for each architecture.
    static func fromGGUF(_ name: String) -> ModelArchitecture? {
        switch name {
        case "llama", "mistral": .llama
        case "qwen2": .qwen2
        case "phi2": .phi
        default: nil
        }
    }

    static let supportedDescription = "llama (Llama, SmolLM2, TinyLlama, Mistral), qwen2, phi (Phi-1.5, Phi-2)"
}

/// Architecture hyperparameters, whichever file they came from (HF `config.json` or GGUF
/// metadata), under the names of Hugging Face's config classes.
public struct ModelConfiguration: Sendable, Equatable, Codable {
    public var architecture: ModelArchitecture
    /// The `model_type` or `general.architecture` string as written in the file.
    public var sourceModelType: String
    public var hiddenSize: Int
    public var intermediateSize: Int
    public var numHiddenLayers: Int
    public var numAttentionHeads: Int
    public var numKeyValueHeads: Int
    public var headDim: Int
    public var vocabSize: Int
    public var maxPositionEmbeddings: Int
    /// RMSNorm epsilon (Llama, Qwen2) or LayerNorm epsilon (Phi).
    public var normEpsilon: Double
    public var ropeTheta: Double
    /// Fraction of each head's dimensions that RoPE rotates (Phi-2: 0.4; others 1).
    public var partialRotaryFactor: Double
    /// `rope_scaling`/`rope_parameters` type other than "default", if any (e.g. "llama3", "linear").
    public var ropeScalingType: String?
    public var tieWordEmbeddings: Bool
    public var hiddenAct: String
    public var bosTokenID: Int?
    public var eosTokenIDs: [Int]
    public var padTokenID: Int?

    /// Dimensions rotated by RoPE per head.
    public var rotaryDim: Int { Int((Double(headDim) * partialRotaryFactor).rounded(.down)) }
}

extension ModelConfiguration {
    /// Reads an HF `config.json` (transformers 4.x and 5.x spellings: `rope_theta` or
    /// `rope_parameters.rope_theta`, top-level or nested `partial_rotary_factor`).
    public init(huggingFaceConfig json: JSONValue, path: String) throws {
        guard case .object = json else { throw FormatError(path, "config.json is not a JSON object") }
        func field(_ key: String) -> JSONValue? {
            guard let v = json[key], !v.isNull else { return nil }
            return v
        }
        func requiredInt(_ key: String) throws -> Int {
            guard let v = field(key) else { throw FormatError(path, "missing required field '\(key)'") }
            guard let i = v.intValue, i > 0 else { throw FormatError(path, "field '\(key)' must be a positive integer") }
            return i
        }
        func optionalInt(_ key: String) throws -> Int? {
            guard let v = field(key) else { return nil }
            guard let i = v.intValue else { throw FormatError(path, "field '\(key)' must be an integer") }
            return i
        }
        func optionalDouble(_ key: String, in object: JSONValue? = nil) throws -> Double? {
            guard let v = (object ?? json)[key], !v.isNull else { return nil }
            guard let d = v.doubleValue else { throw FormatError(path, "field '\(key)' must be a number") }
            return d
        }
        guard let modelType = field("model_type")?.stringValue else {
            throw FormatError(path, "missing required field 'model_type'")
        }
        guard let architecture = ModelArchitecture.fromHuggingFace(modelType: modelType) else {
            throw FormatError(path, "unsupported model_type '\(modelType)'; supported: \(ModelArchitecture.supportedDescription)")
        }
        self.architecture = architecture
        sourceModelType = modelType
        hiddenSize = try requiredInt("hidden_size")
        intermediateSize = try requiredInt("intermediate_size")
        numHiddenLayers = try requiredInt("num_hidden_layers")
        numAttentionHeads = try requiredInt("num_attention_heads")
        vocabSize = try requiredInt("vocab_size")
        numKeyValueHeads = try optionalInt("num_key_value_heads") ?? numAttentionHeads
        headDim = try optionalInt("head_dim") ?? hiddenSize / numAttentionHeads
        maxPositionEmbeddings = try optionalInt("max_position_embeddings") ?? 2048
        guard numAttentionHeads % numKeyValueHeads == 0 else {
            throw FormatError(path, "num_attention_heads (\(numAttentionHeads)) is not a multiple of num_key_value_heads (\(numKeyValueHeads))")
        }
        switch architecture {
        case .phi: normEpsilon = try optionalDouble("layer_norm_eps") ?? 1e-5
        case .llama, .qwen2: normEpsilon = try optionalDouble("rms_norm_eps") ?? 1e-6
        }
        // transformers 5 nests RoPE settings in `rope_parameters`; 4.x has `rope_theta` and
        // `rope_scaling` at top level. Accept both; nested wins.
        let ropeParameters = field("rope_parameters")
        let ropeScaling = field("rope_scaling")
        ropeTheta = try optionalDouble("rope_theta", in: ropeParameters) ?? optionalDouble("rope_theta") ?? 10000
        partialRotaryFactor = try optionalDouble("partial_rotary_factor", in: ropeParameters)
            ?? optionalDouble("partial_rotary_factor") ?? 1
        guard partialRotaryFactor > 0, partialRotaryFactor <= 1 else {
            throw FormatError(path, "partial_rotary_factor \(partialRotaryFactor) must be in (0, 1]")
        }
        let scalingType = (ropeParameters?["rope_type"] ?? ropeScaling?["rope_type"] ?? ropeScaling?["type"])?.stringValue
        ropeScalingType = scalingType == "default" ? nil : scalingType
        tieWordEmbeddings = field("tie_word_embeddings")?.boolValue ?? false
        hiddenAct = field("hidden_act")?.stringValue ?? (architecture == .phi ? "gelu_new" : "silu")
        bosTokenID = try optionalInt("bos_token_id")
        if let eos = field("eos_token_id") {
            if let id = eos.intValue {
                eosTokenIDs = [id]
            } else if let ids = eos.arrayValue?.compactMap(\.intValue) {
                eosTokenIDs = ids
            } else {
                throw FormatError(path, "field 'eos_token_id' must be an integer or a list of integers")
            }
        } else {
            eosTokenIDs = []
        }
        padTokenID = try optionalInt("pad_token_id")
    }

    /// Reads the hyperparameters from GGUF metadata, as transformers' GGUF loader maps them
    /// (`../shared/reference/formats.md` §4.4, §7). `hasOutputTensor` is whether the file has
    /// `output.weight` (without it the embeddings are tied).
    public init(gguf: GGUFFile, hasOutputTensor: Bool) throws {
        let path = gguf.path
        guard let archName = gguf["general.architecture"]?.stringValue else {
            throw FormatError(path, "missing metadata 'general.architecture'")
        }
        guard let architecture = ModelArchitecture.fromGGUF(archName) else {
            throw FormatError(path, "unsupported general.architecture '\(archName)'; supported: llama, mistral, qwen2, phi2")
        }
        self.architecture = architecture
        sourceModelType = archName
        func int(_ key: String) throws -> Int {
            guard let value = gguf["\(archName).\(key)"] else { throw FormatError(path, "missing metadata '\(archName).\(key)'") }
            guard let i = value.intValue, i > 0 else { throw FormatError(path, "metadata '\(archName).\(key)' must be a positive integer") }
            return i
        }
        func optionalInt(_ key: String) -> Int? { gguf["\(archName).\(key)"]?.intValue }
        func optionalDouble(_ key: String) -> Double? { gguf["\(archName).\(key)"]?.doubleValue }
        hiddenSize = try int("embedding_length")
        intermediateSize = try int("feed_forward_length")
        numHiddenLayers = try int("block_count")
        numAttentionHeads = try int("attention.head_count")
        numKeyValueHeads = optionalInt("attention.head_count_kv") ?? numAttentionHeads
        maxPositionEmbeddings = try int("context_length")
        guard numAttentionHeads % numKeyValueHeads == 0 else {
            throw FormatError(path, "attention.head_count (\(numAttentionHeads)) is not a multiple of head_count_kv (\(numKeyValueHeads))")
        }
        let ropeDims = optionalInt("rope.dimension_count")
        headDim = optionalInt("attention.key_length") ?? (architecture == .phi ? nil : ropeDims) ?? hiddenSize / numAttentionHeads
        if architecture == .phi, let ropeDims {
            partialRotaryFactor = Double(ropeDims) / Double(headDim)
        } else {
            partialRotaryFactor = 1
        }
        normEpsilon = architecture == .phi
            ? (optionalDouble("attention.layer_norm_epsilon") ?? 1e-5)
            : (optionalDouble("attention.layer_norm_rms_epsilon") ?? 1e-6)
        ropeTheta = optionalDouble("rope.freq_base") ?? 10000
        ropeScalingType = gguf["\(archName).rope.scaling.type"]?.stringValue.flatMap { $0 == "none" ? nil : $0 }
        let tokenCount = gguf["tokenizer.ggml.tokens"]?.arrayValue?.count
        guard let vocab = optionalInt("vocab_size") ?? tokenCount else {
            throw FormatError(path, "neither '\(archName).vocab_size' nor 'tokenizer.ggml.tokens' gives the vocabulary size")
        }
        vocabSize = vocab
        tieWordEmbeddings = !hasOutputTensor
        hiddenAct = architecture == .phi ? "gelu_new" : "silu"
        bosTokenID = gguf["tokenizer.ggml.bos_token_id"]?.intValue
        eosTokenIDs = gguf["tokenizer.ggml.eos_token_id"]?.intValue.map { [$0] } ?? []
        padTokenID = gguf["tokenizer.ggml.padding_token_id"]?.intValue
    }
}
