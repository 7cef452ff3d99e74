import FinchFormats

/// Adds special tokens around an encoded sequence (HF `processors`). Only single sequences are
/// needed by Finch; pair templates are parsed but not used.
indirect enum PostProcessor: Sendable {
    /// `TemplateProcessing`: the `single` template's items, each a list of ids or the sequence.
    case template([TemplateItem])
    /// `RobertaProcessing`/`BertProcessing`: cls + sequence + sep.
    case wrap(prefix: [Int32], suffix: [Int32])
    /// `ByteLevel` (offsets only) and anything that leaves ids unchanged.
    case identity
    case sequence([PostProcessor])

    enum TemplateItem: Sendable { case sequence, tokens([Int32]) }

    func apply(_ ids: [Int32]) -> [Int32] {
        switch self {
        case .template(let items):
            var out: [Int32] = []
            for item in items {
                switch item {
                case .sequence: out.append(contentsOf: ids)
                case .tokens(let t): out.append(contentsOf: t)
                }
            }
            return out
        case let .wrap(prefix, suffix): return prefix + ids + suffix
        case .identity: return ids
        case .sequence(let steps): return steps.reduce(ids) { $1.apply($0) }
        }
    }

    /// The ids this processor adds before and after a sequence (for stats and dry runs).
    var addedPrefix: [Int32] {
        switch self {
        case .template(let items):
            var out: [Int32] = []
            for item in items {
                if case .tokens(let t) = item { out += t } else { break }
            }
            return out
        case .wrap(let prefix, _): return prefix
        case .identity: return []
        case .sequence(let steps): return steps.flatMap(\.addedPrefix)
        }
    }

    static func parse(_ json: JSONValue, vocabulary: (String) -> Int32?, path: String) throws -> PostProcessor {
        func fail(_ why: String) -> TokenizerError { TokenizerError(path, "post_processor: \(why)") }
        guard let type = json["type"]?.stringValue else { throw fail("missing 'type'") }
        switch type {
        case "TemplateProcessing":
            guard let single = json["single"]?.arrayValue else { throw fail("TemplateProcessing needs 'single'") }
            let specials = json["special_tokens"]
            return .template(try single.map { item in
                if item["Sequence"] != nil { return .sequence }
                guard let name = item["SpecialToken"]?["id"]?.stringValue else { throw fail("template item is neither Sequence nor SpecialToken") }
                if let ids = specials?[name]?["ids"]?.arrayValue {
                    return .tokens(ids.compactMap { $0.intValue.map(Int32.init) })
                }
                guard let id = vocabulary(name) else { throw fail("special token '\(name)' has no id") }
                return .tokens([id])
            })
        case "RobertaProcessing", "BertProcessing":
            func token(_ key: String) throws -> Int32 {
                guard let pair = json[key]?.arrayValue, pair.count == 2, let id = pair[1].intValue else { throw fail("\(type) needs '\(key)'") }
                return Int32(id)
            }
            return .wrap(prefix: [try token("cls")], suffix: [try token("sep")])
        case "ByteLevel":
            return .identity
        case "Sequence":
            guard let items = json["processors"]?.arrayValue else { throw fail("Sequence needs 'processors'") }
            return .sequence(try items.map { try parse($0, vocabulary: vocabulary, path: path) })
        default:
            throw fail("unsupported type '\(type)' (supported: TemplateProcessing, RobertaProcessing, BertProcessing, ByteLevel, Sequence)")
        }
    }
}
