import FinchFormats
import Foundation
import Hummingbird
import HummingbirdTesting
import XCTest
@testable import FinchServer

/// The queue (one generation at a time, first come first served, 429 when full), timeouts,
/// shutdown, clients that hang up (on a live server, over a bare socket), and the log lines.
final class ServerConcurrencyTests: XCTestCase {
    /// Holds the model with a job that waits until released.
    func occupy(_ server: ModelServer) async throws -> BlockingJob {
        let blocker = BlockingJob()
        try server.queue.submit(blocker.job)
        let running = await eventually(within: 10) { server.queue.status.generating && server.queue.status.waiting == 0 }
        XCTAssertTrue(running, "the blocking job should be running")
        return blocker
    }

    func testFullQueueIs429AndRequestsRunInArrivalOrder() async throws {
        let log = LogLines()
        let server = try makeServer(ServerConfiguration(port: 0, logPrompts: true, maxQueue: 3), log: log)
        let blocker = try await occupy(server)
        try await server.application().test(.router) { client in
            let names = ["first", "second", "third"]
            var waiting: [Task<TestResponse, Error>] = []
            for (i, name) in names.enumerated() {
                waiting.append(Task { try await client.post("/v1/completions", "{\"prompt\": \"\(name)\", \"max_tokens\": 2, \"temperature\": 0}") })
                let queued = await eventually(within: 10) { server.queue.status.waiting == i + 1 }
                XCTAssertTrue(queued, "\(name) should be waiting")
            }
            let refused = try await client.post("/v1/completions", #"{"prompt": "fourth", "max_tokens": 2}"#)
            try assertAPIError(refused, .tooManyRequests, type: "rate_limit_error", param: nil, code: "queue_full")
            XCTAssertEqual(refused.headers[.retryAfter], "1")
            // The page and health stay responsive while the model is busy.
            let health = try parseJSON(try await client.execute(uri: "/health", method: .get))
            XCTAssertEqual(health["generating"]?.boolValue, true)
            XCTAssertEqual(health["waiting"]?.intValue, 3)

            blocker.release.signal()
            for task in waiting {
                let status = try await task.value.status
                XCTAssertEqual(status, .ok)
            }
            let order = log.requests.filter { $0.hasPrefix("POST /v1/completions 200") }.compactMap { line in
                names.first { line.hasSuffix("prompt \"\($0)\"") }
            }
            XCTAssertEqual(order, names, "generations must run first come, first served:\n\(log.all.joined(separator: "\n"))")
            XCTAssertTrue(log.requests.contains { $0.hasPrefix("POST /v1/completions 429 in ") && $0.hasSuffix("prompt \"fourth\"") },
                          log.all.joined(separator: "\n"))
        }
    }

    func testTimeoutIs504AndLeavesTheQueue() async throws {
        let log = LogLines()
        let server = try makeServer(ServerConfiguration(port: 0, requestTimeout: 0.3), log: log)
        let blocker = try await occupy(server)
        try await server.application().test(.router) { client in
            let started = Date()
            let response = try await client.post("/v1/completions", #"{"prompt": "Hi", "max_tokens": 2}"#)
            try assertAPIError(response, .gatewayTimeout, type: "timeout_error", param: nil, code: "timeout")
            XCTAssertGreaterThanOrEqual(Date().timeIntervalSince(started), 0.3)
            XCTAssertEqual(server.queue.status.waiting, 0, "a timed-out request leaves the queue")
            // Streaming: the 200 is already sent, so the stream ends with an error event, then [DONE].
            let stream = try await client.post("/v1/chat/completions", #"{"messages": [{"role": "user", "content": "Hi"}], "stream": true}"#)
            XCTAssertEqual(stream.status, .ok)
            let events = serverSentEvents(text(stream))
            XCTAssertEqual(events.count, 3, "\(events)")
            XCTAssertEqual(try JSONValue.parse(events[0], path: "role chunk")["choices"]?[0]?["delta"]?["role"]?.stringValue, "assistant")
            XCTAssertEqual(try JSONValue.parse(events[1], path: "error event")["error"]?["code"]?.stringValue, "timeout")
            XCTAssertEqual(events.last, "[DONE]")
            blocker.release.signal()
        }
        XCTAssertTrue(log.requests.contains { $0.hasPrefix("POST /v1/completions 504 ") && $0.hasSuffix("(timeout)") }, log.all.joined(separator: "\n"))
    }

    func testShutdownRefusesNewWork() async throws {
        let server = try makeServer()
        server.queue.shutdown()
        try await server.application().test(.router) { client in
            try assertAPIError(try await client.post("/v1/completions", #"{"prompt": "Hi", "max_tokens": 2}"#), .serviceUnavailable,
                                    type: "server_error", param: nil, code: "shutting_down")
            let health = try await client.execute(uri: "/health", method: .get)
            XCTAssertEqual(health.status, .serviceUnavailable)
            XCTAssertEqual(try parseJSON(health)["status"]?.stringValue, "shutting_down")
        }
    }

    func testClientDisconnectingMidStreamFreesTheModel() async throws {
        let log = LogLines()
        let server = try makeServer(log: log)
        try await server.application().test(.live) { client in
            let port = try XCTUnwrap(client.port)
            let connection = try RawHTTPConnection(port: port)
            try connection.post("/v1/completions", json: #"{"prompt": "1, 2, 3,", "max_tokens": 3000, "ignore_eos": true, "temperature": 0, "stream": true}"#)
            XCTAssertTrue(connection.read { $0.components(separatedBy: "data: {").count > 4 }, connection.received)
            XCTAssertTrue(connection.received.hasPrefix("HTTP/1.1 200"), connection.received)
            XCTAssertTrue(server.queue.status.generating)
            connection.close()
            let freed = await eventually(within: 10) { !server.queue.status.generating }
            XCTAssertTrue(freed, "the generation must stop when its client hangs up")
            let logged = await eventually(within: 5) { log.requests.contains { $0.contains("client gone") } }
            XCTAssertTrue(logged, log.all.joined(separator: "\n"))
            let line = log.requests.first { $0.contains("client gone") } ?? ""
            XCTAssertTrue(line.hasPrefix("POST /v1/completions 200 "), line)
            XCTAssertLessThan(try XCTUnwrap(number(after: "out", in: line)), 3000, line)
            XCTAssertNotNil(number(after: "free", in: line), "the log says how soon the model was free: \(line)")

            // The model serves the next request.
            let next = try await client.post("/v1/completions", #"{"prompt": "Hi", "max_tokens": 2, "temperature": 0}"#)
            XCTAssertEqual(next.status, .ok)
        }
    }

    func testClientDisconnectingWhileWaitingForAWholeResponseFreesTheModel() async throws {
        let log = LogLines()
        let server = try makeServer(log: log)
        try await server.application().test(.live) { client in
            let connection = try RawHTTPConnection(port: try XCTUnwrap(client.port))
            try connection.post("/v1/chat/completions", json: #"{"messages": [{"role": "user", "content": "Tell me a long story."}], "max_tokens": 3000, "ignore_eos": true}"#)
            let generating = await eventually(within: 20) { server.queue.status.generating }
            XCTAssertTrue(generating)
            try? await Task.sleep(for: .milliseconds(200))
            connection.close()
            let freed = await eventually(within: 10) { !server.queue.status.generating }
            XCTAssertTrue(freed, "the generation must stop when its client hangs up")
            let logged = await eventually(within: 5) { log.requests.contains { $0.hasPrefix("POST /v1/chat/completions 499 ") } }
            XCTAssertTrue(logged, log.all.joined(separator: "\n"))
        }
    }

    /// A chunked body (no Content-Length) is limited while it is read.
    func testChunkedOversizedBodyIs413() async throws {
        let server = try makeServer(ServerConfiguration(port: 0, maxBodyBytes: 200))
        try await server.application().test(.live) { client in
            let connection = try RawHTTPConnection(port: try XCTUnwrap(client.port))
            let body = "{\"prompt\": \"\(String(repeating: "y", count: 300))\"}"
            let chunk = String(body.utf8.count, radix: 16) + "\r\n" + body + "\r\n0\r\n\r\n"
            try connection.send("POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n" + chunk)
            connection.read { $0.contains("}}") }
            XCTAssertTrue(connection.received.hasPrefix("HTTP/1.1 413"), connection.received)
            XCTAssertTrue(connection.received.contains("\"code\":\"request_too_large\""), connection.received)
        }
    }

    func testOneLogLinePerRequestWithoutPromptText() async throws {
        let log = LogLines()
        let server = try makeServer(log: log)
        try await server.application().test(.router) { client in
            _ = try await client.execute(uri: "/health", method: .get)
            _ = try await client.post("/v1/chat/completions", #"{"messages": [{"role": "user", "content": "The secret word is pineapple."}], "max_tokens": 3, "temperature": 0}"#)
            _ = try await client.post("/v1/chat/completions", #"{"messages": [{"role": "user", "content": "Say pineapple."}], "max_tokens": 3, "stream": true}"#)
            _ = try await client.post("/v1/chat/completions", "{")
        }
        let lines = log.requests
        XCTAssertEqual(lines.count, 4, lines.joined(separator: "\n"))
        XCTAssertTrue(lines[0].hasPrefix("GET /health 200 in 0 out 0 "), lines[0])
        XCTAssertTrue(lines[1].hasPrefix("POST /v1/chat/completions 200 in "), lines[1])
        XCTAssertEqual(number(after: "out", in: lines[1]), 3)
        XCTAssertGreaterThan(number(after: "in", in: lines[1]) ?? 0, 5)
        XCTAssertTrue(lines[2].hasPrefix("POST /v1/chat/completions 200 in "), lines[2])
        XCTAssertTrue(lines[3].hasPrefix("POST /v1/chat/completions 400 in 0 out 0 "), lines[3])
        for line in lines {
            XCTAssertTrue(line.hasSuffix(" ms"), line)
            XCTAssertFalse(line.contains("pineapple"), "no prompt text without --log-prompts: \(line)")
        }
        let logged = LogLines()
        let verbose = try makeServer(ServerConfiguration(port: 0, logPrompts: true), log: logged)
        try await verbose.application().test(.router) { client in
            _ = try await client.post("/v1/chat/completions", #"{"messages": [{"role": "user", "content": "The secret word is pineapple."}], "max_tokens": 1}"#)
        }
        XCTAssertTrue(logged.requests.first?.contains("pineapple") == true, logged.all.joined(separator: "\n"))
    }
}

/// The number after `key` in a log line (`out 57`, `free 12`).
func number(after key: String, in line: String) -> Int? {
    guard let range = line.range(of: key + " ") else { return nil }
    return Int(line[range.upperBound...].prefix { $0.isNumber })
}
