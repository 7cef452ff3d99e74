import FinchFormats
import Hummingbird

/// An error answered with OpenAI's body, `{"error": {"message", "type", "param", "code"}}`, and
/// the status OpenAI uses for it.
///
/// | status | type | when |
/// |---|---|---|
/// | 400 | `invalid_request_error` | malformed JSON, a wrong type or value, empty messages, `n` > 1, an unknown role, a prompt longer than the context (`context_length_exceeded`) |
/// | 401 | `invalid_request_error` (`invalid_api_key`) | `--api-key` set and the Bearer token missing or wrong |
/// | 404 | `invalid_request_error` (`model_not_found`, or `not_found` for a path) | another model named, an unknown path |
/// | 405 | `invalid_request_error` (`method_not_allowed`) | a known path with the wrong method |
/// | 413 | `invalid_request_error` (`request_too_large`) | a body over `--max-body-bytes` |
/// | 429 | `rate_limit_error` (`queue_full`) | `--max-queue` requests already waiting |
/// | 500 | `server_error` | generation failed |
/// | 503 | `server_error` (`shutting_down`) | the server is stopping |
/// | 504 | `timeout_error` (`timeout`) | `--request-timeout` passed (queue wait included) |
public struct APIError: Error, Sendable, Equatable {
    public var status: HTTPResponse.Status
    public var message: String
    public var type: String
    public var param: String?
    public var code: String?
    /// Extra response headers (`Allow` on 405, `WWW-Authenticate` on 401, `Retry-After` on 429).
    public var headers: HTTPFields

    public init(_ status: HTTPResponse.Status, _ message: String, type: String = "invalid_request_error",
                param: String? = nil, code: String? = nil, headers: HTTPFields = [:]) {
        self.status = status
        self.message = message
        self.type = type
        self.param = param
        self.code = code
        self.headers = headers
    }

    /// The error object, as OpenAI writes it (also sent as an SSE event when a stream fails).
    public var json: JSONValue {
        .object([("error", .object([
            ("message", .string(message)),
            ("type", .string(type)),
            ("param", param.map { .string($0) } ?? .null),
            ("code", code.map { .string($0) } ?? .null),
        ]))])
    }

    /// A 400 for a field of the wrong JSON type.
    static func invalidType(_ param: String, expected: String, got value: JSONValue) -> APIError {
        APIError(.badRequest, "Invalid type for '\(param)': expected \(expected), but got \(value.typeName) instead.",
                 param: param, code: "invalid_type")
    }

    /// A 400 for a field whose value is out of range or unsupported.
    static func invalidValue(_ param: String, _ message: String) -> APIError {
        APIError(.badRequest, message, param: param, code: "invalid_value")
    }
}
