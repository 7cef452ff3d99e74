import ArgumentParser
import FinchCore
import FinchFormats
import FinchGeneration
import FinchModels
import FinchTokenizers
import FinchTraining
import Foundation

/// `finch quickstart`: the whole mission in one command on the default model.
struct Quickstart: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Teach the default model to answer in one fixed sentence with DPO, and measure it before and after.",
        discussion: """
            Fetches the model if needed; evaluates it on the held-out split of the built-in dataset \
            (examples/data/quickstart: questions whose preferred reply is one sentence, "The answer \
            is ….", with nothing before or after it); trains a LoRA adapter with DPO using the \
            examples/smollm2-dpo.yaml recipe (NF4 base, LoRA r 16, batch 2 x 4, cosine schedule) on \
            the training split; evaluates again; prints a before/after table and three replies side \
            by side; saves the adapter (the run folder), a merged model (<out>/merged) and \
            evaluation.json. Measured: preference accuracy (chosen vs rejected by mean log-prob per \
            token), the mean log-prob margin, and the rule score of greedy replies.

            Ctrl-C stops after the current step with a checkpoint; running the command again offers \
            to resume (--resume / --restart decide without asking; without a terminal it resumes).
            """)

    @Option(help: "The base model: a GGUF file, an HF folder or a known model name.")
    var model: String = KnownModel.defaultModel.name

    @Option(help: "DPO optimizer steps (8 pairs each). A stopped run resumes with its own count.")
    var steps: Int?

    @Option(help: "Held-out questions answered by greedy generation, before and after.")
    var evalPrompts: Int = 50

    @Option(help: "Held-out preference pairs scored, before and after (default: all 200).")
    var evalPairs: Int?

    @Option(help: "Longest reply generated for the rule score, in tokens.")
    var maxNewTokens: Int = 32

    @Option(help: "The run folder: adapter, checkpoints, metrics, evaluation.json, merged/.")
    var out: String = "runs/quickstart"

    @Option(help: ArgumentHelp("A DPO recipe to use instead of the built-in copy of examples/smollm2-dpo.yaml.", valueName: "file"))
    var config: String?

    @Flag(help: "Do not write the merged model.")
    var noMerge = false

    @Flag(help: "Resume a stopped run without asking.")
    var resume = false

    @Flag(help: "Start over, discarding a stopped or finished run in the folder.")
    var restart = false

    @Option(help: "Compute threads (default: all cores).")
    var threads: Int?

    @Option(help: ArgumentHelp("Evaluate this trained adapter against the base instead of training (for experiments).",
                               valueName: "dir", visibility: .hidden))
    var evaluateAdapter: String?

    static let defaultSteps = 100

    func validate() throws {
        if resume && restart { throw ValidationError("--resume and --restart exclude each other") }
        if let steps, steps < 1 { throw ValidationError("--steps must be at least 1") }
        if evalPrompts < 0 { throw ValidationError("--eval-prompts must be ≥ 0") }
        if let evalPairs, evalPairs < 1 { throw ValidationError("--eval-pairs must be at least 1") }
        if maxNewTokens < 1 { throw ValidationError("--max-new-tokens must be at least 1") }
        if let threads, threads < 1 { throw ValidationError("--threads must be at least 1") }
    }

    func run() throws {
        try CLI.run { try QuickstartRun(options: self).run() }
    }
}

/// `finch quickstart-data [DIR]` (not listed in help): rewrites the built-in dataset's files.
struct QuickstartData: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "quickstart-data",
        abstract: "Write the quickstart dataset (train.jsonl, test.jsonl) into a folder.",
        shouldDisplay: false)

    @Argument(help: "The folder (default: examples/data/quickstart).")
    var directory: String = QuickstartDataset.directory

    func run() throws {
        try CLI.run {
            let data = QuickstartDataset.generate()
            try data.write(to: directory)
            CLI.log("wrote \(data.train.count) training and \(data.test.count) test pairs to \(directory)")
        }
    }
}

/// The built-in copy of `examples/smollm2-dpo.yaml` (a test keeps the two identical), so that
/// `finch quickstart` runs the same recipe from any folder.
enum QuickstartRecipe {
    static let path = "examples/smollm2-dpo.yaml"
    static let text = """
        # The article's recipe on Finch's default model (SmolLM2-135M-Instruct, fetched on first use):
        #   finch dpo --config examples/smollm2-dpo.yaml --dataset examples/data/preferences.jsonl
        # Same settings as examples/phi2-dpo-qlora.yaml, with SmolLM2's attention projections (it names
        # the output projection o_proj where Phi-2 has dense).

        model_name_or_path: smollm2-135m-instruct
        dataset: examples/data/preferences.jsonl

        load_in_4bit: true
        bnb_4bit_quant_type: nf4
        bnb_4bit_use_double_quant: true

        lora_r: 16
        lora_alpha: 16
        lora_dropout: 0.05
        lora_target_modules: [q_proj, k_proj, v_proj, o_proj]

        beta: 0.1
        loss_type: sigmoid
        max_prompt_length: 512
        max_length: 1024

        per_device_train_batch_size: 2
        gradient_accumulation_steps: 4
        learning_rate: 5.0e-5
        lr_scheduler_type: cosine
        warmup_steps: 5
        max_steps: 100
        gradient_checkpointing: true
        optim: paged_adamw_32bit
        logging_steps: 1
        save_steps: 25
        save_total_limit: 2
        output_dir: runs/smollm2-dpo

        """
}
