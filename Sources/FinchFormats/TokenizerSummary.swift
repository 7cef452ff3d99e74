/// What `finch inspect` reports about a model's tokenizer, read from the files without building
/// the tokenizer itself.
public struct TokenizerSummary: Sendable, Codable, Equatable {
    /// A special (control) token.
    public struct SpecialToken: Sendable, Codable, Equatable {
        public var id: Int
        public var content: String

        public init(id: Int, content: String) {
            self.id = id
            self.content = content
        }
    }

    /// `byte-level BPE`, `SentencePiece BPE`, or the tokenizer.json model type when it is neither.
    public var kind: String
    /// GGUF `tokenizer.ggml.model`/`pre`, or tokenizer.json's model and pre-tokenizer types.
    public var detail: String
    public var vocabularySize: Int?
    public var specialTokens: [SpecialToken]
    public var bosToken: String?
    public var eosToken: String?
    public var hasChatTemplate: Bool

    /// Reads the tokenizer description of `source`.
    public init(source: ModelSource) throws {
        switch source.tokenizer {
        case .gguf:
            guard let gguf = source.gguf else { throw FormatError(source.path, "GGUF tokenizer without a GGUF file") }
            try self.init(gguf: gguf)
        case let .huggingFace(tokenizerJSON, tokenizerConfig, chatTemplate, _):
            try self.init(tokenizerJSON: tokenizerJSON, tokenizerConfig: tokenizerConfig, chatTemplate: chatTemplate)
        }
    }

    init(gguf: GGUFFile) throws {
        let model = gguf["tokenizer.ggml.model"]?.stringValue
        let pre = gguf["tokenizer.ggml.pre"]?.stringValue
        switch model {
        case "gpt2": kind = "byte-level BPE"
        case "llama": kind = "SentencePiece BPE"
        case nil: kind = "none"
        case let other?: kind = other
        }
        detail = "tokenizer.ggml.model=\(model ?? "absent")" + (pre.map { ", pre=\($0)" } ?? "")
        let tokens = gguf["tokenizer.ggml.tokens"]?.arrayValue?.map { $0.stringValue ?? "" } ?? []
        vocabularySize = tokens.isEmpty ? nil : tokens.count
        let types = gguf["tokenizer.ggml.token_type"]?.arrayValue?.map { $0.intValue ?? 0 } ?? []
        // Token type 3 is CONTROL: transformers turns these into special added tokens.
        specialTokens = zip(tokens.indices, types).filter { $0.1 == 3 }.map { SpecialToken(id: $0.0, content: tokens[$0.0]) }
        func token(_ key: String) -> String? {
            guard let id = gguf[key]?.intValue, tokens.indices.contains(id) else { return nil }
            return tokens[id]
        }
        bosToken = token("tokenizer.ggml.bos_token_id")
        eosToken = token("tokenizer.ggml.eos_token_id")
        hasChatTemplate = gguf["tokenizer.chat_template"]?.stringValue != nil
    }

    init(tokenizerJSON: String?, tokenizerConfig: String?, chatTemplate: String?) throws {
        var config: JSONValue?
        if let tokenizerConfig {
            config = try JSONValue.parse(contentsOf: tokenizerConfig)
        }
        func tokenString(_ value: JSONValue?) -> String? {
            value?.stringValue ?? value?["content"]?.stringValue
        }
        bosToken = tokenString(config?["bos_token"])
        eosToken = tokenString(config?["eos_token"])
        hasChatTemplate = chatTemplate != nil || !(config?["chat_template"]?.isNull ?? true)
        guard let tokenizerJSON else {
            kind = "none"
            detail = "no tokenizer.json"
            vocabularySize = nil
            specialTokens = []
            return
        }
        let json = try JSONValue.parse(contentsOf: tokenizerJSON)
        let modelType = json["model"]?["type"]?.stringValue ?? "unknown"
        let preType = json["pre_tokenizer"]?["type"]?.stringValue
        let decoderType = json["decoder"]?["type"]?.stringValue
        let byteFallback = json["model"]?["byte_fallback"]?.boolValue ?? false
        let preTypes = ([preType] + (json["pre_tokenizer"]?["pretokenizers"]?.arrayValue?.map { $0["type"]?.stringValue } ?? [])).compactMap { $0 }
        if modelType == "BPE", preTypes.contains("ByteLevel") || decoderType == "ByteLevel" {
            kind = "byte-level BPE"
        } else if modelType == "BPE", byteFallback || preTypes.contains("Metaspace") || decoderType == "Sequence" {
            kind = "SentencePiece BPE"
        } else {
            kind = modelType
        }
        detail = "tokenizer.json model=\(modelType)" + (preTypes.isEmpty ? "" : ", pre_tokenizer=\(preTypes.joined(separator: "+"))")
        let vocab = json["model"]?["vocab"]?.objectValue?.count
        let added = json["added_tokens"]?.arrayValue ?? []
        var special: [SpecialToken] = []
        var maxAddedID = -1
        for token in added {
            guard let id = token["id"]?.intValue, let content = token["content"]?.stringValue else { continue }
            maxAddedID = max(maxAddedID, id)
            if token["special"]?.boolValue == true { special.append(SpecialToken(id: id, content: content)) }
        }
        specialTokens = special.sorted { $0.id < $1.id }
        vocabularySize = vocab.map { max($0, maxAddedID + 1) }
    }
}
