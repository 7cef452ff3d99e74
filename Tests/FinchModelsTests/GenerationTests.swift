import FinchCore
import FinchFormats
import FinchGeneration
import FinchModels
import FinchTokenizers
import XCTest

/// Sampling, stop rules and streaming on the real default model and on unit inputs.
final class GenerationTests: XCTestCase {
    static let session: (CausalLM, Tokenizer)? = {
        guard let source = try? ModelSource(path: ModelCache.fromEnvironment().path(for: .defaultModel)),
              let model = try? CausalLM(source: source), let tokenizer = try? Tokenizer(source: source) else { return nil }
        return (model, tokenizer)
    }()

    func generator() throws -> Generator {
        let (model, tokenizer) = try XCTUnwrap(Self.session, "the default model must be cached (scripts/test pulls it)")
        return Generator(model: model, tokenizer: tokenizer, pool: ThreadPool(threads: 2))
    }

    func testInvalidSamplingValuesAreClearErrors() {
        for (parameters, fragment) in [(SamplingParameters(temperature: -1), "temperature"), (SamplingParameters(topP: 0), "top_p"),
                                       (SamplingParameters(topP: 1.5), "top_p"), (SamplingParameters(topK: -2), "top_k"),
                                       (SamplingParameters(minP: 2), "min_p"), (SamplingParameters(repetitionPenalty: 0), "repetition_penalty")] {
            XCTAssertThrowsError(try parameters.validate()) { XCTAssertTrue("\($0)".contains(fragment), "\($0)") }
        }
    }

    func testEmptyAndTooLongPromptsAreClearErrors() throws {
        let g = try generator()
        XCTAssertThrowsError(try g.generate(GenerationRequest(promptTokens: []))) { XCTAssertTrue("\($0)".contains("empty"), "\($0)") }
        let long = [Int](repeating: 504, count: g.model.contextLength + 1)
        XCTAssertThrowsError(try g.generate(GenerationRequest(promptTokens: long))) { XCTAssertTrue("\($0)".contains("context"), "\($0)") }
    }

    func testGreedyIsDeterministicAndStopsAtStopStringsSplitAcrossTokens() throws {
        let g = try generator()
        let prompt = g.tokenizer.encode("The capital of France is")
        let a = try g.generate(GenerationRequest(promptTokens: prompt, maxNewTokens: 12))
        let b = try g.generate(GenerationRequest(promptTokens: prompt, maxNewTokens: 12))
        XCTAssertEqual(a.generatedTokens, b.generatedTokens)
        XCTAssertTrue(a.text.hasPrefix(" Paris"), a.text)
        XCTAssertEqual(a.finishReason, .maxTokens)
        // A stop string made of the end of one token and the start of the next ("ris." spans " Paris" + ".").
        var streamed = ""
        let s = try g.generate(GenerationRequest(promptTokens: prompt, maxNewTokens: 12, stopStrings: ["ris."])) { streamed += $0; return true }
        XCTAssertEqual(s.finishReason, .stopString)
        XCTAssertEqual(s.text, " Pa")
        XCTAssertEqual(streamed, " Pa", "the held-back part of a stop string must never be streamed")
    }

    func testSeededSamplingIsReproducibleAndCancellationStops() throws {
        let g = try generator()
        let prompt = g.tokenizer.encode("Once upon a time")
        let p = SamplingParameters(temperature: 0.9, topK: 50, topP: 0.95, minP: 0.02, repetitionPenalty: 1.1, seed: 42)
        let a = try g.generate(GenerationRequest(promptTokens: prompt, maxNewTokens: 16, sampling: p))
        let b = try g.generate(GenerationRequest(promptTokens: prompt, maxNewTokens: 16, sampling: p))
        XCTAssertEqual(a.generatedTokens, b.generatedTokens)
        var pieces = 0
        let c = try g.generate(GenerationRequest(promptTokens: prompt, maxNewTokens: 16)) { _ in pieces += 1; return pieces < 2 }
        XCTAssertEqual(c.finishReason, .cancelled)
        XCTAssertLessThan(c.generatedTokens.count, 16)
    }

    /// `shouldContinue` is asked before each forward pass, whether or not the step produced text:
    /// answering false before decode step k ends with `.cancelled` and k tokens (the prefill's and
    /// k − 1 steps'); false before the prefill runs nothing.
    func testShouldContinueStopsWithinOneStep() throws {
        let g = try generator()
        let prompt = g.tokenizer.encode("The capital of France is")
        var asked = 0
        let s = try g.generate(GenerationRequest(promptTokens: prompt, maxNewTokens: 12),
                               shouldContinue: { asked += 1; return asked <= 3 })
        XCTAssertEqual(s.finishReason, .cancelled)
        XCTAssertEqual(s.generatedTokens.count, 3, "asked before the prefill and before decode steps 1, 2; refused before step 3")
        XCTAssertEqual(asked, 4)
        let none = try g.generate(GenerationRequest(promptTokens: prompt, maxNewTokens: 12), shouldContinue: { false })
        XCTAssertEqual(none.finishReason, .cancelled)
        XCTAssertEqual(none.generatedTokens, [])
        XCTAssertEqual(none.prefilledTokens, 0)
    }

    func testStreamingEventsEndWithASummary() async throws {
        let g = try generator()
        var text = ""
        var summary: GenerationSummary?
        for try await event in g.stream(GenerationRequest(promptTokens: g.tokenizer.encode("The capital of France is"), maxNewTokens: 8)) {
            switch event {
            case .text(let t): text += t
            case .finished(let s): summary = s
            }
        }
        XCTAssertEqual(text, summary?.text)
        XCTAssertEqual(summary?.generatedTokens.count, 8)
    }

    func testTopKOneAndTinyTopPAreGreedy() throws {
        let logits: [Float] = [0.1, 3, 2.9, -1]
        var k1 = try Sampler(SamplingParameters(temperature: 1, topK: 1, seed: 7))
        var p = try Sampler(SamplingParameters(temperature: 1, topP: 1e-6, seed: 7))
        for _ in 0..<20 {
            XCTAssertEqual(k1.next(logits, context: []), 1)
            XCTAssertEqual(p.next(logits, context: []), 1)
        }
        // Repetition penalty (CTRL): a positive logit in the context is divided, so id 2 wins.
        var r = try Sampler(SamplingParameters(repetitionPenalty: 1.2))
        XCTAssertEqual(r.next(logits, context: [1]), 2)
    }
}
