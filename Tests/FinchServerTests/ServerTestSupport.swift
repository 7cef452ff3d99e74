import FinchCore
import FinchFormats
@testable import FinchGeneration
import FinchModels
import FinchTokenizers
import Foundation
import Hummingbird
import HummingbirdTesting
import XCTest
@testable import FinchServer

/// The default model, loaded once for every server test.
enum DefaultModel {
    static let loaded: (CausalLM, Tokenizer)? = {
        guard let source = try? ModelSource(path: ModelCache.fromEnvironment().path(for: .defaultModel)),
              let model = try? CausalLM(source: source), let tokenizer = try? Tokenizer(source: source) else { return nil }
        return (model, tokenizer)
    }()

    /// A generator of its own (tests compute expected text with it, the server uses another).
    static func generator() throws -> Generator {
        let (model, tokenizer) = try XCTUnwrap(loaded, "the default model must be cached (scripts/test pulls it)")
        return Generator(model: model, tokenizer: tokenizer, pool: ThreadPool(threads: 2))
    }

    static let id = KnownModel.defaultModel.name
}

/// Log lines a server wrote, collected across threads.
final class LogLines: @unchecked Sendable {
    private let lock = NSLock()
    private var lines: [String] = []

    func append(_ line: String) { lock.withLock { lines.append(line) } }
    var all: [String] { lock.withLock { lines } }
    /// Request lines only (not the "serving … on" line).
    var requests: [String] { all.filter { !$0.hasPrefix("serving ") } }
}

/// A server on the default model with `configuration`, logging into `log`.
func makeServer(_ configuration: ServerConfiguration = ServerConfiguration(port: 0), log: LogLines = LogLines()) throws -> ModelServer {
    let generator = try DefaultModel.generator()
    return try ModelServer(generator: generator, template: ChatTemplate(tokenizer: generator.tokenizer), modelID: DefaultModel.id,
                           configuration: configuration, log: { log.append($0) })
}

/// The body of a response as text.
func text(_ response: TestResponse) -> String {
    response.body.getString(at: response.body.readerIndex, length: response.body.readableBytes) ?? ""
}

/// The body of a response parsed as JSON (fails the test if it is not JSON).
func parseJSON(_ response: TestResponse, file: StaticString = #filePath, line: UInt = #line) throws -> JSONValue {
    do {
        return try JSONValue.parse(text(response), path: "response body")
    } catch {
        XCTFail("not JSON: \(text(response))", file: file, line: line)
        throw error
    }
}

/// Checks an OpenAI error response: the status, exactly the four members, and the type, param
/// and code expected.
func assertAPIError(_ response: TestResponse, _ status: HTTPResponse.Status, type: String = "invalid_request_error",
                    param: String?, code: String?, file: StaticString = #filePath, line: UInt = #line) throws {
    XCTAssertEqual(response.status, status, text(response), file: file, line: line)
    XCTAssertEqual(response.headers[.contentType], "application/json", file: file, line: line)
    let body = try parseJSON(response, file: file, line: line)
    let error = try XCTUnwrap(body["error"], "no error object: \(text(response))", file: file, line: line)
    XCTAssertEqual(error.objectValue?.map(\.0).sorted(), ["code", "message", "param", "type"], file: file, line: line)
    XCTAssertEqual(error["type"]?.stringValue, type, text(response), file: file, line: line)
    XCTAssertEqual(error["param"]?.stringValue, param, text(response), file: file, line: line)
    if param == nil { XCTAssertEqual(error["param"], .null, file: file, line: line) }
    XCTAssertEqual(error["code"]?.stringValue, code, text(response), file: file, line: line)
    if code == nil { XCTAssertEqual(error["code"], .null, file: file, line: line) }
    XCTAssertFalse(error["message"]?.stringValue?.isEmpty ?? true, file: file, line: line)
}

extension TestClientProtocol {
    /// POSTs a JSON text.
    func post(_ uri: String, _ body: String, headers: HTTPFields = [:]) async throws -> TestResponse {
        var fields = headers
        fields[.contentType] = "application/json"
        return try await execute(uri: uri, method: .post, headers: fields, body: ByteBuffer(string: body))
    }
}

/// The server-sent events of a streamed body: the `data:` payloads, in order. Fails on any line
/// that is not `data: …` followed by a blank line.
func serverSentEvents(_ body: String, file: StaticString = #filePath, line: UInt = #line) -> [String] {
    guard body.hasSuffix("\n\n") else {
        XCTFail("the stream does not end with a blank line: \(body.suffix(80))", file: file, line: line)
        return []
    }
    var events: [String] = []
    for block in body.dropLast(2).components(separatedBy: "\n\n") {
        guard block.hasPrefix("data: "), !block.contains("\n") else {
            XCTFail("malformed event: \(block)", file: file, line: line)
            continue
        }
        events.append(String(block.dropFirst("data: ".count)))
    }
    return events
}

/// A job that holds the model until released, to fill the queue deterministically.
final class BlockingJob: @unchecked Sendable {
    let started = DispatchSemaphore(value: 0)
    let release = DispatchSemaphore(value: 0)
    lazy var job = GenerationJob { [started, release] _, _ in
        started.signal()
        release.wait()
        return GenerationSummary(promptTokens: 1, prefilledTokens: 1, generatedTokens: [], finishReason: .maxTokens,
                                 prefillSeconds: 0, decodeSeconds: 0, text: "")
    }
}

/// Waits (polling) until `condition` holds or `seconds` pass; returns whether it held.
func eventually(within seconds: Double, _ condition: () -> Bool) async -> Bool {
    let deadline = Date().addingTimeInterval(seconds)
    while Date() < deadline {
        if condition() { return true }
        try? await Task.sleep(for: .milliseconds(5))
    }
    return condition()
}

extension JSONValue {
    /// The element at `index` of an array, or nil.
    subscript(index: Int) -> JSONValue? {
        guard case .array(let items) = self, items.indices.contains(index) else { return nil }
        return items[index]
    }
}
