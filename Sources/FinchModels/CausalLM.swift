import FinchCore
import FinchFormats

/// A decoder-only language model ready to run: Llama family (Llama, SmolLM2, TinyLlama, Mistral,
/// Qwen2) or Phi (Phi-1.5, Phi-2), loaded from any `ModelSource` with weights kept in their stored
/// types. Forward passes take tokens at the cache's next positions and return logits; training
/// passes (forward with saved activations, backward) run through `TrainingPass`.
public final class CausalLM: @unchecked Sendable {
    // @unchecked: weights are immutable after load (a trainable copy's arena changes only between
    // passes); per-sequence state lives in KVCache, per-pass state in TrainingPass.
    public let configuration: ModelConfiguration
    public let path: String
    let embedding: LinearWeight
    let blocks: [DecoderBlock]
    let finalNorm: Norm
    let lmHead: LinearWeight
    let lmHeadBias: ParameterVector?
    /// Whether lm_head is the embedding matrix (SmolLM2, the tiny Llama).
    let tiedEmbeddings: Bool
    let rope: RoPE
    let source: ModelSource
    /// Every parameter as Float32, trainable (full fine-tuning); nil for a loaded model, whose
    /// weights are frozen. See `trainableCopy()`.
    public let trainableParameters: TrainableParameters?

    /// What loading changed about the stored weights (quantized at load, converted, dequantized
    /// from GGUF blocks first), one message per tensor, for logs and `finch inspect`.
    public let loadNotes: [String]
    /// The load settings this model was built with.
    public let loadOptions: ModelLoadOptions

    public var vocabularySize: Int { configuration.vocabSize }
    public var contextLength: Int { configuration.maxPositionEmbeddings }

    /// Loads the weights of `source` (mapped, not copied, where the storage allows).
    /// - Parameter quantizedActivations: multiply block-quantized weights by activations rounded to
    ///   16-bit integers per 32 values (llama.cpp's decomposition, which uses 8 bits): about 2×
    ///   faster decoding, but logits differ from transformers' by up to ≈0.02 on SmolLM2 (the
    ///   default multiplies in Float32 and stays within 5e-5).
    public convenience init(source: ModelSource, quantizedActivations: Bool = false) throws {
        try self.init(source: source, options: ModelLoadOptions(quantizedActivations: quantizedActivations))
    }

    /// Loads the weights of `source`, quantizing the decoder blocks' linear layers or converting the
    /// embedding / lm_head as `options` says (see `ModelLoadOptions`); quantization runs on `pool`.
    public init(source: ModelSource, options: ModelLoadOptions, pool: ThreadPool = .serial) throws {
        let c = source.configuration
        configuration = c
        path = source.path
        self.source = source
        trainableParameters = nil
        if let scaling = c.ropeScalingType {
            throw ModelError(source.path, "RoPE scaling '\(scaling)' is not supported yet")
        }
        let w = WeightLoader(source: source, arithmetic: options.llamaCppArithmetic ? .ggml : options.quantizedActivations ? .quantizedActivations : .float32,
                             options: options, pool: pool)
        loadOptions = options
        let hidden = c.hiddenSize
        embedding = try w.unquantizedWeight("model.embed_tokens.weight", out: c.vocabSize, in: hidden)
        switch c.architecture {
        case .llama, .qwen2:
            blocks = try (0..<c.numHiddenLayers).map { try DecoderBlock.llama(w, c, layer: $0) }
            finalNorm = .rms(try w.vector("model.norm.weight", count: hidden), epsilon: Float(c.normEpsilon))
            lmHeadBias = nil
        case .phi:
            blocks = try (0..<c.numHiddenLayers).map { try DecoderBlock.phi(w, c, layer: $0) }
            finalNorm = .layer(try w.vector("model.final_layernorm.weight", count: hidden),
                               try w.vector("model.final_layernorm.bias", count: hidden), epsilon: Float(c.normEpsilon))
            lmHeadBias = try w.optionalVector("lm_head.bias", count: c.vocabSize)
        }
        if w.has("lm_head.weight") {
            lmHead = try w.unquantizedWeight("lm_head.weight", out: c.vocabSize, in: hidden)
            tiedEmbeddings = false
        } else if c.tieWordEmbeddings || c.architecture != .phi {
            lmHead = embedding // tied embeddings (SmolLM2)
            tiedEmbeddings = true
        } else {
            throw ModelError(source.path, "missing tensor 'lm_head.weight' and the config does not tie embeddings")
        }
        rope = RoPE(headDim: c.headDim, rotaryDim: c.rotaryDim, theta: Float(c.ropeTheta))
        loadNotes = w.notes.messages
    }

    /// A model from parts (`trainableCopy()`).
    init(copying model: CausalLM, embedding: LinearWeight, blocks: [DecoderBlock], finalNorm: Norm, lmHead: LinearWeight,
         lmHeadBias: ParameterVector?, trainableParameters: TrainableParameters?) {
        configuration = model.configuration
        path = model.path
        source = model.source
        rope = model.rope
        self.embedding = embedding
        self.blocks = blocks
        self.finalNorm = finalNorm
        self.lmHead = lmHead
        self.lmHeadBias = lmHeadBias
        self.trainableParameters = trainableParameters
        tiedEmbeddings = model.tiedEmbeddings
        loadNotes = model.loadNotes
        loadOptions = model.loadOptions
    }

    var blockKind: DecoderBlock.Kind { blocks.first?.kind ?? (configuration.architecture == .phi ? .phi : .llama) }

    /// PEFT's names of the linear modules that can take a LoRA adapter, in model order
    /// (`model.layers.0.self_attn.q_proj`, …; Phi: `…self_attn.dense`, `…mlp.fc1`, `…mlp.fc2`).
    /// lm_head is not among them (PEFT's "all-linear" leaves it out too).
    public var linearModuleNames: [String] {
        blocks.indices.flatMap { layer in LinearModule.allCases.compactMap { $0.name(layer: layer, blockKind) } }
    }

    /// The weight of a linear module or embedding by its PEFT/HF tensor name
    /// (`model.layers.0.self_attn.q_proj.weight`, `model.embed_tokens.weight`, `lm_head.weight`),
    /// in the form it is stored after loading; nil for another name.
    public func linearWeight(named name: String) -> LinearWeight? {
        if name == "model.embed_tokens.weight" { return embedding }
        if name == "lm_head.weight" { return lmHead }
        for (layer, block) in blocks.enumerated() {
            for module in LinearModule.allCases where module.name(layer: layer, blockKind).map({ $0 + ".weight" }) == name {
                return block.linear(module)?.weight
            }
        }
        return nil
    }

    /// Bytes of every weight as stored after loading (linear layers, embedding, an untied lm_head,
    /// norms and biases as Float32): what the model itself keeps resident once paged in.
    public var weightByteCount: Int {
        var total = embedding.storedByteCount + (tiedEmbeddings ? 0 : lmHead.storedByteCount) + 4 * (lmHeadBias?.count ?? 0)
        total += finalNorm.parameters.reduce(0) { $0 + 4 * $1.1.count }
        for block in blocks {
            for module in LinearModule.allCases {
                guard let linear = block.linear(module) else { continue }
                total += linear.weight.storedByteCount + 4 * (linear.bias?.count ?? 0)
            }
            total += (block.inputNorm.parameters + (block.postAttentionNorm?.parameters ?? [])).reduce(0) { $0 + 4 * $1.1.count }
        }
        return total
    }

    /// A cache for one sequence of up to `capacity` tokens (default: the context length).
    public func makeCache(capacity: Int? = nil) -> KVCache {
        KVCache(layers: blocks.count, kvHeads: configuration.numKeyValueHeads, headDim: configuration.headDim,
                capacity: min(capacity ?? contextLength, contextLength))
    }

    /// Runs `tokens` at positions `cache.count …` and appends them to the cache.
    /// - Parameter adapter: a LoRA adapter made for this model whose branches are added (no
    ///   dropout), or nil for the base model.
    /// - Returns: logits (vocabSize floats) for the last token, or for every token (T × vocabSize)
    ///   when `allLogits`.
    public func forward(_ tokens: [Int], cache: KVCache, allLogits: Bool = false, adapter: LoRAAdapter? = nil,
                        pool: ThreadPool = ThreadPool()) throws -> [Float] {
        let c = configuration
        guard !tokens.isEmpty else { throw ModelError(path, "forward pass over zero tokens") }
        guard cache.count + tokens.count <= cache.capacity else {
            throw ModelError(path, "\(cache.count + tokens.count) tokens exceed the context of \(cache.capacity)")
        }
        try checkTokens(tokens)
        try adapter?.check(for: self)
        let T = tokens.count, H = c.hiddenSize
        let x = cache.workspace.buffer("x", T * H)
        for (i, token) in tokens.enumerated() { embedding.row(token, into: x + i * H) }
        var positions = [Int](repeating: 0, count: T)
        for i in 0..<T { positions[i] = cache.count + i }
        try positions.withUnsafeBufferPointer { pos in
            for (layer, block) in blocks.enumerated() {
                try block.forward(x, tokens: T, positions: pos.baseAddress!, cache: cache, layer: layer, rope: rope, config: c,
                                  adapter: adapter, pool: pool)
            }
        }
        cache.append(tokens)
        // Only the rows whose logits are wanted go through the final norm and the head.
        let first = allLogits ? 0 : T - 1
        let rows = T - first
        let normed = cache.workspace.buffer("final", rows * H)
        finalNorm.apply(x + first * H, tokens: rows, channels: H, into: normed)
        var logits = [Float](repeating: 0, count: rows * c.vocabSize)
        logits.withUnsafeMutableBufferPointer { out in
            lmHead.forward(normed, tokens: rows, into: out.baseAddress!, pool: pool)
            lmHeadBias?.add(to: out.baseAddress!, rows: rows)
        }
        return logits
    }

    func checkTokens(_ tokens: [Int]) throws {
        for t in tokens where t < 0 || t >= configuration.vocabSize {
            throw ModelError(path, "token id \(t) is outside the vocabulary (0..<\(configuration.vocabSize))")
        }
    }
}
