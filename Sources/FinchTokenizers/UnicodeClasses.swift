/// The character classes of the pre-tokenizer regexes, as Oniguruma (used by HF `tokenizers`)
/// defines them: `\s` is the Unicode White_Space property, `\p{L}` the letter categories
/// (Lu Ll Lt Lm Lo), `\p{N}` the number categories (Nd Nl No). ASCII takes a fast path.
extension Unicode.Scalar {
    @inline(__always)
    var isRegexWhitespace: Bool {
        if value < 0x80 { return value == 0x20 || (0x09...0x0D).contains(value) }
        return properties.isWhitespace
    }

    @inline(__always)
    var isRegexLetter: Bool {
        if value < 0x80 { return (0x41...0x5A).contains(value) || (0x61...0x7A).contains(value) }
        switch properties.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter: return true
        default: return false
        }
    }

    @inline(__always)
    var isRegexNumber: Bool {
        if value < 0x80 { return (0x30...0x39).contains(value) }
        switch properties.generalCategory {
        case .decimalNumber, .letterNumber, .otherNumber: return true
        default: return false
        }
    }

    @inline(__always)
    var isNewline: Bool { value == 0x0A || value == 0x0D }
}
