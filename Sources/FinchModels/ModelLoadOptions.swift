import FinchCore

/// How the frozen base's linear layers are stored after loading (the `quantization` setting).
///
/// Follows transformers + bitsandbytes (`BitsAndBytesConfig`): the linear layers inside the decoder
/// blocks (q/k/v/o and the MLP; Phi: q/k/v/`dense`/`fc1`/`fc2`) are quantized; what bitsandbytes
/// leaves alone — the token embedding, `lm_head` (transformers' `modules_to_not_convert`), norms
/// and biases — is not (see ``ModelLoadOptions/unquantizedStorage``).
public enum BaseQuantization: String, Sendable, CaseIterable, Codable {
    /// Keep each weight as the source stores it: F32, F16, BF16 or GGUF blocks (Q4_1, Q8_0, …).
    case none
    /// bitsandbytes NF4, blocksize 64 (`load_in_4bit`, `bnb_4bit_quant_type="nf4"`): QLoRA's base.
    case nf4
    /// bitsandbytes FP4, blocksize 64 (`bnb_4bit_quant_type="fp4"`).
    case fp4
    /// bitsandbytes LLM.int8 weights (`load_in_8bit`): row-wise absmax int8 (see `Int8RowQuantized`).
    case int8

    /// The 4-bit type, for `nf4`/`fp4`.
    public var fourBitType: FourBitType? {
        switch self {
        case .nf4: .nf4
        case .fp4: .fp4
        case .none, .int8: nil
        }
    }
}

/// A float storage type for weights that stay unquantized (transformers' `torch_dtype`).
public enum FloatStorageType: String, Sendable, CaseIterable, Codable {
    case float32, float16, bfloat16
}

/// Settings for `CausalLM(source:options:)`.
public struct ModelLoadOptions: Sendable, Equatable {
    /// Storage of the decoder blocks' linear layers (default `.none`: as stored in the source).
    public var quantization: BaseQuantization = .none
    /// Double quantization of the 4-bit block scales (`bnb_4bit_use_double_quant`, default true).
    public var doubleQuantization = true
    /// The storage of every weight matrix that is not quantized — the token embedding and an untied
    /// `lm_head` always, the blocks' linear layers too when `quantization` is `.none` — like
    /// transformers' `torch_dtype`. nil keeps the source's storage (a GGUF Q8_0 embedding stays
    /// Q8_0). `.float16`/`.bfloat16` halve an F32 source's embedding memory (Phi-2: 2 × 51200 × 2560
    /// values, 1 GB in F32), at the cost of rounding as `.to(dtype)` does; `.float32` expands a GGUF
    /// model (block-quantized tensors are dequantized bit-exactly first).
    public var unquantizedStorage: FloatStorageType?
    /// Decode arithmetic of GGUF block-quantized weights (see `CausalLM.init(source:quantizedActivations:)`).
    public var quantizedActivations = false
    /// Multiply block-quantized weights as llama.cpp's CPU backend does (`LinearWeight.Arithmetic.ggml`),
    /// to compare generations with it token for token; overrides `quantizedActivations`.
    public var llamaCppArithmetic = false
    /// The torch intra-op thread count whose reduction order the 4-bit double quantization's mean
    /// offset reproduces (`Quantized4Bit.init(quantizing:…torchThreads:)`); matters only for
    /// weights of more than 2,097,152 elements. 1 is the order of a single-threaded torch.
    public var torchThreads = 1

    public init(quantization: BaseQuantization = .none, doubleQuantization: Bool = true,
                unquantizedStorage: FloatStorageType? = nil, quantizedActivations: Bool = false) {
        self.quantization = quantization
        self.doubleQuantization = doubleQuantization
        self.unquantizedStorage = unquantizedStorage
        self.quantizedActivations = quantizedActivations
    }
}
