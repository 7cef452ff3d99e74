import FinchFormats

extension Tokenizer {
    /// `tokenizer.json` and `tokenizer_config.json` for the byte-level BPE tokenizer a GGUF file
    /// describes (`tokenizer.ggml.model` gpt2: SmolLM2, Qwen2, Llama-3 style), built the way
    /// transformers converts it when it loads the GGUF (`Tokenizer(gguf:)` reads it the same way):
    /// vocabulary re-spelled through the byte alphabet, merges, CONTROL tokens as special added
    /// tokens, the pre-tokenizer split for `tokenizer.ggml.pre`, BOS/EOS post-processing.
    /// - Throws: `TokenizerError` for SentencePiece-style (`llama`) GGUF tokenizers, not written yet.
    public static func huggingFaceFiles(gguf: GGUFFile, modelMaxLength: Int) throws -> (tokenizer: JSONValue, config: JSONValue) {
        let path = gguf.path
        guard gguf["tokenizer.ggml.model"]?.stringValue == "gpt2" else {
            throw TokenizerError(path, "writing tokenizer.json is supported for byte-level BPE (gpt2) GGUF tokenizers only so far")
        }
        let tokenizer = try Tokenizer(gguf: gguf)
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
        func string(_ s: String?) -> JSONValue { s.map { .string($0) } ?? .null }
        var config: [(String, JSONValue)] = [
            ("tokenizer_class", .string("PreTrainedTokenizerFast")), ("bos_token", string(tokenizer.bosToken)),
            ("eos_token", string(tokenizer.eosToken)), ("unk_token", string(tokenizer.unknownToken)),
            ("pad_token", string(tokenizer.padToken)), ("clean_up_tokenization_spaces", .bool(false)),
            ("model_max_length", .number(String(modelMaxLength))),
        ]
        if let template = tokenizer.chatTemplate { config.append(("chat_template", .string(template))) }
        return (json, .object(config))
    }
}
