import FinchCore
import FinchFormats

/// What `finch export --format gguf --type …` writes: the file type and the ggml type of each tensor.
public enum GGUFExportType: String, Sendable, CaseIterable {
    case f32, f16, bf16, q8_0, q4_0, q4_1

    /// The type of the decoder blocks' matrices.
    public var matrixType: GGMLType {
        switch self {
        case .f32: .f32
        case .f16: .f16
        case .bf16: .bf16
        case .q8_0: .q8_0
        case .q4_0: .q4_0
        case .q4_1: .q4_1
        }
    }

    /// `general.file_type` (llama.cpp's `llama_ftype`: formats.md §4.3).
    public var fileType: UInt32 {
        switch self {
        case .f32: 0
        case .f16: 1
        case .q4_0: 2
        case .q4_1: 3
        case .q8_0: 7
        case .bf16: 32
        }
    }
}

extension CausalLM {
    /// The `general.architecture` llama.cpp knows this model by.
    public var ggufArchitecture: String {
        switch configuration.architecture {
        case .llama: "llama"
        case .qwen2: "qwen2"
        case .phi: "phi2"
        }
    }

    /// The architecture's hyperparameters as llama.cpp's converter (`convert_hf_to_gguf.py`) writes
    /// them (formats.md §4.4; for phi2 the LayerNorm epsilon and the partial rotary dimension).
    public func ggufHyperparameters() -> [(String, GGUFValue)] {
        let c = configuration, a = ggufArchitecture
        var keys: [(String, GGUFValue)] = [
            ("\(a).context_length", .uint32(UInt32(c.maxPositionEmbeddings))),
            ("\(a).embedding_length", .uint32(UInt32(c.hiddenSize))),
            ("\(a).block_count", .uint32(UInt32(c.numHiddenLayers))),
            ("\(a).feed_forward_length", .uint32(UInt32(c.intermediateSize))),
            ("\(a).attention.head_count", .uint32(UInt32(c.numAttentionHeads))),
            ("\(a).attention.head_count_kv", .uint32(UInt32(c.numKeyValueHeads))),
            ("\(a).rope.freq_base", .float32(Float(c.ropeTheta))),
        ]
        if c.architecture == .phi {
            keys.append(("\(a).attention.layer_norm_epsilon", .float32(Float(c.normEpsilon))))
            keys.append(("\(a).rope.dimension_count", .uint32(UInt32(c.rotaryDim))))
        } else {
            keys.append(("\(a).attention.layer_norm_rms_epsilon", .float32(Float(c.normEpsilon))))
            keys.append(("\(a).rope.dimension_count", .uint32(UInt32(c.headDim))))
        }
        if c.headDim * c.numAttentionHeads != c.hiddenSize {
            keys.append(("\(a).attention.key_length", .uint32(UInt32(c.headDim))))
            keys.append(("\(a).attention.value_length", .uint32(UInt32(c.headDim))))
        }
        keys.append(("\(a).vocab_size", .uint32(UInt32(c.vocabSize))))
        return keys
    }

    /// Every tensor under its GGUF name, in this model's parameter order, dequantized to Float32
    /// and re-encoded when the writer reaches it:
    /// - 1-D tensors (norms, biases) are F32, as llama.cpp's converter keeps them;
    /// - matrices are `type.matrixType`, except a matrix whose rows are not a whole number of
    ///   blocks, which falls back to F16 (the converter's fallback);
    /// - with q4_0/q4_1, `token_embd` and `output` are Q8_0, as in llama.cpp's own 4-bit files
    ///   (SmolLM2's Q4_1 GGUF has a Q8_0 `token_embd`), since they are the most sensitive matrices;
    /// - for the llama architecture the rows of q_proj and k_proj (and their biases) are permuted
    ///   into llama.cpp's adjacent-pair RoPE layout (formats.md §4.8); qwen2 and phi2 are not.
    /// A tied lm_head is not written, which llama.cpp reads as tied embeddings.
    /// - Throws: `ModelError` if a tensor has no GGUF name; the fill closures throw it for a weight
    ///   holding NaN or infinity, naming the tensor.
    public func ggufTensors(type: GGUFExportType) throws -> [GGUFWriter.Tensor] {
        let names = TensorNameMap.forArchitecture(configuration.architecture)
        let c = configuration
        let permute = c.architecture == .llama
        return try fullParameterEntries(dequantizing: true).map { entry in
            guard let name = names.ggufName(forHuggingFace: entry.name) else {
                throw ModelError(path, "tensor '\(entry.name)' has no GGUF name for \(ggufArchitecture)")
            }
            var tensorType: GGMLType = .f32
            if entry.shape.count == 2 {
                tensorType = type.matrixType
                if (type == .q4_0 || type == .q4_1), name == "token_embd.weight" || name == "output.weight" { tensorType = .q8_0 }
                if entry.shape[1] % tensorType.blockSize != 0 { tensorType = .f16 }
            }
            let heads: Int? = !permute ? nil
                : entry.name.hasSuffix("self_attn.q_proj.weight") || entry.name.hasSuffix("self_attn.q_proj.bias") ? c.numAttentionHeads
                : entry.name.hasSuffix("self_attn.k_proj.weight") || entry.name.hasSuffix("self_attn.k_proj.bias") ? c.numKeyValueHeads
                : nil
            let shape = entry.shape, copy = entry.copy, source = path
            return GGUFWriter.Tensor(name: name, dimensions: shape.reversed(), type: tensorType) { out in
                let count = shape.reduce(1, *)
                let rowLength = shape.count == 2 ? shape[1] : 1
                var values = [Float](repeating: 0, count: count)
                values.withUnsafeMutableBufferPointer { copy($0.baseAddress!) }
                if let bad = values.firstIndex(where: { !$0.isFinite }) {
                    throw ModelError(source, "tensor '\(entry.name)' holds \(values[bad]) at element \(bad); a GGUF file cannot be written from non-finite weights")
                }
                if let heads {
                    values = Self.ropePairPermutation(values, heads: heads, rowLength: rowLength)
                }
                values.withUnsafeBufferPointer { tensorType.quantize($0.baseAddress!, count: count, into: out.baseAddress!) }
            }
        }
    }

    /// HF → llama.cpp row order of q/k projections (formats.md §4.8): GGUF row `h·hd + 2i + j` is
    /// HF row `h·hd + j·(hd/2) + i`, for head h, i < hd/2, j ∈ {0, 1}; `rowLength` is 1 for a bias.
    static func ropePairPermutation(_ values: [Float], heads: Int, rowLength: Int) -> [Float] {
        let rows = values.count / rowLength, headDim = rows / heads, half = headDim / 2
        var out = values
        for h in 0..<heads {
            for i in 0..<half {
                for j in 0..<2 {
                    let to = (h * headDim + 2 * i + j) * rowLength, from = (h * headDim + j * half + i) * rowLength
                    for k in 0..<rowLength { out[to + k] = values[from + k] }
                }
            }
        }
        return out
    }
}
