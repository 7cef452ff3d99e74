import FinchFormats

extension Tokenizer {
    /// The `tokenizer.*` GGUF metadata for this byte-level BPE tokenizer (`tokenizer.ggml.model`
    /// gpt2; formats.md §4.5), as llama.cpp's `convert_hf_to_gguf.py` writes it for a Hugging Face
    /// folder:
    /// - `tokens`: one entry per id up to `vocabularySize` (the embedding's rows): the vocabulary in
    ///   its byte-alphabet spelling, added tokens as their content, and `[PAD<id>]` for ids neither
    ///   has; `token_type` CONTROL (3) for special added tokens, USER_DEFINED (4) for other added
    ///   tokens, UNUSED (5) for the padding ids, NORMAL (1) otherwise;
    /// - `merges` in rank order as "left right";
    /// - `pre`: the llama.cpp pre-tokenizer whose split rules equal this tokenizer's (`gpt-2`,
    ///   `smollm` for individual digits before GPT-2's split, `llama-bpe`, `qwen2`). llama.cpp
    ///   identifies it by hashing the tokenization of a probe text; matching the structure gives
    ///   the same answer for the pre-tokenizers Finch reads;
    /// - BOS/EOS/UNK/PAD ids, `add_bos_token`/`add_eos_token` from the post-processor, and the
    ///   chat template.
    /// - Throws: `TokenizerError` for SentencePiece-style tokenizers (their scores are not in
    ///   tokenizer.json: export from the GGUF base instead, whose metadata is copied) and for a
    ///   pre-tokenizer llama.cpp has no equivalent of.
    public func ggufMetadata(vocabularySize: Int) throws -> [(String, GGUFValue)] {
        let pre: String
        switch preTokenizer {
        case .byteLevel(_, useRegex: true)?:
            pre = "gpt-2"
        case .sequence(let steps)?:
            switch (steps.first, steps.last, steps.count) {
            case (.digits(individual: true)?, .byteLevel(_, useRegex: true)?, 2): pre = "smollm"
            case (.split(.llama3(maxDigits: 3), .isolated, invert: false)?, .byteLevel(_, useRegex: false)?, 2): pre = "llama-bpe"
            case (.split(.llama3(maxDigits: 1), .isolated, invert: false)?, .byteLevel(_, useRegex: false)?, 2): pre = "qwen2"
            case (.split(.gpt2, .isolated, invert: false)?, .byteLevel(_, useRegex: false)?, 2): pre = "gpt-2"
            default: throw unsupportedPreTokenizer()
            }
        default:
            if model.byteFallback || decoderIsSentencePiece {
                throw TokenizerError(path, "writing GGUF tokenizer metadata from a SentencePiece-style tokenizer.json is not supported (its piece scores are not in the file); export from the model's GGUF file with --adapter, whose tokenizer metadata is copied as it is")
            }
            throw unsupportedPreTokenizer()
        }
        guard vocabularySize >= self.vocabularySize else {
            throw TokenizerError(path, "the tokenizer has \(self.vocabularySize) ids but the model's embedding only \(vocabularySize) rows")
        }
        var tokens: [GGUFValue] = [], types: [GGUFValue] = []
        tokens.reserveCapacity(vocabularySize)
        types.reserveCapacity(vocabularySize)
        for id in 0..<vocabularySize {
            if let added = addedByID[Int32(id)] {
                tokens.append(.string(added.content))
                types.append(.int32(added.special || Self.looksSpecial(added.content) ? 3 : 4))
            } else if id < model.tokens.count, !model.tokens[id].isEmpty {
                tokens.append(.string(model.tokens[id]))
                types.append(.int32(1))
            } else {
                tokens.append(.string("[PAD\(id)]"))
                types.append(.int32(5))
            }
        }
        let merges: [GGUFValue] = model.merges.sorted { $0.value.rank < $1.value.rank }.map { key, _ in
            .string(model.tokens[Int(key >> 32)] + " " + model.tokens[Int(UInt32(truncatingIfNeeded: key))])
        }
        var metadata: [(String, GGUFValue)] = [
            ("tokenizer.ggml.model", .string("gpt2")),
            ("tokenizer.ggml.pre", .string(pre)),
            ("tokenizer.ggml.tokens", .array(.string, tokens)),
            ("tokenizer.ggml.token_type", .array(.int32, types)),
            ("tokenizer.ggml.merges", .array(.string, merges)),
        ]
        if let id = bosTokenID { metadata.append(("tokenizer.ggml.bos_token_id", .uint32(UInt32(id)))) }
        if let id = eosTokenID { metadata.append(("tokenizer.ggml.eos_token_id", .uint32(UInt32(id)))) }
        if let id = unknownToken.flatMap(id(of:)) { metadata.append(("tokenizer.ggml.unknown_token_id", .uint32(UInt32(id)))) }
        if let id = padToken.flatMap(id(of:)) { metadata.append(("tokenizer.ggml.padding_token_id", .uint32(UInt32(id)))) }
        let prefix = postProcessor?.addedPrefix ?? []
        let suffixCount = (postProcessor?.apply([]).count ?? 0) - prefix.count
        metadata.append(("tokenizer.ggml.add_bos_token", .bool(!prefix.isEmpty)))
        metadata.append(("tokenizer.ggml.add_eos_token", .bool(suffixCount > 0)))
        if let chatTemplate { metadata.append(("tokenizer.chat_template", .string(chatTemplate))) }
        return metadata
    }

    /// Added tokens that llama.cpp's converter marks CONTROL even when not flagged special
    /// (`does_token_look_special`): `<|…|>` and `<｜…｜>` forms, Gemma's `<unused…>`, and a few
    /// names some models leave unflagged.
    static func looksSpecial(_ content: String) -> Bool {
        ["<pad>", "<mask>", "<2mass>", "[@BOS@]"].contains(content)
            || (content.hasPrefix("<|") && content.hasSuffix("|>"))
            || (content.hasPrefix("<｜") && content.hasSuffix("｜>"))
            || (content.hasPrefix("<unused") && content.hasSuffix(">"))
    }

    private var decoderIsSentencePiece: Bool {
        if case .metaspace? = preTokenizer { return true }
        return false
    }

    private func unsupportedPreTokenizer() -> TokenizerError {
        TokenizerError(path, "its pre-tokenizer has no llama.cpp equivalent Finch knows (supported: GPT-2 byte-level, SmolLM individual digits + byte-level, Llama-3 and Qwen2 splits); the GGUF file would tokenize differently")
    }
}
