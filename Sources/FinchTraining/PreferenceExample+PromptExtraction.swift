extension PreferenceExample {
    /// The example with an implicit prompt made explicit, as TRL 1.16's `extract_prompt`
    /// (trl/data_utils.py; reference/trl-dpo.md §1.1). Examples that have a prompt are returned
    /// unchanged.
    ///
    /// The prompt is the longest common prefix of chosen and rejected, compared element by element:
    /// Unicode scalars for text (Python compares code points, so a split can fall inside a
    /// grapheme, between "e" and a combining accent or between the two halves of a flag), whole
    /// messages for conversations. TRL's quirks are kept, because its token ids are the reference:
    /// - if the element just before the first difference is a space, the split moves one step
    ///   left so the space starts the completions;
    /// - that look-behind runs even when the first elements differ, and then reads Python's
    ///   index −1, the *last* element of chosen: if chosen ends with a space, the prompt is all of
    ///   chosen but its last character and each completion is its own last character;
    /// - if one sequence is a prefix of the other (or they are equal), no difference is found and
    ///   the split falls at the last compared index, so the last common element goes to the
    ///   completions (no look-behind).
    /// Both sequences must be non-empty (the loader guarantees it; Python would fail on an unbound
    /// index).
    public func extractingPrompt() -> PreferenceExample {
        guard prompt == nil else { return self }
        var result = self
        switch (chosen, rejected) {
        case let (.text(c), .text(r)):
            let cs = Array(c.unicodeScalars), rs = Array(r.unicodeScalars)
            let split = Self.extractionSplit(cs, rs, isSpace: { $0 == " " })
            result.prompt = .text(Self.string(cs[..<split.prompt]))
            result.chosen = .text(Self.string(cs[split.completion(cs.count)...]))
            result.rejected = .text(Self.string(rs[split.completion(rs.count)...]))
        case let (.messages(c), .messages(r)):
            let split = Self.extractionSplit(c, r, isSpace: { _ in false })
            result.prompt = .messages(Array(c[..<split.prompt]))
            result.chosen = .messages(Array(c[split.completion(c.count)...]))
            result.rejected = .messages(Array(r[split.completion(r.count)...]))
        default:
            break // mixed forms are rejected by the loader
        }
        return result
    }

    /// Where `extract_prompt` cuts: `prompt` elements of chosen form the prompt; each completion
    /// starts at `completion(count)`, which is `prompt` except for Python's index −1 (the split at
    /// `count − 1` of *each* sequence, as `seq[-1:]`).
    struct ExtractionSplit {
        var prompt: Int
        var fromEnd: Bool
        func completion(_ count: Int) -> Int { fromEnd ? max(count - 1, 0) : prompt }
    }

    static func extractionSplit<T: Equatable>(_ c: [T], _ r: [T], isSpace: (T) -> Bool) -> ExtractionSplit {
        let n = min(c.count, r.count)
        guard n > 0 else { return ExtractionSplit(prompt: 0, fromEnd: false) }
        for index in 0..<n where c[index] != r[index] {
            if index == 0 {
                // Python: chosen[idx - 1] is chosen[-1], the last element.
                if let last = c.last, isSpace(last) { return ExtractionSplit(prompt: c.count - 1, fromEnd: true) }
                return ExtractionSplit(prompt: 0, fromEnd: false)
            }
            return ExtractionSplit(prompt: isSpace(c[index - 1]) ? index - 1 : index, fromEnd: false)
        }
        return ExtractionSplit(prompt: n - 1, fromEnd: false)
    }

    static func string(_ scalars: ArraySlice<Unicode.Scalar>) -> String {
        var view = String.UnicodeScalarView()
        view.append(contentsOf: scalars)
        return String(view)
    }
}
