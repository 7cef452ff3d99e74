import ArgumentParser
import FinchCore
import FinchFormats
import FinchModels
import FinchTokenizers
import FinchTraining
import Foundation

/// `finch sft`: train a LoRA adapter with supervised fine-tuning, as TRL's `SFTTrainer` does.
struct SFT: TrainingSubcommand {
    static let configuration = CommandConfiguration(
        commandName: "sft",
        abstract: "Train a LoRA adapter with supervised fine-tuning (TRL's SFTTrainer semantics).",
        discussion: """
            Settings use TRL's names (SFTConfig, TrainingArguments, the TRL CLI's lora_* keys, \
            BitsAndBytesConfig), from --config FILE (YAML or JSON) and/or --key value flags, as for \
            finch dpo. Data: JSONL/JSON/CSV/TSV rows of `text`, `prompt`/`completion` (strings or \
            messages), `messages`, or Alpaca's `instruction`/`input`/`output`.

            SFT keys (defaults in brackets): completion_only_loss [on for prompt/completion data], \
            assistant_only_loss [false], packing [false] (TRL's bfd packing: each packed sequence \
            attends only to itself), max_length [1024], dataset_text_field [text], learning_rate [2e-5]; \
            plus the model, LoRA, trainer, checkpoint and run-folder keys of finch dpo \
            (merge_adapter, save_steps, resume_from_checkpoint, …).
            """)

    @Argument(parsing: .captureForPassthrough, help: TrainingCommand.argumentsHelp)
    var arguments: [String] = []

    func start() throws { try SFTRun(arguments: arguments).run() }
}

/// One `finch sft` invocation.
struct SFTRun {
    let arguments: [String]

    func run() throws {
        let started = Date()
        let (c, modelArgument, datasetPath) = try TrainingCommand.configuration(.sft, arguments: arguments)
        var columns = c.columns
        if c.datasetTextField != "text", columns["text"] == nil { columns["text"] = c.datasetTextField }
        let (examples, report) = try SFTDataset.load(path: datasetPath, columns: columns, skipInvalid: c.skipInvalid)
        CLI.log(report.description)
        var train = examples, eval: [SFTExample] = []
        var datasetStatistics: [(String, JSONValue)] = [("train_file", report.jsonValue)]
        if let evalPath = c.evalDataset {
            let (e, evalReport) = try SFTDataset.load(path: evalPath, columns: columns, skipInvalid: c.skipInvalid)
            CLI.log(evalReport.description)
            eval = e
            datasetStatistics.append(("eval_file", evalReport.jsonValue))
        } else if c.evalSplit > 0 {
            (train, eval) = SFTDataset.split(examples, evalFraction: c.evalSplit, seed: UInt64(c.arguments.seed))
            datasetStatistics.append(("eval_split", .string("\(c.evalSplit) of the training file")))
        }
        let source = try ModelSource(path: CLI.resolveModel(modelArgument))
        let tokenizer = try Tokenizer(source: source)
        let options = SFTTokenizationOptions(maxLength: c.maxLength, truncationMode: c.truncationMode == "keep_end" ? .keepEnd : .keepStart,
                                             completionOnlyLoss: c.completionOnlyLoss, assistantOnlyLoss: c.assistantOnlyLoss,
                                             packing: c.packing)
        let (sequences, statistics, warnings) = try SFTTokenizer.tokenize(train, tokenizer: tokenizer, options: options)
        for warning in warnings { CLI.log("warning: " + warning) }
        CLI.log("train: " + statistics.description)
        datasetStatistics.append(("train", statistics.jsonValue))
        var evalSequences: [SFTSequence] = []
        if !eval.isEmpty {
            let tokenized = try SFTTokenizer.tokenize(eval, tokenizer: tokenizer, options: options)
            evalSequences = tokenized.sequences
            datasetStatistics.append(("eval", tokenized.statistics.jsonValue))
        }
        if c.dryRun {
            for sequence in sequences.prefix(3) { print(SFTTokenizer.describe(sequence, tokenizer: tokenizer)) }
            print("train: \(statistics.description)")
            return
        }
        guard !sequences.isEmpty else { throw TrainingError("dataset", "\(datasetPath): no sequences left after filtering") }
        func rows(_ s: [SFTSequence]) -> [[SFTTrainingSequence]] {
            let converted = { (x: SFTSequence) in SFTTrainingSequence(inputIDs: x.inputIDs, labels: x.labels) }
            guard c.packing, let maxLength = c.maxLength else { return s.map { [converted($0)] } }
            return SFTPacking.pack(s, maxLength: maxLength).map { $0.map(converted) }
        }
        let trainRows = rows(sequences), evalRows = rows(evalSequences)
        if c.packing {
            CLI.log("packing: \(sequences.count) sequences into \(trainRows.count) rows of at most \(c.maxLength ?? 0) tokens")
            datasetStatistics.append(("packed_rows", .number(String(trainRows.count))))
        }

        let (model, _, pool) = try TrainingCommand.loadModel(c, source: source)
        let (policy, arena) = try SFTTrainer.makePolicy(model: model, configuration: c.lora, seed: UInt64(truncatingIfNeeded: c.arguments.seed))
        if let path = c.referenceAdapter {
            // An adapter to continue training from.
            let (_, tensors) = try PEFTAdapterFolder.read(path)
            try policy.setValues(fromPEFT: tensors, path: path)
        }
        var trainerConfiguration = SFTTrainerConfiguration(arguments: c.arguments)
        trainerConfiguration.gradientCheckpointing = c.gradientCheckpointing
        trainerConfiguration.evalSteps = evalRows.isEmpty ? 0 : (c.evalSteps > 0 ? c.evalSteps : Int.max)
        let trainer = try SFTTrainer(model: model, policy: policy, arena: arena, trainRows: trainRows, evalRows: evalRows,
                                     configuration: trainerConfiguration, pool: pool)
        let output = try TrainingCommand.prepareRunFolder(c, trainer: trainer)
        let run = TrainingRunRecord(kind: "sft", model: modelArgument, dataset: datasetPath, maxSteps: trainer.plan.totalSteps,
                                    unit: "sequences", datasetStatistics: .object(datasetStatistics))
        try TrainingCommand.train(trainer, c, output: output, baseModel: modelArgument, unit: "sequences",
            evalSteps: trainerConfiguration.evalSteps, run: run, started: started)
    }
}
