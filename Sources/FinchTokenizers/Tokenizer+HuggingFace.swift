import FinchFormats

extension Tokenizer {
    /// Loads `tokenizer.json` (required) with `tokenizer_config.json` and `chat_template.jinja`
    /// (optional), as transformers' fast tokenizers do.
    public convenience init(tokenizerJSON: String, tokenizerConfig: String? = nil, chatTemplateFile: String? = nil) throws {
        let json = try Self.parseJSON(tokenizerJSON)
        var config: JSONValue = .object([])
        if let tokenizerConfig { config = try Self.parseJSON(tokenizerConfig) }
        let path = tokenizerJSON
        guard let modelJSON = json["model"] else { throw TokenizerError(path, "missing 'model'") }
        let modelType = modelJSON["type"]?.stringValue ?? "BPE"
        guard modelType == "BPE" else {
            throw TokenizerError(path, "model.type '\(modelType)' is not supported (Finch supports BPE: byte-level and SentencePiece-style)")
        }
        if let prefix = modelJSON["continuing_subword_prefix"]?.stringValue, !prefix.isEmpty {
            throw TokenizerError(path, "model.continuing_subword_prefix is not supported")
        }
        if let suffix = modelJSON["end_of_word_suffix"]?.stringValue, !suffix.isEmpty {
            throw TokenizerError(path, "model.end_of_word_suffix is not supported")
        }
        guard let vocabMembers = modelJSON["vocab"]?.objectValue else { throw TokenizerError(path, "model.vocab is missing or not an object") }
        var vocab: Vocabulary = [:]
        vocab.reserveCapacity(vocabMembers.count)
        for (token, value) in vocabMembers {
            guard let id = value.intValue, id >= 0, id <= Int(Int32.max) else { throw TokenizerError(path, "model.vocab['\(token)'] is not a valid id") }
            vocab[token: token] = Int32(id)
        }
        var merges: [(String, String)] = []
        for (index, merge) in (modelJSON["merges"]?.arrayValue ?? []).enumerated() {
            if let text = merge.stringValue {
                // "a b": split at the first space that is not the first character.
                let scalars = Array(text.unicodeScalars)
                guard let space = scalars.indices.dropFirst().first(where: { scalars[$0] == " " }) else {
                    throw TokenizerError(path, "model.merges[\(index)] \"\(text)\" is not 'left right'")
                }
                merges.append((String(String.UnicodeScalarView(scalars[..<space])), String(String.UnicodeScalarView(scalars[(space + 1)...]))))
            } else if let pair = merge.arrayValue, pair.count == 2, let l = pair[0].stringValue, let r = pair[1].stringValue {
                merges.append((l, r))
            } else {
                throw TokenizerError(path, "model.merges[\(index)] is neither \"a b\" nor [\"a\", \"b\"]")
            }
        }
        let model = try BPEModel(
            vocab: vocab, merges: merges, unknown: modelJSON["unk_token"]?.stringValue,
            fuseUnknown: modelJSON["fuse_unk"]?.boolValue ?? false, byteFallback: modelJSON["byte_fallback"]?.boolValue ?? false,
            ignoreMerges: modelJSON["ignore_merges"]?.boolValue ?? false, path: path)

        var added: [AddedToken] = []
        for (index, item) in (json["added_tokens"]?.arrayValue ?? []).enumerated() {
            guard let id = item["id"]?.intValue, let content = item["content"]?.stringValue else {
                throw TokenizerError(path, "added_tokens[\(index)] needs 'id' and 'content'")
            }
            let special = item["special"]?.boolValue ?? false
            added.append(AddedToken(id: id, content: content, special: special,
                                    lstrip: item["lstrip"]?.boolValue ?? false, rstrip: item["rstrip"]?.boolValue ?? false,
                                    singleWord: item["single_word"]?.boolValue ?? false,
                                    normalized: item["normalized"]?.boolValue ?? !special))
        }
        func optional<T>(_ key: String, _ parse: (JSONValue) throws -> T) throws -> T? {
            guard let value = json[key], !value.isNull else { return nil }
            return try parse(value)
        }
        let normalizer = try optional("normalizer") { try Normalizer.parse($0, path: path) }
        let preTokenizer = try optional("pre_tokenizer") { try PreTokenizer.parse($0, path: path) }
        let decoder = try optional("decoder") { try TokenDecoder.parse($0, path: path) }
        let addedIDs = Dictionary(added.map { (TokenKey($0.content), Int32($0.id)) }, uniquingKeysWith: { a, _ in a })
        let postProcessor = try optional("post_processor") { value in
            try PostProcessor.parse(value, vocabulary: { addedIDs[TokenKey($0)] ?? vocab[token: $0] }, path: path)
        }

        func specialToken(_ key: String) -> String? {
            guard let v = config[key], !v.isNull else { return nil }
            return v.stringValue ?? v["content"]?.stringValue
        }
        var template: String?
        if let chatTemplateFile {
            template = try Self.readText(chatTemplateFile)
        } else if let t = config["chat_template"] {
            if let s = t.stringValue {
                template = s
            } else if let list = t.arrayValue {
                // A named list: transformers uses the one called "default".
                template = list.first { $0["name"]?.stringValue == "default" }?["template"]?.stringValue
                    ?? list.first?["template"]?.stringValue
            }
        }
        self.init(model: model, added: added, normalizer: normalizer, preTokenizer: preTokenizer,
                  postProcessor: postProcessor, decoder: decoder,
                  bosToken: specialToken("bos_token"), eosToken: specialToken("eos_token"),
                  unknownToken: specialToken("unk_token"), padToken: specialToken("pad_token"),
                  cleanUp: config["clean_up_tokenization_spaces"]?.boolValue ?? false,
                  chatTemplate: template, path: path)
    }

    static func parseJSON(_ path: String) throws -> JSONValue {
        do {
            return try JSONValue.parse(contentsOf: path)
        } catch let error as FormatError {
            throw TokenizerError(error.path, error.reason)
        }
    }

    static func readText(_ path: String) throws -> String {
        do {
            return try MappedFile(path: path).withBytes { bytes in
                guard let text = String(validating: bytes, as: UTF8.self) else { throw TokenizerError(path, "not valid UTF-8") }
                return text
            }
        } catch let error as FormatError {
            throw TokenizerError(error.path, error.reason)
        }
    }
}

extension Tokenizer {
    /// The tokenizer of a model opened with `ModelSource` (its folder's files or its GGUF metadata).
    public convenience init(source: ModelSource) throws {
        switch source.tokenizer {
        case .gguf:
            guard let gguf = source.gguf else { throw TokenizerError(source.path, "GGUF source without a GGUF file") }
            try self.init(gguf: gguf)
        case let .huggingFace(tokenizerJSON, tokenizerConfig, chatTemplate, _):
            guard let tokenizerJSON else {
                throw TokenizerError(source.path, "no tokenizer.json in the model folder (Finch reads the fast-tokenizer file; save it with transformers' save_pretrained)")
            }
            try self.init(tokenizerJSON: tokenizerJSON, tokenizerConfig: tokenizerConfig, chatTemplateFile: chatTemplate)
        }
    }
}
