import ArgumentParser
import FinchCore
import FinchFormats
import FinchModels
import FinchTokenizers
import Foundation

/// `finch merge`: a LoRA adapter merged into its base, written as a Hugging Face folder.
struct Merge: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Merge a LoRA adapter into its base model and write a Hugging Face folder.",
        discussion: """
            Computes W + scaling·B·A in Float32 for every adapted linear layer (a quantized base is \
            dequantized first, never merged into 4-bit codes), as PEFT's merge_and_unload does, and \
            writes config.json, generation_config.json, model.safetensors (sharded with an index above \
            --max-shard-size), the tokenizer files and chat template, and a model card README.md. \
            From a GGUF base, config.json, tokenizer.json and \
            tokenizer_config.json are rebuilt from its metadata as transformers converts them \
            (byte-level and SentencePiece-style tokenizers). \
            The folder is written under a temporary name and renamed when complete.
            """)

    @Option(help: "The base model: a Hugging Face folder, a GGUF file or a known model name.")
    var model: String

    @Option(help: "The LoRA adapter folder (PEFT format).")
    var adapter: String

    @Option(help: "The folder to write.")
    var out: String

    @Option(help: "Storage of the merged weights: float32, bfloat16 or float16.")
    var dtype: String = "float32"

    @Option(help: "Shard model.safetensors above this many bytes (e.g. 5GB, 500MB).")
    var maxShardSize: String = "5GB"

    @Flag(help: "Replace an existing output folder.")
    var overwrite = false

    func run() throws {
        try CLI.run { try merge() }
    }

    static func byteCount(_ text: String) throws -> Int {
        let units: [(String, Int)] = [("GB", 1_000_000_000), ("MB", 1_000_000), ("KB", 1_000), ("B", 1)]
        for (suffix, scale) in units where text.uppercased().hasSuffix(suffix) {
            if let n = Double(text.dropLast(suffix.count)), n > 0 { return Int(n * Double(scale)) }
        }
        if let n = Int(text), n > 0 { return n }
        throw FormatError(text, "--max-shard-size must be a size such as 5GB or 500MB")
    }

    func merge() throws {
        guard let storage = FloatStorageType(rawValue: dtype) else {
            throw FormatError(dtype, "--dtype must be float32, bfloat16 or float16")
        }
        let shardLimit = try Self.byteCount(maxShardSize)
        let fm = FileManager.default
        if fm.fileExists(atPath: out), !overwrite {
            throw FormatError(out, "exists; pass --overwrite to replace it")
        }
        let modelPath = try CLI.resolveModel(model)
        let source = try ModelSource(path: modelPath)
        let pool = ThreadPool()
        let base = try CausalLM(source: source, options: ModelLoadOptions(), pool: pool)
        let lora = try LoRAAdapter(peftFolder: adapter, model: base)
        let merged = try base.mergingLoRA(lora, pool: pool)
        let tensors = try merged.huggingFaceTensors(dtype: storage)

        let temporary = out + ".tmp-\(getpid())"
        try? fm.removeItem(atPath: temporary)
        try fm.createDirectory(atPath: temporary, withIntermediateDirectories: true)
        do {
            // Shards in tensor order, each under the limit (a single larger tensor gets its own).
            var shards: [[SafeTensorsWriter.Entry]] = [[]], size = 0
            for t in tensors {
                if size > 0, size + t.bytes.count > shardLimit { shards.append([]); size = 0 }
                shards[shards.count - 1].append(t)
                size += t.bytes.count
            }
            if shards.count == 1 {
                try SafeTensorsWriter.write(shards[0], metadata: ["format": "pt"], to: temporary + "/model.safetensors")
            } else {
                var map: [(String, JSONValue)] = []
                for (i, shard) in shards.enumerated() {
                    let name = String(format: "model-%05d-of-%05d.safetensors", i + 1, shards.count)
                    try SafeTensorsWriter.write(shard, metadata: ["format": "pt"], to: temporary + "/" + name)
                    map += shard.map { ($0.name, .string(name)) }
                }
                let total = tensors.reduce(0) { $0 + $1.bytes.count }
                let index: JSONValue = .object([("metadata", .object([("total_size", .number(String(total)))])), ("weight_map", .object(map))])
                try AtomicFile.write(Array((index.compactText + "\n").utf8), to: temporary + "/model.safetensors.index.json")
            }
            if let gguf = source.gguf {
                // A GGUF base: config, tokenizer and chat template rebuilt from its metadata.
                let c = source.configuration
                try AtomicFile.write(Array((c.huggingFaceConfig(dtype: storage.rawValue).compactText + "\n").utf8), to: temporary + "/config.json")
                let (tokenizerJSON, tokenizerConfig) = try Tokenizer.huggingFaceFiles(gguf: gguf, modelMaxLength: c.maxPositionEmbeddings)
                try AtomicFile.write(Array((tokenizerJSON.compactText + "\n").utf8), to: temporary + "/tokenizer.json")
                try AtomicFile.write(Array((tokenizerConfig.compactText + "\n").utf8), to: temporary + "/tokenizer_config.json")
                if let template = gguf["tokenizer.chat_template"]?.stringValue {
                    try AtomicFile.write(Array(template.utf8), to: temporary + "/chat_template.jinja")
                }
                var generation: [(String, JSONValue)] = []
                if let bos = c.bosTokenID { generation.append(("bos_token_id", .number(String(bos)))) }
                if let eos = c.eosTokenIDs.first { generation.append(("eos_token_id", .number(String(eos)))) }
                try AtomicFile.write(Array((JSONValue.object(generation).compactText + "\n").utf8), to: temporary + "/generation_config.json")
            } else {
                // config.json: the base's, with the new dtype and without a quantization config.
                var config = try JSONValue.parse(contentsOf: modelPath + "/config.json").objectValue ?? []
                config.removeAll { ["quantization_config", "torch_dtype", "dtype"].contains($0.0) }
                config.append(("dtype", .string(storage.rawValue)))
                try AtomicFile.write(Array((JSONValue.object(config).compactText + "\n").utf8), to: temporary + "/config.json")
            }
            for name in ["generation_config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
                         "chat_template.jinja", "chat_template.json", "tokenizer.model", "vocab.json", "merges.txt"]
            where source.gguf == nil && fm.fileExists(atPath: modelPath + "/" + name) {
                try fm.copyItem(atPath: modelPath + "/" + name, toPath: temporary + "/" + name)
            }
            try AtomicFile.write(Array(modelCard(base: model, storage: storage).utf8), to: temporary + "/README.md")
            if fm.fileExists(atPath: out) {
                let old = out + ".old-\(getpid())"
                try fm.moveItem(atPath: out, toPath: old)
                try fm.moveItem(atPath: temporary, toPath: out)
                try? fm.removeItem(atPath: old)
            } else {
                try fm.moveItem(atPath: temporary, toPath: out)
            }
        } catch {
            try? fm.removeItem(atPath: temporary)
            throw error
        }
        CLI.log("merged \(adapter) (LoRA r \(lora.configuration.r) on \(lora.moduleNames.count) modules) into \(model); wrote \(out) (\(tensors.count) tensors, \(storage.rawValue))")
    }

    /// A Hugging Face model card: metadata header, and the training recipe and final metrics when
    /// the adapter folder is a Finch run folder (config.json, metrics.jsonl).
    func modelCard(base: String, storage: FloatStorageType) -> String {
        var lines = ["---", "base_model: \(base)", "library_name: transformers", "tags:", "- finch", "- lora", "- merged"]
        let run = try? JSONValue.parse(contentsOf: adapter + "/config.json")
        if let dataset = run?["dataset"]?.stringValue { lines += ["datasets:", "- \(dataset)"] }
        lines += ["---", "", "# \((out as NSString).lastPathComponent)", "",
                  "A LoRA adapter merged into `\(base)` with Finch (`finch merge`), weights in \(storage.rawValue).", ""]
        if let run, let members = run.objectValue {
            lines += ["## Training recipe", "", "| key | value |", "|---|---|"]
            lines += members.filter { !$0.1.isNull }.map { "| \($0.0) | \($0.1.stringValue ?? $0.1.compactText) |" }
            lines.append("")
        }
        if let text = try? String(contentsOfFile: adapter + "/metrics.jsonl", encoding: .utf8),
           let last = text.split(separator: "\n").last(where: { $0.contains("\"loss\"") }),
           let record = try? JSONValue.parse(String(last), path: "metrics.jsonl"), let members = record.objectValue {
            lines += ["## Final logged metrics", "", "| metric | value |", "|---|---|"]
            lines += members.map { "| \($0.0) | \($0.1.compactText) |" }
            lines.append("")
        }
        return lines.joined(separator: "\n")
    }
}
