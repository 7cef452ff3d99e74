import ArgumentParser
import FinchGeneration

/// Sampling and length flags shared by `finch generate` and `finch chat` (transformers' names).
struct GenerationOptions: ParsableArguments {
    @Option(help: "Maximum number of new tokens.")
    var maxNewTokens: Int = 256

    @Option(help: "Sampling temperature; 0 is greedy.")
    var temperature: Double = 0

    @Option(help: "Keep the k most likely tokens (0: off).")
    var topK: Int = 0

    @Option(help: "Nucleus sampling threshold in (0, 1] (1: off).")
    var topP: Double = 1

    @Option(help: "Drop tokens below min-p × the top probability (0: off).")
    var minP: Double = 0

    @Option(help: "Penalty for tokens already in the context (1: off).")
    var repetitionPenalty: Double = 1

    @Option(help: "Seed of the sampler.")
    var seed: UInt64 = 0

    @Option(name: .customLong("stop"), help: "Stop when this text appears (repeatable).")
    var stopStrings: [String] = []

    @Flag(help: "Round activations to 16-bit integers per 32 values for the quantized-weight products (as llama.cpp does with 8 bits): about 2x faster decoding; logits then differ from transformers' by up to ~0.02 instead of ~1e-4.")
    var quantizedActivations = false

    @Flag(help: "Multiply GGUF block-quantized weights (Q8_0, Q4_0, …) as llama.cpp's CPU backend does — activations rounded to 8 bits per 32 values, prefill included — to compare generations with llama.cpp token for token.")
    var llamaCppArithmetic = false

    @Flag(help: "Do not stop at the end-of-sequence token (for benchmarks).")
    var ignoreEOS = false

    @Option(help: "Threads for the forward pass (default: FINCH_THREADS or all cores).")
    var threads: Int?

    @Option(help: ArgumentHelp("A LoRA adapter folder to apply (PEFT format).", valueName: "path"))
    var adapter: String?

    @Option(help: ArgumentHelp("A LoRA adapter folder to merge into the base first (e.g. the SFT adapter under a DPO adapter trained with merge_adapter).", valueName: "path"))
    var mergeAdapter: String?

    var sampling: SamplingParameters {
        SamplingParameters(temperature: temperature, topK: topK, topP: topP, minP: minP,
                           repetitionPenalty: repetitionPenalty, seed: seed)
    }

    func validate() throws {
        do { try sampling.validate() } catch let error as GenerationError { throw ValidationError(error.description) }
        guard maxNewTokens >= 0 else { throw ValidationError("--max-new-tokens must be ≥ 0") }
        if let threads, threads < 1 { throw ValidationError("--threads must be ≥ 1") }
    }
}
