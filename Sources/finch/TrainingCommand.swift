import ArgumentParser
import FinchCore
import FinchFormats
import FinchModels
import FinchTraining
import Foundation

/// Training stopped by Ctrl-C after writing a checkpoint and the report; the run can be resumed.
/// `CLI.run` turns it into exit status 130; `finch quickstart` tells its own resume command.
struct TrainingInterrupted: Error {
    let step: Int
    let totalSteps: Int
    let checkpoint: String
}

/// What `finch dpo` and `finch sft` share: settings from a config file and flags, the model load,
/// the run folder (resolved config, resume), and the loop that logs `metrics.jsonl`, shows the
/// progress line, writes checkpoints, evaluates and saves the adapter.
enum TrainingCommand {
    /// The help of the captured arguments of `finch dpo` / `finch sft`.
    static let argumentsHelp = ArgumentHelp(
        "[MODEL] [--config FILE] [--dry-run] [--resume] [--KEY VALUE ...]",
        discussion: "MODEL: a GGUF file, HF folder or known model name (or model_name_or_path in the config).")

    /// MODEL, the config file, and every other `--key value` in order.
    static func parse(_ arguments: [String]) throws -> (model: String?, config: String?, settings: [String]) {
        var model: String?, config: String?, settings: [String] = []
        var i = 0
        while i < arguments.count {
            let a = arguments[i]
            if a == "--config" || a.hasPrefix("--config=") {
                if let eq = a.firstIndex(of: "=") { config = String(a[a.index(after: eq)...]) } else {
                    guard i + 1 < arguments.count else { throw TrainingError("config", "--config needs a file") }
                    config = arguments[i + 1]
                    i += 1
                }
            } else if a == "--dry-run" {
                settings += ["--dry_run", "true"]
            } else if a == "--resume" {
                settings += ["--resume_from_checkpoint", "true"]
            } else if !a.hasPrefix("-"), model == nil, settings.isEmpty || settings.last?.hasPrefix("--") == false {
                model = a
            } else {
                settings.append(a)
            }
            i += 1
        }
        return (model, config, settings)
    }


    /// The resolved settings of a training command's arguments, with the model and dataset paths.
    static func configuration(_ command: DPORunConfiguration.Command, arguments: [String]) throws
        -> (configuration: DPORunConfiguration, model: String, dataset: String) {
        var entries: [ConfigFile.Entry] = []
        let (positionalModel, configFile, settings) = try parse(arguments)
        if let file = configFile { entries += try ConfigFile.entries(path: file) }
        if let model = positionalModel { entries.append(("model_name_or_path", .string(model), "MODEL argument")) }
        entries += try ConfigFile.flagEntries(settings)
        return try configuration(command, entries: entries)
    }

    /// The resolved settings of `(key, value, origin)` entries, later ones winning.
    static func configuration(_ command: DPORunConfiguration.Command, entries: [ConfigFile.Entry]) throws
        -> (configuration: DPORunConfiguration, model: String, dataset: String) {
        var c = DPORunConfiguration(command: command)
        for entry in entries { try c.set(entry.key, entry.value, origin: entry.origin) }
        try c.resolve()
        guard let model = c.modelNameOrPath else {
            throw TrainingError("model_name_or_path", "no model given (MODEL argument, --model_name_or_path or the config)")
        }
        guard let dataset = c.dataset else { throw TrainingError("dataset", "no dataset given (--dataset FILE or the config)") }
        return (c, model, dataset)
    }

    /// The base model, quantized as the settings say, with the compute pool.
    static func loadModel(_ c: DPORunConfiguration, source: ModelSource) throws -> (CausalLM, ModelLoadOptions, ThreadPool) {
        let pool = ThreadPool(threads: c.threads ?? ProcessInfo.processInfo.activeProcessorCount)
        let options = ModelLoadOptions(quantization: c.quantization, doubleQuantization: c.doubleQuantization,
                                       unquantizedStorage: c.unquantizedStorage)
        let start = Date()
        var model = try CausalLM(source: source, options: options, pool: pool)
        for note in model.loadNotes.prefix(3) { CLI.log(note) }
        if model.loadNotes.count > 3 { CLI.log("… and \(model.loadNotes.count - 3) more tensors the same way") }
        CLI.log(String(format: "loaded %@ (%@, %.0f MB of weights) in %.1f s", source.path, c.quantization.rawValue,
                       Double(model.weightByteCount) / 1e6, Date().timeIntervalSince(start)))
        if let path = c.mergeAdapter {
            let adapter = try LoRAAdapter(peftFolder: path, name: "merged", model: model)
            model = try model.mergingLoRA(adapter, requantize: options, pool: pool)
            CLI.log(String(format: "merged the adapter %@ into the base (%@, %.0f MB of weights)", path, c.quantization.rawValue,
                           Double(model.weightByteCount) / 1e6))
        }
        return (model, options, pool)
    }

    /// Creates `output_dir`, writes the resolved `config.json`, and resumes from a checkpoint when
    /// asked (`resume_from_checkpoint`: a folder, or `true` for the newest in `output_dir`).
    static func prepareRunFolder(_ c: DPORunConfiguration, trainer: LoRATrainer) throws -> String {
        let output = c.outputDirectory
        try FileManager.default.createDirectory(atPath: output, withIntermediateDirectories: true)
        try AtomicFile.write(Array((c.resolvedJSON.compactText + "\n").utf8), to: output + "/config.json")
        if let notice = trainer.optimizer.notice { CLI.log(notice) }
        if let resume = c.resumeFromCheckpoint {
            if let path = resume == "true" ? LoRATrainer.checkpoints(in: output).last?.path : resume {
                try trainer.resume(fromCheckpoint: path)
                CLI.log("resumed from \(path) at step \(trainer.step)")
            } else {
                CLI.log("no checkpoint in \(output); starting from step 0")
            }
        }
        return output
    }

    /// Runs the remaining steps: metrics (plus `tokens_per_second` and `<unit>_per_second`) in
    /// `metrics.jsonl` and the TensorBoard event file, `run.json`, progress, checkpoints every
    /// `save_steps`, evaluation every `evalSteps` and at the end, and the final adapter in PEFT's
    /// format. `report.html` is written at each checkpoint and when the run ends: finished,
    /// failed (after the error is recorded), or stopped by Ctrl-C, which first finishes the
    /// step in progress and saves a checkpoint so that `--resume` continues (exit status 130).
    ///
    /// - Parameters:
    ///   - run: the kind, model, data, plan and dataset statistics for `run.json`.
    ///   - started: when the command started (the session's wall time includes the model load).
    static func train(_ trainer: LoRATrainer, _ c: DPORunConfiguration, output: String, baseModel: String,
                      unit: String, evalSteps: Int, run: TrainingRunRecord? = nil, started: Date = Date()) throws {
        let run = run ?? TrainingRunRecord(kind: c.command.rawValue, model: baseModel, dataset: c.dataset ?? "", maxSteps: trainer.plan.totalSteps,
                                           unit: unit, datasetStatistics: .null)
        let metrics = try MetricsFile(path: output + "/metrics.jsonl", truncateAfterStep: trainer.step)
        let recorder = try TrainingRunRecorder(folder: output, run: run, started: started, startStep: trainer.step,
                                               tokensSeen: trainer.tokensSeen)
        let progress = ProgressLine(total: trainer.plan.totalSteps, unit: unit)
        let interrupt = InterruptRequest.install(message: "stopping after this step (a checkpoint and the report are saved); Ctrl-C again quits now")
        defer { interrupt.uninstall() }
        var windowStart = Date(), windowTokens = trainer.tokensSeen, windowExamples = 0, lastStep = trainer.step
        var sessionExamples = 0
        func log(_ record: TrainingLogRecord) throws {
            try metrics.append(record)
            try recorder.log(record, step: trainer.step, tokensSeen: trainer.tokensSeen, examples: sessionExamples)
        }
        func writeReport(announce: Bool = true) {
            do {
                if let path = try recorder.writeReport(), announce { progress.note("report: \(path)") }
            } catch {
                progress.note("warning: the report was not written: \(CLI.oneLine(error) ?? "\(error)")")
            }
        }
        do {
            while trainer.step < trainer.plan.totalSteps {
                let stepExamples = trainer.exampleCount(ofStep: trainer.step + 1)
                windowExamples += stepExamples
                let record = try trainer.trainStep()
                sessionExamples += stepExamples
                if var record {
                    let seconds = Date().timeIntervalSince(windowStart)
                    record.values.append(("tokens_per_second", Double(trainer.tokensSeen - windowTokens) / seconds))
                    record.values.append(("\(unit)_per_second", Double(windowExamples) / seconds))
                    try log(record)
                    progress.update(record, secondsPerStep: seconds / Double(max(1, trainer.step - lastStep)))
                    (windowStart, windowTokens, windowExamples, lastStep) = (Date(), trainer.tokensSeen, 0, trainer.step)
                }
                var saved = false
                if c.saveSteps > 0, trainer.step % c.saveSteps == 0 {
                    progress.note("saved " + (try trainer.saveCheckpoint(in: output, baseModel: baseModel, totalLimit: c.saveTotalLimit)))
                    try recorder.update(step: trainer.step, tokensSeen: trainer.tokensSeen, examples: sessionExamples)
                    writeReport(announce: false)
                    saved = true
                }
                if evalSteps > 0, trainer.step % evalSteps == 0 || trainer.step == trainer.plan.totalSteps, let record = try trainer.evaluate() {
                    try log(record)
                    progress.note(record.values.map { "\($0.0) \(String(format: "%.4g", $0.1))" }.joined(separator: ", "))
                }
                if interrupt.requested, trainer.step < trainer.plan.totalSteps {
                    var checkpoint = LoRATrainer.checkpoints(in: output).last { $0.step == trainer.step }?.path
                    if !saved || checkpoint == nil {
                        checkpoint = try trainer.saveCheckpoint(in: output, baseModel: baseModel, totalLimit: c.saveTotalLimit)
                        progress.note("saved " + (checkpoint ?? ""))
                    }
                    try recorder.update(step: trainer.step, tokensSeen: trainer.tokensSeen, examples: sessionExamples, status: .interrupted)
                    writeReport()
                    progress.finish()
                    throw TrainingInterrupted(step: trainer.step, totalSteps: trainer.plan.totalSteps, checkpoint: checkpoint ?? output)
                }
            }
        } catch let stop as TrainingInterrupted {
            throw stop
        } catch {
            try? recorder.update(step: trainer.step, tokensSeen: trainer.tokensSeen, examples: sessionExamples, status: .failed,
                                 error: CLI.oneLine(error) ?? "\(error)")
            writeReport()
            throw error
        }
        progress.finish()
        try trainer.policy.savePEFT(to: output, baseModel: baseModel)
        CLI.log("adapter saved to \(output) (adapter_config.json, adapter_model.safetensors)")
        try recorder.update(step: trainer.step, tokensSeen: trainer.tokensSeen, examples: sessionExamples, status: .finished)
        if let path = try? recorder.writeReport() {
            CLI.log("report: \(path); TensorBoard: tensorboard --logdir \(output)")
        } else {
            CLI.log("warning: the report was not written; finch report \(output) retries")
        }
    }
}

/// `metrics.jsonl`: one JSON object per logged record (`step` and TRL's keys), appended and
/// flushed as the run goes; on resume, lines after the checkpoint's step are dropped first.
final class MetricsFile {
    let path: String
    private let handle: FileHandle

    init(path: String, truncateAfterStep step: Int) throws {
        self.path = path
        var kept = ""
        if step > 0, let text = try? String(contentsOfFile: path, encoding: .utf8) {
            for line in text.split(separator: "\n") {
                if let value = try? JSONValue.parse(String(line), path: path), let s = value["step"]?.intValue, s <= step {
                    kept += line + "\n"
                }
            }
        }
        try AtomicFile.write(Array(kept.utf8), to: path)
        guard let handle = FileHandle(forWritingAtPath: path) else { throw FormatError(path, "cannot open for writing") }
        handle.seekToEndOfFile()
        self.handle = handle
    }

    func append(_ record: TrainingLogRecord) throws {
        let members: [(String, JSONValue)] = [("step", .number(String(record.step)))]
            + record.values.map { ($0.0, $0.1.isFinite ? .number("\($0.1)") : .null) }
        try handle.write(contentsOf: Data((JSONValue.object(members).compactText + "\n").utf8))
    }

    deinit { try? handle.close() }
}

/// The live progress line on stderr: step/total, loss, reward accuracy and margin, tokens/s, ETA.
final class ProgressLine {
    let total: Int
    /// "pairs" (DPO: accuracy and margin shown) or "sequences" (SFT: token accuracy shown).
    let unit: String
    let interactive = isatty(STDERR_FILENO) == 1

    init(total: Int, unit: String) {
        self.total = total
        self.unit = unit
    }

    func update(_ r: TrainingLogRecord, secondsPerStep: Double) {
        let eta = Int(secondsPerStep * Double(total - r.step))
        let quality = unit == "pairs"
            ? String(format: "acc %.2f  margin %.4f", r["rewards/accuracies"] ?? .nan, r["rewards/margins"] ?? .nan)
            : String(format: "token acc %.3f", r["mean_token_accuracy"] ?? .nan)
        let line = String(format: "step %d/%d  loss %.4f  %@  %.0f tok/s  %.2f %@/s  ETA %d:%02d:%02d",
                          r.step, total, r["loss"] ?? .nan, quality, r["tokens_per_second"] ?? 0, r["\(unit)_per_second"] ?? 0,
                          unit, eta / 3600, eta / 60 % 60, eta % 60)
        write(interactive ? "\r\u{1B}[K" + line : line + "\n")
    }

    /// A phase outside the training steps (evaluation, generation): `label done/total … ETA`,
    /// rewritten in place on a terminal, a line per fifth of the work otherwise.
    func phase(_ label: String, done: Int, started: Date) {
        let elapsed = Date().timeIntervalSince(started)
        let eta = done > 0 ? Int(elapsed / Double(done) * Double(total - done)) : 0
        let line = String(format: "%@ %d/%d %@  %.1f %@/s  ETA %d:%02d:%02d", label, done, total, unit,
                          Double(done) / max(elapsed, 1e-9), unit, eta / 3600, eta / 60 % 60, eta % 60)
        if interactive {
            write("\r\u{1B}[K" + line)
        } else if done == total || done % max(1, total / 5) == 0 {
            write(line + "\n")
        }
    }

    func note(_ message: String) { write((interactive ? "\r\u{1B}[K" : "") + "finch: " + message + "\n") }
    func finish() { if interactive { write("\n") } }
    private func write(_ s: String) { FileHandle.standardError.write(Data(s.utf8)) }
}


/// `finch dpo` and `finch sft`: everything after the subcommand is captured (any TRL key is an
/// option), so `--help` is answered here and errors become one line.
protocol TrainingSubcommand: ParsableCommand {
    var arguments: [String] { get }
    func start() throws
}

extension TrainingSubcommand {
    func run() throws {
        if arguments.contains("--help") || arguments.contains("-h") { throw CleanExit.helpRequest(self) }
        try CLI.run { try start() }
    }
}
