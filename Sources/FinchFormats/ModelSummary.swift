/// What `finch inspect` prints: the architecture, sizes and storage of a model file or folder.
public struct ModelSummary: Sendable, Codable {
    public struct StorageCount: Sendable, Codable, Equatable {
        public var type: String
        public var tensors: Int
        public var bytes: Int
    }

    public var path: String
    public var format: String
    public var architecture: String
    public var modelType: String
    public var layers: Int
    public var hiddenSize: Int
    public var intermediateSize: Int
    public var attentionHeads: Int
    public var keyValueHeads: Int
    public var headDim: Int
    public var rotaryDim: Int
    public var vocabSize: Int
    public var contextLength: Int
    public var ropeTheta: Double
    public var normEpsilon: Double
    public var tiedEmbeddings: Bool
    /// Elements of every stored tensor; tied embeddings are stored, and so counted, once. A
    /// bitsandbytes-quantized weight counts its original `[out, in]` elements, and its state
    /// tensors (absmax, quant maps, SCB, …) are not counted.
    public var parameters: Int
    public var tensorCount: Int
    public var storage: [StorageCount]
    /// How the checkpoint was quantized before saving (config.json's `quantization_config`) and
    /// how many weights are stored that way; nil when it was not.
    public var quantization: String?
    public var tokenizer: TokenizerSummary
    /// Per-tensor SHA-256 of the Float32 values in HF layout (little-endian), when requested.
    public var checksums: [TensorChecksum]?

    public struct TensorChecksum: Sendable, Codable, Equatable {
        public var name: String
        public var type: String
        public var shape: [Int]
        public var sha256: String

        public init(name: String, type: String, shape: [Int], sha256: String) {
            self.name = name
            self.type = type
            self.shape = shape
            self.sha256 = sha256
        }
    }

    public init(source: ModelSource) throws {
        let c = source.configuration
        path = source.path
        format = source.format.rawValue
        architecture = c.architecture.rawValue
        modelType = c.sourceModelType
        layers = c.numHiddenLayers
        hiddenSize = c.hiddenSize
        intermediateSize = c.intermediateSize
        attentionHeads = c.numAttentionHeads
        keyValueHeads = c.numKeyValueHeads
        headDim = c.headDim
        rotaryDim = c.rotaryDim
        vocabSize = c.vocabSize
        contextLength = c.maxPositionEmbeddings
        ropeTheta = c.ropeTheta
        normEpsilon = c.normEpsilon
        tiedEmbeddings = c.tieWordEmbeddings
        var parameters = 0, quantizedWeights = 0
        for t in source.tensors where !source.isBitsAndBytesState(t.name) {
            if let weight = try source.bitsAndBytesWeight(t.name) {
                parameters += weight.shape.reduce(1, *)
                quantizedWeights += 1
            } else {
                parameters += t.elementCount
            }
        }
        self.parameters = parameters
        quantization = source.quantization.map { quantizedWeights > 0 ? "\($0.summary); \(quantizedWeights) quantized weights" : $0.summary }
        tensorCount = source.tensors.count
        var counts: [TensorStorage: (Int, Int)] = [:]
        for t in source.tensors {
            let (n, b) = counts[t.storage] ?? (0, 0)
            counts[t.storage] = (n + 1, b + t.byteCount)
        }
        storage = counts.map { StorageCount(type: $0.key.name, tensors: $0.value.0, bytes: $0.value.1) }
            .sorted { ($0.tensors, $1.type) > ($1.tensors, $0.type) }
        tokenizer = try TokenizerSummary(source: source)
    }

    /// The human-readable report.
    public var text: String {
        var lines: [String] = []
        func add(_ key: String, _ value: String) { lines.append(key + String(repeating: " ", count: max(1, 18 - key.count)) + value) }
        add("path", path)
        add("format", format)
        add("architecture", architecture + (modelType != architecture ? " (\(modelType))" : ""))
        add("layers", "\(layers)")
        add("hidden size", "\(hiddenSize)")
        add("intermediate size", "\(intermediateSize)")
        add("heads", "\(attentionHeads) attention / \(keyValueHeads) key-value")
        add("head dim", "\(headDim) (rotary \(rotaryDim))")
        add("vocab", "\(vocabSize)")
        add("context length", "\(contextLength)")
        add("rope theta", formatNumber(ropeTheta))
        add("norm epsilon", "\(normEpsilon)")
        add("embeddings", tiedEmbeddings ? "tied (lm_head = embed_tokens)" : "untied")
        add("parameters", "\(parameters) (\(formatMillions(parameters)))")
        add("tensors", "\(tensorCount): " + storage.map { "\($0.type)×\($0.tensors) (\(formatBytes($0.bytes)))" }.joined(separator: ", "))
        if let quantization { add("quantization", quantization) }
        add("tokenizer", "\(tokenizer.kind) [\(tokenizer.detail)]" + (tokenizer.vocabularySize.map { ", \($0) tokens" } ?? ""))
        add("bos / eos", "\(tokenizer.bosToken ?? "none") / \(tokenizer.eosToken ?? "none")")
        let specials = tokenizer.specialTokens.map { "\($0.content)=\($0.id)" }
        add("special tokens", specials.isEmpty ? "none" : "\(specials.count): " + specials.joined(separator: " "))
        add("chat template", tokenizer.hasChatTemplate ? "present" : "absent")
        for c in checksums ?? [] {
            lines.append("\(c.sha256)  \(c.name) \(c.type) \(c.shape)")
        }
        return lines.joined(separator: "\n")
    }
}

private func formatMillions(_ n: Int) -> String {
    let m = Double(n) / 1e6
    return m >= 1000 ? "\(round1(m / 1000))B" : "\(round1(m))M"
}

private func round1(_ x: Double) -> String {
    let r = (x * 10).rounded() / 10
    return r == r.rounded() ? "\(Int(r)).0" : "\(r)"
}

private func formatNumber(_ x: Double) -> String {
    x == x.rounded() && abs(x) < 1e15 ? "\(Int(x))" : "\(x)"
}

private func formatBytes(_ n: Int) -> String {
    if n >= 1 << 20 { return "\(round1(Double(n) / 1_048_576)) MiB" }
    if n >= 1 << 10 { return "\(round1(Double(n) / 1024)) KiB" }
    return "\(n) B"
}
