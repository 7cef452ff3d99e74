import FinchFormats

/// A Hugging Face-compatible tokenizer: added-token extraction, normalizer, pre-tokenizer, BPE
/// model, post-processor and decoder, as HF `tokenizers` runs them (formats.md §5.1), plus the
/// `tokenizer_config.json` settings transformers applies on top (special tokens, clean-up, chat
/// template).
public final class Tokenizer: Sendable {
    let model: BPEModel
    let added: AddedVocabulary
    let normalizer: Normalizer?
    let preTokenizer: PreTokenizer?
    let postProcessor: PostProcessor?
    let decoder: TokenDecoder?
    /// Added tokens by id.
    let addedByID: [Int32: AddedToken]

    /// The special tokens named by tokenizer_config.json (or GGUF metadata).
    public let bosToken: String?
    public let eosToken: String?
    public let unknownToken: String?
    public let padToken: String?
    /// `clean_up_tokenization_spaces` from tokenizer_config.json (" ." → "." and friends).
    /// transformers 5.24 ignores it when decoding BPE tokenizers, and so does `decode` by default.
    public let cleanUpTokenizationSpaces: Bool
    /// The chat template the model ships, if any.
    public let chatTemplate: String?
    /// Where the tokenizer came from, for messages.
    public let path: String

    init(model: BPEModel, added: [AddedToken], normalizer: Normalizer?, preTokenizer: PreTokenizer?,
         postProcessor: PostProcessor?, decoder: TokenDecoder?, bosToken: String?, eosToken: String?,
         unknownToken: String?, padToken: String?, cleanUp: Bool, chatTemplate: String?, path: String) {
        self.model = model
        self.added = AddedVocabulary(added)
        self.addedByID = Dictionary(added.map { (Int32($0.id), $0) }, uniquingKeysWith: { a, _ in a })
        self.normalizer = normalizer
        self.preTokenizer = preTokenizer
        self.postProcessor = postProcessor
        self.decoder = decoder
        self.bosToken = bosToken
        self.eosToken = eosToken
        self.unknownToken = unknownToken
        self.padToken = padToken
        self.cleanUpTokenizationSpaces = cleanUp
        self.chatTemplate = chatTemplate
        self.path = path
    }

    /// Number of ids (model vocabulary and added tokens).
    public var vocabularySize: Int { max(model.tokens.count, (addedByID.keys.max().map { Int($0) } ?? -1) + 1) }

    /// The added tokens, special ones included.
    public var addedTokens: [AddedToken] { added.tokens }

    /// The id of a token string (added tokens first), or nil.
    public func id(of token: String) -> Int? {
        if let t = added.tokens.first(where: { $0.content.utf8.elementsEqual(token.utf8) }) { return t.id }
        return model.vocab[token: token].map(Int.init)
    }

    /// The string of token `id` as stored (byte-level alphabet or `▁` pieces), or nil.
    public func token(of id: Int) -> String? {
        if let t = addedByID[Int32(truncatingIfNeeded: id)] { return t.content }
        guard id >= 0, id < model.tokens.count else { return nil }
        return model.tokens[id]
    }

    public var bosTokenID: Int? { bosToken.flatMap(id(of:)) }
    public var eosTokenID: Int? { eosToken.flatMap(id(of:)) }

    /// Whether `id` is a special token (skipped by `decode(skipSpecialTokens: true)`).
    public func isSpecial(_ id: Int) -> Bool { addedByID[Int32(truncatingIfNeeded: id)]?.special ?? false }

    /// The ids `encode(addSpecialTokens: true)` puts before the text (e.g. BOS).
    public var addedPrefixIDs: [Int] { postProcessor?.addedPrefix.map(Int.init) ?? [] }

    /// Encodes `text` into ids, exactly as HF `tokenizers` `encode(text, add_special_tokens)`.
    public func encode(_ text: String, addSpecialTokens: Bool = true) -> [Int] {
        encode32(text, addSpecialTokens: addSpecialTokens).map(Int.init)
    }

    func encode32(_ text: String, addSpecialTokens: Bool) -> [Int32] {
        var segments: [Segment] = [.text(Array(text.unicodeScalars), atStart: true)]
        segments = added.splitRaw(segments)
        if let normalizer {
            segments = segments.map { segment in
                guard case let .text(s, atStart) = segment else { return segment }
                var view = String.UnicodeScalarView()
                view.append(contentsOf: s)
                return .text(Array(normalizer.apply(String(view)).unicodeScalars), atStart: atStart)
            }
        }
        segments = added.splitNormalized(segments)
        var ids: [Int32] = []
        ids.reserveCapacity(text.utf8.count / 3)
        for segment in segments {
            switch segment {
            case .token(let id):
                ids.append(id)
            case let .text(s, atStart):
                guard !s.isEmpty else { continue }
                let words = preTokenizer?.apply([s], isFirstSegment: atStart) ?? [s]
                for word in words where !word.isEmpty { model.encode(word, into: &ids) }
            }
        }
        if addSpecialTokens, let postProcessor { ids = postProcessor.apply(ids) }
        return ids
    }

    /// Decodes ids into text, as transformers 5.24's `decode(ids, skip_special_tokens)`.
    /// - Parameter cleanUpSpaces: apply `clean_up_tokenization` (" ." → ".", " n't" → "n't", …) as
    ///   transformers 4.x did for tokenizers whose config asks for it. transformers 5.24 skips it
    ///   for BPE models, so the default is off.
    public func decode(_ ids: [Int], skipSpecialTokens: Bool = false, cleanUpSpaces: Bool = false) -> String {
        let text = decodeRaw(ids, skipSpecialTokens: skipSpecialTokens)
        return cleanUpSpaces ? Self.cleanUp(text) : text
    }

    /// Decoding without transformers' clean-up step (HF `tokenizers`' own decode).
    func decodeRaw(_ ids: [Int], skipSpecialTokens: Bool) -> String {
        var tokens: [String] = []
        tokens.reserveCapacity(ids.count)
        for id in ids {
            if skipSpecialTokens, isSpecial(id) { continue }
            if let t = token(of: id) { tokens.append(t) }
        }
        return decoder.map { $0.apply(tokens).joined() } ?? tokens.joined(separator: " ")
    }

    static let cleanUpReplacements = [(" .", "."), (" ?", "?"), (" !", "!"), (" ,", ","), (" ' ", "'"), (" n't", "n't"),
                                      (" 'm", "'m"), (" 's", "'s"), (" 've", "'ve"), (" 're", "'re")]
    static let cleanUpPatterns = cleanUpReplacements.map(\.0)

    /// transformers' `clean_up_tokenization`.
    static func cleanUp(_ text: String) -> String {
        cleanUpReplacements.reduce(text) { $0.replacingAll($1.0, with: $1.1) }
    }
}
