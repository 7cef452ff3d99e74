import ArgumentParser
import FinchCore
import FinchFormats
import FinchModels
import FinchTokenizers
import Foundation

/// `finch export`: a model (optionally with a LoRA adapter merged in) written as a GGUF file that
/// llama.cpp, llama-cpp-python and Ollama load without conversion.
struct Export: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write a model, with a LoRA adapter merged in, as a GGUF file for llama.cpp and Ollama.",
        discussion: """
            MODEL is a Hugging Face folder (e.g. one `finch merge` wrote), a GGUF file or a known model \
            name; an adapter is given with --adapter or as MODEL+ADAPTER. The adapter is merged as \
            `finch merge` does (W + scaling·B·A in Float32 from dequantized weights), then every \
            matrix is re-encoded as --type with ggml's reference rounding: f32, f16, bf16, q8_0, \
            q4_0 or q4_1 (with q4_0/q4_1 the token embedding and output matrix are q8_0, as in \
            llama.cpp's own 4-bit files; norms and biases stay f32). Llama-family q/k rows are \
            permuted into llama.cpp's RoPE layout. From a GGUF base its tokenizer metadata and chat \
            template are copied as they are; from a folder they are built from tokenizer.json \
            (byte-level BPE). The file appears under its name only when complete.
            """)

    @Option(help: "The output format (gguf; for a Hugging Face folder use `finch merge`).")
    var format: String = "gguf"

    @Option(name: .customLong("type"), help: "Tensor type: f32, f16, bf16, q8_0, q4_0 or q4_1.")
    var type: String = "f16"

    @Option(help: ArgumentHelp("A LoRA adapter folder (PEFT format) to merge in first.", valueName: "path"))
    var adapter: String?

    @Flag(help: "Replace an existing output file.")
    var overwrite = false

    @Argument(help: "The model (HF folder, GGUF file or known name), or MODEL+ADAPTER.")
    var model: String

    @Argument(help: "The GGUF file to write.")
    var output: String

    func run() throws {
        try CLI.run { try export() }
    }

    /// MODEL+ADAPTER split at the last '+' when the whole argument is not itself a path.
    func modelAndAdapter() throws -> (String, String?) {
        if FileManager.default.fileExists(atPath: model) || KnownModel.named(model) != nil { return (model, adapter) }
        if let plus = model.lastIndex(of: "+") {
            let base = String(model[..<plus]), second = String(model[model.index(after: plus)...])
            guard adapter == nil else { throw FormatError(model, "give the adapter either as MODEL+ADAPTER or with --adapter, not both") }
            return (base, second)
        }
        return (model, adapter)
    }

    func export() throws {
        guard format == "gguf" else {
            throw FormatError(format, "--format must be gguf; `finch merge` writes a Hugging Face folder")
        }
        guard let exportType = GGUFExportType(rawValue: type) else {
            throw FormatError(type, "--type must be one of \(GGUFExportType.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        if FileManager.default.fileExists(atPath: output), !overwrite {
            throw FormatError(output, "exists; pass --overwrite to replace it")
        }
        let (modelArgument, adapterPath) = try modelAndAdapter()
        let source = try ModelSource(path: CLI.resolveModel(modelArgument))
        let pool = ThreadPool()
        var lm = try CausalLM(source: source, options: ModelLoadOptions(), pool: pool)
        if let adapterPath {
            let lora = try LoRAAdapter(peftFolder: adapterPath, name: "merged", model: lm)
            lm = try lm.mergingLoRA(lora, pool: pool)
            CLI.log("merged \(adapterPath) (LoRA r \(lora.configuration.r) on \(lora.moduleNames.count) modules)")
        }
        let metadata = try Self.metadata(model: lm, source: source, name: modelArgument, adapter: adapterPath, type: exportType)
        let tensors = try lm.ggufTensors(type: exportType)
        try GGUFWriter.write(metadata: metadata, tensors: tensors, to: output)
        var counts: [String: Int] = [:]
        for t in tensors { counts[t.type.name, default: 0] += 1 }
        let bytes = tensors.reduce(0) { $0 + $1.byteCount }
        CLI.log("wrote \(output): \(lm.ggufArchitecture), \(tensors.count) tensors (\(counts.sorted { $0.key < $1.key }.map { "\($0.value) \($0.key)" }.joined(separator: ", "))), \(String(format: "%.1f", Double(bytes) / 1e6)) MB of weights")
    }

    /// general.*, the architecture's hyperparameters and the tokenizer's metadata, in the order
    /// llama.cpp's converter writes them.
    static func metadata(model lm: CausalLM, source: ModelSource, name: String, adapter: String?,
                         type: GGUFExportType) throws -> [(String, GGUFValue)] {
        var metadata: [(String, GGUFValue)] = [
            ("general.architecture", .string(lm.ggufArchitecture)),
            ("general.type", .string("model")),
        ]
        let baseName = source.gguf?["general.name"]?.stringValue ?? (source.path as NSString).lastPathComponent
        metadata.append(("general.name", .string(adapter == nil ? baseName : baseName + " + " + (adapter! as NSString).lastPathComponent)))
        let regenerated: Set<String> = ["general.architecture", "general.type", "general.name", "general.file_type",
                                        "general.quantization_version", "general.alignment"]
        if let gguf = source.gguf {
            for key in gguf.metadataKeys where key.hasPrefix("general.") && !regenerated.contains(key) {
                if let value = gguf[key] { metadata.append((key, value)) }
            }
        }
        metadata += lm.ggufHyperparameters()
        metadata.append(("general.file_type", .uint32(type.fileType)))
        metadata.append(("general.quantization_version", .uint32(2)))
        if let gguf = source.gguf {
            // The base's tokenizer exactly as llama.cpp read it (model, pre-tokenizer, scores, ids).
            for key in gguf.metadataKeys where key.hasPrefix("tokenizer.") {
                if let value = gguf[key] { metadata.append((key, value)) }
            }
        } else {
            metadata += try Tokenizer(source: source).ggufMetadata(vocabularySize: lm.vocabularySize)
        }
        return metadata
    }
}
