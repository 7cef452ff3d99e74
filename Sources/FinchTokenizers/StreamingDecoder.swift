/// Incremental decoding for streaming generation: feed ids one at a time, get text as soon as it
/// is final. Text is held back while it ends in an incomplete UTF-8 sequence (it would show as
/// U+FFFD), following HF `tokenizers`' `DecodeStream`: decode a small window of recent ids and emit
/// what it adds beyond the window's already-emitted prefix, so context-dependent decoders (the
/// SentencePiece leading-space strip) behave as in a full decode. With `cleanUpSpaces`
/// (" ." → "."), a trailing fragment that a later token could still change is held back too. The
/// concatenation of everything emitted, after `finish()`, equals
/// `tokenizer.decode(allIDs, skipSpecialTokens:, cleanUpSpaces:)`.
public struct StreamingDecoder {
    public let tokenizer: Tokenizer
    public let skipSpecialTokens: Bool
    public let cleanUpSpaces: Bool
    private var window: [Int] = []
    /// Decoded text of `window[..<prefixCount]`, already accounted for.
    private var prefix = ""
    private var prefixCount = 0
    /// Raw (not cleaned-up) text produced so far, and how much of it has been emitted.
    private var raw = String.UnicodeScalarView()
    private var emittedRaw = 0

    public init(tokenizer: Tokenizer, skipSpecialTokens: Bool = false, cleanUpSpaces: Bool = false) {
        self.tokenizer = tokenizer
        self.skipSpecialTokens = skipSpecialTokens
        self.cleanUpSpaces = cleanUpSpaces
    }

    /// Adds one id; returns the text that became final, or "" if none did yet.
    public mutating func push(_ id: Int) -> String {
        window.append(id)
        let text = tokenizer.decodeRaw(window, skipSpecialTokens: skipSpecialTokens)
        let textScalars = Array(text.unicodeScalars)
        let prefixScalars = Array(prefix.unicodeScalars)
        guard textScalars.count > prefixScalars.count, textScalars.last != "\u{FFFD}",
              Array(textScalars[..<prefixScalars.count]) == prefixScalars else { return "" }
        raw.append(contentsOf: textScalars[prefixScalars.count...])
        // Keep the ids after the old prefix as the new window, whose decode is the new prefix.
        window.removeFirst(prefixCount)
        prefixCount = window.count
        prefix = tokenizer.decodeRaw(window, skipSpecialTokens: skipSpecialTokens)
        return emit(final: false)
    }

    /// Flushes whatever is left (an incomplete UTF-8 sequence at the very end decodes to U+FFFD,
    /// as in a full decode).
    public mutating func finish() -> String {
        let text = tokenizer.decodeRaw(window, skipSpecialTokens: skipSpecialTokens)
        let textScalars = Array(text.unicodeScalars)
        let prefixScalars = Array(prefix.unicodeScalars)
        if textScalars.count > prefixScalars.count { raw.append(contentsOf: textScalars[prefixScalars.count...]) }
        window.removeAll()
        prefix = ""
        prefixCount = 0
        return emit(final: true)
    }

    private mutating func emit(final: Bool) -> String {
        let scalars = Array(raw)
        var end = scalars.count
        if cleanUpSpaces, !final {
            // Hold back a suffix starting at a space that is a prefix of a clean-up pattern.
            if let space = scalars.lastIndex(of: " "), space >= emittedRaw {
                let tail = String(String.UnicodeScalarView(scalars[space...]))
                if Tokenizer.cleanUpPatterns.contains(where: { $0.hasPrefix(tail) }) { end = space }
            }
        }
        guard end > emittedRaw else { return "" }
        var piece = String(String.UnicodeScalarView(scalars[emittedRaw..<end]))
        emittedRaw = end
        if cleanUpSpaces { piece = Tokenizer.cleanUp(piece) }
        return piece
    }
}
