/// Text made safe for an HTML or SVG page: the report writes every string that comes from a
/// file (dataset paths, prompts, generations, config values, error messages) through here.
public enum HTML {
    /// `&`, `<`, `>`, `"` and `'` as character references; other characters unchanged (the page
    /// is UTF-8). Safe inside element content and quoted attribute values.
    public static func escape(_ text: String) -> String {
        var out = ""
        out.reserveCapacity(text.utf8.count)
        for c in text.unicodeScalars {
            switch c {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            // Control characters other than tab and newlines are not allowed in HTML text.
            case "\u{0}"..."\u{8}", "\u{B}", "\u{C}", "\u{E}"..."\u{1F}", "\u{7F}": out += "\u{FFFD}"
            default: out.unicodeScalars.append(c)
            }
        }
        return out
    }
}
