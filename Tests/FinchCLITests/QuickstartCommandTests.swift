import FinchFormats
import FinchTraining
import Foundation
import XCTest
@testable import finch

/// `finch quickstart` end to end on the default model, shortened (`--steps 2`, two generated
/// replies, eight scored pairs): the before/after table, evaluation.json, the adapter and the
/// merged folder; then Ctrl-C during training and the resume that follows.
final class QuickstartCommandTests: XCTestCase, FinchCLIRunning {
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().path
    let short = ["--eval-pairs", "8", "--eval-prompts", "2", "--max-new-tokens", "16", "--threads", "2"]

    /// The recipe built into the binary is examples/smollm2-dpo.yaml, byte for byte.
    func testBuiltInRecipeIsTheExampleFile() throws {
        let file = try String(contentsOfFile: Self.repository + "/" + QuickstartRecipe.path, encoding: .utf8)
        XCTAssertEqual(QuickstartRecipe.text, file)
    }

    func testSideBySidePutsRepliesThatNowPassFirst() {
        typealias S = EvaluationSummary.Sample
        let samples = [S(prompt: "What is 2 + 2?", before: "2 + 2 is 4.", after: "2 + 2 is 4."),
                       S(prompt: "Name the capital of Peru.", before: "Peru is in South America.", after: "Peru is a country."),
                       S(prompt: "Which day follows Monday?", before: "Monday is followed by Tuesday.", after: "The answer is Tuesday."),
                       S(prompt: "How many legs has a spider?", before: "A spider has eight legs.", after: "Spiders have 8 legs.")]
        let text = QuickstartRun.sideBySide(samples, width: 100)
        XCTAssertTrue(text.contains("Held-out questions: 3 of 4 replies changed, 1 into the form"), text)
        let order = ["Q: Which day follows Monday?", "Q: Name the capital of Peru.", "Q: How many legs has a spider?"]
            .map { text.range(of: $0)?.lowerBound }
        XCTAssertFalse(order.contains(nil), text)
        XCTAssertEqual(order.compactMap { $0 }, order.compactMap { $0 }.sorted(), text)
        XCTAssertFalse(text.contains("Q: What is 2 + 2?"), "an unchanged reply is shown while three changed:\n\(text)")
    }

    func testTinyQuickstart() throws {
        XCTAssertTrue(ModelCache.fromEnvironment().contains(.defaultModel), "run `finch pull` first (scripts/test does)")
        let out = try temporaryDirectory() + "/run"
        let r = try finch(["quickstart", "--steps", "2", "--out", out] + short)
        XCTAssertEqual(r.status, 0, r.stderr)
        // The table and the side-by-side replies on stdout; progress and the next commands.
        for text in ["before     after", "preference accuracy", "mean log-prob margin", "rule score", "right answer",
                     "Held-out questions: ", " of 2 replies changed, ", "; three of them (those first), before | after:", " | ", "finch chat --adapter \(out)", "finch serve --adapter \(out)"] {
            XCTAssertTrue(r.stdout.contains(text), "stdout lacks \(text):\n\(r.stdout)")
        }
        XCTAssertTrue(r.stderr.contains("step 2/2"), r.stderr)
        XCTAssertTrue(r.stderr.contains("before: preference accuracy"), r.stderr)
        XCTAssertTrue(r.stderr.contains("after: preference accuracy"), r.stderr)

        // run.json records the data as `finch dpo` does (the report's Dataset table).
        let record = try JSONValue.parse(contentsOf: out + "/run.json")
        XCTAssertEqual(record["dataset_statistics"]?["train_file"]?["rows"]?.intValue, 1600)
        XCTAssertEqual(record["dataset_statistics"]?["train"]?["pairs"]?.intValue, 1600)
        XCTAssertNotNil(record["dataset_statistics"]?["test_pairs"]?.intValue)

        // evaluation.json in the schema the report renders.
        let json = try JSONValue.parse(contentsOf: out + "/evaluation.json")
        XCTAssertEqual(json.objectValue?.map(\.0), ["split", "metrics", "samples"])
        XCTAssertEqual(json["split"]?.stringValue, "test")
        let metrics = try XCTUnwrap(json["metrics"]?.arrayValue)
        XCTAssertEqual(metrics.compactMap { $0["name"]?.stringValue },
                       ["preference accuracy", "mean log-prob margin", "rule score", "right answer"])
        for m in metrics {
            XCTAssertEqual(m.objectValue?.map(\.0), ["name", "before", "after", "format"])
            let format = try XCTUnwrap(m["format"]?.stringValue)
            XCTAssertTrue(["percent", "number"].contains(format))
            for side in ["before", "after"] {
                let value = try XCTUnwrap(m[side]?.doubleValue, "\(side) of \(m)")
                if format == "percent" { XCTAssertTrue((0...1).contains(value), "\(m)") }
            }
        }
        // Accuracy over 8 pairs is a multiple of 1/8.
        let accuracy = try XCTUnwrap(metrics[0]["before"]?.doubleValue)
        XCTAssertEqual(accuracy * 8, (accuracy * 8).rounded(), accuracy: 1e-9)
        let samples = try XCTUnwrap(json["samples"]?.arrayValue)
        XCTAssertEqual(samples.compactMap { $0["prompt"]?.stringValue }, QuickstartDataset.generate().test.prefix(2).map(\.question))
        for s in samples { XCTAssertEqual(s.objectValue?.map(\.0), ["prompt", "before", "after"]) }

        // The adapter (PEFT), the run's files, the dataset as committed, the merged model.
        let (config, tensors) = try PEFTAdapterFolder.read(out)
        XCTAssertEqual(config.r, 16)
        XCTAssertEqual(config.loraAlpha, 16)
        XCTAssertEqual(tensors.count, 30 * 4 * 2, "A and B of q/k/v/o in 30 layers")
        let lines = try String(contentsOfFile: out + "/metrics.jsonl", encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(lines.count, 2)
        let resolved = try JSONValue.parse(contentsOf: out + "/config.json")
        XCTAssertEqual(resolved["learning_rate"]?.doubleValue, 5e-5, "the recipe's settings")
        XCTAssertEqual(resolved["gradient_accumulation_steps"]?.intValue, 4)
        XCTAssertEqual(resolved["max_steps"]?.intValue, 2)
        for name in [QuickstartDataset.trainFile, QuickstartDataset.testFile] {
            XCTAssertEqual(FileManager.default.contents(atPath: out + "/data/" + name),
                           FileManager.default.contents(atPath: Self.repository + "/" + QuickstartDataset.directory + "/" + name))
        }
        let merged = try JSONValue.parse(contentsOf: out + "/merged/config.json")
        XCTAssertEqual(merged["model_type"]?.stringValue, "llama")
        XCTAssertTrue(FileManager.default.fileExists(atPath: out + "/merged/model.safetensors"))
        XCTAssertTrue(FileManager.default.fileExists(atPath: out + "/merged/tokenizer.json"))

        let conflict = try finch(["quickstart", "--resume", "--restart", "--out", out])
        XCTAssertNotEqual(conflict.status, 0)
        XCTAssertTrue(conflict.stderr.contains("exclude each other"), conflict.stderr)
    }

    /// Ctrl-C during training writes a checkpoint and exits 130; running again without a
    /// terminal resumes from it (reusing the base model's scores) and finishes the same run.
    func testInterruptThenResume() throws {
        let out = try temporaryDirectory() + "/run"
        let process = Process()
        process.executableURL = URL(fileURLWithPath: CLITests.finchPath)
        process.arguments = ["quickstart", "--steps", "6", "--no-merge", "--out", out] + short
        let err = Pipe()
        process.standardError = err
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        let deadline = Date().addingTimeInterval(300)
        func loggedSteps() -> Int {
            ((try? String(contentsOfFile: out + "/metrics.jsonl", encoding: .utf8)) ?? "").split(separator: "\n").count
        }
        while loggedSteps() < 1, process.isRunning, Date() < deadline { usleep(100_000) }
        kill(process.processIdentifier, SIGINT)
        let stderr = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        XCTAssertEqual(process.terminationStatus, 130, stderr)
        XCTAssertTrue(stderr.contains("interrupted at step"), stderr)
        let checkpoints = LoRATrainer.checkpoints(in: out)
        XCTAssertEqual(checkpoints.count, 1, "a checkpoint at the step where Ctrl-C arrived")
        let stoppedAt = try XCTUnwrap(checkpoints.last?.step)
        XCTAssertLessThan(stoppedAt, 6)
        XCTAssertFalse(FileManager.default.fileExists(atPath: out + "/adapter_model.safetensors"))
        XCTAssertFalse(FileManager.default.fileExists(atPath: out + "/evaluation.json"))

        // Again, without --steps (the stopped run's count is used) and without a terminal.
        let resumed = try finch(["quickstart", "--no-merge", "--out", out] + short)
        XCTAssertEqual(resumed.status, 0, resumed.stderr)
        XCTAssertTrue(resumed.stderr.contains("stopped quickstart run (step \(stoppedAt) of 6); resuming"), resumed.stderr)
        XCTAssertTrue(resumed.stderr.contains("resumed from"), resumed.stderr)
        XCTAssertTrue(resumed.stderr.contains("before: reused the base model's scores"), resumed.stderr)
        let lines = try String(contentsOfFile: out + "/metrics.jsonl", encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(lines.count, 6, "one line per step, none doubled")
        XCTAssertTrue(FileManager.default.fileExists(atPath: out + "/evaluation.json"))
        XCTAssertFalse(FileManager.default.fileExists(atPath: out + "/merged"))

        // A different step count for a stopped run is an error naming both; here the run is
        // finished, so a new one starts over instead.
        let again = try finch(["quickstart", "--steps", "1", "--no-merge", "--out", out] + short)
        XCTAssertEqual(again.status, 0, again.stderr)
        XCTAssertTrue(again.stderr.contains("holds an earlier quickstart run; starting over"), again.stderr)
        XCTAssertEqual(try String(contentsOfFile: out + "/metrics.jsonl", encoding: .utf8).split(separator: "\n").count, 1)
    }
}
