import FinchFormats

/// How a split keeps the delimiter matches (HF `SplitDelimiterBehavior`).
enum SplitBehavior: String {
    case removed = "Removed", isolated = "Isolated", mergedWithPrevious = "MergedWithPrevious"
    case mergedWithNext = "MergedWithNext", contiguous = "Contiguous"
}

/// The pre-tokenizers of `tokenizer.json` that the supported families use: they split a
/// normalized piece of text into words, each encoded by the model separately.
indirect enum PreTokenizer: @unchecked Sendable {
    /// GPT-2 byte level: optional prefix space, optional GPT-2 regex split, then bytes → alphabet.
    case byteLevel(addPrefixSpace: Bool, useRegex: Bool)
    case split(SplitPattern, SplitBehavior, invert: Bool)
    case digits(individual: Bool)
    /// SentencePiece's: spaces → `replacement`, optional prefix, optional split before each replacement.
    case metaspace(replacement: Unicode.Scalar, prepend: PrependScheme, split: Bool)
    case whitespaceSplit
    case punctuation(SplitBehavior)
    case sequence([PreTokenizer])

    enum PrependScheme: String { case first, always, never }

    /// Splits every word of `words` further. `isFirstSegment` is whether the text began at offset 0
    /// of the input (Metaspace's "first" scheme).
    func apply(_ words: [[Unicode.Scalar]], isFirstSegment: Bool) -> [[Unicode.Scalar]] {
        switch self {
        case let .byteLevel(addPrefixSpace, useRegex):
            var out: [[Unicode.Scalar]] = []
            for var word in words {
                if addPrefixSpace, word.first != " " { word.insert(" ", at: 0) }
                let pieces = useRegex ? Self.split(word, SplitPattern.gpt2.matches(word), .isolated, invert: false) : [word]
                for piece in pieces {
                    var bytes: [UInt8] = []
                    for scalar in piece { bytes.append(contentsOf: String(scalar).utf8) }
                    out.append(bytes.map { ByteLevelAlphabet.scalarOfByte[Int($0)] })
                }
            }
            return out
        case let .split(pattern, behavior, invert):
            return words.flatMap { Self.split($0, pattern.matches($0), behavior, invert: invert) }
        case .digits(let individual):
            return words.flatMap { word -> [[Unicode.Scalar]] in
                var ranges: [Range<Int>] = []
                var i = 0
                while i < word.count {
                    if word[i].isRegexNumber {
                        var k = i + 1
                        if !individual { while k < word.count, word[k].isRegexNumber { k += 1 } }
                        ranges.append(i..<k)
                        i = k
                    } else {
                        i += 1
                    }
                }
                return Self.split(word, ranges, .isolated, invert: false)
            }
        case let .metaspace(replacement, prepend, split):
            return words.enumerated().flatMap { index, word -> [[Unicode.Scalar]] in
                var w = word.map { $0 == " " ? replacement : $0 }
                let shouldPrepend = prepend == .always || (prepend == .first && isFirstSegment && index == 0)
                if shouldPrepend, w.first != replacement { w.insert(replacement, at: 0) }
                guard split else { return [w] }
                let ranges = w.indices.filter { w[$0] == replacement }.map { $0..<($0 + 1) }
                return Self.split(w, ranges, .mergedWithNext, invert: false)
            }
        case .whitespaceSplit:
            return words.flatMap { word in word.split(whereSeparator: { $0.isRegexWhitespace }).map(Array.init) }
        case .punctuation(let behavior):
            return words.flatMap { word in
                let ranges = word.indices.filter { word[$0].properties.generalCategory.isPunctuation }.map { $0..<($0 + 1) }
                return Self.split(word, ranges, behavior, invert: false)
            }
        case .sequence(let steps):
            var current = words
            for step in steps { current = step.apply(current, isFirstSegment: isFirstSegment) }
            return current
        }
    }

    /// Splits `s` around the `matches` according to `behavior` (HF `NormalizedString::split`).
    static func split(_ s: [Unicode.Scalar], _ matches: [Range<Int>], _ behavior: SplitBehavior, invert: Bool) -> [[Unicode.Scalar]] {
        // (range, isMatch) covering the whole string.
        var parts: [(Range<Int>, Bool)] = []
        var position = 0
        for m in matches {
            if m.lowerBound > position { parts.append((position..<m.lowerBound, invert)) }
            parts.append((m, !invert))
            position = m.upperBound
        }
        if position < s.count { parts.append((position..<s.count, invert)) }
        var out: [Range<Int>] = []
        switch behavior {
        case .removed:
            out = parts.filter { !$0.1 }.map(\.0)
        case .isolated:
            out = parts.map(\.0)
        case .mergedWithPrevious:
            for (r, isMatch) in parts {
                if isMatch, let last = out.last, last.upperBound == r.lowerBound {
                    out[out.count - 1] = last.lowerBound..<r.upperBound
                } else {
                    out.append(r)
                }
            }
        case .mergedWithNext:
            var pending: Range<Int>?
            for (r, isMatch) in parts {
                if isMatch {
                    if let p = pending { out.append(p) }
                    pending = r
                } else if let p = pending {
                    out.append(p.lowerBound..<r.upperBound)
                    pending = nil
                } else {
                    out.append(r)
                }
            }
            if let p = pending { out.append(p) }
        case .contiguous:
            for (r, isMatch) in parts {
                if isMatch, let last = out.last, last.upperBound == r.lowerBound,
                   let previous = parts.first(where: { $0.0 == last }), previous.1 {
                    out[out.count - 1] = last.lowerBound..<r.upperBound
                } else {
                    out.append(r)
                }
            }
        }
        return out.filter { !$0.isEmpty }.map { Array(s[$0]) }
    }
}

extension Unicode.GeneralCategory {
    var isPunctuation: Bool {
        switch self {
        case .connectorPunctuation, .dashPunctuation, .openPunctuation, .closePunctuation,
             .initialPunctuation, .finalPunctuation, .otherPunctuation: true
        default: false
        }
    }
}

extension PreTokenizer {
    /// Reads a `pre_tokenizer` object of tokenizer.json.
    static func parse(_ json: JSONValue, path: String) throws -> PreTokenizer {
        func fail(_ why: String) -> TokenizerError { TokenizerError(path, "pre_tokenizer: \(why)") }
        guard let type = json["type"]?.stringValue else { throw fail("missing 'type'") }
        switch type {
        case "ByteLevel":
            return .byteLevel(addPrefixSpace: json["add_prefix_space"]?.boolValue ?? true,
                              useRegex: json["use_regex"]?.boolValue ?? true)
        case "Split":
            let pattern: SplitPattern
            if let regex = json["pattern"]?["Regex"]?.stringValue {
                do { pattern = try SplitPattern.regex(regex) } catch { throw fail("cannot compile the regex \(regex): \(error)") }
            } else if let literal = json["pattern"]?["String"]?.stringValue {
                pattern = .literal(Array(literal.unicodeScalars))
            } else {
                throw fail("Split needs pattern.Regex or pattern.String")
            }
            let behaviorName = json["behavior"]?.stringValue ?? "Isolated"
            guard let behavior = SplitBehavior(rawValue: behaviorName) else { throw fail("unknown Split behavior '\(behaviorName)'") }
            return .split(pattern, behavior, invert: json["invert"]?.boolValue ?? false)
        case "Digits":
            return .digits(individual: json["individual_digits"]?.boolValue ?? false)
        case "Metaspace":
            let replacement = json["replacement"]?.stringValue?.unicodeScalars.first ?? "▁"
            var scheme = PrependScheme.always
            if let name = json["prepend_scheme"]?.stringValue {
                guard let s = PrependScheme(rawValue: name) else { throw fail("unknown prepend_scheme '\(name)'") }
                scheme = s
            } else if let add = json["add_prefix_space"]?.boolValue {
                scheme = add ? .always : .never
            }
            return .metaspace(replacement: replacement, prepend: scheme, split: json["split"]?.boolValue ?? true)
        case "WhitespaceSplit":
            return .whitespaceSplit
        case "Punctuation":
            let behavior = SplitBehavior(rawValue: json["behavior"]?.stringValue ?? "Isolated") ?? .isolated
            return .punctuation(behavior)
        case "Sequence":
            guard let items = json["pretokenizers"]?.arrayValue else { throw fail("Sequence needs 'pretokenizers'") }
            return .sequence(try items.map { try parse($0, path: path) })
        default:
            throw fail("unsupported type '\(type)' (supported: ByteLevel, Split, Digits, Metaspace, WhitespaceSplit, Punctuation, Sequence)")
        }
    }
}
