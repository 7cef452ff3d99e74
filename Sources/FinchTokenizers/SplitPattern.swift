/// A pre-tokenizer split regex. The patterns that byte-level BPE families ship are matched by
/// hand-written scanners that follow the regex semantics exactly (alternatives tried in order,
/// greedy quantifiers with backtracking where the lookahead needs it); anything else falls back to
/// Swift `Regex`, which supports the same syntax for these patterns.
enum SplitPattern: @unchecked Sendable {
    // @unchecked: Regex is immutable once built and only used for matching.
    /// GPT-2: `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`
    case gpt2
    /// Llama-3 (`maxDigits` 3) and Qwen2 (`maxDigits` 1):
    /// `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
    case llama3(maxDigits: Int)
    /// A literal string.
    case literal([Unicode.Scalar])
    /// Any other regex.
    case regex(Regex<AnyRegexOutput>, source: String)

    static let gpt2Source = #"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"#
    static let llama3Source = #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#
    static let qwen2Source = #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#

    /// The scanner for a regex source string.
    static func regex(_ source: String) throws -> SplitPattern {
        switch source {
        case gpt2Source: return .gpt2
        case llama3Source: return .llama3(maxDigits: 3)
        case qwen2Source: return .llama3(maxDigits: 1)
        default: return .regex(try Regex(source), source: source)
        }
    }

    /// Non-overlapping matches, left to right, as scalar index ranges.
    func matches(_ s: [Unicode.Scalar]) -> [Range<Int>] {
        var out: [Range<Int>] = []
        switch self {
        case .gpt2:
            var i = 0
            while i < s.count {
                let end = Self.matchGPT2(s, i)
                out.append(i..<end)
                i = end
            }
        case .llama3(let maxDigits):
            var i = 0
            while i < s.count {
                if let end = Self.matchLlama3(s, i, maxDigits: maxDigits) {
                    out.append(i..<end)
                    i = end
                } else {
                    i += 1
                }
            }
        case .literal(let needle):
            guard !needle.isEmpty, needle.count <= s.count else { return [] }
            var i = 0
            while i + needle.count <= s.count {
                if s[i] == needle[0], Array(s[i..<(i + needle.count)]) == needle {
                    out.append(i..<(i + needle.count))
                    i += needle.count
                } else {
                    i += 1
                }
            }
        case .regex(let regex, _):
            var view = String.UnicodeScalarView()
            view.append(contentsOf: s)
            let string = String(view)
            // Map scalar offsets: Regex ranges are String.Index values.
            for match in string.matches(of: regex) where !match.range.isEmpty {
                let lower = string.unicodeScalars.distance(from: string.startIndex, to: match.range.lowerBound)
                let upper = string.unicodeScalars.distance(from: string.startIndex, to: match.range.upperBound)
                out.append(lower..<upper)
            }
        }
        return out
    }

    /// End of the GPT-2 match starting at `i` (every position starts a match: `\s+` and the
    /// other-characters class cover everything).
    static func matchGPT2(_ s: [Unicode.Scalar], _ i: Int) -> Int {
        let n = s.count
        let c = s[i]
        // 's 't 're 've 'm 'll 'd (case-sensitive)
        if c == "'", i + 1 < n {
            let d = s[i + 1]
            if d == "s" || d == "t" || d == "m" || d == "d" { return i + 2 }
            if i + 2 < n {
                let e = s[i + 2]
                if (d == "r" && e == "e") || (d == "v" && e == "e") || (d == "l" && e == "l") { return i + 3 }
            }
        }
        // ` ?\p{L}+`, ` ?\p{N}+`, ` ?[^\s\p{L}\p{N}]+`, tried in that order.
        let j = (c == " " && i + 1 < n) ? i + 1 : i
        let first = s[j]
        if first.isRegexLetter { return runEnd(s, j + 1) { $0.isRegexLetter } }
        if first.isRegexNumber { return runEnd(s, j + 1) { $0.isRegexNumber } }
        if !first.isRegexWhitespace {
            return runEnd(s, j + 1) { !$0.isRegexWhitespace && !$0.isRegexLetter && !$0.isRegexNumber }
        }
        // `\s+(?!\S)` then `\s+`: a whitespace run, leaving its last character to the next word
        // when a non-space follows (unless the run is a single character).
        let k = runEnd(s, i + 1) { $0.isRegexWhitespace }
        if k == n || k - 1 == i { return k }
        return k - 1
    }

    /// End of the Llama-3/Qwen2 match starting at `i`, or nil if no alternative matches there
    /// (cannot happen for non-empty input, but the scanner does not assume it).
    static func matchLlama3(_ s: [Unicode.Scalar], _ i: Int, maxDigits: Int) -> Int? {
        let n = s.count
        let c = s[i]
        // (?i:'s|'t|'re|'ve|'m|'ll|'d)
        if c == "'", i + 1 < n {
            let d = lower(s[i + 1])
            if d == "s" || d == "t" || d == "m" || d == "d" { return i + 2 }
            if i + 2 < n {
                let e = lower(s[i + 2])
                if (d == "r" && e == "e") || (d == "v" && e == "e") || (d == "l" && e == "l") { return i + 3 }
            }
        }
        // [^\r\n\p{L}\p{N}]?\p{L}+
        if c.isRegexLetter { return runEnd(s, i + 1) { $0.isRegexLetter } }
        if !c.isNewline, !c.isRegexNumber, i + 1 < n, s[i + 1].isRegexLetter {
            return runEnd(s, i + 2) { $0.isRegexLetter }
        }
        // \p{N}{1,maxDigits}
        if c.isRegexNumber {
            var k = i + 1
            while k < n, k - i < maxDigits, s[k].isRegexNumber { k += 1 }
            return k
        }
        // ` ?[^\s\p{L}\p{N}]+[\r\n]*`
        let j = (c == " " && i + 1 < n) ? i + 1 : i
        let first = s[j]
        if !first.isRegexWhitespace, !first.isRegexLetter, !first.isRegexNumber {
            let k = runEnd(s, j + 1) { !$0.isRegexWhitespace && !$0.isRegexLetter && !$0.isRegexNumber }
            return runEnd(s, k) { $0.isNewline }
        }
        guard c.isRegexWhitespace else { return nil }
        let k = runEnd(s, i + 1) { $0.isRegexWhitespace }
        // `\s*[\r\n]+`: up to and including the last CR/LF of the whitespace run.
        var last = k - 1
        while last >= i, !s[last].isNewline { last -= 1 }
        if last >= i { return last + 1 }
        // `\s+(?!\S)` then `\s+`
        if k == n || k - 1 == i { return k }
        return k - 1
    }

    @inline(__always)
    static func runEnd(_ s: [Unicode.Scalar], _ start: Int, _ predicate: (Unicode.Scalar) -> Bool) -> Int {
        var k = start
        while k < s.count, predicate(s[k]) { k += 1 }
        return k
    }

    @inline(__always)
    static func lower(_ c: Unicode.Scalar) -> Unicode.Scalar {
        (0x41...0x5A).contains(c.value) ? Unicode.Scalar(UInt8(c.value + 32)) : c
    }
}
