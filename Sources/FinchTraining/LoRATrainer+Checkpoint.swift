import FinchFormats
import FinchModels
import Foundation

/// Checkpoints as transformers lays them out (`<output_dir>/checkpoint-<step>/`): the policy
/// adapter in PEFT's format, the optimizer state (`optimizer.safetensors`) and `trainer_state.json`
/// (step, `num_tokens`, log history, the open logging window). The schedule and the data order
/// are functions of the step and the seed, so they need no state of their own. A checkpoint is
/// written into a temporary folder and renamed into place, so a killed run leaves either the
/// whole checkpoint or none.
extension LoRATrainer {
    static let stateFile = "trainer_state.json"
    static let optimizerFile = "optimizer.safetensors"

    /// Writes `checkpoint-<step>` into `outputDirectory` and returns its path; with `totalLimit`,
    /// deletes the oldest checkpoints beyond it (`save_total_limit`).
    @discardableResult
    public func saveCheckpoint(in outputDirectory: String, baseModel: String?, totalLimit: Int? = nil) throws -> String {
        let fm = FileManager.default
        try fm.createDirectory(atPath: outputDirectory, withIntermediateDirectories: true)
        let final = (outputDirectory as NSString).appendingPathComponent("checkpoint-\(step)")
        let temporary = (outputDirectory as NSString).appendingPathComponent(".checkpoint-\(step).tmp-\(getpid())")
        try? fm.removeItem(atPath: temporary)
        do {
            try policy.savePEFT(to: temporary, baseModel: baseModel)
            try SafeTensorsWriter.write(optimizer.checkpointEntries(arena: arena), metadata: optimizer.checkpointMetadata,
                                        to: (temporary as NSString).appendingPathComponent(Self.optimizerFile))
            try AtomicFile.write(Array((stateJSON.compactText + "\n").utf8), to: (temporary as NSString).appendingPathComponent(Self.stateFile))
            try? fm.removeItem(atPath: final)
            guard rename(temporary, final) == 0 else {
                throw TrainingError("save_steps", "cannot move the checkpoint into \(final): \(String(cString: strerror(errno)))")
            }
        } catch {
            try? fm.removeItem(atPath: temporary)
            throw error
        }
        if let totalLimit, totalLimit > 0 {
            for old in Self.checkpoints(in: outputDirectory).dropLast(totalLimit) { try? fm.removeItem(atPath: old.path) }
        }
        return final
    }

    /// The complete checkpoints in `directory`, oldest first.
    public static func checkpoints(in directory: String) -> [(step: Int, path: String)] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        return names.compactMap { name -> (Int, String)? in
            guard name.hasPrefix("checkpoint-"), let step = Int(name.dropFirst("checkpoint-".count)) else { return nil }
            let path = (directory as NSString).appendingPathComponent(name)
            guard FileManager.default.fileExists(atPath: (path as NSString).appendingPathComponent(stateFile)) else { return nil }
            return (step, path)
        }.sorted { $0.0 < $1.0 }
    }

    private var stateJSON: JSONValue {
        func number(_ x: Double) -> JSONValue { .number(x.isFinite ? "\(x)" : "null") }
        func record(_ r: TrainingLogRecord) -> JSONValue {
            .object([("step", .number(String(r.step)))] + r.values.map { ($0.0, number($0.1)) })
        }
        return .object([
            ("global_step", .number(String(step))),
            ("max_steps", .number(String(plan.totalSteps))),
            ("train_examples", .number(String(exampleCount))),
            ("num_tokens", .number(String(tokensSeen))),
            ("log_history", .array(history.map(record))),
            ("window", .object([
                ("loss", number(windowLoss)), ("steps", .number(String(windowSteps))),
                ("metrics", .array(windowMetrics.map { m in .object(m.map { ($0.0, number($0.1)) }) })),
            ])),
        ])
    }

    /// Continues from a checkpoint written by ``saveCheckpoint(in:baseModel:totalLimit:)`` for the
    /// same run (same data and step count): restores the adapter values, the optimizer state, the
    /// step, `num_tokens`, the log history and the open logging window.
    public func resume(fromCheckpoint path: String) throws {
        let statePath = (path as NSString).appendingPathComponent(Self.stateFile)
        let state = try JSONValue.parse(contentsOf: statePath)
        func int(_ key: String) throws -> Int {
            guard let value = state[key]?.intValue else { throw TrainingError("resume_from_checkpoint", "\(statePath): '\(key)' is missing") }
            return value
        }
        guard try int("train_examples") == exampleCount, try int("max_steps") == plan.totalSteps else {
            throw TrainingError("resume_from_checkpoint", "\(path) belongs to a run with \(try int("train_examples")) examples and \(try int("max_steps")) steps; this one has \(exampleCount) and \(plan.totalSteps)")
        }
        let (_, tensors) = try PEFTAdapterFolder.read(path)
        try policy.setValues(fromPEFT: tensors, path: path)
        let optimizerPath = (path as NSString).appendingPathComponent(Self.optimizerFile)
        try optimizer.restore(from: SafeTensorsFile(path: optimizerPath), path: optimizerPath, arena: arena)
        step = try int("global_step")
        tokensSeen = try int("num_tokens")
        history = (state["log_history"]?.arrayValue ?? []).compactMap { entry in
            guard let members = entry.objectValue, let s = entry["step"]?.intValue else { return nil }
            return TrainingLogRecord(step: s, values: members.filter { $0.0 != "step" }.map { ($0.0, $0.1.doubleValue ?? .nan) })
        }
        let window = state["window"]
        windowLoss = window?["loss"]?.doubleValue ?? 0
        windowSteps = window?["steps"]?.intValue ?? 0
        windowMetrics = (window?["metrics"]?.arrayValue ?? []).map { ($0.objectValue ?? []).map { ($0.0, $0.1.doubleValue ?? .nan) } }
        guard optimizer.stepCount == step else {
            throw TrainingError("resume_from_checkpoint", "\(path): the optimizer took \(optimizer.stepCount) steps, the trainer \(step)")
        }
    }
}
