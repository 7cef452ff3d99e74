import FinchCore
import FinchFormats
import FinchTraining
import Foundation
import XCTest

/// The run folder's report and TensorBoard files, `finch report` and `finch runs`: a real short
/// DPO run on the default model, SFT and Ctrl-C on the tiny Llama of the DPO fixtures, and bad
/// inputs.
final class ReportCommandTests: XCTestCase, FinchCLIRunning {
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().path
    static let fixtures = repository + "/Tests/FinchTrainingTests/Fixtures"
    static let tinyModel = fixtures + "/dpo/tiny_llama_dpo"

    func metricsLines(_ folder: String) throws -> [JSONValue] {
        try String(contentsOfFile: folder + "/metrics.jsonl", encoding: .utf8).split(separator: "\n")
            .map { try JSONValue.parse(String($0), path: "metrics.jsonl") }
    }

    /// Every `src`/`href` attribute value of the page's elements (text is escaped, so a `<` in
    /// the file always opens a tag).
    func linkedResources(_ html: String) -> [String] {
        let pattern = try! NSRegularExpression(pattern: #"(?i)<[a-z][^>]*?\s(?:src|href|xlink:href|srcset|action|data)\s*=\s*["']?([^"'\s>]*)"#)
        return pattern.matches(in: html, range: NSRange(html.startIndex..., in: html)).compactMap {
            Range($0.range(at: 1), in: html).map { String(html[$0]) }
        }
    }

    /// The events file of a run against its metrics.jsonl: framing and CRCs (by the reader), the
    /// version event, and one event per logged record whose scalars are its values as Float32
    /// under transformers' tags.
    func assertEventsMatchMetrics(_ eventsPath: String, _ lines: [JSONValue], file: StaticString = #filePath, line: UInt = #line) throws {
        let events = try TensorBoardEventFile(path: eventsPath).events
        XCTAssertEqual(events.first?.fileVersion, "brain.Event:2", file: file, line: line)
        XCTAssertEqual(events.first?.sourceWriter, "finch", file: file, line: line)
        let scalarEvents = events.filter { !$0.scalars.isEmpty }
        XCTAssertEqual(scalarEvents.count, lines.count, "one event per metrics line", file: file, line: line)
        for (event, json) in zip(scalarEvents, lines) {
            XCTAssertEqual(event.step, Int64(json["step"]?.intValue ?? -1), file: file, line: line)
            let members = (json.objectValue ?? []).filter { $0.0 != "step" }
            XCTAssertEqual(event.scalars.map(\.tag), members.map { key, _ in
                key.hasPrefix("eval_") ? "eval/" + key.dropFirst(5) : "train/" + key
            }, file: file, line: line)
            for ((_, value), (key, expected)) in zip(event.scalars, members) {
                let d = try XCTUnwrap(expected.doubleValue, key, file: file, line: line)
                XCTAssertEqual(value, Float(d), "\(key) at step \(event.step)", file: file, line: line)
            }
        }
    }

    /// `finch dpo` on the default model writes report.html, run.json and a TensorBoard file whose
    /// scalars are metrics.jsonl's; `finch report` and `finch runs` read the folder back.
    func testDefaultModelRunReportAndRuns() throws {
        XCTAssertEqual(linkedResources("<p>src=x &lt;img src=y&gt;</p><img alt=\"\" src=\"https://a/b.png\"><a class=c href=#top>"),
                       ["https://a/b.png", "#top"], "the checker finds attributes, not text")
        let cache = ModelCache.fromEnvironment()
        XCTAssertTrue(cache.contains(.defaultModel), "run `finch pull` first (scripts/test does)")
        let dir = try temporaryDirectory()
        let run = dir + "/runs/smol"
        let r = try finch(["dpo", cache.path(for: .defaultModel), "--dataset", Self.repository + "/examples/data/preferences.jsonl",
                           "--max_steps", "4", "--per_device_train_batch_size", "2", "--gradient_accumulation_steps", "1",
                           "--learning_rate", "5e-5", "--logging_steps", "1", "--eval_split", "0.25", "--eval_steps", "2",
                           "--save_steps", "2", "--save_total_limit", "1", "--max_length", "256", "--output_dir", run])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stderr.contains("report: \(run)/report.html"), r.stderr)

        // metrics.jsonl ↔ TensorBoard.
        let lines = try metricsLines(run)
        XCTAssertEqual(lines.filter { $0["loss"] != nil }.count, 4)
        XCTAssertEqual(lines.filter { $0["eval_loss"] != nil }.count, 2)
        let eventFiles = try FileManager.default.contentsOfDirectory(atPath: run).filter { $0.hasPrefix("events.out.tfevents.") }
        XCTAssertEqual(eventFiles.count, 1)
        let name = try XCTUnwrap(eventFiles.first)
        let parts = name.split(separator: ".")
        XCTAssertEqual(parts.count, 7, name)  // events.out.tfevents.<time>.<host>.<pid>.0
        if let time = Int(parts[3]) { XCTAssertLessThan(abs(Double(time) - Date().timeIntervalSince1970), 3600, name) } else { XCTFail(name) }
        XCTAssertEqual(parts.last, "0")
        try assertEventsMatchMetrics(run + "/" + name, lines)

        // run.json: one finished session with counts and memory.
        let record = try JSONValue.parse(contentsOf: run + "/run.json")
        XCTAssertEqual(record["kind"]?.stringValue, "dpo")
        XCTAssertEqual(record["max_steps"]?.intValue, 4)
        let session = try XCTUnwrap(record["sessions"]?.arrayValue?.first)
        XCTAssertEqual(record["sessions"]?.arrayValue?.count, 1)
        XCTAssertEqual(session["status"]?.stringValue, "finished")
        XCTAssertEqual(session["step"]?.intValue, 4)
        XCTAssertEqual(session["examples"]?.intValue, 8, "4 steps of 2 pairs")
        XCTAssertGreaterThan(session["peak_rss_bytes"]?.intValue ?? 0, 50_000_000)
        XCTAssertEqual(record["dataset_statistics"]?["train"]?["pairs"]?.intValue, 18)
        XCTAssertEqual(record["dataset_statistics"]?["eval"]?["pairs"]?.intValue, 6)

        // The page: self-contained, with the DPO charts, config, data and timing.
        let html = try String(contentsOfFile: run + "/report.html", encoding: .utf8)
        XCTAssertEqual(linkedResources(html), [], "no src/href at all")
        XCTAssertFalse(html.contains("http://") || html.contains("https://") || html.contains("<script"))
        for title in ["Loss", "Reward accuracy", "Reward margin", "Rewards", "Log-probabilities", "Learning rate", "Gradient norm"] {
            XCTAssertTrue(html.contains("<text x=\"64\" y=\"18\" class=\"chart-title\">\(title)"), title)
        }
        XCTAssertGreaterThanOrEqual(html.components(separatedBy: "<svg").count - 1, 8)
        XCTAssertTrue(html.contains("stroke-dasharray=\"5 3\""), "eval series drawn")
        XCTAssertTrue(html.contains("<th>beta</th>") && html.contains("<th>train › pairs</th><td>18</td>"))
        XCTAssertTrue(html.contains("peak memory") && html.contains("pairs per second"))
        XCTAssertTrue(html.contains("<span class=\"badge finished\">finished</span>"))
        XCTAssertFalse(html.contains("Evaluation on"), "no evaluation.json, no evaluation table")

        // finch runs: the table and JSON agree with metrics.jsonl.
        let lastTrain = try XCTUnwrap(lines.last { $0["loss"] != nil })
        let listing = try finch(["runs", dir + "/runs"])
        XCTAssertEqual(listing.status, 0, listing.stderr)
        let rows = listing.stdout.split(separator: "\n")
        XCTAssertEqual(rows.count, 2, listing.stdout)
        XCTAssertTrue(rows[0].hasPrefix("RUN") && rows[0].contains("STATUS"), listing.stdout)
        let row = rows[1].split(separator: " ", omittingEmptySubsequences: true).map(String.init)
        XCTAssertEqual(Array(row.prefix(4)), ["smol", "dpo", "4/4", String(format: "%.4f", lastTrain["loss"]?.doubleValue ?? .nan)])
        XCTAssertTrue(rows[1].contains("acc \(String(format: "%.3f", lastTrain["rewards/accuracies"]?.doubleValue ?? .nan))"), listing.stdout)
        XCTAssertTrue(rows[1].contains(" finished "), listing.stdout)
        let json = try finch(["runs", dir + "/runs", "--json"])
        let entry = try XCTUnwrap(JSONValue.parse(json.stdout, path: "stdout").arrayValue?.first)
        XCTAssertEqual(entry["status"]?.stringValue, "finished")
        XCTAssertEqual(entry["kind"]?.stringValue, "dpo")
        XCTAssertEqual(entry["step"]?.intValue, 4)
        XCTAssertEqual(entry["loss"]?.doubleValue, lastTrain["loss"]?.doubleValue)
        XCTAssertEqual(entry["metrics"]?["rewards/margins"]?.doubleValue, lastTrain["rewards/margins"]?.doubleValue)
        XCTAssertEqual(entry["eval_loss"]?.doubleValue, lines.last { $0["eval_loss"] != nil }?["eval_loss"]?.doubleValue)

        // An evaluation with hostile text: finch report renders the table and escapes everything.
        let evaluation = """
            {"split": "test", "metrics": [{"name": "preference accuracy", "before": 0.41, "after": 0.83, "format": "percent"},
             {"name": "rule score <b>", "before": 1.5, "after": null}],
             "samples": [{"prompt": "<script>alert(1)</script>", "before": "a & b", "after": "<img src=x onerror=alert(2)>"}]}
            """
        try evaluation.write(toFile: run + "/evaluation.json", atomically: true, encoding: .utf8)
        let before = try Data(contentsOf: URL(fileURLWithPath: run + "/report.html"))
        let regenerated = try finch(["report", run, "--out", dir + "/copy.html"])
        XCTAssertEqual(regenerated.status, 0, regenerated.stderr)
        XCTAssertEqual(regenerated.stdout, dir + "/copy.html\n")
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: run + "/report.html")), before, "--out leaves report.html alone")
        let page = try String(contentsOfFile: dir + "/copy.html", encoding: .utf8)
        XCTAssertTrue(page.contains("Evaluation on the test split"))
        XCTAssertTrue(page.contains("<tr><th>preference accuracy</th><td>41.0%</td><td>83.0%</td><td class=\"up\">+42.0 points</td></tr>"), page)
        XCTAssertTrue(page.contains("<th>rule score &lt;b&gt;</th><td>1.5</td><td>—</td><td>—</td>"))
        XCTAssertTrue(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;") && page.contains("a &amp; b"))
        XCTAssertFalse(page.contains("<script") || page.contains("<img"))
        XCTAssertEqual(linkedResources(page), [])
        let inPlace = try finch(["report", run])
        XCTAssertEqual(inPlace.stdout, run + "/report.html\n")
        XCTAssertTrue(try String(contentsOfFile: run + "/report.html", encoding: .utf8).contains("Evaluation on the test split"))
    }

    func tinyDPO(_ output: String, steps: Int, extra: [String] = []) -> [String] {
        ["dpo", Self.tinyModel, "--dataset", Self.fixtures + "/dpo/dpo_data.jsonl", "--quantization", "none",
         "--max_steps", "\(steps)", "--per_device_train_batch_size", "2", "--gradient_accumulation_steps", "2",
         "--learning_rate", "5e-3", "--max_length", "48", "--lora_r", "4", "--lora_alpha", "8", "--lora_target_modules", "all-linear",
         "--logging_steps", "1", "--threads", "1", "--output_dir", output] + extra
    }

    /// Ctrl-C finishes the step, saves a checkpoint and the report (status interrupted, exit 130);
    /// `finch runs` calls it resumable; `--resume` opens a second event file that starts with
    /// SessionLog.START at the next step and ends like an uninterrupted run.
    func testInterruptSavesCheckpointAndReportThenResumes() throws {
        let dir = try temporaryDirectory()
        let run = dir + "/runs/tiny"
        let steps = 300
        let process = Process()
        process.executableURL = URL(fileURLWithPath: CLITests.finchPath)
        process.arguments = tinyDPO(run, steps: steps)
        let err = Pipe()
        process.standardError = err
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        let deadline = Date().addingTimeInterval(120)
        func logged() -> Int { ((try? String(contentsOfFile: run + "/metrics.jsonl", encoding: .utf8)) ?? "").split(separator: "\n").count }
        while logged() < 5, process.isRunning, Date() < deadline { usleep(1000) }
        kill(process.processIdentifier, SIGINT)
        let stderr = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        XCTAssertEqual(process.terminationReason, .exit, stderr)
        XCTAssertEqual(process.terminationStatus, 130, stderr)
        XCTAssertTrue(stderr.contains("stopping after this step"), stderr)
        let stopped = try XCTUnwrap(try metricsLines(run).last?["step"]?.intValue)
        XCTAssertLessThan(stopped, steps)
        XCTAssertTrue(FileManager.default.fileExists(atPath: run + "/checkpoint-\(stopped)/trainer_state.json"), stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: run + "/adapter_model.safetensors"))
        let record = try JSONValue.parse(contentsOf: run + "/run.json")
        XCTAssertEqual(record["sessions"]?.arrayValue?.last?["status"]?.stringValue, "interrupted")
        XCTAssertEqual(record["sessions"]?.arrayValue?.last?["step"]?.intValue, stopped)
        let html = try String(contentsOfFile: run + "/report.html", encoding: .utf8)
        XCTAssertTrue(html.contains("<span class=\"badge resumable\">resumable</span>") && html.contains("checkpoint-\(stopped)"))
        let listing = try finch(["runs", dir + "/runs"])
        XCTAssertTrue(listing.stdout.contains("\(stopped)/\(steps)") && listing.stdout.contains(" resumable "), listing.stdout)

        // Resume for a few more steps' worth: a shorter plan is another run, so resume the same plan.
        let resumed = try finch(tinyDPO(run, steps: steps, extra: ["--resume"]))
        XCTAssertEqual(resumed.status, 0, resumed.stderr)
        XCTAssertTrue(resumed.stderr.contains("resumed from \(run)/checkpoint-\(stopped) at step \(stopped)"), resumed.stderr)
        let files = TensorBoardEventWriter.eventFiles(in: run)
        XCTAssertEqual(files.count, 2)
        let lines = try metricsLines(run)
        XCTAssertEqual(lines.count, steps, "one line per step, none doubled")
        // The second file: version, START at stopped + 1, then the resumed steps' records.
        let second = try XCTUnwrap(files.map { try TensorBoardEventFile(path: $0) }.first { $0.events.contains { $0.sessionStatus == 1 } })
        XCTAssertEqual(second.events.count, 2 + steps - stopped)
        XCTAssertEqual(second.events[1].sessionStatus, 1)
        XCTAssertEqual(second.events[1].step, Int64(stopped + 1))
        XCTAssertEqual(second.events[2].step, Int64(stopped + 1))
        let finished = try JSONValue.parse(contentsOf: run + "/run.json")
        XCTAssertEqual(finished["sessions"]?.arrayValue?.map { $0["status"]?.stringValue ?? "" }, ["interrupted", "finished"])
        XCTAssertEqual(finished["sessions"]?.arrayValue?.last?["start_step"]?.intValue, stopped)
        let after = try finch(["runs", dir + "/runs", "--json"])
        XCTAssertEqual(try JSONValue.parse(after.stdout, path: "stdout").arrayValue?.first?["status"]?.stringValue, "finished")
        XCTAssertTrue(try String(contentsOfFile: run + "/report.html", encoding: .utf8).contains("2 (the first run and 1 resume)"))
    }

    /// An SFT run's report has SFT's charts; a failed run records the error and still reports.
    func testSFTReportAndFailedRun() throws {
        let dir = try temporaryDirectory()
        let r = try finch(["sft", Self.tinyModel, "--dataset", Self.fixtures + "/sft/sft_prompt_completion.jsonl", "--quantization", "none",
                           "--max_steps", "3", "--per_device_train_batch_size", "2", "--max_length", "48", "--lora_r", "4",
                           "--lora_target_modules", "all-linear", "--learning_rate", "5e-3", "--logging_steps", "1", "--threads", "1",
                           "--output_dir", dir + "/runs/sft"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let html = try String(contentsOfFile: dir + "/runs/sft/report.html", encoding: .utf8)
        XCTAssertTrue(html.contains("class=\"chart-title\">Mean token accuracy") && !html.contains("Reward accuracy"))
        XCTAssertTrue(html.contains("<th>train › sequences</th>"))
        try assertEventsMatchMetrics(try XCTUnwrap(TensorBoardEventWriter.eventFiles(in: dir + "/runs/sft").first), try metricsLines(dir + "/runs/sft"))

        // A learning rate that blows the loss up: the run stops with the error, run.json keeps it.
        let failed = try finch(tinyDPO(dir + "/runs/bad", steps: 50, extra: ["--learning_rate", "1e30", "--max_grad_norm", "0"]))
        XCTAssertNotEqual(failed.status, 0)
        let error = try XCTUnwrap(failed.stderr.split(separator: "\n").last { $0.hasPrefix("error: ") })
        let record = try JSONValue.parse(contentsOf: dir + "/runs/bad/run.json")
        XCTAssertEqual(record["sessions"]?.arrayValue?.last?["status"]?.stringValue, "failed")
        XCTAssertEqual("error: " + (record["sessions"]?.arrayValue?.last?["error"]?.stringValue ?? ""), String(error))
        let logged = try metricsLines(dir + "/runs/bad").count
        XCTAssertEqual(FileManager.default.fileExists(atPath: dir + "/runs/bad/report.html"), logged > 0, failed.stderr)
        let listing = try finch(["runs", dir + "/runs"])
        XCTAssertEqual(listing.status, 0, listing.stderr)
        XCTAssertTrue(listing.stdout.contains("sft  ") && listing.stdout.contains("token acc"), listing.stdout)
        XCTAssertTrue(listing.stdout.split(separator: "\n").contains { $0.hasPrefix("bad ") && $0.contains(" failed ") }, listing.stdout)
    }

    func testBadInputsNameTheFile() throws {
        let dir = try temporaryDirectory()
        var r = try finch(["report", dir + "/none"])
        XCTAssertEqual(r.stderr, "error: \(dir)/none: no such run folder\n")
        XCTAssertNotEqual(r.status, 0)
        try FileManager.default.createDirectory(atPath: dir + "/empty", withIntermediateDirectories: true)
        r = try finch(["report", dir + "/empty"])
        XCTAssertTrue(r.stderr.hasPrefix("error: \(dir)/empty/metrics.jsonl: missing"), r.stderr)
        r = try finch(["runs", dir + "/none"])
        XCTAssertEqual(r.stderr, "error: \(dir)/none: no such folder (finch dpo / finch sft write runs into their output_dir)\n")

        let run = dir + "/runs/a"
        try FileManager.default.createDirectory(atPath: run, withIntermediateDirectories: true)
        try "{\"step\": 1, \"loss\": 0.69}\n{\"step\": 2, \"loss\": \n{\"step\": 3, \"loss\": 0.5}\n".write(toFile: run + "/metrics.jsonl", atomically: true, encoding: .utf8)
        r = try finch(["report", run])
        XCTAssertTrue(r.stderr.hasPrefix("error: \(run)/metrics.jsonl:2: not a JSON object"), r.stderr)
        XCTAssertEqual(r.stderr.split(separator: "\n").count, 1)
        try "{\"step\": 1, \"loss\": 0.69}\n{\"loss\": 0.6}\n".write(toFile: run + "/metrics.jsonl", atomically: true, encoding: .utf8)
        r = try finch(["report", run])
        XCTAssertEqual(r.stderr, "error: \(run)/metrics.jsonl:2: 'step' is missing or not an integer\n")
        // A line cut short by a kill at the very end is tolerated.
        try "{\"step\": 1, \"loss\": 0.69}\n{\"step\": 2, \"lo".write(toFile: run + "/metrics.jsonl", atomically: true, encoding: .utf8)
        r = try finch(["report", run])
        XCTAssertEqual(r.status, 0, r.stderr)

        try "{\"metrics\": [{\"name\": \"acc\", \"before\": 0.1, \"after\": \"high\"}]}".write(toFile: run + "/evaluation.json", atomically: true, encoding: .utf8)
        r = try finch(["report", run])
        XCTAssertEqual(r.stderr, "error: \(run)/evaluation.json: metrics[0].after: expected a number or null, got \"high\"\n")
        try "{\"samples\": [{\"prompt\": \"p\", \"before\": \"b\"}]}".write(toFile: run + "/evaluation.json", atomically: true, encoding: .utf8)
        r = try finch(["report", run])
        XCTAssertEqual(r.stderr, "error: \(run)/evaluation.json: samples[0].after: expected a string\n")
        try "[1, 2".write(toFile: run + "/evaluation.json", atomically: true, encoding: .utf8)
        r = try finch(["report", run])
        XCTAssertTrue(r.stderr.hasPrefix("error: \(run)/evaluation.json"), r.stderr)
        try FileManager.default.removeItem(atPath: run + "/evaluation.json")
        try "{\"kind\": \"dpo\"}".write(toFile: run + "/run.json", atomically: true, encoding: .utf8)
        r = try finch(["report", run])
        XCTAssertEqual(r.stderr, "error: \(run)/run.json: model: expected a string\n")

        // finch runs lists the good runs and names the broken one's file on stderr.
        let good = dir + "/runs/b"
        try FileManager.default.createDirectory(atPath: good, withIntermediateDirectories: true)
        try "{\"step\": 1, \"loss\": 0.69, \"mean_token_accuracy\": 0.5}\n".write(toFile: good + "/metrics.jsonl", atomically: true, encoding: .utf8)
        r = try finch(["runs", dir + "/runs"])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertEqual(r.stderr, "finch: skipped \(run): \(run)/run.json: model: expected a string\n")
        XCTAssertTrue(r.stdout.contains("\nb    sft       1  0.6900  token acc 0.500  interrupted  "), r.stdout)
    }
}

/// The event writer on its own: framing, tags, Float32 values, and a flipped byte caught.
final class TensorBoardEventWriterTests: XCTestCase, FinchCLIRunning {
    func testRecordsReadBackAndCorruptionIsCaught() throws {
        let dir = try temporaryDirectory()
        let writer = try TensorBoardEventWriter(directory: dir, resumingAfterStep: 7, wallTime: 1_700_000_000.25)
        XCTAssertTrue((writer.path as NSString).lastPathComponent.hasPrefix("events.out.tfevents.1700000000."))
        let records = [
            TrainingLogRecord(step: 8, values: [("loss", 0.6931471805599453), ("rewards/chosen", -1.25e-3), ("learning_rate", 5e-6)]),
            TrainingLogRecord(step: 10, values: [("eval_loss", 0.5), ("eval_rewards/accuracies", 0.75), ("test_x", 3), ("grad_norm", .infinity)]),
        ]
        for (i, r) in records.enumerated() { try writer.append(r, wallTime: 1_700_000_001 + Double(i)) }
        let events = try TensorBoardEventFile(path: writer.path).events
        XCTAssertEqual(events.count, 4)
        XCTAssertEqual(events[0].fileVersion, "brain.Event:2")
        XCTAssertEqual(events[0].wallTime, 1_700_000_000.25)
        XCTAssertEqual(events[1].sessionStatus, 1)
        XCTAssertEqual(events[1].step, 8)
        XCTAssertEqual(events[2].step, 8)
        XCTAssertEqual(events[2].wallTime, 1_700_000_001)
        XCTAssertEqual(events[2].scalars.map(\.tag), ["train/loss", "train/rewards/chosen", "train/learning_rate"])
        XCTAssertEqual(events[2].scalars.map(\.value), [Float(0.6931471805599453), Float(-1.25e-3), Float(5e-6)])
        XCTAssertEqual(events[3].scalars.map(\.tag), ["eval/loss", "eval/rewards/accuracies", "test/x", "train/grad_norm"])
        XCTAssertEqual(events[3].scalars.map(\.value), [0.5, 0.75, 3, .infinity])

        // A second writer in the same second gets the next suffix.
        let other = try TensorBoardEventWriter(directory: dir, wallTime: 1_700_000_000.5)
        XCTAssertEqual(other.path.split(separator: ".").last, "1")
        XCTAssertEqual(try TensorBoardEventFile(path: other.path).events.count, 1, "no START without a resume")

        // Any flipped byte is caught: in a length, a payload or a CRC.
        var bytes = try Array(Data(contentsOf: URL(fileURLWithPath: writer.path)))
        for index in [0, 9, 20, bytes.count - 1] {
            bytes[index] ^= 0x10
            XCTAssertThrowsError(try TensorBoardEventFile.records(bytes), "byte \(index)")
            bytes[index] ^= 0x10
        }
        XCTAssertEqual(try TensorBoardEventFile.records(bytes).count, 4)
    }
}
