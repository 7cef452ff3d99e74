import FinchJinja
import FinchTokenizers

/// Warnings grouped by kind: each is reported once with the number of rows it concerns.
struct WarningLog {
    /// What a row is called in the lines ("pair" for DPO, "example" for SFT).
    var unit = "pair"
    private var entries: [(key: String, message: String, first: String, count: Int)] = []

    init(unit: String = "pair") { self.unit = unit }

    mutating func note(_ key: String, at location: String, _ message: @autoclosure () -> String) {
        if let i = entries.firstIndex(where: { $0.key == key }) {
            entries[i].count += 1
        } else {
            entries.append((key, message(), location, 1))
        }
    }

    var lines: [String] {
        entries.map { entry in
            entry.first.isEmpty ? entry.message
                : "\(entry.count) \(unit)\(entry.count == 1 ? "" : "s") (first: \(entry.first)): \(entry.message)"
        }
    }
}

/// What the DPO and SFT data pipelines share between a row and its token ids: the chat template
/// (loaded once, ChatML when the model has none), TRL's string-level EOS, and Finch's guards
/// against the doubled BOS and EOS TRL 1.16 would produce (reference/trl-dpo.md §1.4).
struct TokenizationContext {
    let tokenizer: Tokenizer
    /// The EOS string appended to texts and completions: SFTConfig's `eos_token` when set, else
    /// the tokenizer's.
    let eosToken: String?
    var warnings: WarningLog
    private var template: ChatTemplate?

    init(tokenizer: Tokenizer, chatTemplate: ChatTemplate?, eosToken: String? = nil, unit: String) {
        self.tokenizer = tokenizer
        self.eosToken = eosToken ?? tokenizer.eosToken
        warnings = WarningLog(unit: unit)
        template = chatTemplate
    }

    var eosTokenID: Int? { eosToken.flatMap(tokenizer.id(of:)) }

    /// The special tokens the template sees (transformers' `special_tokens_map`, with the EOS
    /// override: TRL sets `tokenizer.eos_token = args.eos_token`).
    var specialTokens: [String: String] {
        var map = tokenizer.specialTokensMap
        if let eosToken { map["eos_token"] = eosToken }
        return map
    }

    mutating func chatTemplate() throws -> ChatTemplate {
        if let template { return template }
        let made: ChatTemplate
        do {
            made = try ChatTemplate(tokenizer: tokenizer)
        } catch let error as TokenizerError {
            throw TrainingError(error.path, error.reason)
        }
        if made.isFallback {
            warnings.note("fallback", at: "", "\(tokenizer.path) has no chat template: conversations are rendered with ChatML "
                          + "(as transformers' former default template and the DPO article's chatml_format)")
        }
        template = made
        return made
    }

    static func values(_ messages: [ChatMessage]) -> [JinjaValue] {
        messages.map { .object([("role", .string($0.role)), ("content", .string($0.content))]) }
    }

    mutating func render(_ messages: [ChatMessage], addGenerationPrompt: Bool, location: String) throws -> String {
        do {
            return try chatTemplate().render(messages: Self.values(messages), addGenerationPrompt: addGenerationPrompt,
                                             specialTokens: specialTokens)
        } catch let error as TokenizerError {
            throw TrainingError(location, error.description)
        }
    }

    /// transformers' `apply_chat_template(messages, tokenize=True, return_assistant_tokens_mask=True)`:
    /// the ids of the rendered conversation (no special tokens added: the template writes them)
    /// and a 0/1 mask marking every token that overlaps a `{% generation %}` block's text.
    mutating func renderWithAssistantMask(_ messages: [ChatMessage], location: String) throws -> (ids: [Int], mask: [Int]) {
        let rendered: (text: String, generationSpans: [Range<Int>])
        do {
            rendered = try chatTemplate().renderTrackingGeneration(messages: Self.values(messages), addGenerationPrompt: false,
                                                                   specialTokens: specialTokens)
        } catch let error as TokenizerError {
            throw TrainingError(location, error.description)
        }
        let ids = tokenizer.encode(rendered.text, addSpecialTokens: false)
        let offsets = try characterOffsets(ids, in: rendered.text, location: location)
        // transformers 5.24: spans and offsets are both in order; a token is masked when it
        // overlaps the current span (token_end > span_start), and a span is left behind once a
        // token starts at or after its end.
        var mask = [Int](repeating: 0, count: ids.count)
        var span = 0
        let spans = rendered.generationSpans
        for (t, offset) in offsets.enumerated() {
            while span < spans.count, offset.lowerBound >= spans[span].upperBound { span += 1 }
            if span == spans.count { break }
            if offset.upperBound > spans[span].lowerBound { mask[t] = 1 }
        }
        return (ids, mask)
    }

    /// Each token's span of `text` in Unicode scalars (HF `tokenizers`' offsets, without
    /// `trim_offsets`): tokens are aligned with the text by their decoded strings; tokens that
    /// only make a character together (a UTF-8 sequence split across byte-level tokens) all get
    /// that character's span. A SentencePiece-style token whose decoded form drops its leading
    /// space ("▁" pieces) is aligned with the space.
    func characterOffsets(_ ids: [Int], in text: String, location: String) throws -> [Range<Int>] {
        let scalars = Array(text.unicodeScalars)
        var offsets: [Range<Int>] = []
        offsets.reserveCapacity(ids.count)
        var position = 0
        var i = 0
        func matches(_ piece: [Unicode.Scalar], at start: Int) -> Bool {
            start + piece.count <= scalars.count && Array(scalars[start..<(start + piece.count)]) == piece
        }
        while i < ids.count {
            var end = i + 1
            var piece = Array(tokenizer.decode([ids[i]]).unicodeScalars)
            while piece.contains("\u{FFFD}"), end < ids.count, end - i < 4 {
                end += 1
                piece = Array(tokenizer.decode(Array(ids[i..<end])).unicodeScalars)
            }
            var start = position
            if !matches(piece, at: start), matches([" "] + piece, at: start) { piece = [" "] + piece }
            if !matches(piece, at: start) {
                guard piece.isEmpty || piece.contains("\u{FFFD}") else {
                    throw TrainingError(location, "assistant_only_loss: cannot align token \(i) (\(String(String.UnicodeScalarView(piece)).debugDescription)) "
                                        + "with the rendered conversation; this tokenizer's decoded tokens do not spell its input")
                }
                start = position // an unmatched replacement character: give the token an empty span here
                piece = []
            }
            let range = start..<(start + piece.count)
            for _ in i..<end { offsets.append(range) }
            position = range.upperBound
            i = end
        }
        return offsets
    }

    /// TRL's `add_eos`: the EOS string is appended unless the text already ends with it. Finch also
    /// leaves alone a text that ends with EOS followed by whitespace ("…<|im_end|>\n"), where TRL
    /// would add a second EOS. `what` names the text in warnings ("a completion", "a text").
    mutating func appendingEOS(_ text: String, location: String, what: String) -> String {
        guard let eos = eosToken, !eos.isEmpty else {
            warnings.note("no-eos", at: location, "the tokenizer names no EOS token: completions are not terminated")
            return text
        }
        if text.utf8.reversed().starts(with: eos.utf8.reversed()) { return text }
        var trimmed = Substring(text)
        while let last = trimmed.unicodeScalars.last, last.properties.isWhitespace { trimmed.unicodeScalars.removeLast() }
        if trimmed.utf8.count < text.utf8.count, trimmed.utf8.reversed().starts(with: eos.utf8.reversed()) {
            warnings.note("eos-whitespace", at: location, "\(what) already ends with the EOS string \(eos.debugDescription) followed by "
                          + "whitespace: no EOS appended (TRL 1.16 appends a second one)")
            return text
        }
        return text + eos
    }

    /// The tokenizer adds BOS and the text of `sequences[0]` starts with the BOS string: keep one
    /// BOS in every sequence that has two (they all start with that text).
    mutating func removeDoubledBOS(_ sequences: inout [[Int]], location: String, what: String) {
        let prefix = tokenizer.addedPrefixIDs
        guard !prefix.isEmpty, let first = sequences.first, first.starts(with: prefix + prefix) else { return }
        warnings.note("bos", at: location, "\(what) starts with the BOS string and the tokenizer adds BOS too: "
                      + "one BOS kept (TRL 1.16 keeps both)")
        for i in sequences.indices where sequences[i].starts(with: prefix + prefix) { sequences[i].removeFirst(prefix.count) }
    }

    /// A sequence ending in two EOS ids (text EOS plus one a post-processor adds): keep one.
    mutating func removeDoubledEOS(_ ids: inout [Int], location: String, what: String) {
        guard let eos = eosTokenID, ids.count >= 2, ids[ids.count - 1] == eos, ids[ids.count - 2] == eos else { return }
        warnings.note("eos-ids", at: location, "\(what) ends with two EOS tokens: one kept")
        ids.removeLast()
    }

    /// TRL 1.16's `common_prefix_length`.
    static func commonPrefixLength(_ a: [Int], _ b: [Int]) -> Int {
        zip(a, b).prefix { $0 == $1 }.count
    }

    /// The tokenized prompt is not a prefix of the tokenized prompt+completion.
    mutating func noteBoundary(_ promptTail: [Int], location: String) {
        let tail = tokenizer.decode(promptTail)
        warnings.note("boundary", at: location, "the tokenized prompt is not a prefix of the tokenized prompt+completion "
                      + "(its end \(tail.debugDescription) merges with the completion or renders differently alone); as TRL 1.16, the "
                      + "completion starts where they diverge and that end of the prompt is left out")
    }
}
