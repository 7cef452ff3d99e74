import Hummingbird

/// `--api-key` checking: `Authorization: Bearer <key>`, compared in constant time.
enum BearerAuthorization {
    /// Nil when `header` carries `key`, else the 401 to answer (OpenAI's messages).
    static func check(header: String?, key: String) -> APIError? {
        let challenge: HTTPFields = [.wwwAuthenticate: "Bearer"]
        guard let header, !header.isEmpty else {
            return APIError(.unauthorized, "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
                            headers: challenge)
        }
        let scheme = header.prefix { $0 != " " }
        let token = header.dropFirst(scheme.count).drop { $0 == " " }
        guard scheme.lowercased() == "bearer", constantTimeEqual(Array(token.utf8), Array(key.utf8)) else {
            return APIError(.unauthorized, "Incorrect API key provided.", code: "invalid_api_key", headers: challenge)
        }
        return nil
    }

    /// Compares every byte of `expected` whatever `given` is, so the time taken tells nothing
    /// about how much of a guess was right (it depends on the key's length only).
    static func constantTimeEqual(_ given: [UInt8], _ expected: [UInt8]) -> Bool {
        var difference: UInt8 = given.count == expected.count ? 0 : 1
        for i in 0..<expected.count {
            difference |= (i < given.count ? given[i] : 0) ^ expected[i]
        }
        return difference == 0
    }
}
