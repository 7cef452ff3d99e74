import FinchCore

/// How a tensor's elements are stored in its file.
public enum TensorStorage: Hashable, Sendable, Comparable {
    case safetensors(SafeTensorsDType)
    case ggml(GGMLType)

    /// The name a user knows the type by: `F32`, `BF16`, `Q4_1`, …
    public var name: String {
        switch self {
        case .safetensors(let d): d.rawValue
        case .ggml(let t): t.name
        }
    }

    public static func < (a: TensorStorage, b: TensorStorage) -> Bool { a.name < b.name }
}

/// One weight tensor of a model, under its Hugging Face name and shape whatever the file format.
public struct ModelTensor: Sendable, Equatable {
    /// HF name (`model.layers.0.self_attn.q_proj.weight`).
    public var name: String
    /// The name inside the file (`blk.0.attn_q.weight` for GGUF).
    public var fileName: String
    /// Row-major shape (`[out, in]` for a Linear weight).
    public var shape: [Int]
    public var storage: TensorStorage
    /// Bytes in the file.
    public var byteCount: Int
    /// For llama-architecture GGUF `attn_q`/`attn_k`: the head count whose RoPE row permutation
    /// `float32(…)` undoes (formats.md §4.8). Nil when rows are already in HF order.
    public var permutedHeads: Int?

    public var elementCount: Int { shape.reduce(1, *) }
}

/// Where the tokenizer of a model comes from.
public enum TokenizerSource: Sendable {
    /// Hugging Face files in a model folder (any may be absent).
    case huggingFace(tokenizerJSON: String?, tokenizerConfig: String?, chatTemplate: String?, specialTokensMap: String?)
    /// The `tokenizer.*` metadata of a GGUF file.
    case gguf
}

/// A model checkpoint opened for reading: an HF folder (safetensors, single or sharded) or a GGUF
/// file. The rest of Finch sees only HF tensor names and layouts, whatever the source.
public final class ModelSource: Sendable {
    public enum Format: String, Sendable, Codable { case huggingFace = "hf-folder", gguf }

    public let path: String
    public let format: Format
    public let configuration: ModelConfiguration
    /// config.json's `quantization_config` (bitsandbytes 4-bit/8-bit checkpoints), nil for an
    /// unquantized folder or a GGUF file. The quantized weights' state tensors are listed in
    /// `tensors` as stored (see `bitsAndBytesWeight(_:)`).
    public let quantization: CheckpointQuantization?
    /// Tensors in file order, under HF names.
    public let tensors: [ModelTensor]
    public let tokenizer: TokenizerSource
    /// `generation_config.json` of an HF folder, if present.
    public let generationConfigPath: String?
    /// The GGUF file (GGUF sources only), for tokenizer metadata.
    public let gguf: GGUFFile?
    private let safetensors: ShardedSafeTensors?
    private let index: [String: Int]

    /// Opens `path`: a `.gguf` file or a folder with `config.json`.
    public init(path: String) throws {
        self.path = path
        switch FileSystem.kind(path) {
        case .missing:
            throw FormatError(path, "no such file or directory")
        case .other:
            throw FormatError(path, "not a regular file or directory")
        case .directory:
            format = .huggingFace
            let configPath = FileSystem.join(path, "config.json")
            guard FileSystem.kind(configPath) == .file else {
                throw FormatError(path, "directory has no config.json; a Hugging Face model folder needs config.json and model.safetensors (or a .gguf file)")
            }
            let config = try JSONValue.parse(contentsOf: configPath)
            configuration = try ModelConfiguration(huggingFaceConfig: config, path: configPath)
            quantization = try CheckpointQuantization(huggingFaceConfig: config, path: configPath)
            let weights = try ShardedSafeTensors(folder: path)
            safetensors = weights
            gguf = nil
            tensors = weights.tensors.map { info in
                ModelTensor(name: info.name, fileName: info.name, shape: info.shape,
                            storage: .safetensors(info.dtype), byteCount: info.dataRange.count, permutedHeads: nil)
            }
            func optional(_ name: String) -> String? {
                let p = FileSystem.join(path, name)
                return FileSystem.kind(p) == .file ? p : nil
            }
            tokenizer = .huggingFace(tokenizerJSON: optional("tokenizer.json"), tokenizerConfig: optional("tokenizer_config.json"),
                                     chatTemplate: optional("chat_template.jinja"), specialTokensMap: optional("special_tokens_map.json"))
            generationConfigPath = optional("generation_config.json")
        case .file:
            format = .gguf
            let file = try GGUFFile(path: path)
            gguf = file
            safetensors = nil
            let hasOutput = file.tensor("output.weight") != nil
            let config = try ModelConfiguration(gguf: file, hasOutputTensor: hasOutput)
            configuration = config
            quantization = nil
            let map = TensorNameMap.forArchitecture(config.architecture)
            var mapped: [ModelTensor] = []
            for info in file.tensors where !TensorNameMap.ggufOnly.contains(info.name) {
                guard let hfName = map.huggingFaceName(forGGUF: info.name) else {
                    if info.name.hasSuffix("attn_qkv.weight") || info.name.hasSuffix("attn_qkv.bias") {
                        throw FormatError(path, "tensor '\(info.name)': fused QKV tensors (older phi2 conversions) are not supported yet; re-convert with separate attn_q/attn_k/attn_v")
                    }
                    throw FormatError(path, "tensor '\(info.name)' has no known Hugging Face name for architecture \(config.sourceModelType)")
                }
                var permuted: Int?
                if config.architecture == .llama {
                    if info.name.contains(".attn_q.") { permuted = config.numAttentionHeads }
                    if info.name.contains(".attn_k.") { permuted = config.numKeyValueHeads }
                }
                if let heads = permuted {
                    let rows = info.shape.first ?? 0
                    guard rows % (2 * heads) == 0 else {
                        throw FormatError(path, "tensor '\(info.name)': \(rows) rows cannot be split into \(heads) heads of even size for the RoPE permutation")
                    }
                }
                mapped.append(ModelTensor(name: hfName, fileName: info.name, shape: info.shape, storage: .ggml(info.type),
                                          byteCount: info.byteCount, permutedHeads: permuted))
            }
            tensors = mapped
            tokenizer = .gguf
            generationConfigPath = nil
        }
        var index: [String: Int] = [:]
        for (i, t) in tensors.enumerated() {
            guard index.updateValue(i, forKey: t.name) == nil else {
                throw FormatError(path, "two tensors map to the name '\(t.name)'")
            }
        }
        self.index = index
    }

    /// The tensor named `name` (HF name), or nil.
    public func tensor(_ name: String) -> ModelTensor? { index[name].map { tensors[$0] } }

    /// The file that stores tensor `name` (HF name): its safetensors shard or the GGUF file; the
    /// folder when no tensor has that name. For error messages.
    public func filePath(of name: String) -> String {
        guard let tensor = tensor(name) else { return path }
        return safetensors?.path(of: tensor.fileName) ?? path
    }

    /// The packed bytes of a tensor as stored in the file (GGUF blocks keep the file's row order;
    /// see `ModelTensor.permutedHeads`).
    public func packedData(_ tensor: ModelTensor) throws -> UnsafeRawBufferPointer {
        if let gguf, let info = gguf.tensor(tensor.fileName) { return gguf.data(info) }
        if let safetensors { return try safetensors.data(tensor.fileName) }
        throw FormatError(path, "no tensor named '\(tensor.fileName)'")
    }

    /// Releases the resident pages of a tensor's mapped bytes (`MappedFile.releasePages`), once it
    /// has been converted and its stored bytes are no longer used.
    public func releasePages(of tensor: ModelTensor) {
        guard let bytes = try? packedData(tensor) else { return }
        MappedFile.releasePages(bytes)
    }

    /// Tensor `name` as Float32 in HF layout: dequantized (bit-exact with `gguf.dequantize`) or
    /// converted, with the llama Q/K row permutation undone.
    public func float32(_ name: String) throws -> [Float] {
        guard let tensor = tensor(name) else { throw FormatError(path, "no tensor named '\(name)'") }
        var values: [Float]
        switch tensor.storage {
        case .ggml:
            guard let gguf, let info = gguf.tensor(tensor.fileName) else { throw FormatError(path, "no tensor named '\(tensor.fileName)'") }
            values = try gguf.float32(info)
        case .safetensors:
            guard let safetensors else { throw FormatError(path, "no tensor named '\(tensor.fileName)'") }
            values = try safetensors.float32(tensor.fileName)
        }
        if let heads = tensor.permutedHeads {
            values = RoPEPermutation.ggufToHuggingFace(values, heads: heads, rows: tensor.shape[0], rowLength: tensor.elementCount / max(tensor.shape[0], 1))
        }
        return values
    }
}

/// llama.cpp's Q/K row order for llama-architecture RoPE (formats.md §4.8).
public enum RoPEPermutation {
    /// Undo the conversion permutation: HF row `h·hd + j·(hd/2) + i` = GGUF row `h·hd + 2i + j`.
    public static func ggufToHuggingFace<T>(_ values: [T], heads: Int, rows: Int, rowLength: Int) -> [T] {
        permute(values, heads: heads, rows: rows, rowLength: rowLength) { headDim, i, j in (j * headDim / 2 + i, 2 * i + j) }
    }

    /// Apply the conversion permutation (for export): GGUF row `h·hd + 2i + j` = HF row `h·hd + j·(hd/2) + i`.
    public static func huggingFaceToGGUF<T>(_ values: [T], heads: Int, rows: Int, rowLength: Int) -> [T] {
        permute(values, heads: heads, rows: rows, rowLength: rowLength) { headDim, i, j in (2 * i + j, j * headDim / 2 + i) }
    }

    /// Moves whole rows: for each head and (i, j), destination row ← source row as given by `map`.
    private static func permute<T>(_ values: [T], heads: Int, rows: Int, rowLength: Int, map: (Int, Int, Int) -> (Int, Int)) -> [T] {
        precondition(values.count == rows * rowLength && rows % (2 * heads) == 0)
        let headDim = rows / heads
        var out = values
        values.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                for h in 0..<heads {
                    for i in 0..<(headDim / 2) {
                        for j in 0..<2 {
                            let (to, from) = map(headDim, i, j)
                            let d = (h * headDim + to) * rowLength, s = (h * headDim + from) * rowLength
                            for k in 0..<rowLength { dst[d + k] = src[s + k] }
                        }
                    }
                }
            }
        }
        return out
    }
}
