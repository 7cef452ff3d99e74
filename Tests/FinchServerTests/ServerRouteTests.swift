import FinchFormats
import Foundation
import Hummingbird
import HummingbirdTesting
import XCTest
@testable import FinchServer

/// Every route and every request error, in process (HummingbirdTesting's router client): status,
/// OpenAI's error body (message, type, param, code) and the headers that go with it.
final class ServerRouteTests: XCTestCase {
    func testPageHealthAndModels() async throws {
        let server = try makeServer()
        try await server.application().test(.router) { client in
            let page = try await client.execute(uri: "/", method: .get)
            XCTAssertEqual(page.status, .ok)
            XCTAssertEqual(page.headers[.contentType], "text/html; charset=utf-8")
            XCTAssertEqual(text(page), ChatPage.html)

            let health = try parseJSON(try await client.execute(uri: "/health", method: .get))
            XCTAssertEqual(health["status"]?.stringValue, "ok")
            XCTAssertEqual(health["model"]?.stringValue, DefaultModel.id)
            XCTAssertEqual(health["generating"]?.boolValue, false)
            XCTAssertEqual(health["waiting"]?.intValue, 0)

            let models = try parseJSON(try await client.execute(uri: "/v1/models", method: .get))
            XCTAssertEqual(models["object"]?.stringValue, "list")
            let data = try XCTUnwrap(models["data"]?.arrayValue)
            XCTAssertEqual(data.count, 1)
            XCTAssertEqual(data[0]["id"]?.stringValue, DefaultModel.id)
            XCTAssertEqual(data[0]["object"]?.stringValue, "model")
            XCTAssertEqual(data[0]["owned_by"]?.stringValue, "finch")
            XCTAssertNotNil(data[0]["created"]?.intValue)

            let one = try parseJSON(try await client.execute(uri: "/v1/models/\(DefaultModel.id)", method: .get))
            XCTAssertEqual(one["id"]?.stringValue, DefaultModel.id)
            try assertAPIError(try await client.execute(uri: "/v1/models/gpt-4o", method: .get), .notFound,
                                    param: nil, code: "model_not_found")
        }
    }

    func testUnknownPathIs404AndWrongMethodIs405() async throws {
        let server = try makeServer()
        try await server.application().test(.router) { client in
            try assertAPIError(try await client.execute(uri: "/v1/embeddings", method: .post), .notFound, param: nil, code: "unknown_url")
            try assertAPIError(try await client.execute(uri: "/favicon.ico", method: .get), .notFound, param: nil, code: "unknown_url")
            let wrong = try await client.execute(uri: "/v1/chat/completions", method: .get)
            try assertAPIError(wrong, .methodNotAllowed, param: nil, code: "method_not_allowed")
            XCTAssertEqual(wrong.headers[.allow], "POST")
            let wrongPage = try await client.execute(uri: "/", method: .post)
            try assertAPIError(wrongPage, .methodNotAllowed, param: nil, code: "method_not_allowed")
            XCTAssertEqual(wrongPage.headers[.allow], "GET")
        }
    }

    func testMalformedJSONAndWrongTypesAre400() async throws {
        let server = try makeServer()
        let user = #""messages": [{"role": "user", "content": "Hi"}]"#
        try await server.application().test(.router) { client in
            for body in ["{", "", "not json", #"{"messages": [}"#] {
                try assertAPIError(try await client.post("/v1/chat/completions", body), .badRequest, param: nil, code: nil)
            }
            try assertAPIError(try await client.post("/v1/chat/completions", "[1, 2]"), .badRequest, param: nil, code: nil)
            let cases: [(String, String)] = [
                (#"{"messages": "Hi"}"#, "messages"),
                (#"{"messages": ["Hi"]}"#, "messages[0]"),
                (#"{"messages": [{"role": "user", "content": 5}]}"#, "messages[0].content"),
                (#"{"messages": [{"role": 1, "content": "Hi"}]}"#, "messages[0].role"),
                (#"{"messages": [{"role": "user", "content": [{"type": "text", "text": 3}]}]}"#, "messages[0].content[0].text"),
                ("{\(user), \"temperature\": \"hot\"}", "temperature"),
                ("{\(user), \"top_p\": []}", "top_p"),
                ("{\(user), \"max_tokens\": 1.5}", "max_tokens"),
                ("{\(user), \"max_completion_tokens\": \"10\"}", "max_completion_tokens"),
                ("{\(user), \"stream\": \"yes\"}", "stream"),
                ("{\(user), \"stop\": [1]}", "stop[0]"),
                ("{\(user), \"stop\": 7}", "stop"),
                ("{\(user), \"seed\": \"42\"}", "seed"),
                ("{\(user), \"model\": 3}", "model"),
                ("{\(user), \"stream\": true, \"stream_options\": {\"include_usage\": 1}}", "stream_options.include_usage"),
            ]
            for (body, param) in cases {
                try assertAPIError(try await client.post("/v1/chat/completions", body), .badRequest, param: param, code: "invalid_type")
            }
            try assertAPIError(try await client.post("/v1/completions", #"{"prompt": 12}"#), .badRequest, param: "prompt", code: "invalid_type")
            try assertAPIError(try await client.post("/v1/completions", #"{"prompt": "Hi", "temperature": true}"#), .badRequest,
                                    param: "temperature", code: "invalid_type")
        }
    }

    func testUnknownModelEmptyMessagesNAndRoles() async throws {
        let server = try makeServer()
        let user = #""messages": [{"role": "user", "content": "Hi"}]"#
        try await server.application().test(.router) { client in
            try assertAPIError(try await client.post("/v1/chat/completions", "{\(user), \"model\": \"gpt-4o\"}"), .notFound,
                                    param: "model", code: "model_not_found")
            try assertAPIError(try await client.post("/v1/completions", #"{"prompt": "Hi", "model": "davinci-002"}"#), .notFound,
                                    param: "model", code: "model_not_found")
            try assertAPIError(try await client.post("/v1/chat/completions", #"{"messages": []}"#), .badRequest,
                                    param: "messages", code: "empty_array")
            try assertAPIError(try await client.post("/v1/chat/completions", "{}"), .badRequest,
                                    param: "messages", code: "missing_required_parameter")
            try assertAPIError(try await client.post("/v1/chat/completions", "{\(user), \"n\": 2}"), .badRequest,
                                    param: "n", code: "invalid_value")
            for role in ["tool", "robot", ""] {
                try assertAPIError(try await client.post("/v1/chat/completions", "{\"messages\": [{\"role\": \"\(role)\", \"content\": \"Hi\"}]}"),
                                        .badRequest, param: "messages[0].role", code: "invalid_value")
            }
            let image = #"{"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]}"#
            try assertAPIError(try await client.post("/v1/chat/completions", image), .badRequest,
                                    param: "messages[0].content[0].type", code: "invalid_value")
            let valueCases: [(String, String)] = [
                ("{\(user), \"temperature\": 2.5}", "temperature"),
                ("{\(user), \"top_p\": 1.5}", "top_p"),
                ("{\(user), \"max_tokens\": 0}", "max_tokens"),
                ("{\(user), \"max_tokens\": 5000}", "max_tokens"), // over --max-tokens-limit (4096)
                ("{\(user), \"stop\": [\"a\", \"b\", \"c\", \"d\", \"e\"]}", "stop"),
                ("{\(user), \"stream_options\": {\"include_usage\": true}}", "stream_options"), // without stream
                ("{\(user), \"logprobs\": true}", "logprobs"),
                ("{\(user), \"presence_penalty\": 0.5}", "presence_penalty"),
                ("{\(user), \"tools\": [{\"type\": \"function\"}]}", "tools"),
            ]
            for (body, param) in valueCases {
                try assertAPIError(try await client.post("/v1/chat/completions", body), .badRequest, param: param, code: "invalid_value")
            }
            try assertAPIError(try await client.post("/v1/completions", "{}"), .badRequest, param: "prompt", code: "missing_required_parameter")
            try assertAPIError(try await client.post("/v1/completions", #"{"prompt": ["a", "b"]}"#), .badRequest, param: "prompt", code: "invalid_value")
            try assertAPIError(try await client.post("/v1/completions", #"{"prompt": ""}"#), .badRequest, param: "prompt", code: "invalid_value")
            try assertAPIError(try await client.post("/v1/completions", #"{"prompt": [1, 99999999]}"#), .badRequest, param: "prompt", code: "invalid_value")
            // A prompt longer than the context (8192 tokens), and one that leaves no room for max_tokens.
            let long = String(repeating: "hello ", count: 9000)
            try assertAPIError(try await client.post("/v1/completions", "{\"prompt\": \"\(long)\"}"), .badRequest,
                                    param: "prompt", code: "context_length_exceeded")
            let nearlyFull = String(repeating: "hello ", count: 7800)
            try assertAPIError(try await client.post("/v1/completions", "{\"prompt\": \"\(nearlyFull)\", \"max_tokens\": 1000}"),
                                    .badRequest, param: "max_tokens", code: "context_length_exceeded")
        }
    }

    func testOversizedBodyIs413() async throws {
        let server = try makeServer(ServerConfiguration(port: 0, maxBodyBytes: 200))
        try await server.application().test(.router) { client in
            let small = #"{"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 1}"#
            let status1 = try await client.post("/v1/chat/completions", small).status
            XCTAssertEqual(status1, .ok)
            let big = "{\"messages\": [{\"role\": \"user\", \"content\": \"\(String(repeating: "x", count: 300))\"}]}"
            let response = try await client.post("/v1/chat/completions", big)
            try assertAPIError(response, .contentTooLarge, param: nil, code: "request_too_large")
        }
    }

    func testAPIKeyGuardsEveryV1Route() async throws {
        let server = try makeServer(ServerConfiguration(port: 0, apiKey: "sk-finch-test"))
        try await server.application().test(.router) { client in
            let missing = try await client.execute(uri: "/v1/models", method: .get)
            try assertAPIError(missing, .unauthorized, param: nil, code: nil)
            XCTAssertEqual(missing.headers[.wwwAuthenticate], "Bearer")
            for header in ["Bearer sk-finch-tes", "Bearer sk-finch-test2", "Basic sk-finch-test", "sk-finch-test", "Bearer "] {
                try assertAPIError(try await client.execute(uri: "/v1/models", method: .get, headers: [.authorization: header]),
                                        .unauthorized, param: nil, code: "invalid_api_key")
            }
            let body = #"{"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 1}"#
            try assertAPIError(try await client.post("/v1/chat/completions", body), .unauthorized, param: nil, code: nil)
            try assertAPIError(try await client.post("/v1/completions", #"{"prompt": "Hi"}"#), .unauthorized, param: nil, code: nil)
            try assertAPIError(try await client.execute(uri: "/v1/nothing-here", method: .get), .unauthorized, param: nil, code: nil)

            let key: HTTPFields = [.authorization: "Bearer sk-finch-test"]
            let status2 = try await client.execute(uri: "/v1/models", method: .get, headers: key).status
            XCTAssertEqual(status2, .ok)
            let status3 = try await client.post("/v1/chat/completions", body, headers: key).status
            XCTAssertEqual(status3, .ok)
            let status4 = try await client.execute(uri: "/v1/models", method: .get, headers: [.authorization: "bearer sk-finch-test"]).status
            XCTAssertEqual(status4, .ok)
            // The page and the health check stay open.
            let status5 = try await client.execute(uri: "/", method: .get).status
            XCTAssertEqual(status5, .ok)
            let status6 = try await client.execute(uri: "/health", method: .get).status
            XCTAssertEqual(status6, .ok)
        }
    }

    func testConstantTimeComparison() {
        let key = Array("sk-finch-test".utf8)
        XCTAssertTrue(BearerAuthorization.constantTimeEqual(key, key))
        XCTAssertFalse(BearerAuthorization.constantTimeEqual(Array("sk-finch-tesT".utf8), key))
        XCTAssertFalse(BearerAuthorization.constantTimeEqual(Array("sk-finch-test\0".utf8), key))
        XCTAssertFalse(BearerAuthorization.constantTimeEqual(Array("sk-finch".utf8), key))
        XCTAssertFalse(BearerAuthorization.constantTimeEqual([], key))
        XCTAssertTrue(BearerAuthorization.constantTimeEqual([], []))
    }

    func testConfigurationIsChecked() {
        for (configuration, fragment) in [(ServerConfiguration(port: 70000), "--port"), (ServerConfiguration(maxQueue: -1), "--max-queue"),
                                          (ServerConfiguration(maxTokensLimit: 0), "--max-tokens-limit"),
                                          (ServerConfiguration(maxBodyBytes: 0), "--max-body-bytes"),
                                          (ServerConfiguration(requestTimeout: 0), "--request-timeout"), (ServerConfiguration(apiKey: ""), "--api-key")] {
            XCTAssertThrowsError(try configuration.validate()) { XCTAssertTrue("\($0)".contains(fragment), "\($0)") }
        }
    }
}
