import FinchFormats
import FinchTokenizers

extension DPOTokenizer {
    /// A pair as `finch dpo --dry-run` prints it: a header line (location, lengths, truncation),
    /// then the prompt, chosen and rejected tokens, each token's text in ⟨⟩ escaped as in a JSON
    /// string (`\n`, `\t`, `\"`). Tokens that only make a character together (a UTF-8 sequence
    /// split across byte-level tokens) share one ⟨⟩ followed by their count, e.g. ⟨東⟩{2}.
    public static func describe(_ pair: TokenizedPair, tokenizer: Tokenizer) -> String {
        var header = "\(pair.location): prompt \(pair.prompt.count) tokens, chosen \(pair.chosen.count), rejected \(pair.rejected.count)"
        let cut = [("prompt", pair.promptTruncated), ("chosen", pair.chosenTruncated), ("rejected", pair.rejectedTruncated)]
            .filter(\.1).map(\.0)
        if !cut.isEmpty { header += " (truncated: \(cut.joined(separator: ", ")))" }
        var lines = [header,
                     "  prompt    " + marked(pair.prompt, tokenizer),
                     "  chosen    " + marked(pair.chosen, tokenizer),
                     "  rejected  " + marked(pair.rejected, tokenizer)]
        if pair.chosenPromptStart > 0 || pair.rejectedPromptStart > 0 {
            lines.append("  (keep_end: the chosen sequence starts at prompt token \(pair.chosenPromptStart), "
                         + "the rejected one at \(pair.rejectedPromptStart))")
        }
        return lines.joined(separator: "\n")
    }

    static func marked(_ ids: [Int], _ tokenizer: Tokenizer) -> String {
        var out = ""
        var i = 0
        while i < ids.count {
            // Grow the group until it decodes without a replacement character (at most 4 tokens:
            // a UTF-8 character has at most 4 bytes).
            var end = i + 1
            var text = tokenizer.decode([ids[i]])
            while text.unicodeScalars.contains("\u{FFFD}"), end < ids.count, end - i < 4 {
                let longer = tokenizer.decode(Array(ids[i...end]))
                end += 1
                text = longer
                if !longer.unicodeScalars.contains("\u{FFFD}") { break }
            }
            if text.unicodeScalars.contains("\u{FFFD}") {
                end = i + 1
                text = tokenizer.decode([ids[i]])
            }
            out += "⟨" + escaped(text) + "⟩" + (end - i > 1 ? "{\(end - i)}" : "")
            i = end
        }
        return out.isEmpty ? "(none)" : out
    }

    /// JSON string escaping without the quotes: newlines and tabs stay visible on one line.
    static func escaped(_ text: String) -> String {
        String(JSONValue.string(text).compactText.dropFirst().dropLast())
    }
}
