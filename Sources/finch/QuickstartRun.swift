import ArgumentParser
import FinchCore
import FinchFormats
import FinchGeneration
import FinchModels
import FinchTokenizers
import FinchTraining
import Foundation

/// One `finch quickstart` invocation: the run folder's state (resume or start over), the dataset,
/// the base model's scores, DPO (the `finch dpo` code path), the tuned model's scores, the
/// before/after summary, the merged model and the next commands.
struct QuickstartRun {
    let options: Quickstart
    let started = Date()
    private let fm = FileManager.default

    init(options: Quickstart) { self.options = options }

    /// One side of the evaluation (cached for the base model in `evaluation-base.json`, so a
    /// resumed run does not measure it again).
    struct Scores: Codable {
        /// What was measured: model, quantization, pair and prompt counts, reply length.
        var key: String
        var preference: PreferenceAccuracy
        var rules: RuleScore
    }

    static let baseScoresFile = "evaluation-base.json"
    static let evaluationFile = "evaluation.json"

    func run() throws {
        let out = options.out
        let (resuming, checkpointSteps) = try prepareFolder()
        var steps = options.steps ?? Quickstart.defaultSteps
        if let checkpointSteps {
            if let asked = options.steps, asked != checkpointSteps {
                throw TrainingError("--steps", "the stopped run in \(out) has \(checkpointSteps) steps, not \(asked); "
                                    + "drop --steps to resume it, or add --restart to start over")
            }
            steps = checkpointSteps
        }

        // The model (fetched on first use) and the dataset, written next to the run.
        let modelPath = try CLI.resolveModel(options.model)
        let data = QuickstartDataset.generate()
        let dataDirectory = out + "/data"
        try data.write(to: dataDirectory)
        CLI.log("dataset: \(data.train.count) training and \(data.test.count) held-out pairs (reply \"The answer is ….\" and nothing else) in \(dataDirectory)")

        // The recipe, with the quickstart's data, length and folder.
        var entries: [ConfigFile.Entry]
        if let config = options.config {
            entries = try ConfigFile.entries(path: config)
        } else {
            entries = try ConfigFile.entries(text: QuickstartRecipe.text, path: QuickstartRecipe.path + " (built in)")
        }
        let origin = "finch quickstart"
        entries += [("model_name_or_path", .string(options.model), "--model"),
                    ("dataset", .string(dataDirectory + "/" + QuickstartDataset.trainFile), origin),
                    ("output_dir", .string(out), "--out"), ("max_steps", .number(String(steps)), "--steps"),
                    ("save_steps", .number("10"), origin), ("save_total_limit", .number("2"), origin),
                    ("logging_steps", .number("1"), origin)]
        if let threads = options.threads { entries.append(("threads", .number(String(threads)), "--threads")) }
        if resuming { entries.append(("resume_from_checkpoint", .string("true"), "--resume")) }
        let (c, _, datasetPath) = try TrainingCommand.configuration(.dpo, entries: entries)

        // Tokenized as `finch dpo` tokenizes (the evaluation scores exactly what training sees).
        let (trainExamples, report) = try PreferenceDataset.load(path: datasetPath)
        CLI.log(report.description)
        let (testExamples, _) = try PreferenceDataset.load(path: dataDirectory + "/" + QuickstartDataset.testFile)
        let source = try ModelSource(path: modelPath)
        let tokenizer = try Tokenizer(source: source)
        let tokenization = DPORun.tokenizationOptions(c)
        let (trainPairs, statistics, warnings) = try DPOTokenizer.tokenize(trainExamples, tokenizer: tokenizer, options: tokenization)
        for warning in warnings { CLI.log("warning: " + warning) }
        CLI.log("train: " + statistics.description)
        let testPairs = DPORun.sequences(try DPOTokenizer.tokenize(Array(testExamples.prefix(options.evalPairs ?? testExamples.count)),
                                                                   tokenizer: tokenizer, options: tokenization).pairs)
        let prompts = data.evaluationPairs(count: options.evalPrompts).map { (question: $0.question, answer: Optional($0.answer)) }

        let (model, loadOptions, pool) = try TrainingCommand.loadModel(c, source: source)
        let template = try ChatTemplate(tokenizer: tokenizer)
        let pass = TrainingPass(model: model)
        // Replies come from the model as `finch chat` / `finch generate --chat` load it (weights
        // as stored, the adapter read from its PEFT folder), so the rule score is what a user of
        // the saved adapter sees; the preference scores use the quantized training model.
        let chatModel = try CausalLM(source: source)
        func evaluate(_ label: String, adapter: LoRAAdapter?, savedAdapter: String?) throws -> Scores {
            let start = Date()
            let pairProgress = ProgressLine(total: testPairs.count, unit: "pairs")
            let preference = try PreferenceAccuracy.measure(testPairs, pass: pass, adapter: adapter, pool: pool) {
                pairProgress.phase("\(label): scoring held-out", done: $0, started: start)
            }
            pairProgress.finish()
            let generationStart = Date()
            let replyProgress = ProgressLine(total: prompts.count, unit: "replies")
            let chatAdapter = try savedAdapter.map { try LoRAAdapter(peftFolder: $0, model: chatModel) }
            // One thread: a 135M model's decode step is too small to split, and on a busy 2-core
            // machine the pool's waits made two threads 5x slower (8 vs 40 tokens/s measured).
            let generator = Generator(model: chatModel, tokenizer: tokenizer, adapter: chatAdapter, pool: .serial)
            let rules = try RuleScore.measure(prompts, generator: generator, template: template, maxNewTokens: options.maxNewTokens) {
                replyProgress.phase("\(label): answering held-out questions", done: $0, started: generationStart)
            }
            replyProgress.finish()
            CLI.log(String(format: "%@: preference accuracy %.1f%%, margin %+.3f nats/token, rule score %.1f%% (%.0f s)", label,
                           100 * preference.accuracy, preference.meanMargin, 100 * rules.passRate, Date().timeIntervalSince(start)))
            return Scores(key: "", preference: preference, rules: rules)
        }

        // Before: the base model (adapter off), reused from an interrupted run's folder.
        let key = "\(modelPath) \(loadOptions.quantization.rawValue) pairs \(testPairs.count) prompts \(prompts.count) tokens \(options.maxNewTokens)"
        let basePath = out + "/" + Self.baseScoresFile
        var before: Scores
        if let data = fm.contents(atPath: basePath), let cached = try? JSONDecoder().decode(Scores.self, from: data), cached.key == key {
            before = cached
            CLI.log("before: reused the base model's scores from \(basePath)")
        } else {
            before = try evaluate("before", adapter: nil, savedAdapter: nil)
            before.key = key
            try AtomicFile.write(Array(try JSONEncoder().encode(before)), to: basePath)
        }

        if let path = options.evaluateAdapter {
            let after = try evaluate("after", adapter: LoRAAdapter(peftFolder: path, model: model), savedAdapter: path)
            let summary = Self.summary(before: before, after: after)
            try AtomicFile.write(Array((summary.json.compactText + "\n").utf8), to: out + "/evaluation-\((path as NSString).lastPathComponent).json")
            print(Self.table(summary, pairs: testPairs.count, prompts: prompts.count))
            print(Self.sideBySide(summary.samples, width: Self.terminalWidth))
            return
        }

        // DPO, as `finch dpo` runs it.
        let trainer = try DPORun.makeTrainer(c, model: model, trainPairs: DPORun.sequences(trainPairs), evalPairs: [], pool: pool)
        let output = try TrainingCommand.prepareRunFolder(c, trainer: trainer)
        if c.precomputeReferenceLogProbabilities {
            try DPORun.precomputeReference(c, trainer: trainer, modelPath: modelPath, options: loadOptions)
        }
        CLI.log("training: \(trainer.plan.totalSteps) DPO steps of \(c.arguments.perDeviceTrainBatchSize * c.arguments.gradientAccumulationSteps) pairs "
                + "(Ctrl-C stops with a checkpoint; run the command again to resume)")
        do {
            // run.json (and the report's Dataset table) get the same statistics `finch dpo` records.
            let run = TrainingRunRecord(kind: "dpo", model: options.model, dataset: datasetPath, maxSteps: trainer.plan.totalSteps, unit: "pairs",
                                        datasetStatistics: .object([("train_file", report.jsonValue), ("train", statistics.jsonValue),
                                                                    ("test_pairs", .number(String(testPairs.count)))]))
            try TrainingCommand.train(trainer, c, output: output, baseModel: options.model, unit: "pairs", evalSteps: 0, run: run)
        } catch let stop as TrainingInterrupted {
            CLI.log("interrupted at step \(stop.step)/\(stop.totalSteps); checkpoint: \(stop.checkpoint). "
                    + "Run `finch quickstart` again (same --out) to resume, or with --restart to start over.")
            throw ExitCode(130)
        }

        // After: the trained adapter on.
        let after = try evaluate("after", adapter: trainer.policy, savedAdapter: out)
        let summary = Self.summary(before: before, after: after)
        try AtomicFile.write(Array((summary.json.compactText + "\n").utf8), to: out + "/" + Self.evaluationFile)
        print(Self.table(summary, pairs: testPairs.count, prompts: prompts.count))
        print(Self.sideBySide(summary.samples, width: Self.terminalWidth))

        var merged: String?
        if !options.noMerge {
            let folder = out + "/merged"
            let merge = try Merge.parse(["--model", options.model, "--adapter", out, "--out", folder, "--dtype", "bfloat16", "--overwrite"])
            try merge.merge()
            merged = folder
        }
        print(nextCommands(merged: merged))
        let seconds = Int(Date().timeIntervalSince(started))
        CLI.log("quickstart done in \(seconds / 60) min \(seconds % 60) s; evaluation in \(out)/\(Self.evaluationFile)")
    }

    // MARK: The run folder

    /// Decides between resuming and starting over, and clears the folder for the latter.
    /// Returns whether to resume and, if so, the stopped run's step count.
    func prepareFolder() throws -> (resume: Bool, steps: Int?) {
        let out = options.out
        if options.evaluateAdapter != nil { return (false, nil) }
        let checkpoints = LoRATrainer.checkpoints(in: out)
        let finished = fm.fileExists(atPath: out + "/" + Self.evaluationFile)
        if options.restart {
            try clear()
            return (false, nil)
        }
        if let last = checkpoints.last, !finished {
            let state = try JSONValue.parse(contentsOf: last.path + "/trainer_state.json")
            let total = state["max_steps"]?.intValue
            let description = "\(out) holds a stopped quickstart run (step \(last.step) of \(total.map(String.init) ?? "?"))"
            var resume = true
            if !options.resume, isatty(STDIN_FILENO) == 1, isatty(STDERR_FILENO) == 1 {
                FileHandle.standardError.write(Data("finch: \(description). Resume it? [Y/n] ".utf8))
                let answer = (readLine() ?? "").trimmingCharacters(in: .whitespaces).lowercased()
                resume = !(answer == "n" || answer == "no")
            } else if !options.resume {
                CLI.log(description + "; resuming it (--restart starts over)")
            }
            if resume { return (true, total) }
            CLI.log("starting over in \(out)")
            try clear()
            return (false, nil)
        }
        if finished || fm.fileExists(atPath: out + "/metrics.jsonl") {
            CLI.log("\(out) holds an earlier quickstart run; starting over")
            try clear()
        }
        return (false, nil)
    }

    /// Removes what a quickstart run writes into its folder (and nothing else).
    func clear() throws {
        let out = options.out
        guard let names = try? fm.contentsOfDirectory(atPath: out) else { return }
        let ours: Set<String> = ["metrics.jsonl", "config.json", PEFTAdapterFolder.configFile, PEFTAdapterFolder.weightsFile,
                                 Self.evaluationFile, Self.baseScoresFile, "merged", "data"]
        for name in names where ours.contains(name) || name.hasPrefix("checkpoint-") || name.hasPrefix(".checkpoint-") {
            try fm.removeItem(atPath: out + "/" + name)
        }
    }

    // MARK: Output

    static func summary(before: Scores, after: Scores) -> EvaluationSummary {
        let metrics = [
            EvaluationSummary.Metric(name: "preference accuracy", before: before.preference.accuracy, after: after.preference.accuracy,
                                     format: .percent),
            EvaluationSummary.Metric(name: "mean log-prob margin", before: before.preference.meanMargin, after: after.preference.meanMargin,
                                     format: .number),
            EvaluationSummary.Metric(name: "rule score", before: before.rules.passRate, after: after.rules.passRate, format: .percent),
            EvaluationSummary.Metric(name: "right answer", before: before.rules.rightAnswerRate, after: after.rules.rightAnswerRate,
                                     format: .percent),
        ]
        let samples = zip(before.rules.samples, after.rules.samples).map {
            EvaluationSummary.Sample(prompt: $0.question, before: $0.reply, after: $1.reply)
        }
        return EvaluationSummary(split: "test", metrics: metrics, samples: samples)
    }

    static func table(_ summary: EvaluationSummary, pairs: Int, prompts: Int) -> String {
        let notes = ["preference accuracy": "\(pairs) pairs: chosen > rejected by mean log p per token",
                     "mean log-prob margin": "nats per token, chosen minus rejected",
                     "rule score": "\(prompts) greedy replies (as finch chat gives them) in the form \"The answer is ….\"",
                     "right answer": "of those replies, the ones in that form with the right answer"]
        var lines = ["", "Held-out test split, before and after DPO:", "",
                     "  " + "metric".padding(toLength: 24, withPad: " ", startingAt: 0) + "  before     after   what"]
        for m in summary.metrics {
            func show(_ x: Double?) -> String {
                guard let x else { return "—" }
                return m.format == .percent ? String(format: "%.1f%%", 100 * x) : String(format: "%+.3f", x)
            }
            let b = show(m.before), a = show(m.after)
            lines.append("  " + m.name.padding(toLength: 24, withPad: " ", startingAt: 0)
                         + String(repeating: " ", count: max(1, 8 - b.count)) + b
                         + String(repeating: " ", count: max(1, 10 - a.count)) + a + "   " + (notes[m.name] ?? ""))
        }
        return lines.joined(separator: "\n")
    }

    static var terminalWidth: Int {
        var size = winsize()
        if isatty(STDOUT_FILENO) == 1, ioctl(STDOUT_FILENO, UInt(TIOCGWINSZ), &size) == 0, size.ws_col >= 60 { return min(Int(size.ws_col), 140) }
        if let columns = ProcessInfo.processInfo.environment["COLUMNS"].flatMap(Int.init), columns >= 60 { return min(columns, 140) }
        return 100
    }

    /// Three samples as two word-wrapped columns under their question. Replies that changed come
    /// first, those that now pass the rule (and did not before) ahead of the rest; unchanged ones
    /// fill up if fewer than three changed. The header gives both counts, so the choice is visible.
    static func sideBySide(_ samples: [EvaluationSummary.Sample], width: Int) -> String {
        let column = (width - 5) / 2
        let rule = AnswerFormatRule()
        let changed = samples.filter { $0.before != $0.after }
        let improved = changed.filter { rule.passes(reply: $0.after, question: $0.prompt) && !rule.passes(reply: $0.before, question: $0.prompt) }
        let others = changed.filter { s in !improved.contains(s) }
        let shown = Array((improved + others + samples.filter { $0.before == $0.after }).prefix(3))
        var lines = ["", "Held-out questions: \(changed.count) of \(samples.count) replies changed, \(improved.count) into the form "
                     + "\"The answer is ….\"; three of them (those first), before | after:"]
        for s in shown {
            lines.append("")
            lines.append("Q: " + s.prompt)
            let left = ["before:"] + wrap(s.before, width: column), right = ["after:"] + wrap(s.after, width: column)
            for i in 0..<max(left.count, right.count) {
                let l = i < left.count ? left[i] : ""
                lines.append("  " + l.padding(toLength: column, withPad: " ", startingAt: 0) + " | " + (i < right.count ? right[i] : ""))
            }
        }
        return lines.joined(separator: "\n")
    }

    static func wrap(_ text: String, width: Int) -> [String] {
        var lines: [String] = []
        for paragraph in text.split(separator: "\n", omittingEmptySubsequences: false) {
            var line = ""
            for word in paragraph.split(separator: " ") {
                var word = String(word)
                while word.count > width { // a word longer than the column is cut
                    if !line.isEmpty { lines.append(line); line = "" }
                    lines.append(String(word.prefix(width)))
                    word = String(word.dropFirst(width))
                }
                if line.isEmpty { line = word } else if line.count + 1 + word.count <= width { line += " " + word } else {
                    lines.append(line)
                    line = word
                }
            }
            lines.append(line)
        }
        return lines.isEmpty ? [""] : lines
    }

    func nextCommands(merged: String?) -> String {
        let modelFlag = options.model == KnownModel.defaultModel.name ? "" : " --model \(options.model)"
        let out = options.out
        var lines = ["", "Next:",
                     "  finch chat\(modelFlag) --adapter \(out)          # chat with the tuned model",
                     "  finch generate\(modelFlag) --adapter \(out) --chat --prompt \"What is the capital of Peru?\"",
                     "  finch serve\(modelFlag) --adapter \(out)         # web chat and OpenAI-compatible API"]
        if let merged {
            lines.append("  finch chat --model \(merged)                   # the merged model (written by finch merge)")
        } else {
            lines.append("  finch merge --model \(options.model) --adapter \(out) --out \(out)/merged")
        }
        return lines.joined(separator: "\n")
    }
}
