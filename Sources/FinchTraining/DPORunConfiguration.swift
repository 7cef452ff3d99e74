import FinchFormats
import FinchModels
import Foundation

/// Everything `finch dpo` needs, under TRL's key names (`DPOConfig` + `TrainingArguments`,
/// TRL's CLI `ModelConfig` for the model and LoRA keys, `BitsAndBytesConfig` for quantization),
/// read from a YAML/JSON config and `--key value` flags. Each value comes with where it was
/// given (`recipe.yaml:12`, `--beta`), and every error names the key and that place.
public struct DPORunConfiguration: Sendable {
    // Model
    /// `model_name_or_path`: a GGUF file, an HF folder or a known model name.
    public var modelNameOrPath: String?
    /// `quantization` (Finch; or `load_in_4bit`/`load_in_8bit` + `bnb_4bit_quant_type`): default nf4.
    public var quantization: BaseQuantization = .nf4
    /// `bnb_4bit_use_double_quant` (default true).
    public var doubleQuantization = true
    /// `torch_dtype` / `dtype`: storage of what is not quantized (`auto`: as the source has it).
    public var unquantizedStorage: FloatStorageType?

    // Data
    /// `dataset` (alias `train_file`, `dataset_name`): a JSONL, JSON, CSV or TSV file.
    public var dataset: String?
    /// `eval_dataset` (alias `eval_file`).
    public var evalDataset: String?
    /// `eval_split` (alias `test_size`): the fraction of the training file held out for evaluation.
    public var evalSplit = 0.0
    /// `columns`: a mapping from Finch's column names (prompt, chosen, rejected, system, question)
    /// to the file's.
    public var columns: [String: String] = [:]
    /// `skip_invalid`: skip and count malformed rows instead of stopping.
    public var skipInvalid = false
    /// `orca_rendering`: `conversation` (default) or `two_calls` (the article's).
    public var orcaRendering = "conversation"
    /// `max_length` (TRL default 1024; `null` for none), `max_prompt_length`,
    /// `max_completion_length` (article-era), `truncation_mode` (`keep_start` or `keep_end`).
    public var maxLength: Int? = 1024
    public var maxPromptLength: Int?
    public var maxCompletionLength: Int?
    public var truncationMode = "keep_start"

    // LoRA (TRL CLI ModelConfig defaults: r 16, alpha 32, dropout 0.05)
    public var lora = LoRAConfiguration(r: 16, loraAlpha: 32, loraDropout: 0.05)

    // DPO
    public var loss: DPOLossConfiguration
    /// `precompute_ref_log_probs`.
    public var precomputeReferenceLogProbabilities = false
    /// `ref_adapter` (alias `adapter`): a PEFT folder used frozen as the reference, and as the
    /// policy's starting point.
    public var referenceAdapter: String?
    /// `merge_adapter` (Finch): a PEFT folder merged into the base before training (PEFT's
    /// `merge_and_unload`; requantized when the base is quantized); a new adapter trains on top
    /// and, for DPO, the merged base is the reference.
    public var mergeAdapter: String?

    // Trainer
    public var arguments = TrainingArguments.trlDPO
    public var gradientCheckpointing = true
    /// `eval_steps` (0: evaluate only at the end when there is an eval split).
    public var evalSteps = 0
    /// `save_steps` (0: only the final adapter); `save_total_limit` (ignored without checkpoints).
    public var saveSteps = 0
    public var saveTotalLimit: Int?
    /// `output_dir` (default `finch-dpo-output`).
    public var outputDirectory = "finch-dpo-output"
    /// `resume_from_checkpoint`: a checkpoint folder, or `true` for the newest in `output_dir`.
    public var resumeFromCheckpoint: String?
    /// `threads` (Finch): compute threads; default all cores.
    public var threads: Int?
    /// `dry_run` (Finch): print rendered pairs and dataset statistics, then stop.
    public var dryRun = false

    /// Where each key was last set, for messages and the resolved config.
    public private(set) var origins: [String: String] = [:]
    private var trainingArgumentValues: [(String, JSONValue)] = []
    private var lossTypes: [DPOLossType] = [.sigmoid]
    private var lossWeights: [Double]?
    private var beta = 0.1
    private var labelSmoothing = 0.0
    private var rpoAlpha: Double?

    /// Which trainer the settings are for: the keys and defaults differ (TRL's `DPOConfig` vs
    /// `SFTConfig`).
    public enum Command: String, Sendable { case dpo, sft }
    public let command: Command

    // SFT (TRL SFTConfig)
    /// `packing`: pack several sequences per row (each attends only to itself).
    public var packing = false
    /// `completion_only_loss` (nil: TRL's default, on for prompt/completion data).
    public var completionOnlyLoss: Bool?
    /// `assistant_only_loss`: loss on assistant turns only (conversational data).
    public var assistantOnlyLoss = false
    /// `dataset_text_field` (default `text`).
    public var datasetTextField = "text"

    public init(command: Command = .dpo) {
        self.command = command
        loss = .trlDefault
        if command == .sft { outputDirectory = "finch-sft-output" }
    }

    static let dpoOnlyKeys: Set<String> = ["beta", "loss_type", "loss_weights", "label_smoothing", "rpo_alpha", "precompute_ref_log_probs",
                                           "max_prompt_length", "max_completion_length", "orca_rendering"]
    static let sftOnlyKeys: Set<String> = ["packing", "completion_only_loss", "assistant_only_loss", "dataset_text_field", "packing_strategy"]

    /// Keys `set(_:_:origin:)` accepts besides TrainingArguments' own.
    public static let keys: [String] = [
        "model_name_or_path", "quantization", "load_in_4bit", "load_in_8bit", "bnb_4bit_quant_type", "bnb_4bit_use_double_quant",
        "bnb_4bit_compute_dtype", "torch_dtype", "dtype", "dataset", "train_file", "dataset_name", "eval_dataset", "eval_file",
        "eval_split", "test_size", "columns", "skip_invalid", "orca_rendering", "max_length", "max_prompt_length",
        "max_completion_length", "truncation_mode", "lora_r", "r", "lora_alpha", "lora_dropout", "lora_target_modules",
        "target_modules", "use_rslora", "use_peft", "beta", "loss_type", "loss_weights", "label_smoothing", "rpo_alpha",
        "precompute_ref_log_probs", "ref_adapter", "adapter", "merge_adapter", "gradient_checkpointing", "eval_steps", "save_steps",
        "save_total_limit", "output_dir", "resume_from_checkpoint", "threads", "dry_run", "eval_strategy", "save_strategy",
        "logging_strategy", "bf16", "fp16", "use_cpu", "report_to", "remove_unused_columns",
    ] + Array(sftOnlyKeys) + TrainingArguments.CodingKeys.allCases.map(\.rawValue)

    /// Sets `key` from a config or flag value. Values may be strings where a number or boolean is
    /// expected (as flags give them).
    public mutating func set(_ key: String, _ value: JSONValue, origin: String) throws {
        func fail(_ reason: String) -> TrainingError { TrainingError(key, "\(reason) (\(origin))") }
        if command == .sft, Self.dpoOnlyKeys.contains(key) { throw fail("applies to finch dpo, not finch sft") }
        if command == .dpo, Self.sftOnlyKeys.contains(key) { throw fail("applies to finch sft, not finch dpo") }
        func string() throws -> String {
            if let s = value.stringValue { return s }
            if case .number(let text) = value { return text }
            if let b = value.boolValue { return b ? "true" : "false" }
            throw fail("expected a string, got \(value.compactText)")
        }
        func optionalString() throws -> String? { value.isNull ? nil : try string() }
        func bool() throws -> Bool {
            if let b = value.boolValue { return b }
            switch value.stringValue?.lowercased() {
            case "true", "yes", "1": return true
            case "false", "no", "0": return false
            default: throw fail("expected true or false, got \(value.compactText)")
            }
        }
        func double() throws -> Double {
            if let d = value.doubleValue ?? value.stringValue.flatMap(Double.init), d.isFinite { return d }
            throw fail("expected a number, got \(value.compactText)")
        }
        func int() throws -> Int {
            if let i = value.intValue ?? value.stringValue.flatMap({ Int($0) }) { return i }
            throw fail("expected an integer, got \(value.compactText)")
        }
        func optionalInt() throws -> Int? {
            if value.isNull || value.stringValue?.lowercased() == "null" || value.stringValue?.lowercased() == "none" { return nil }
            return try int()
        }
        func list() throws -> [String] {
            if let items = value.arrayValue {
                return try items.map { item in
                    guard let s = item.stringValue else { throw fail("expected a list of strings, got \(value.compactText)") }
                    return s
                }
            }
            let s = try string()
            // A flag gives "a,b" or "[a, b]".
            let trimmed = s.trimmingCharacters(in: CharacterSet(charactersIn: "[] "))
            return trimmed.split(separator: ",").map { $0.trimmingCharacters(in: CharacterSet(charactersIn: " '\"")) }
        }
        switch key {
        case "model_name_or_path": modelNameOrPath = try string()
        case "quantization":
            let name = try string().lowercased()
            guard let q = BaseQuantization(rawValue: name) else {
                throw fail("'\(name)' is not one of \(BaseQuantization.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            quantization = q
        case "load_in_4bit": if try bool() { quantization = quantization.fourBitType == nil ? .nf4 : quantization } else if quantization != .int8 { quantization = .none }
        case "load_in_8bit": if try bool() { quantization = .int8 } else if quantization == .int8 { quantization = .none }
        case "bnb_4bit_quant_type":
            switch try string().lowercased() {
            case "nf4": quantization = .nf4
            case "fp4": quantization = .fp4
            case let other: throw fail("'\(other)' is not nf4 or fp4")
            }
        case "bnb_4bit_use_double_quant": doubleQuantization = try bool()
        case "bnb_4bit_compute_dtype":
            // Finch computes in Float32 whatever is asked; accepted for recipe compatibility.
            _ = try string()
        case "torch_dtype", "dtype":
            switch try string().lowercased() {
            case "auto": unquantizedStorage = nil
            case "float32", "fp32": unquantizedStorage = .float32
            case "float16", "fp16", "half": unquantizedStorage = .float16
            case "bfloat16", "bf16": unquantizedStorage = .bfloat16
            case let other: throw fail("'\(other)' is not auto, float32, float16 or bfloat16")
            }
        case "dataset", "train_file", "dataset_name": dataset = try string()
        case "eval_dataset", "eval_file": evalDataset = try optionalString()
        case "eval_split", "test_size":
            let f = try double()
            guard f >= 0, f < 1 else { throw fail("must be in [0, 1), got \(f)") }
            evalSplit = f
        case "columns":
            if let members = value.objectValue {
                columns = try Dictionary(members.map { k, v in
                    guard let s = v.stringValue else { throw fail("column '\(k)' must map to a string") }
                    return (k, s)
                }, uniquingKeysWith: { $1 })
            } else {
                // Flag form: prompt=question,chosen=best
                var mapping: [String: String] = [:]
                for part in try string().split(separator: ",") {
                    let kv = part.split(separator: "=", maxSplits: 1).map { String($0).trimmingCharacters(in: .whitespaces) }
                    guard kv.count == 2 else { throw fail("expected name=column pairs, got '\(part)'") }
                    mapping[kv[0]] = kv[1]
                }
                columns = mapping
            }
        case "skip_invalid": skipInvalid = try bool()
        case "orca_rendering":
            let s = try string()
            guard ["conversation", "two_calls"].contains(s) else { throw fail("must be conversation or two_calls, got '\(s)'") }
            orcaRendering = s
        case "max_length": maxLength = try optionalInt()
        case "max_prompt_length": maxPromptLength = try optionalInt()
        case "max_completion_length": maxCompletionLength = try optionalInt()
        case "truncation_mode":
            let s = try string()
            guard ["keep_start", "keep_end"].contains(s) else { throw fail("must be keep_start or keep_end, got '\(s)'") }
            truncationMode = s
        case "lora_r", "r":
            let r = try int()
            guard r > 0 else { throw fail("must be a positive integer, got \(r)") }
            lora.r = r
        case "lora_alpha": lora.loraAlpha = try double()
        case "lora_dropout":
            let p = try double()
            guard p >= 0, p < 1 else { throw fail("must be in [0, 1), got \(p)") }
            lora.loraDropout = p
        case "lora_target_modules", "target_modules":
            if value.isNull {
                lora.targetModules = .architectureDefault
            } else if value.arrayValue == nil, let s = value.stringValue, !s.contains(",") && !s.hasPrefix("[") {
                lora.targetModules = LoRAConfiguration.TargetModules(peftString: s)
            } else {
                lora.targetModules = .names(try list())
            }
        case "use_rslora": lora.useRSLoRA = try bool()
        case "use_peft":
            guard try bool() else { throw fail("Finch trains LoRA adapters only; full fine-tuning with DPO is not supported") }
        case "beta": beta = try double()
        case "loss_type":
            lossTypes = try list().map { name in
                guard let type = DPOLossType(rawValue: name) else {
                    throw fail("'\(name)' is not one of \(DPOLossType.allCases.map(\.rawValue).joined(separator: ", "))")
                }
                return type
            }
        case "loss_weights":
            if value.isNull { lossWeights = nil } else {
                lossWeights = try (value.arrayValue ?? []).isEmpty
                    ? try list().map { s in guard let d = Double(s) else { throw fail("'\(s)' is not a number") }; return d }
                    : value.arrayValue!.map { v in guard let d = v.doubleValue else { throw fail("expected numbers, got \(v.compactText)") }; return d }
            }
        case "label_smoothing": labelSmoothing = try double()
        case "rpo_alpha": rpoAlpha = value.isNull ? nil : try double()
        case "precompute_ref_log_probs": precomputeReferenceLogProbabilities = try bool()
        case "ref_adapter", "adapter": referenceAdapter = try optionalString()
        case "merge_adapter": mergeAdapter = try optionalString()
        case "gradient_checkpointing": gradientCheckpointing = try bool()
        case "eval_steps": evalSteps = try optionalInt() ?? 0
        case "save_steps": saveSteps = try int()
        case "save_total_limit": saveTotalLimit = try optionalInt()
        case "output_dir": outputDirectory = try string()
        case "resume_from_checkpoint":
            let s = try optionalString()
            resumeFromCheckpoint = s == "false" ? nil : s
        case "threads":
            let n = try int()
            guard n >= 1 else { throw fail("must be ≥ 1, got \(n)") }
            threads = n
        case "dry_run": dryRun = try bool()
        case "packing": packing = try bool()
        case "packing_strategy":
            let s = try string()
            guard s == "bfd" else { throw fail("Finch packs with TRL's default strategy, bfd; got '\(s)'") }
        case "completion_only_loss": completionOnlyLoss = value.isNull ? nil : try bool()
        case "assistant_only_loss": assistantOnlyLoss = try bool()
        case "dataset_text_field": datasetTextField = try string()
        case "eval_strategy", "save_strategy", "logging_strategy":
            let s = try string()
            guard ["steps", "no"].contains(s) else { throw fail("Finch supports 'steps' and 'no', got '\(s)'") }
            if s == "no" {
                if key == "eval_strategy" { evalSteps = 0 }
                if key == "save_strategy" { saveSteps = 0 }
            }
        case "bf16", "fp16":
            guard try !bool() else { throw fail("Finch trains in Float32 on the CPU; mixed precision is not available") }
        case "use_cpu", "report_to", "remove_unused_columns":
            break // accepted for recipe compatibility; no effect on the CPU trainer
        default:
            guard TrainingArguments.CodingKeys(rawValue: key) != nil else {
                let close = Self.keys.filter { Self.editDistance($0, key) <= max(2, key.count / 4) }.sorted()
                let hint = close.isEmpty ? "known keys: \(Self.keys.sorted().joined(separator: ", "))" : "did you mean \(close.joined(separator: " or "))?"
                throw TrainingError(key, "unknown key (\(origin)); \(hint)")
            }
            trainingArgumentValues.removeAll { $0.0 == key }
            trainingArgumentValues.append((key, value))
        }
        origins[key] = origin
    }

    /// Levenshtein distance, for "did you mean" hints.
    static func editDistance(_ a: String, _ b: String) -> Int {
        let a = Array(a), b = Array(b)
        var row = Array(0...b.count)
        for i in 1...max(a.count, 1) where !a.isEmpty {
            var previous = row[0]
            row[0] = i
            for j in stride(from: 1, through: b.count, by: 1) {
                let current = row[j]
                row[j] = min(row[j] + 1, row[j - 1] + 1, previous + (a[i - 1] == b[j - 1] ? 0 : 1))
                previous = current
            }
        }
        return a.isEmpty ? b.count : row[b.count]
    }

    /// Validates and assembles the values given so far (call after the last `set`).
    public mutating func resolve() throws {
        // TrainingArguments through its own decoder (types and ranges checked there), starting from
        // TRL's DPO defaults for the keys not given.
        var members = trainingArgumentValues.map { key, value -> (String, JSONValue) in
            // Flags give strings; the decoder wants numbers for numeric keys.
            if let s = value.stringValue, Double(s) != nil, key != "optim", key != "lr_scheduler_type" { return (key, .number(s)) }
            return (key, value)
        }
        // TRL's DPOConfig: 1e-6; SFTConfig: 2e-5.
        if !members.contains(where: { $0.0 == "learning_rate" }) { members.append(("learning_rate", .number(command == .dpo ? "1e-06" : "2e-05"))) }
        if !members.contains(where: { $0.0 == "logging_steps" }) { members.append(("logging_steps", .number("10"))) }
        do {
            arguments = try JSONDecoder().decode(TrainingArguments.self, from: Data(JSONValue.object(members).compactText.utf8))
        } catch let error as TrainingError {
            throw TrainingError(error.subject, error.reason + (origins[error.subject].map { " (\($0))" } ?? ""))
        } catch let DecodingError.typeMismatch(_, context), let DecodingError.dataCorrupted(context) {
            let key = context.codingPath.map(\.stringValue).joined(separator: ".")
            throw TrainingError(key, "\(context.debugDescription)" + (origins[key].map { " (\($0))" } ?? ""))
        }
        for (key, value) in [("per_device_train_batch_size", arguments.perDeviceTrainBatchSize),
                             ("gradient_accumulation_steps", arguments.gradientAccumulationSteps)] where value < 1 {
            throw TrainingError(key, "must be ≥ 1, got \(value)" + (origins[key].map { " (\($0))" } ?? ""))
        }
        var loss = try DPOLossConfiguration(types: lossTypes, weights: lossWeights, beta: beta, labelSmoothing: labelSmoothing)
        if let rpoAlpha { loss.addRPO(alpha: rpoAlpha) }
        self.loss = loss
    }

    /// The resolved values under their TRL names, for `config.json` in the run folder.
    public var resolvedJSON: JSONValue {
        func num(_ x: Double) -> JSONValue { .number("\(x)") }
        func opt(_ x: Int?) -> JSONValue { x.map { .number(String($0)) } ?? .null }
        let targets: JSONValue = switch lora.targetModules {
        case .allLinear: .string("all-linear")
        case .architectureDefault: .null
        case .names(let names): .array(names.map { .string($0) })
        case .regex(let r): .string(r)
        }
        let a = arguments
        var m: [(String, JSONValue)] = []
        m += [("model_name_or_path", modelNameOrPath.map { .string($0) } ?? .null)]
        m += [("quantization", .string(quantization.rawValue)), ("bnb_4bit_use_double_quant", .bool(doubleQuantization))]
        m += [("torch_dtype", .string(unquantizedStorage?.rawValue ?? "auto"))]
        m += [("dataset", dataset.map { .string($0) } ?? .null), ("eval_dataset", evalDataset.map { .string($0) } ?? .null)]
        m += [("eval_split", num(evalSplit)), ("columns", .object(columns.sorted { $0.key < $1.key }.map { ($0.key, .string($0.value)) }))]
        m += [("skip_invalid", .bool(skipInvalid)), ("orca_rendering", .string(orcaRendering))]
        m += [("max_length", opt(maxLength)), ("max_prompt_length", opt(maxPromptLength))]
        m += [("max_completion_length", opt(maxCompletionLength)), ("truncation_mode", .string(truncationMode))]
        m += [("lora_r", .number(String(lora.r))), ("lora_alpha", num(lora.loraAlpha)), ("lora_dropout", num(lora.loraDropout))]
        m += [("lora_target_modules", targets), ("use_rslora", .bool(lora.useRSLoRA))]
        m += [("beta", num(loss.beta)), ("loss_type", .array(loss.types.map { .string($0.rawValue) }))]
        m += [("loss_weights", .array(loss.weights.map(num))), ("label_smoothing", num(loss.labelSmoothing))]
        m += [("precompute_ref_log_probs", .bool(precomputeReferenceLogProbabilities))]
        m += [("ref_adapter", referenceAdapter.map { .string($0) } ?? .null), ("merge_adapter", mergeAdapter.map { .string($0) } ?? .null)]
        m += [("learning_rate", num(a.learningRate)), ("lr_scheduler_type", .string(a.lrSchedulerType.rawValue))]
        m += [("warmup_steps", num(a.warmupSteps)), ("weight_decay", num(a.weightDecay)), ("optim", .string(a.optim.rawValue))]
        m += [("adam_beta1", num(a.adamBeta1)), ("adam_beta2", num(a.adamBeta2)), ("adam_epsilon", num(a.adamEpsilon))]
        m += [("max_grad_norm", num(a.maxGradNorm)), ("gradient_accumulation_steps", .number(String(a.gradientAccumulationSteps)))]
        m += [("per_device_train_batch_size", .number(String(a.perDeviceTrainBatchSize))), ("num_train_epochs", num(a.numTrainEpochs))]
        m += [("max_steps", .number(String(a.maxSteps))), ("logging_steps", num(a.loggingSteps)), ("seed", .number(String(a.seed)))]
        m += [("gradient_checkpointing", .bool(gradientCheckpointing)), ("eval_steps", .number(String(evalSteps)))]
        m += [("save_steps", .number(String(saveSteps))), ("save_total_limit", opt(saveTotalLimit))]
        m += [("output_dir", .string(outputDirectory)), ("threads", opt(threads))]
        if command == .sft {
            let dpoOnly = Self.dpoOnlyKeys.union(["ref_adapter"])
            m = m.filter { !dpoOnly.contains($0.0) }
            m += [("packing", .bool(packing)), ("completion_only_loss", completionOnlyLoss.map { .bool($0) } ?? .null),
                  ("assistant_only_loss", .bool(assistantOnlyLoss)), ("dataset_text_field", .string(datasetTextField))]
        }
        return .object(m)
    }
}
