/// A token added on top of the model's vocabulary (special tokens such as `<|im_start|>`, or
/// plain added tokens such as CodeGen's whitespace runs), with HF `AddedToken`'s matching flags.
public struct AddedToken: Sendable, Equatable {
    public var id: Int
    public var content: String
    public var special: Bool
    /// Absorb whitespace on the left / right of a match.
    public var lstrip: Bool
    public var rstrip: Bool
    /// Only match when not inside a word.
    public var singleWord: Bool
    /// Match on normalized text (after the normalizer) rather than on the raw input.
    public var normalized: Bool
}

/// A piece of input after added-token extraction.
enum Segment {
    /// Text still to be normalized/pre-tokenized; `atStart` if it begins at offset 0 of the input.
    case text([Unicode.Scalar], atStart: Bool)
    case token(Int32)
}

/// Finds added tokens in text before the pre-tokenizer runs (HF `AddedVocabulary`): leftmost-
/// longest matching, first for tokens with `normalized: false` on the raw text, then for
/// `normalized: true` tokens on each normalized piece.
struct AddedVocabulary: Sendable {
    let tokens: [AddedToken]
    private let rawMatcher: Matcher
    private let normalizedMatcher: Matcher

    init(_ tokens: [AddedToken]) {
        self.tokens = tokens
        rawMatcher = Matcher(tokens.filter { !$0.normalized })
        normalizedMatcher = Matcher(tokens.filter { $0.normalized })
    }

    var isEmpty: Bool { tokens.isEmpty }

    func splitRaw(_ segments: [Segment]) -> [Segment] { rawMatcher.split(segments) }
    func splitNormalized(_ segments: [Segment]) -> [Segment] { normalizedMatcher.split(segments) }

    struct Matcher: Sendable {
        /// Candidates by first scalar, longest first.
        let byFirst: [Unicode.Scalar: [(scalars: [Unicode.Scalar], token: AddedToken)]]

        init(_ tokens: [AddedToken]) {
            var table: [Unicode.Scalar: [(scalars: [Unicode.Scalar], token: AddedToken)]] = [:]
            for token in tokens {
                let scalars = Array(token.content.unicodeScalars)
                guard let first = scalars.first else { continue }
                table[first, default: []].append((scalars, token))
            }
            for key in table.keys { table[key]?.sort { $0.scalars.count > $1.scalars.count } }
            byFirst = table
        }

        func split(_ segments: [Segment]) -> [Segment] {
            guard !byFirst.isEmpty else { return segments }
            var out: [Segment] = []
            for segment in segments {
                guard case let .text(s, atStart) = segment else { out.append(segment); continue }
                var pieceStart = 0   // start of pending text
                var i = 0
                while i < s.count {
                    guard let candidates = byFirst[s[i]],
                          let hit = candidates.first(where: { matches(s, at: i, $0.scalars, $0.token) }) else {
                        i += 1
                        continue
                    }
                    var start = i
                    var end = i + hit.scalars.count
                    if hit.token.lstrip { while start > pieceStart, s[start - 1].properties.isWhitespace { start -= 1 } }
                    if hit.token.rstrip { while end < s.count, s[end].properties.isWhitespace { end += 1 } }
                    if start > pieceStart {
                        out.append(.text(Array(s[pieceStart..<start]), atStart: atStart && pieceStart == 0))
                    }
                    out.append(.token(Int32(hit.token.id)))
                    pieceStart = end
                    i = end
                }
                if pieceStart < s.count { out.append(.text(Array(s[pieceStart...]), atStart: atStart && pieceStart == 0)) }
            }
            return out
        }

        private func matches(_ s: [Unicode.Scalar], at i: Int, _ needle: [Unicode.Scalar], _ token: AddedToken) -> Bool {
            guard i + needle.count <= s.count else { return false }
            for k in 1..<needle.count where s[i + k] != needle[k] { return false }
            if token.singleWord {
                let isWord = { (c: Unicode.Scalar) in c.properties.isAlphabetic || c.properties.numericType != nil || c == "_" }
                if i > 0, isWord(s[i - 1]) { return false }
                if i + needle.count < s.count, isWord(s[i + needle.count]) { return false }
            }
            return true
        }
    }
}
