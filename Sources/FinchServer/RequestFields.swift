import FinchFormats

/// Typed reads of a JSON request object's members; a wrong type is an ``APIError`` naming the
/// member as OpenAI does (`messages[0].content`). A member that is absent or `null` reads as nil.
struct RequestFields {
    let members: [(String, JSONValue)]
    /// The path of this object in the request ("" for the top level, `messages[2]` …).
    let path: String

    init(_ value: JSONValue, path: String) throws(APIError) {
        guard case .object(let members) = value else {
            if path.isEmpty {
                throw APIError(.badRequest, "The request body must be a JSON object, but it is \(value.typeName).")
            }
            throw APIError.invalidType(path, expected: "an object", got: value)
        }
        self.members = members
        self.path = path
    }

    init(members: [(String, JSONValue)], path: String) {
        self.members = members
        self.path = path
    }

    func param(_ key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }

    /// The member's value, nil when absent or null.
    func value(_ key: String) -> JSONValue? {
        guard let value = members.first(where: { $0.0 == key })?.1, !value.isNull else { return nil }
        return value
    }

    func string(_ key: String) throws(APIError) -> String? {
        guard let value = value(key) else { return nil }
        guard case .string(let s) = value else { throw APIError.invalidType(param(key), expected: "a string", got: value) }
        return s
    }

    func bool(_ key: String) throws(APIError) -> Bool? {
        guard let value = value(key) else { return nil }
        guard case .bool(let b) = value else { throw APIError.invalidType(param(key), expected: "a boolean", got: value) }
        return b
    }

    func number(_ key: String) throws(APIError) -> Double? {
        guard let value = value(key) else { return nil }
        guard let d = value.doubleValue, d.isFinite else { throw APIError.invalidType(param(key), expected: "a number", got: value) }
        return d
    }

    func integer(_ key: String) throws(APIError) -> Int? {
        guard let value = value(key) else { return nil }
        guard let i = value.intValue else {
            if value.doubleValue != nil {
                throw APIError(.badRequest, "Invalid type for '\(param(key))': expected an integer, but got a decimal number instead.",
                               param: param(key), code: "invalid_type")
            }
            throw APIError.invalidType(param(key), expected: "an integer", got: value)
        }
        return i
    }

    func object(_ key: String) throws(APIError) -> RequestFields? {
        guard let value = value(key) else { return nil }
        return try RequestFields(value, path: param(key))
    }

    func array(_ key: String) throws(APIError) -> [JSONValue]? {
        guard let value = value(key) else { return nil }
        guard case .array(let items) = value else { throw APIError.invalidType(param(key), expected: "an array", got: value) }
        return items
    }
}
