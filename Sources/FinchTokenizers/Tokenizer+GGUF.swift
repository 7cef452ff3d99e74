import FinchFormats

extension Tokenizer {
    /// Builds the tokenizer a GGUF file describes, the way transformers 5.24 does
    /// (`integrations/gguf/gguf_tokenizer_mapping.py`): `gpt2` → byte-level BPE with the file's
    /// merges and the split regex its `tokenizer.ggml.pre` names; `llama` → SentencePiece-style BPE
    /// (Metaspace, byte fallback) with merges from the file or derived from the scores. CONTROL
    /// tokens become special added tokens, USER_DEFINED ones plain added tokens.
    public convenience init(gguf: GGUFFile) throws {
        let path = gguf.path
        guard let model = gguf["tokenizer.ggml.model"]?.stringValue else {
            throw TokenizerError(path, "no tokenizer.ggml.model metadata: the file has no tokenizer")
        }
        guard let tokenValues = gguf["tokenizer.ggml.tokens"]?.arrayValue else {
            throw TokenizerError(path, "no tokenizer.ggml.tokens metadata")
        }
        var tokens: [String] = []
        tokens.reserveCapacity(tokenValues.count)
        for (i, v) in tokenValues.enumerated() {
            guard let s = v.stringValue else { throw TokenizerError(path, "tokenizer.ggml.tokens[\(i)] is not a string") }
            tokens.append(s)
        }
        let types = gguf["tokenizer.ggml.token_type"]?.arrayValue?.map { $0.intValue ?? 1 } ?? []
        let architecture = gguf["general.architecture"]?.stringValue ?? ""
        let fileMerges: [(String, String)]? = try gguf["tokenizer.ggml.merges"]?.arrayValue.map { values in
            try values.enumerated().map { i, v in
                guard let s = v.stringValue else { throw TokenizerError(path, "tokenizer.ggml.merges[\(i)] is not a string") }
                // Python's merge.split(" "): exactly two parts expected.
                let parts = s.split(separator: " ", omittingEmptySubsequences: false)
                guard parts.count == 2 else { throw TokenizerError(path, "tokenizer.ggml.merges[\(i)] \"\(s)\" is not 'left right'") }
                return (String(parts[0]), String(parts[1]))
            }
        }
        func tokenString(_ key: String) -> String? {
            guard let id = gguf[key]?.intValue, tokens.indices.contains(id) else { return nil }
            return tokens[id]
        }
        var addBOS = gguf["tokenizer.ggml.add_bos_token"]?.boolValue
        let addEOS = gguf["tokenizer.ggml.add_eos_token"]?.boolValue ?? false
        let bos = tokenString("tokenizer.ggml.bos_token_id")
        let eos = tokenString("tokenizer.ggml.eos_token_id")

        var vocab: Vocabulary = [:]
        let bpe: BPEModel
        let preTokenizer: PreTokenizer?
        let normalizer: Normalizer?
        let decoder: TokenDecoder
        switch model {
        case "gpt2":
            // Tokens outside the byte alphabet are re-spelled through it (transformers does the same).
            for (i, token) in tokens.enumerated() {
                let spelled = token.unicodeScalars.allSatisfy { ByteLevelAlphabet.byte(of: $0) != nil }
                    ? token : ByteLevelAlphabet.encode(token.utf8)
                if vocab[token: spelled] == nil { vocab[token: spelled] = Int32(i) }
            }
            guard let merges = fileMerges else { throw TokenizerError(path, "a gpt2 tokenizer needs tokenizer.ggml.merges") }
            bpe = try BPEModel(vocab: vocab, merges: merges, unknown: nil, fuseUnknown: false, byteFallback: false, ignoreMerges: false, path: path)
            let pre = gguf["tokenizer.ggml.pre"]?.stringValue ?? "default"
            if let split = Self.ggufSplits[pre] {
                preTokenizer = .sequence([.split(try SplitPattern.regex(split), .isolated, invert: false),
                                          .byteLevel(addPrefixSpace: false, useRegex: false)])
            } else {
                preTokenizer = .byteLevel(addPrefixSpace: false, useRegex: true)
            }
            normalizer = nil
            decoder = .byteLevel
            addBOS = addBOS ?? false
        case "llama":
            guard !["gemma", "gemma2", "gemma3", "gemma4"].contains(architecture) else {
                throw TokenizerError(path, "Gemma's GGUF tokenizer is not supported yet")
            }
            for (i, token) in tokens.enumerated() where vocab[token: token] == nil { vocab[token: token] = Int32(i) }
            let merges: [(String, String)]
            if let fileMerges {
                merges = fileMerges
            } else {
                guard let scores = gguf["tokenizer.ggml.scores"]?.arrayValue?.map({ $0.doubleValue ?? 0 }), scores.count == tokens.count else {
                    throw TokenizerError(path, "a llama tokenizer needs tokenizer.ggml.merges or one score per token")
                }
                merges = Self.mergesFromScores(tokens: tokens, scores: scores, vocab: vocab)
            }
            bpe = try BPEModel(vocab: vocab, merges: merges, unknown: nil, fuseUnknown: true, byteFallback: true, ignoreMerges: false, path: path)
            if architecture == "phi3" {
                normalizer = .sequence([.prepend("▁"), .replace(.literal([" "]), "▁")])
                preTokenizer = nil
            } else {
                normalizer = nil
                preTokenizer = .metaspace(replacement: "▁", prepend: .first, split: false)
            }
            decoder = .sequence([.replace("▁", " "), .byteFallback, .fuse, .strip(" ", start: 1, stop: 0)])
            addBOS = addBOS ?? true
        default:
            throw TokenizerError(path, "tokenizer.ggml.model '\(model)' is not supported (supported: gpt2, llama)")
        }

        // CONTROL (3) → special; USER_DEFINED (4) → plain added token. In a byte-level vocabulary a
        // CONTROL token spelled outside the alphabet is a mislabel and is skipped (as transformers does).
        var added: [AddedToken] = []
        for (i, type) in types.enumerated() where i < tokens.count {
            let token = tokens[i]
            if type == 3 {
                if model == "gpt2", !token.unicodeScalars.allSatisfy({ ByteLevelAlphabet.byte(of: $0) != nil }) { continue }
                added.append(AddedToken(id: i, content: token, special: true, lstrip: false, rstrip: false, singleWord: false, normalized: false))
            } else if type == 4 {
                added.append(AddedToken(id: i, content: token, special: false, lstrip: false, rstrip: false, singleWord: false, normalized: false))
            }
        }
        // transformers registers the named special tokens (bos/eos/unk/pad) as special added tokens
        // too, so e.g. a literal "<unk>" in text is matched whole even though its type is UNKNOWN.
        for name in [bos, eos, tokenString("tokenizer.ggml.unknown_token_id"), tokenString("tokenizer.ggml.padding_token_id")] {
            guard let name, let id = vocab[token: name], !added.contains(where: { $0.id == Int(id) }) else { continue }
            added.append(AddedToken(id: Int(id), content: name, special: true, lstrip: false, rstrip: false, singleWord: false, normalized: false))
        }
        var template: [PostProcessor.TemplateItem] = []
        if addBOS == true, let bos, let id = vocab[token: bos] { template.append(.tokens([id])) }
        template.append(.sequence)
        if addEOS, let eos, let id = vocab[token: eos] { template.append(.tokens([id])) }

        self.init(model: bpe, added: added, normalizer: normalizer, preTokenizer: preTokenizer,
                  postProcessor: .template(template), decoder: decoder,
                  bosToken: bos, eosToken: eos, unknownToken: tokenString("tokenizer.ggml.unknown_token_id"),
                  padToken: tokenString("tokenizer.ggml.padding_token_id"), cleanUp: false,
                  chatTemplate: gguf["tokenizer.chat_template"]?.stringValue, path: path)
    }

    /// transformers' `generate_merges(vocab, vocab_scores)`: every split of every token into two
    /// vocabulary pieces, ordered by the token's score (descending), then by the lengths of the
    /// pieces (descending); ties keep file order.
    static func mergesFromScores(tokens: [String], scores: [Double], vocab: Vocabulary) -> [(String, String)] {
        var candidates: [(left: String, right: String, score: Double, leftLength: Int, rightLength: Int, order: Int)] = []
        // dict(zip(tokens, scores)): a repeated token keeps its first position and last score.
        var lastScore: [TokenKey: Double] = [:]
        for (token, score) in zip(tokens, scores) { lastScore[TokenKey(token)] = score }
        var seen = Set<TokenKey>()
        for token in tokens {
            guard seen.insert(TokenKey(token)).inserted else { continue }
            let score = lastScore[TokenKey(token)] ?? 0
            let scalars = Array(token.unicodeScalars)
            var local: [(String, String, Int32, Int32)] = []
            for cut in 1..<max(scalars.count, 1) {
                let l = String(String.UnicodeScalarView(scalars[..<cut]))
                let r = String(String.UnicodeScalarView(scalars[cut...]))
                if let li = vocab[token: l], let ri = vocab[token: r] { local.append((l, r, li, ri)) }
            }
            local.sort { ($0.2, $0.3) < ($1.2, $1.3) }
            for (l, r, _, _) in local {
                candidates.append((l, r, score, l.unicodeScalars.count, r.unicodeScalars.count, candidates.count))
            }
        }
        // Python's sorted(..., key=(score, len l, len r), reverse=True) is stable: equal keys keep order.
        candidates.sort { a, b in
            if a.score != b.score { return a.score > b.score }
            if a.leftLength != b.leftLength { return a.leftLength > b.leftLength }
            if a.rightLength != b.rightLength { return a.rightLength > b.rightLength }
            return a.order < b.order
        }
        return candidates.map { ($0.left, $0.right) }
    }

    /// `tokenizer.ggml.pre` values transformers maps to a split regex (others use GPT-2's).
    static let ggufSplits: [String: String] = [
        "llama3": SplitPattern.llama3Source, "llama-v3": SplitPattern.llama3Source, "llama-bpe": SplitPattern.llama3Source,
        "falcon3": SplitPattern.llama3Source, "falcon-h1": SplitPattern.llama3Source, "pixtral": SplitPattern.llama3Source,
        "midm-2.0": SplitPattern.llama3Source, "lfm2": SplitPattern.llama3Source, "jina-v5-nano": SplitPattern.llama3Source,
        "dbrx": SplitPattern.llama3Source, "smaug-bpe": SplitPattern.llama3Source,
        "qwen2": SplitPattern.qwen2Source, "deepseek-r1-qwen": SplitPattern.qwen2Source, "kormo": SplitPattern.qwen2Source,
        "f2llmv2": SplitPattern.qwen2Source, "megrez": SplitPattern.qwen2Source,
    ]
}
