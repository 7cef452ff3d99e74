import FinchCore
import FinchFormats
import FinchGeneration
import FinchJinja
import FinchModels
import FinchTokenizers
import FinchTraining
import Foundation
import XCTest

/// The quickstart's evaluation on the tiny Llama of the DPO fixtures (its own BPE tokenizer and
/// SmolLM2's chat template): preference accuracy against log-probs computed independently with
/// the KV-cached inference forward, the rule score against a plain greedy loop, and the
/// evaluation.json document.
final class QuickstartEvaluationTests: XCTestCase {
    static let modelFolder = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("Fixtures/dpo/tiny_llama_dpo").path

    /// Short orca rows (an explicit system turn keeps them inside the tiny model's 128 tokens).
    static let rows: [(String, String, String)] = [
        ("Capital of France?", "Paris.", "Well, it is Paris, I think."),
        ("What is 2 plus 3?", "5.", "Sure! 2 plus 3 equals 5."),
        ("Day after Monday?", "Tuesday.", "The day after Monday is Tuesday."),
        ("Opposite of hot?", "Cold.", "Hmm. Cold, probably."),
        ("Letters in cat?", "3 letters.", "The word cat has three letters in it."),
    ]

    func pairs(_ tokenizer: Tokenizer) throws -> [DPOSequencePair] {
        let examples = Self.rows.enumerated().map { i, row in
            PreferenceExample(prompt: .text(row.0), chosen: .text(row.1), rejected: .text(row.2), system: "Be brief.", location: "row \(i + 1)")
        }
        return try DPOTokenizer.tokenize(examples, tokenizer: tokenizer).pairs.map {
            DPOSequencePair(chosen: $0.chosenInputIDs, chosenPromptLength: $0.chosenPromptLength,
                            rejected: $0.rejectedInputIDs, rejectedPromptLength: $0.rejectedPromptLength)
        }
    }

    /// Mean log p of `tokens[promptLength...]`, each token scored by the logits of the one before,
    /// from the inference forward (KV cache, all logits) and a log-softmax in Double.
    func independentMean(_ model: CausalLM, tokens: [Int], promptLength: Int, adapter: LoRAAdapter?) throws -> Double {
        let logits = try model.forward(tokens, cache: model.makeCache(), allLogits: true, adapter: adapter)
        let V = model.configuration.vocabSize
        var sum = 0.0
        for t in promptLength..<tokens.count {
            let row = logits[((t - 1) * V)..<(t * V)].map(Double.init)
            let top = row.max() ?? 0
            let logSumExp = top + log(row.reduce(0) { $0 + exp($1 - top) })
            sum += row[tokens[t]] - logSumExp
        }
        return sum / Double(tokens.count - promptLength)
    }

    func testPreferenceAccuracyMatchesIndependentLogProbabilities() throws {
        let source = try ModelSource(path: Self.modelFolder)
        let model = try CausalLM(source: source)
        let tokenizer = try Tokenizer(source: source)
        let pairs = try pairs(tokenizer)
        XCTAssertEqual(pairs.count, Self.rows.count)
        // A LoRA adapter with non-zero B, so that "after" differs from "before".
        let adapter = try LoRAAdapter(name: "tuned", configuration: LoRAConfiguration(r: 4, loraAlpha: 8, targetModules: .allLinear),
                                      model: model, seed: 3)
        var rng = SplitMix64(seed: 11)
        for tensor in adapter.parameters.tensors {
            try adapter.parameters.setValues(of: tensor.name, to: (0..<tensor.count).map { _ in rng.uniform(bound: 0.3) })
        }
        let pass = TrainingPass(model: model)
        var results: [PreferenceAccuracy] = []
        for lora in [nil, adapter] {
            var reported: [Int] = []
            let measured = try PreferenceAccuracy.measure(pairs, pass: pass, adapter: lora, batchSize: 2, pool: ThreadPool(threads: 2)) {
                reported.append($0)
            }
            XCTAssertEqual(reported, [2, 4, 5], "progress after each batch of 2 pairs")
            var chosen: [Double] = [], rejected: [Double] = []
            for p in pairs {
                chosen.append(try independentMean(model, tokens: p.chosen, promptLength: p.chosenPromptLength, adapter: lora))
                rejected.append(try independentMean(model, tokens: p.rejected, promptLength: p.rejectedPromptLength, adapter: lora))
            }
            for i in pairs.indices {
                XCTAssertEqual(measured.chosenMeans[i], chosen[i], accuracy: 1e-4, "chosen \(i)")
                XCTAssertEqual(measured.rejectedMeans[i], rejected[i], accuracy: 1e-4, "rejected \(i)")
            }
            let wins = zip(chosen, rejected).filter { $0 > $1 }.count
            XCTAssertEqual(measured.accuracy, Double(wins) / Double(pairs.count))
            XCTAssertEqual(measured.meanMargin, zip(chosen, rejected).reduce(0) { $0 + $1.0 - $1.1 } / Double(pairs.count), accuracy: 1e-4)
            results.append(measured)
        }
        XCTAssertGreaterThan(abs(results[0].chosenMeans[0] - results[1].chosenMeans[0]), 1e-3, "the adapter is applied")
    }

    /// Accuracy and margin by hand: ties count as wrong.
    func testAccuracyAndMarginByHand() {
        let a = PreferenceAccuracy(chosenMeans: [-1, -2, -3, -1], rejectedMeans: [-2, -1, -4, -1])
        XCTAssertEqual(a.accuracy, 0.5)
        XCTAssertEqual(a.meanMargin, 0.25)
        XCTAssertEqual(a.pairCount, 4)
        XCTAssertEqual(PreferenceAccuracy(chosenMeans: [], rejectedMeans: []).accuracy, 0)
    }

    /// Replies are the greedy continuation of the chat-templated question (checked against a plain
    /// argmax loop over the inference forward) and are judged by the rule.
    func testRuleScoreRepliesAreGreedyAndJudged() throws {
        let source = try ModelSource(path: Self.modelFolder)
        let model = try CausalLM(source: source)
        let tokenizer = try Tokenizer(source: source)
        let template = try ChatTemplate(tokenizer: tokenizer)
        let generator = Generator(model: model, tokenizer: tokenizer, pool: ThreadPool(threads: 2))
        let questions: [(question: String, answer: String?)] = [("What is the capital of France?", "Paris"), ("Say hi.", nil)]
        var done: [Int] = []
        let score = try RuleScore.measure(questions, generator: generator, template: template, maxNewTokens: 12) { done.append($0) }
        XCTAssertEqual(done, [1, 2])
        XCTAssertEqual(score.samples.count, 2)
        let stops = Set(model.configuration.eosTokenIDs + [tokenizer.eosTokenID].compactMap { $0 })
        for (sample, (question, answer)) in zip(score.samples, questions) {
            let rendered = try template.render(messages: [["role": "user", "content": .string(question)]], addGenerationPrompt: true,
                                               specialTokens: tokenizer.specialTokensMap)
            let cache = model.makeCache()
            var logits = try model.forward(tokenizer.encode(rendered, addSpecialTokens: false), cache: cache)
            var generated: [Int] = []
            while generated.count < 12 {
                let next = logits.indices.max { logits[$0] < logits[$1] || (logits[$0] == logits[$1] && $0 > $1) } ?? 0
                if stops.contains(next) { break }
                generated.append(next)
                logits = try model.forward([next], cache: cache)
            }
            let expected = tokenizer.decode(generated).trimmingCharacters(in: .whitespacesAndNewlines)
            XCTAssertEqual(sample.reply, expected, question)
            XCTAssertEqual(sample.question, question)
            XCTAssertEqual(sample.answer, answer)
            var violations = AnswerFormatRule().violations(reply: expected, question: question).map(\.description)
            if generated.count == 12 { violations.append("unfinished after 12 tokens") }
            XCTAssertEqual(sample.violations, violations)
        }
        XCTAssertEqual(score.passRate, Double(score.samples.filter(\.passes).count) / 2)
    }

    /// evaluation.json: the schema's keys in order, and read back.
    func testEvaluationSummaryDocument() throws {
        let summary = EvaluationSummary(metrics: [.init(name: "preference accuracy", before: 0.41, after: 0.83, format: .percent),
                                                  .init(name: "mean log-prob margin", before: -0.5, after: 0.25, format: .number)],
                                        samples: [.init(prompt: "Q?", before: "Well, A.", after: "A.")])
        let text = summary.json.compactText
        let json = try JSONValue.parse(text, path: "evaluation.json")
        XCTAssertEqual(json.objectValue?.map(\.0), ["split", "metrics", "samples"])
        XCTAssertEqual(json["split"]?.stringValue, "test")
        let first = try XCTUnwrap(json["metrics"]?.arrayValue?.first)
        XCTAssertEqual(first.objectValue?.map(\.0), ["name", "before", "after", "format"])
        XCTAssertEqual(first["before"]?.doubleValue, 0.41)
        XCTAssertEqual(first["format"]?.stringValue, "percent")
        XCTAssertEqual(json["samples"]?.arrayValue?.first?.objectValue?.map(\.0), ["prompt", "before", "after"])
        XCTAssertEqual(try EvaluationSummary(json: json, path: "evaluation.json"), summary)
        let bad = try JSONValue.parse(#"{"split": "test", "metrics": [{"name": "x", "before": 1, "after": 2, "format": "ratio"}], "samples": []}"#, path: "e")
        XCTAssertThrowsError(try EvaluationSummary(json: bad, path: "e.json")) { error in
            XCTAssertTrue("\(error)".contains("metrics[0]"), "\(error)")
        }
    }
}
