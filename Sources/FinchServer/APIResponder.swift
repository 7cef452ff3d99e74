import FinchFormats
import Foundation
import Hummingbird

/// Routes every request: `GET /` (the chat page), `GET /health`, `GET /v1/models[/ID]`,
/// `POST /v1/chat/completions`, `POST /v1/completions`. Unknown paths get 404 and known paths
/// with another method 405, both with OpenAI's error body; with `--api-key`, anything under
/// `/v1` is checked first (401).
public struct APIResponder: HTTPResponder {
    public typealias Context = BasicRequestContext
    let server: ModelServer

    public func respond(to request: Request, context: Context) async throws -> Response {
        var record = RequestRecord(method: request.method.rawValue, path: request.uri.path)
        let response: Response
        do {
            response = try await route(request, record: &record)
        } catch let error as APIError {
            response = Self.response(error)
        } catch {
            response = Self.response(APIError(.internalServerError, "\(error)", type: "server_error"))
        }
        if !record.deferred { server.logRequest(record, status: response.status.code) }
        return response
    }

    func route(_ request: Request, record: inout RequestRecord) async throws -> Response {
        let path = request.uri.path
        if path == "/v1" || path.hasPrefix("/v1/"), let key = server.configuration.apiKey,
           let denied = BearerAuthorization.check(header: request.headers[.authorization], key: key) {
            throw denied
        }
        switch path {
        case "/":
            try Self.require(.get, request)
            return Response(status: .ok, headers: [.contentType: "text/html; charset=utf-8", .cacheControl: "no-cache"],
                            body: .init(byteBuffer: ByteBuffer(string: ChatPage.html)))
        case "/health":
            try Self.require(.get, request)
            let status = server.queue.status
            return Self.json(status.stopping ? .serviceUnavailable : .ok, .object([
                ("status", .string(status.stopping ? "shutting_down" : "ok")),
                ("model", .string(server.modelID)),
                ("generating", .bool(status.generating)),
                ("waiting", .number("\(status.waiting)")),
                ("max_queue", .number("\(server.queue.capacity)")),
            ]))
        case "/v1/models":
            try Self.require(.get, request)
            return Self.json(.ok, .object([("object", .string("list")), ("data", .array([modelObject]))]))
        case "/v1/chat/completions":
            try Self.require(.post, request)
            return try await server.complete(.chat, request, record: &record)
        case "/v1/completions":
            try Self.require(.post, request)
            return try await server.complete(.completion, request, record: &record)
        default:
            if path.hasPrefix("/v1/models/") {
                try Self.require(.get, request)
                let id = String(path.dropFirst("/v1/models/".count)).removingPercentEncoding ?? ""
                try server.checkModel(id, param: nil)
                return Self.json(.ok, modelObject)
            }
            throw APIError(.notFound, "Invalid URL (\(request.method.rawValue) \(path))", code: "unknown_url")
        }
    }

    /// OpenAI's model object for the served model.
    var modelObject: JSONValue {
        .object([("id", .string(server.modelID)), ("object", .string("model")), ("created", .number("\(server.created)")),
                 ("owned_by", .string("finch"))])
    }

    static func require(_ method: HTTPRequest.Method, _ request: Request) throws(APIError) {
        guard request.method == method else {
            throw APIError(.methodNotAllowed, "Method \(request.method.rawValue) is not allowed on \(request.uri.path); use \(method.rawValue).",
                           code: "method_not_allowed", headers: [.allow: method.rawValue])
        }
    }

    static func json(_ status: HTTPResponse.Status, _ value: JSONValue, headers: HTTPFields = [:]) -> Response {
        var fields = headers
        fields[.contentType] = "application/json"
        return Response(status: status, headers: fields, body: .init(byteBuffer: ByteBuffer(string: value.compactText)))
    }

    static func response(_ error: APIError) -> Response {
        json(error.status, error.json, headers: error.headers)
    }
}
