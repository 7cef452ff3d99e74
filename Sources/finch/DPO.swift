import ArgumentParser
import FinchCore
import FinchFormats
import FinchModels
import FinchTokenizers
import FinchTraining
import Foundation

/// `finch dpo`: train a LoRA adapter with DPO, as TRL's `DPOTrainer` does.
struct DPO: TrainingSubcommand {
    static let configuration = CommandConfiguration(
        commandName: "dpo",
        abstract: "Train a LoRA adapter on a preference dataset with DPO (TRL's DPOTrainer semantics).",
        discussion: """
            Settings use TRL's names, from --config FILE (YAML or JSON) and/or flags: every key can be \
            given as --key value (or --key=value), and flags override the file. Unknown keys and wrong \
            types are errors naming the key and where it was given.

            Main keys (defaults in brackets):
              model_name_or_path, dataset (JSONL/JSON/CSV/TSV), eval_dataset, eval_split [0], columns, skip_invalid
              quantization [nf4] (nf4, fp4, int8, none), bnb_4bit_use_double_quant [true], torch_dtype [auto]
              lora_r [16], lora_alpha [32], lora_dropout [0.05; DPO zeroes it as TRL does], lora_target_modules
              beta [0.1], loss_type [sigmoid], loss_weights, label_smoothing, rpo_alpha
              max_length [1024], max_prompt_length, max_completion_length, truncation_mode [keep_start]
              precompute_ref_log_probs [false], ref_adapter (PEFT folder: frozen reference and starting policy)
              learning_rate [1e-6], lr_scheduler_type [linear], warmup_steps [0], optim [adamw_torch_fused],
              per_device_train_batch_size [8], gradient_accumulation_steps [1], num_train_epochs [3], max_steps,
              max_grad_norm [1.0], weight_decay [0], seed [42], gradient_checkpointing [true], logging_steps [10],
              eval_steps, save_steps, save_total_limit, output_dir [finch-dpo-output], resume_from_checkpoint
              threads, dry_run

            The run folder (output_dir) receives config.json (the resolved settings), metrics.jsonl (one \
            line per logged step, TRL's metric names), checkpoint-N/ folders and, at the end, the adapter \
            in PEFT's format (adapter_config.json + adapter_model.safetensors).
            """)

    @Argument(parsing: .captureForPassthrough, help: TrainingCommand.argumentsHelp)
    var arguments: [String] = []

    func start() throws { try DPORun(command: self).run() }
}

/// One `finch dpo` invocation.
struct DPORun {
    let command: DPO

    func run() throws {
        let started = Date()
        let (c, modelArgument, datasetPath) = try TrainingCommand.configuration(.dpo, arguments: command.arguments)

        // Data first: a bad dataset should fail before minutes of model loading.
        let columns = try PreferenceColumns(mapping: c.columns)
        let (examples, report) = try PreferenceDataset.load(path: datasetPath, columns: columns, skipInvalid: c.skipInvalid)
        CLI.log(report.description)
        var train = examples, eval: [PreferenceExample] = []
        var datasetStatistics: [(String, JSONValue)] = [("train_file", report.jsonValue)]
        if let evalPath = c.evalDataset {
            let (e, evalReport) = try PreferenceDataset.load(path: evalPath, columns: columns, skipInvalid: c.skipInvalid)
            CLI.log(evalReport.description)
            eval = e
            datasetStatistics.append(("eval_file", evalReport.jsonValue))
        } else if c.evalSplit > 0 {
            (train, eval) = PreferenceDataset.split(examples, evalFraction: c.evalSplit, seed: UInt64(c.arguments.seed))
            datasetStatistics.append(("eval_split", .string("\(c.evalSplit) of the training file")))
        }

        let modelPath = try CLI.resolveModel(modelArgument)
        let source = try ModelSource(path: modelPath)
        let tokenizer = try Tokenizer(source: source)
        let tokenization = Self.tokenizationOptions(c)
        let (trainPairs, statistics, warnings) = try DPOTokenizer.tokenize(train, tokenizer: tokenizer, options: tokenization)
        for warning in warnings { CLI.log("warning: " + warning) }
        CLI.log("train: " + statistics.description)
        datasetStatistics.append(("train", statistics.jsonValue))
        var evalPairs: [TokenizedPair] = []
        if !eval.isEmpty {
            let tokenized = try DPOTokenizer.tokenize(eval, tokenizer: tokenizer, options: tokenization)
            evalPairs = tokenized.pairs
            datasetStatistics.append(("eval", tokenized.statistics.jsonValue))
        }
        if c.dryRun {
            for pair in trainPairs.prefix(3) { print(DPOTokenizer.describe(pair, tokenizer: tokenizer)) }
            print("train: \(statistics.description)")
            if !evalPairs.isEmpty { print("eval: \(evalPairs.count) pairs") }
            return
        }
        guard !trainPairs.isEmpty else {
            throw TrainingError("dataset", "\(datasetPath): no pairs left after filtering (\(statistics.description))")
        }

        let (model, options, pool) = try TrainingCommand.loadModel(c, source: source)
        let trainer = try Self.makeTrainer(c, model: model, trainPairs: Self.sequences(trainPairs), evalPairs: Self.sequences(evalPairs),
                                           pool: pool)
        let output = try TrainingCommand.prepareRunFolder(c, trainer: trainer)
        if c.precomputeReferenceLogProbabilities { try Self.precomputeReference(c, trainer: trainer, modelPath: modelPath, options: options) }
        let run = TrainingRunRecord(kind: "dpo", model: modelArgument, dataset: datasetPath, maxSteps: trainer.plan.totalSteps,
                                    unit: "pairs", datasetStatistics: .object(datasetStatistics))
        try TrainingCommand.train(trainer, c, output: output, baseModel: modelArgument, unit: "pairs",
            evalSteps: trainer.configuration.evalSteps, run: run, started: started)
    }

    /// The tokenization settings of a run.
    static func tokenizationOptions(_ c: DPORunConfiguration) -> DPOTokenizationOptions {
        var tokenization = DPOTokenizationOptions(maxLength: c.maxLength, maxPromptLength: c.maxPromptLength,
                                                  maxCompletionLength: c.maxCompletionLength)
        tokenization.truncationMode = c.truncationMode == "keep_end" ? .keepEnd : .keepStart
        tokenization.orcaRendering = c.orcaRendering == "two_calls" ? .twoCalls : .conversation
        return tokenization
    }

    /// Tokenized pairs as the trainer consumes them.
    static func sequences(_ pairs: [TokenizedPair]) -> [DPOSequencePair] {
        pairs.map { p in
            DPOSequencePair(chosen: p.chosenInputIDs, chosenPromptLength: p.chosenPromptLength,
                            rejected: p.rejectedInputIDs, rejectedPromptLength: p.rejectedPromptLength)
        }
    }

    /// The policy adapter (fresh, or a copy of `ref_adapter` with that as the frozen reference)
    /// and the DPO trainer of a run.
    static func makeTrainer(_ c: DPORunConfiguration, model: CausalLM, trainPairs: [DPOSequencePair], evalPairs: [DPOSequencePair],
                            pool: ThreadPool) throws -> DPOTrainer {
        var loraConfiguration = c.lora
        var referenceAdapter: LoRAAdapter?
        var startValues: [PEFTAdapterFolder.Tensor]?
        if let path = c.referenceAdapter {
            let (peft, tensors) = try PEFTAdapterFolder.read(path)
            loraConfiguration = LoRAAdapter.configuration(fromPEFT: peft)
            let ref = try LoRAAdapter(name: "ref", configuration: loraConfiguration, model: model, seed: 0)
            try ref.setValues(fromPEFT: tensors, path: path)
            referenceAdapter = ref
            startValues = tensors
            CLI.log("reference: the frozen adapter \(path); the policy starts as a copy of it")
        }
        // TRL's DPOTrainer zeroes every dropout, LoRA's included (disable_dropout=True).
        loraConfiguration.loraDropout = 0
        let (policy, arena) = try DPOTrainer.makePolicy(model: model, configuration: loraConfiguration,
                                                        seed: UInt64(truncatingIfNeeded: c.arguments.seed))
        if let startValues { try policy.setValues(fromPEFT: startValues, path: c.referenceAdapter ?? "") }

        var trainerConfiguration = DPOTrainerConfiguration(arguments: c.arguments, loss: c.loss)
        trainerConfiguration.gradientCheckpointing = c.gradientCheckpointing
        trainerConfiguration.precomputeReferenceLogProbabilities = c.precomputeReferenceLogProbabilities
        trainerConfiguration.evalSteps = evalPairs.isEmpty ? 0 : (c.evalSteps > 0 ? c.evalSteps : Int.max)
        let trainer = try DPOTrainer(model: model, policy: policy, arena: arena,
                                     reference: referenceAdapter.map { .adapter($0) } ?? .base,
                                     trainPairs: trainPairs, evalPairs: evalPairs,
                                     configuration: trainerConfiguration, pool: pool)
        return trainer // prepareRunFolder logs the optimizer's notice
    }

    /// `precompute_ref_log_probs`: the reference log-probs from the cache, or computed and cached.
    static func precomputeReference(_ c: DPORunConfiguration, trainer: DPOTrainer, modelPath: String, options: ModelLoadOptions) throws {
        let cache = ReferenceLogProbabilityCache(model: modelPath, options: options, adapters: [c.referenceAdapter.map { ("ref", $0) }, c.mergeAdapter.map { ("merge", $0) }].compactMap { $0 },
                                                 train: trainer.trainPairs, eval: trainer.evalPairs)
        if let cached = cache.load() {
            try trainer.setPrecomputed(train: cached.train, eval: cached.eval)
            CLI.log("reference log-probs: reused \(cache.path)")
        } else {
            let t0 = Date()
            try trainer.precomputeReferenceLogProbabilities()
            try cache.store(train: trainer.precomputedTrain ?? [], eval: trainer.precomputedEval ?? [])
            CLI.log(String(format: "reference log-probs: computed for %d pairs in %.1f s, cached in %@",
                           trainer.trainPairs.count + trainer.evalPairs.count, Date().timeIntervalSince(t0), cache.path))
        }
    }
}

/// Precomputed reference log-probs on disk (`precompute_ref_log_probs`), keyed by a SHA-256 of
/// the model file (path, size, modification time), the load options, the reference adapter's
/// bytes and every token of the data, so a later run (or an evaluation) on the same inputs reuses
/// them and any change recomputes.
struct ReferenceLogProbabilityCache {
    let path: String

    init(model: String, options: ModelLoadOptions, adapters: [(role: String, path: String)], train: [DPOSequencePair], eval: [DPOSequencePair]) {
        var key = "finch-ref-logps-v1\n\(model)\n"
        for file in Self.files(model) {
            let attributes = try? FileManager.default.attributesOfItem(atPath: file)
            key += "\(file) \(attributes?[.size] ?? 0) \((attributes?[.modificationDate] as? Date)?.timeIntervalSince1970 ?? 0)\n"
        }
        key += "\(options.quantization.rawValue) \(options.doubleQuantization) \(options.unquantizedStorage?.rawValue ?? "auto")\n"
        for (role, adapter) in adapters {
            let bytes = FileManager.default.contents(atPath: adapter + "/" + PEFTAdapterFolder.weightsFile) ?? Data()
            var hash = SHA256()
            hash.update(Array(bytes))
            key += role + " " + adapter + " " + hash.finalizeHex() + "\n"
        }
        for pair in train + eval {
            key += "\(pair.chosenPromptLength):\(pair.chosen) \(pair.rejectedPromptLength):\(pair.rejected)\n"
        }
        key += "eval \(eval.count)\n"
        var hash = SHA256()
        hash.update(Array(key.utf8))
        path = ModelCache.fromEnvironment().directory + "/ref-logps/\(hash.finalizeHex()).json"
    }

    /// The weight files of a model path (a GGUF file, or an HF folder's safetensors).
    static func files(_ model: String) -> [String] {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: model, isDirectory: &isDirectory), isDirectory.boolValue else { return [model] }
        let names = (try? FileManager.default.contentsOfDirectory(atPath: model)) ?? []
        return names.filter { $0.hasSuffix(".safetensors") || $0 == "config.json" }.sorted().map { model + "/" + $0 }
    }

    func load() -> (train: [(Double, Double)], eval: [(Double, Double)])? {
        guard let json = try? JSONValue.parse(contentsOf: path) else { return nil }
        func table(_ key: String) -> [(Double, Double)]? {
            json[key]?.arrayValue?.compactMap { pair in
                guard let a = pair.arrayValue, a.count == 2, let c = a[0].doubleValue, let r = a[1].doubleValue else { return nil }
                return (c, r)
            }
        }
        guard let train = table("train"), let eval = table("eval") else { return nil }
        return (train, eval)
    }

    func store(train: [(Double, Double)], eval: [(Double, Double)]) throws {
        try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        func table(_ rows: [(Double, Double)]) -> JSONValue { .array(rows.map { .array([.number("\($0.0)"), .number("\($0.1)")]) }) }
        try AtomicFile.write(Array((JSONValue.object([("train", table(train)), ("eval", table(eval))]).compactText + "\n").utf8), to: path)
    }
}
