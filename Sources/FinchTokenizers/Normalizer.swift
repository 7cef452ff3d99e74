import FinchFormats
import Foundation

/// The normalizers of `tokenizer.json` (HF `tokenizers`), applied to text between added tokens.
indirect enum Normalizer: @unchecked Sendable {
    case nfc, nfd, nfkc, nfkd, lowercase
    case prepend(String)
    case replace(SplitPattern, String)
    case strip(left: Bool, right: Bool)
    case sequence([Normalizer])

    func apply(_ text: String) -> String {
        switch self {
        case .nfc: return text.precomposedStringWithCanonicalMapping
        case .nfd: return text.decomposedStringWithCanonicalMapping
        case .nfkc: return text.precomposedStringWithCompatibilityMapping
        case .nfkd: return text.decomposedStringWithCompatibilityMapping
        case .lowercase: return text.lowercased()
        case .prepend(let prefix): return text.isEmpty ? text : prefix + text
        case let .replace(pattern, content):
            let scalars = Array(text.unicodeScalars)
            var out = String.UnicodeScalarView()
            var position = 0
            for m in pattern.matches(scalars) {
                out.append(contentsOf: scalars[position..<m.lowerBound])
                out.append(contentsOf: content.unicodeScalars)
                position = m.upperBound
            }
            out.append(contentsOf: scalars[position...])
            return String(out)
        case let .strip(left, right):
            var scalars = Substring(text).unicodeScalars[...]
            if left { while let f = scalars.first, f.isRegexWhitespace { scalars.removeFirst() } }
            if right { while let l = scalars.last, l.isRegexWhitespace { scalars.removeLast() } }
            return String(String.UnicodeScalarView(scalars))
        case .sequence(let steps):
            return steps.reduce(text) { $1.apply($0) }
        }
    }

    /// Reads a `normalizer` object of tokenizer.json.
    static func parse(_ json: JSONValue, path: String) throws -> Normalizer {
        func fail(_ why: String) -> TokenizerError { TokenizerError(path, "normalizer: \(why)") }
        guard let type = json["type"]?.stringValue else { throw fail("missing 'type'") }
        switch type {
        case "NFC": return .nfc
        case "NFD": return .nfd
        case "NFKC": return .nfkc
        case "NFKD": return .nfkd
        case "Lowercase": return .lowercase
        case "Prepend":
            guard let p = json["prepend"]?.stringValue else { throw fail("Prepend needs 'prepend'") }
            return .prepend(p)
        case "Replace":
            let content = json["content"]?.stringValue ?? ""
            if let literal = json["pattern"]?["String"]?.stringValue {
                return .replace(.literal(Array(literal.unicodeScalars)), content)
            }
            if let regex = json["pattern"]?["Regex"]?.stringValue {
                do { return .replace(try SplitPattern.regex(regex), content) } catch { throw fail("cannot compile the regex \(regex)") }
            }
            throw fail("Replace needs pattern.String or pattern.Regex")
        case "Strip":
            return .strip(left: json["strip_left"]?.boolValue ?? true, right: json["strip_right"]?.boolValue ?? true)
        case "Sequence":
            guard let items = json["normalizers"]?.arrayValue else { throw fail("Sequence needs 'normalizers'") }
            return .sequence(try items.map { try parse($0, path: path) })
        default:
            throw fail("unsupported type '\(type)' (supported: NFC, NFD, NFKC, NFKD, Lowercase, Prepend, Replace, Strip, Sequence)")
        }
    }
}
