import FinchFormats

/// Turns token strings back into text (HF `decoders`), applied as a chain to the whole list.
indirect enum TokenDecoder: Sendable {
    /// GPT-2 bytes: alphabet characters → bytes; a token with any other character contributes its
    /// own UTF-8; the result is decoded lossily (U+FFFD for invalid sequences).
    case byteLevel
    case replace(String, String)
    /// Runs of `<0xXX>` tokens → bytes → UTF-8; an invalid run gives one U+FFFD per byte.
    case byteFallback
    case fuse
    /// Remove up to `start` leading and `stop` trailing copies of `content` from each token.
    case strip(Unicode.Scalar, start: Int, stop: Int)
    case metaspace(replacement: Unicode.Scalar, prependScheme: PreTokenizer.PrependScheme)
    case sequence([TokenDecoder])

    func apply(_ tokens: [String]) -> [String] {
        switch self {
        case .byteLevel:
            var bytes: [UInt8] = []
            for token in tokens {
                var mapped: [UInt8] = []
                mapped.reserveCapacity(token.unicodeScalars.count)
                var ok = true
                for scalar in token.unicodeScalars {
                    guard let b = ByteLevelAlphabet.byte(of: scalar) else { ok = false; break }
                    mapped.append(b)
                }
                bytes += ok ? mapped : Array(token.utf8)
            }
            return [String(decoding: bytes, as: UTF8.self)]
        case let .replace(pattern, content):
            return tokens.map { $0.replacingAll(pattern, with: content) }
        case .byteFallback:
            var out: [String] = []
            var pending: [UInt8] = []
            func flush() {
                guard !pending.isEmpty else { return }
                if let text = String(validating: pending, as: UTF8.self) {
                    out.append(text)
                } else {
                    out.append(contentsOf: Array(repeating: "\u{FFFD}", count: pending.count))
                }
                pending.removeAll()
            }
            for token in tokens {
                if let byte = Self.byteToken(token) {
                    pending.append(byte)
                } else {
                    flush()
                    out.append(token)
                }
            }
            flush()
            return out
        case .fuse:
            return [tokens.joined()]
        case let .strip(content, start, stop):
            return tokens.map { token in
                var chars = Array(token.unicodeScalars)
                var s = 0
                while s < start, let first = chars.first, first == content { chars.removeFirst(); s += 1 }
                var e = 0
                while e < stop, let last = chars.last, last == content { chars.removeLast(); e += 1 }
                return String(String.UnicodeScalarView(chars))
            }
        case let .metaspace(replacement, scheme):
            return tokens.enumerated().map { index, token in
                var text = token.replacingAll(String(replacement), with: " ")
                if index == 0, scheme != .never, text.hasPrefix(" ") { text.removeFirst() }
                return text
            }
        case .sequence(let steps):
            return steps.reduce(tokens) { $1.apply($0) }
        }
    }

    /// The byte of a `<0xXX>` token.
    static func byteToken(_ token: String) -> UInt8? {
        let u = Array(token.utf8)
        guard u.count == 6, u[0] == 0x3C, u[1] == 0x30, u[2] == 0x78, u[5] == 0x3E else { return nil }
        func hex(_ c: UInt8) -> UInt8? {
            switch c {
            case 0x30...0x39: c - 0x30
            case 0x41...0x46: c - 0x41 + 10
            case 0x61...0x66: c - 0x61 + 10
            default: nil
            }
        }
        guard let h = hex(u[3]), let l = hex(u[4]) else { return nil }
        return h << 4 | l
    }

    static func parse(_ json: JSONValue, path: String) throws -> TokenDecoder {
        func fail(_ why: String) -> TokenizerError { TokenizerError(path, "decoder: \(why)") }
        guard let type = json["type"]?.stringValue else { throw fail("missing 'type'") }
        switch type {
        case "ByteLevel": return .byteLevel
        case "ByteFallback": return .byteFallback
        case "Fuse": return .fuse
        case "Replace":
            guard let pattern = json["pattern"]?["String"]?.stringValue else { throw fail("Replace needs pattern.String") }
            return .replace(pattern, json["content"]?.stringValue ?? "")
        case "Strip":
            let content = json["content"]?.stringValue?.unicodeScalars.first ?? " "
            return .strip(content, start: json["start"]?.intValue ?? 0, stop: json["stop"]?.intValue ?? 0)
        case "Metaspace":
            let replacement = json["replacement"]?.stringValue?.unicodeScalars.first ?? "▁"
            var scheme = PreTokenizer.PrependScheme.always
            if let name = json["prepend_scheme"]?.stringValue, let s = PreTokenizer.PrependScheme(rawValue: name) { scheme = s }
            else if json["add_prefix_space"]?.boolValue == false { scheme = .never }
            return .metaspace(replacement: replacement, prependScheme: scheme)
        case "Sequence":
            guard let items = json["decoders"]?.arrayValue else { throw fail("Sequence needs 'decoders'") }
            return .sequence(try items.map { try parse($0, path: path) })
        default:
            throw fail("unsupported type '\(type)' (supported: ByteLevel, ByteFallback, Fuse, Replace, Strip, Metaspace, Sequence)")
        }
    }
}

extension String {
    /// Replaces every non-overlapping occurrence of `target`, left to right, comparing Unicode
    /// scalars (not Characters: a combining mark must not hide a match, as in HF `tokenizers`).
    func replacingAll(_ target: String, with replacement: String) -> String {
        let needle = Array(target.unicodeScalars)
        guard let first = needle.first else { return self }
        let s = Array(unicodeScalars)
        guard s.contains(first) else { return self }
        var out = String.UnicodeScalarView()
        var i = 0
        while i < s.count {
            if s[i] == first, i + needle.count <= s.count, Array(s[i..<(i + needle.count)]) == needle {
                out.append(contentsOf: replacement.unicodeScalars)
                i += needle.count
            } else {
                out.append(s[i])
                i += 1
            }
        }
        return String(out)
    }
}
