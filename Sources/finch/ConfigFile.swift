import FinchFormats
import Foundation
import Yams

/// Training config files (`--config recipe.yaml`, or `.json`) and `--key value` flags, as an
/// ordered list of `(key, value, origin)` for `DPORunConfiguration.set` — the origin being
/// `recipe.yaml:12` or `--beta`, so that every error says where the bad value came from.
enum ConfigFile {
    typealias Entry = (key: String, value: JSONValue, origin: String)

    /// The top-level mapping of a YAML (or JSON, which is YAML) file.
    static func entries(path: String) throws -> [Entry] {
        try entries(text: CLI.readText(path), path: path)
    }

    /// The top-level mapping of YAML text; `path` names it in origins and errors.
    static func entries(text: String, path: String) throws -> [Entry] {
        let node: Node?
        do { node = try Yams.compose(yaml: text) } catch let error as YamlError {
            throw FormatError(path, "not valid YAML: \(error)")
        }
        guard let node else { return [] }
        guard let mapping = node.mapping else { throw FormatError(path, "the top level must be a mapping of keys to values") }
        var entries: [Entry] = []
        var seen = Set<String>()
        for (keyNode, valueNode) in mapping {
            guard let key = keyNode.string else { throw FormatError(path, "line \(keyNode.mark?.line ?? 0): a key must be a string") }
            let origin = "\(path):\(keyNode.mark?.line ?? 0)"
            guard seen.insert(key).inserted else { throw FormatError(path, "line \(keyNode.mark?.line ?? 0): key '\(key)' is given twice") }
            entries.append((key, try json(valueNode, path: path), origin))
        }
        return entries
    }

    /// A YAML node as JSON: scalars by YAML 1.2 core-schema resolution (null, bool, int, float,
    /// else string; quoted scalars stay strings), sequences and mappings recursively.
    static func json(_ node: Node, path: String) throws -> JSONValue {
        switch node {
        case .scalar(let scalar):
            if scalar.style != .plain { return .string(scalar.string) }
            let s = scalar.string
            switch s {
            case "", "~", "null", "Null", "NULL": return .null
            case "true", "True", "TRUE": return .bool(true)
            case "false", "False", "FALSE": return .bool(false)
            default:
                if Int(s) != nil { return .number(s) }
                if let d = Double(s), d.isFinite, s.rangeOfCharacter(from: CharacterSet(charactersIn: "0123456789")) != nil {
                    return .number(s)
                }
                return .string(s)
            }
        case .sequence(let sequence):
            return .array(try sequence.map { try json($0, path: path) })
        case .mapping(let mapping):
            return .object(try mapping.map { k, v in
                guard let key = k.string else { throw FormatError(path, "line \(k.mark?.line ?? 0): a key must be a string") }
                return (key, try json(v, path: path))
            })
        }
    }

    /// `--key value`, `--key=value` and bare `--flag` (true) pairs; dashes in keys become
    /// underscores (`--learning-rate` = `--learning_rate`).
    static func flagEntries(_ arguments: [String]) throws -> [Entry] {
        var entries: [Entry] = []
        var i = 0
        while i < arguments.count {
            let argument = arguments[i]
            guard argument.hasPrefix("--"), argument.count > 2 else {
                throw FormatError(argument, "unexpected argument; options are --key value (a TRL config key)")
            }
            var key = String(argument.dropFirst(2)), value: JSONValue
            if let eq = key.firstIndex(of: "=") {
                value = .string(String(key[key.index(after: eq)...]))
                key = String(key[..<eq])
            } else if i + 1 < arguments.count, !arguments[i + 1].hasPrefix("--") {
                value = .string(arguments[i + 1])
                i += 1
            } else {
                value = .bool(true)
            }
            key = key.replacingOccurrences(of: "-", with: "_")
            entries.append((key, value, "--" + key))
            i += 1
        }
        return entries
    }
}
