import FinchFormats
import FinchGeneration
import FinchJinja
import FinchTokenizers
import Foundation
import Hummingbird
import HummingbirdTesting
import XCTest
@testable import FinchServer

/// What the API generates: the same text as the Generator (and so `finch generate`) for the
/// same prompt and settings, OpenAI's response and chunk shapes, SSE framing, usage and finish
/// reasons.
final class ServerGenerationTests: XCTestCase {
    /// The prompt `finch generate --chat` builds: the model's template with the generation prompt,
    /// no special tokens added.
    func chatPrompt(_ generator: Generator, system: String? = nil, user: String) throws -> [Int] {
        var messages: [JinjaValue] = []
        if let system { messages.append(["role": "system", "content": .string(system)]) }
        messages.append(["role": "user", "content": .string(user)])
        let text = try ChatTemplate(tokenizer: generator.tokenizer).render(messages: messages, addGenerationPrompt: true,
                                                                           specialTokens: generator.tokenizer.specialTokensMap)
        return generator.tokenizer.encode(text, addSpecialTokens: false)
    }

    func testChatTextEqualsGeneratorOutputForTheSameRequest() async throws {
        let generator = try DefaultModel.generator()
        let server = try makeServer()
        let prompt = try chatPrompt(generator, system: "You are a helpful assistant.", user: "Name three colors.")
        for (temperature, topP, seed) in [(0.8, 0.9, 7), (0.0, 1.0, 0), (1.0, 1.0, 12345)] {
            let expected = try generator.generate(GenerationRequest(
                promptTokens: prompt, maxNewTokens: 24,
                sampling: SamplingParameters(temperature: temperature, topP: topP, seed: UInt64(seed)),
                stopTokenIDs: generator.defaultStopTokenIDs))
            let body = """
                {"model": "\(DefaultModel.id)", "messages": [{"role": "system", "content": "You are a helpful assistant."},
                 {"role": "user", "content": "Name three colors."}], "temperature": \(temperature), "top_p": \(topP),
                 "seed": \(seed), "max_tokens": 24}
                """
            try await server.application().test(.router) { client in
                let response = try await client.post("/v1/chat/completions", body)
                XCTAssertEqual(response.status, .ok, text(response))
                let json = try parseJSON(response)
                XCTAssertEqual(json["object"]?.stringValue, "chat.completion")
                XCTAssertEqual(json["model"]?.stringValue, DefaultModel.id)
                XCTAssertTrue(json["id"]?.stringValue?.hasPrefix("chatcmpl-") == true)
                XCTAssertNotNil(json["created"]?.intValue)
                let choice = try XCTUnwrap(json["choices"]?.arrayValue?.first)
                XCTAssertEqual(json["choices"]?.arrayValue?.count, 1)
                XCTAssertEqual(choice["index"]?.intValue, 0)
                XCTAssertEqual(choice["message"]?["role"]?.stringValue, "assistant")
                XCTAssertEqual(choice["message"]?["content"]?.stringValue, expected.text, "temperature \(temperature) seed \(seed)")
                XCTAssertEqual(choice["finish_reason"]?.stringValue, expected.finishReason == .maxTokens ? "length" : "stop")
                XCTAssertEqual(json["usage"]?["prompt_tokens"]?.intValue, prompt.count)
                XCTAssertEqual(json["usage"]?["completion_tokens"]?.intValue, expected.generatedTokens.count)
                XCTAssertEqual(json["usage"]?["total_tokens"]?.intValue, prompt.count + expected.generatedTokens.count)
            }
        }
    }

    /// Text content parts are joined with newlines; `developer` is the system role.
    func testContentPartsAndDeveloperRole() async throws {
        let generator = try DefaultModel.generator()
        let server = try makeServer()
        let prompt = try chatPrompt(generator, system: "Be brief.", user: "Hello\nthere")
        let expected = try generator.generate(GenerationRequest(promptTokens: prompt, maxNewTokens: 8, sampling: .greedy,
                                                                stopTokenIDs: generator.defaultStopTokenIDs))
        let body = """
            {"messages": [{"role": "developer", "content": "Be brief."}, {"role": "user", "content": [{"type": "text", "text": "Hello"},
             {"type": "text", "text": "there"}]}], "temperature": 0, "max_completion_tokens": 8}
            """
        try await server.application().test(.router) { client in
            let json = try parseJSON(try await client.post("/v1/chat/completions", body))
            XCTAssertEqual(json["choices"]?[0]?["message"]?["content"]?.stringValue, expected.text)
            XCTAssertEqual(json["usage"]?["prompt_tokens"]?.intValue, prompt.count)
        }
    }

    func testCompletionsEqualGeneratorOutputAndFinishReasons() async throws {
        let generator = try DefaultModel.generator()
        let server = try makeServer()
        let prompt = generator.tokenizer.encode("The capital of France is", addSpecialTokens: true)
        let expected = try generator.generate(GenerationRequest(promptTokens: prompt, maxNewTokens: 6, sampling: .greedy,
                                                                stopTokenIDs: generator.defaultStopTokenIDs))
        XCTAssertEqual(expected.finishReason, .maxTokens)
        let stopped = try generator.generate(GenerationRequest(promptTokens: prompt, maxNewTokens: 6, sampling: .greedy,
                                                               stopStrings: ["Paris"], stopTokenIDs: generator.defaultStopTokenIDs))
        XCTAssertEqual(stopped.finishReason, .stopString, "the greedy continuation must contain Paris for this test to mean anything")
        try await server.application().test(.router) { client in
            let json = try parseJSON(try await client.post("/v1/completions", #"{"prompt": "The capital of France is", "max_tokens": 6, "temperature": 0}"#))
            XCTAssertEqual(json["object"]?.stringValue, "text_completion")
            XCTAssertTrue(json["id"]?.stringValue?.hasPrefix("cmpl-") == true)
            XCTAssertEqual(json["choices"]?[0]?["text"]?.stringValue, expected.text)
            XCTAssertEqual(json["choices"]?[0]?["finish_reason"]?.stringValue, "length")
            XCTAssertEqual(json["usage"]?["prompt_tokens"]?.intValue, prompt.count)
            XCTAssertEqual(json["usage"]?["completion_tokens"]?.intValue, 6)

            // A stop string ends the text before it, with finish_reason stop (string or one-element array).
            for stop in [#""Paris""#, #"["Paris", "Berlin"]"#] {
                let json = try parseJSON(try await client.post("/v1/completions", #"{"prompt": ["The capital of France is"], "max_tokens": 6, "temperature": 0, "stop": \#(stop)}"#))
                XCTAssertEqual(json["choices"]?[0]?["text"]?.stringValue, stopped.text)
                XCTAssertFalse(json["choices"]?[0]?["text"]?.stringValue?.contains("Paris") ?? true)
                XCTAssertEqual(json["choices"]?[0]?["finish_reason"]?.stringValue, "stop")
            }
            // Token ids as the prompt give the same text.
            let ids = prompt.map(String.init).joined(separator: ", ")
            let byIDs = try parseJSON(try await client.post("/v1/completions", "{\"prompt\": [\(ids)], \"max_tokens\": 6, \"temperature\": 0}"))
            XCTAssertEqual(byIDs["choices"]?[0]?["text"]?.stringValue, expected.text)
        }
    }

    /// A short chat answer ends at the end-of-sequence token: finish_reason stop, fewer tokens
    /// than allowed.
    func testEndOfSequenceIsStop() async throws {
        let generator = try DefaultModel.generator()
        let server = try makeServer()
        let prompt = try chatPrompt(generator, user: "What is the capital of France? Answer in one word.")
        let expected = try generator.generate(GenerationRequest(promptTokens: prompt, maxNewTokens: 64, sampling: .greedy,
                                                                stopTokenIDs: generator.defaultStopTokenIDs))
        XCTAssertEqual(expected.finishReason, .endOfSequence, "the model must finish its answer within 64 tokens for this test")
        try await server.application().test(.router) { client in
            let json = try parseJSON(try await client.post("/v1/chat/completions", """
                {"messages": [{"role": "user", "content": "What is the capital of France? Answer in one word."}], "temperature": 0, "max_tokens": 64}
                """))
            XCTAssertEqual(json["choices"]?[0]?["finish_reason"]?.stringValue, "stop")
            XCTAssertEqual(json["choices"]?[0]?["message"]?["content"]?.stringValue, expected.text)
            XCTAssertEqual(json["usage"]?["completion_tokens"]?.intValue, expected.generatedTokens.count)
        }
    }

    func testChatStreamFramingWithUsage() async throws {
        let server = try makeServer()
        let request = #"{"messages": [{"role": "user", "content": "Write a haiku about the sea."}], "temperature": 0.7, "seed": 3, "max_tokens": 20"#
        try await server.application().test(.router) { client in
            let whole = try parseJSON(try await client.post("/v1/chat/completions", request + "}"))
            let response = try await client.post("/v1/chat/completions", request + #", "stream": true, "stream_options": {"include_usage": true}}"#)
            XCTAssertEqual(response.status, .ok)
            XCTAssertEqual(response.headers[.contentType], "text/event-stream")
            let events = serverSentEvents(text(response))
            XCTAssertEqual(events.last, "[DONE]")
            XCTAssertEqual(events.filter { $0 == "[DONE]" }.count, 1)
            let chunks = try events.dropLast().map { try JSONValue.parse($0, path: "chunk") }
            XCTAssertGreaterThanOrEqual(chunks.count, 4)
            let id = try XCTUnwrap(chunks.first?["id"]?.stringValue)
            XCTAssertTrue(id.hasPrefix("chatcmpl-"))
            for chunk in chunks {
                XCTAssertEqual(chunk["id"]?.stringValue, id)
                XCTAssertEqual(chunk["object"]?.stringValue, "chat.completion.chunk")
                XCTAssertEqual(chunk["model"]?.stringValue, DefaultModel.id)
            }
            // First: the role; then content deltas; then the finish reason; last: usage with no choices.
            XCTAssertEqual(chunks.first?["choices"]?[0]?["delta"]?["role"]?.stringValue, "assistant")
            let usage = try XCTUnwrap(chunks.last)
            XCTAssertEqual(usage["choices"]?.arrayValue?.count, 0)
            for chunk in chunks.dropLast() { XCTAssertEqual(chunk["usage"], .null, "every other chunk carries usage: null") }
            let final = chunks[chunks.count - 2]
            XCTAssertEqual(final["choices"]?[0]?["finish_reason"]?.stringValue, whole["choices"]?[0]?["finish_reason"]?.stringValue)
            XCTAssertEqual(final["choices"]?[0]?["delta"]?.objectValue?.count, 0)
            for chunk in chunks.dropLast(2) { XCTAssertEqual(chunk["choices"]?[0]?["finish_reason"], .null) }
            let streamed = chunks.compactMap { $0["choices"]?[0]?["delta"]?["content"]?.stringValue }.joined()
            XCTAssertEqual(streamed, whole["choices"]?[0]?["message"]?["content"]?.stringValue)
            XCTAssertEqual(usage["usage"]?["completion_tokens"]?.intValue, whole["usage"]?["completion_tokens"]?.intValue)
            XCTAssertEqual(usage["usage"]?["prompt_tokens"]?.intValue, whole["usage"]?["prompt_tokens"]?.intValue)

            // Without include_usage: no usage member at all.
            let plain = serverSentEvents(text(try await client.post("/v1/chat/completions", request + #", "stream": true}"#)))
            XCTAssertEqual(plain.last, "[DONE]")
            for event in plain.dropLast() { XCTAssertNil(try JSONValue.parse(event, path: "chunk")["usage"]) }
        }
    }

    func testCompletionStreamFraming() async throws {
        let server = try makeServer()
        let request = #"{"prompt": "Once upon a time", "temperature": 0, "max_tokens": 10"#
        try await server.application().test(.router) { client in
            let whole = try parseJSON(try await client.post("/v1/completions", request + "}"))
            let events = serverSentEvents(text(try await client.post("/v1/completions", request + #", "stream": true}"#)))
            XCTAssertEqual(events.last, "[DONE]")
            let chunks = try events.dropLast().map { try JSONValue.parse($0, path: "chunk") }
            for chunk in chunks { XCTAssertEqual(chunk["object"]?.stringValue, "text_completion") }
            XCTAssertEqual(chunks.last?["choices"]?[0]?["finish_reason"]?.stringValue, "length")
            XCTAssertEqual(chunks.compactMap { $0["choices"]?[0]?["text"]?.stringValue }.joined(), whole["choices"]?[0]?["text"]?.stringValue)
        }
    }

    /// A request without a seed is seeded at random (OpenAI's behaviour); one with a seed repeats.
    func testSeedMakesSamplingRepeatable() async throws {
        let server = try makeServer()
        let body = #"{"prompt": "My favourite animal is", "max_tokens": 12, "temperature": 1.0"#
        try await server.application().test(.router) { client in
            var seeded: [String] = []
            var unseeded: Set<String> = []
            for _ in 0..<2 {
                seeded.append(try parseJSON(try await client.post("/v1/completions", body + #", "seed": 99}"#))["choices"]?[0]?["text"]?.stringValue ?? "")
            }
            for _ in 0..<4 {
                unseeded.insert(try parseJSON(try await client.post("/v1/completions", body + "}"))["choices"]?[0]?["text"]?.stringValue ?? "")
            }
            XCTAssertEqual(seeded[0], seeded[1])
            XCTAssertGreaterThan(unseeded.count, 1, "four unseeded samples at temperature 1 should not all agree")
        }
    }
}
