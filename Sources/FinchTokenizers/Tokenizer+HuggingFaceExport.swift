import FinchFormats

extension Tokenizer {
    /// `tokenizer.json` and `tokenizer_config.json` for the tokenizer a GGUF file describes, built
    /// the way transformers 5.24 converts it when it loads the GGUF (`Tokenizer(gguf:)` reads it the
    /// same way):
    /// - `gpt2` (byte-level BPE: SmolLM2, Qwen2, Llama-3 style): vocabulary re-spelled through the
    ///   byte alphabet, the file's merges, the pre-tokenizer split for `tokenizer.ggml.pre`;
    /// - `llama` (SentencePiece-style BPE: Llama-2, TinyLlama, Mistral): the pieces as they are,
    ///   merges from the file or derived from the scores, byte fallback, Metaspace (Phi-3: a
    ///   normalizer instead), the SentencePiece decoder;
    /// - both: CONTROL tokens as special added tokens, BOS/EOS post-processing as the file asks.
    /// - Throws: `TokenizerError` for other tokenizer models.
    public static func huggingFaceFiles(gguf: GGUFFile, modelMaxLength: Int) throws -> (tokenizer: JSONValue, config: JSONValue) {
        let path = gguf.path
        let kind = gguf["tokenizer.ggml.model"]?.stringValue
        guard kind == "gpt2" || kind == "llama" else {
            throw TokenizerError(path, "writing tokenizer.json is supported for gpt2 (byte-level BPE) and llama (SentencePiece-style) GGUF tokenizers, not '\(kind ?? "none")'")
        }
        let tokenizer = try Tokenizer(gguf: gguf)
        if kind == "llama" { return try sentencePieceFiles(gguf: gguf, tokenizer: tokenizer, modelMaxLength: modelMaxLength) }
        let tokens = (gguf["tokenizer.ggml.tokens"]?.arrayValue ?? []).compactMap(\.stringValue)
        let merges = (gguf["tokenizer.ggml.merges"]?.arrayValue ?? []).compactMap(\.stringValue)
        var vocab: [(String, JSONValue)] = []
        var seen = Set<String>()
        for (i, token) in tokens.enumerated() {
            let spelled = token.unicodeScalars.allSatisfy { ByteLevelAlphabet.byte(of: $0) != nil } ? token : ByteLevelAlphabet.encode(token.utf8)
            if seen.insert(spelled).inserted { vocab.append((spelled, .number(String(i)))) }
        }
        let added: [JSONValue] = tokenizer.addedTokens.sorted { $0.id < $1.id }.map { t in
            .object([("id", .number(String(t.id))), ("content", .string(t.content)), ("single_word", .bool(t.singleWord)),
                     ("lstrip", .bool(t.lstrip)), ("rstrip", .bool(t.rstrip)), ("normalized", .bool(t.normalized)),
                     ("special", .bool(t.special))])
        }
        let byteLevel: JSONValue = .object([("type", .string("ByteLevel")), ("add_prefix_space", .bool(false)),
                                            ("trim_offsets", .bool(true)), ("use_regex", .bool(true))])
        let preTokenizer: JSONValue
        if let split = ggufSplits[gguf["tokenizer.ggml.pre"]?.stringValue ?? "default"] {
            preTokenizer = .object([("type", .string("Sequence")), ("pretokenizers", .array([
                .object([("type", .string("Split")), ("pattern", .object([("Regex", .string(split))])),
                         ("behavior", .string("Isolated")), ("invert", .bool(false))]),
                .object([("type", .string("ByteLevel")), ("add_prefix_space", .bool(false)), ("trim_offsets", .bool(false)),
                         ("use_regex", .bool(false))]),
            ]))])
        } else {
            preTokenizer = byteLevel
        }
        // BOS/EOS as the GGUF asks (add_bos_token / add_eos_token), through TemplateProcessing.
        var single: [JSONValue] = [], specials: [(String, JSONValue)] = []
        func special(_ token: String?) {
            guard let token, let id = tokenizer.id(of: token) else { return }
            single.append(.object([("SpecialToken", .object([("id", .string(token)), ("type_id", .number("0"))]))]))
            if !specials.contains(where: { $0.0 == token }) {
                specials.append((token, .object([("id", .string(token)), ("ids", .array([.number(String(id))])),
                                                 ("tokens", .array([.string(token)]))])))
            }
        }
        if gguf["tokenizer.ggml.add_bos_token"]?.boolValue == true { special(tokenizer.bosToken) }
        single.append(.object([("Sequence", .object([("id", .string("A")), ("type_id", .number("0"))]))]))
        if gguf["tokenizer.ggml.add_eos_token"]?.boolValue == true { special(tokenizer.eosToken) }
        var pair = single
        pair.append(.object([("Sequence", .object([("id", .string("B")), ("type_id", .number("1"))]))]))
        let json: JSONValue = .object([
            ("version", .string("1.0")), ("truncation", .null), ("padding", .null), ("added_tokens", .array(added)),
            ("normalizer", .null), ("pre_tokenizer", preTokenizer),
            ("post_processor", .object([("type", .string("TemplateProcessing")), ("single", .array(single)), ("pair", .array(pair)),
                                        ("special_tokens", .object(specials))])),
            ("decoder", .object([("type", .string("ByteLevel")), ("add_prefix_space", .bool(true)), ("trim_offsets", .bool(true)),
                                 ("use_regex", .bool(true))])),
            ("model", .object([("type", .string("BPE")), ("dropout", .null), ("unk_token", .null), ("continuing_subword_prefix", .null),
                               ("end_of_word_suffix", .null), ("fuse_unk", .bool(false)), ("byte_fallback", .bool(false)),
                               ("ignore_merges", .bool(false)), ("vocab", .object(vocab)),
                               ("merges", .array(merges.map { .string($0) }))])),
        ])
        return (json, tokenizerConfig(tokenizer, modelMaxLength: modelMaxLength))
    }

    /// The `llama` (SentencePiece-style) half of `huggingFaceFiles(gguf:modelMaxLength:)`.
    private static func sentencePieceFiles(gguf: GGUFFile, tokenizer: Tokenizer, modelMaxLength: Int) throws -> (tokenizer: JSONValue, config: JSONValue) {
        let tokens = (gguf["tokenizer.ggml.tokens"]?.arrayValue ?? []).compactMap(\.stringValue)
        var vocab: [(String, JSONValue)] = []
        var seen = Set<String>()
        for (i, token) in tokens.enumerated() where seen.insert(token).inserted { vocab.append((token, .number(String(i)))) }
        // The merges the tokenizer was built with, in rank order.
        let merges: [JSONValue] = tokenizer.model.merges.sorted { $0.value.rank < $1.value.rank }.map { key, _ in
            .string(tokenizer.model.tokens[Int(key >> 32)] + " " + tokenizer.model.tokens[Int(UInt32(truncatingIfNeeded: key))])
        }
        let added: [JSONValue] = tokenizer.addedTokens.sorted { $0.id < $1.id }.map { t in
            .object([("id", .number(String(t.id))), ("content", .string(t.content)), ("single_word", .bool(t.singleWord)),
                     ("lstrip", .bool(t.lstrip)), ("rstrip", .bool(t.rstrip)), ("normalized", .bool(t.normalized)),
                     ("special", .bool(t.special))])
        }
        let phi3 = gguf["general.architecture"]?.stringValue == "phi3"
        let normalizer: JSONValue = phi3 ? .object([("type", .string("Sequence")), ("normalizers", .array([
            .object([("type", .string("Prepend")), ("prepend", .string("▁"))]),
            .object([("type", .string("Replace")), ("pattern", .object([("String", .string(" "))])), ("content", .string("▁"))]),
        ]))]) : .null
        let preTokenizer: JSONValue = phi3 ? .null : .object([("type", .string("Metaspace")), ("replacement", .string("▁")),
                                                              ("prepend_scheme", .string("first")), ("split", .bool(false))])
        // BOS/EOS through TemplateProcessing; the pair template repeats them with type id 1, as transformers writes it.
        let addBOS = gguf["tokenizer.ggml.add_bos_token"]?.boolValue ?? true
        let addEOS = gguf["tokenizer.ggml.add_eos_token"]?.boolValue ?? false
        func special(_ token: String?, _ typeID: Int) -> JSONValue? {
            guard let token else { return nil }
            return .object([("SpecialToken", .object([("id", .string(token)), ("type_id", .number(String(typeID)))]))])
        }
        func sequence(_ name: String, _ typeID: Int) -> JSONValue {
            .object([("Sequence", .object([("id", .string(name)), ("type_id", .number(String(typeID)))]))])
        }
        var single: [JSONValue] = [], pair: [JSONValue] = []
        var specials: [(String, JSONValue)] = []
        func register(_ token: String?) {
            guard let token, let id = tokenizer.id(of: token), !specials.contains(where: { $0.0 == token }) else { return }
            specials.append((token, .object([("id", .string(token)), ("ids", .array([.number(String(id))])), ("tokens", .array([.string(token)]))])))
        }
        for typeID in 0...1 {
            var items: [JSONValue] = []
            if addBOS, let item = special(tokenizer.bosToken, typeID) { items.append(item); register(tokenizer.bosToken) }
            items.append(sequence(typeID == 0 ? "A" : "B", typeID))
            if addEOS, let item = special(tokenizer.eosToken, typeID) { items.append(item); register(tokenizer.eosToken) }
            if typeID == 0 { single = items }
            pair += items
        }
        let json: JSONValue = .object([
            ("version", .string("1.0")), ("truncation", .null), ("padding", .null), ("added_tokens", .array(added)),
            ("normalizer", normalizer), ("pre_tokenizer", preTokenizer),
            ("post_processor", .object([("type", .string("TemplateProcessing")), ("single", .array(single)), ("pair", .array(pair)),
                                        ("special_tokens", .object(specials))])),
            ("decoder", .object([("type", .string("Sequence")), ("decoders", .array([
                .object([("type", .string("Replace")), ("pattern", .object([("String", .string("▁"))])), ("content", .string(" "))]),
                .object([("type", .string("ByteFallback"))]),
                .object([("type", .string("Fuse"))]),
                .object([("type", .string("Strip")), ("content", .string(" ")), ("start", .number("1")), ("stop", .number("0"))]),
            ]))])),
            ("model", .object([("type", .string("BPE")), ("dropout", .null),
                               ("unk_token", tokenizer.unknownToken.map { .string($0) } ?? .null), ("continuing_subword_prefix", .null),
                               ("end_of_word_suffix", .null), ("fuse_unk", .bool(true)), ("byte_fallback", .bool(true)),
                               ("ignore_merges", .bool(false)), ("vocab", .object(vocab)), ("merges", .array(merges))])),
        ])
        return (json, tokenizerConfig(tokenizer, modelMaxLength: modelMaxLength))
    }

    /// tokenizer_config.json: the special tokens, no clean-up, the context length and chat template.
    static func tokenizerConfig(_ tokenizer: Tokenizer, modelMaxLength: Int) -> JSONValue {
        func string(_ s: String?) -> JSONValue { s.map { .string($0) } ?? .null }
        var config: [(String, JSONValue)] = [
            ("tokenizer_class", .string("PreTrainedTokenizerFast")), ("bos_token", string(tokenizer.bosToken)),
            ("eos_token", string(tokenizer.eosToken)), ("unk_token", string(tokenizer.unknownToken)),
            ("pad_token", string(tokenizer.padToken)), ("clean_up_tokenization_spaces", .bool(false)),
            ("model_max_length", .number(String(modelMaxLength))),
        ]
        if let template = tokenizer.chatTemplate { config.append(("chat_template", .string(template))) }
        return .object(config)
    }
}
