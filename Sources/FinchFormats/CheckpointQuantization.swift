import FinchCore

/// How an HF checkpoint's linear weights were quantized before saving: config.json's
/// `quantization_config` (transformers `BitsAndBytesConfig` and others; reference/formats.md §1.1).
public enum CheckpointQuantization: Sendable, Equatable {
    /// bitsandbytes 4-bit (`load_in_4bit`): NF4 or FP4 blocks of 64, the block scales plain or
    /// double-quantized. `computeDType` is what bitsandbytes would multiply in; Finch always
    /// computes in Float32.
    case bitsAndBytes4Bit(type: FourBitType, doubleQuantization: Bool, computeDType: String)
    /// bitsandbytes LLM.int8 (`load_in_8bit`): int8 rows with one absmax each. `threshold` is
    /// `llm_int8_threshold`, the outlier threshold of bitsandbytes' inference path, which Finch does
    /// not reproduce (see `Int8RowQuantized`). (With `llm_int8_has_fp16_weight` the weights are saved
    /// in float16 without `SCB` and load as float16.)
    case bitsAndBytes8Bit(threshold: Double)
    /// Another `quant_method` (`gptq`, `awq`, `fp8`, …), which Finch cannot load.
    case unsupported(method: String)

    /// Reads `quantization_config` of a config.json; nil when there is none.
    /// - Throws: `FormatError` naming the field when a bitsandbytes configuration is malformed or
    ///   asks for something Finch does not support (4-bit storage other than uint8).
    public init?(huggingFaceConfig json: JSONValue, path: String) throws {
        guard let config = json["quantization_config"], !config.isNull else { return nil }
        func bad(_ what: String) -> FormatError { FormatError(path, "quantization_config: \(what)") }
        guard case .object = config else { throw bad("not a JSON object") }
        guard let method = config["quant_method"]?.stringValue else { throw bad("missing string field 'quant_method'") }
        guard method == "bitsandbytes" else {
            self = .unsupported(method: method)
            return
        }
        func flag(_ key: String) throws -> Bool {
            guard let value = config[key], !value.isNull else { return false }
            guard let b = value.boolValue else { throw bad("field '\(key)' must be true or false") }
            return b
        }
        func string(_ key: String, default fallback: String) throws -> String {
            guard let value = config[key], !value.isNull else { return fallback }
            guard let s = value.stringValue else { throw bad("field '\(key)' must be a string") }
            return s
        }
        switch (try flag("load_in_4bit"), try flag("load_in_8bit")) {
        case (true, true):
            throw bad("both 'load_in_4bit' and 'load_in_8bit' are true")
        case (false, false):
            throw bad("neither 'load_in_4bit' nor 'load_in_8bit' is true")
        case (true, false):
            // transformers' defaults: fp4, no double quantization, float32 compute, uint8 storage.
            let typeName = try string("bnb_4bit_quant_type", default: "fp4")
            guard let type = FourBitType(rawValue: typeName) else {
                throw bad("bnb_4bit_quant_type '\(typeName)' is not one of nf4, fp4")
            }
            let storage = try string("bnb_4bit_quant_storage", default: "uint8")
            guard storage == "uint8" else {
                throw bad("bnb_4bit_quant_storage '\(storage)' is not supported (Finch reads uint8-packed 4-bit weights)")
            }
            let compute = try string("bnb_4bit_compute_dtype", default: "float32")
            guard ["float32", "bfloat16", "float16"].contains(compute) else {
                throw bad("bnb_4bit_compute_dtype '\(compute)' is not one of float32, bfloat16, float16")
            }
            self = .bitsAndBytes4Bit(type: type, doubleQuantization: try flag("bnb_4bit_use_double_quant"), computeDType: compute)
        case (false, true):
            var threshold = 6.0
            if let value = config["llm_int8_threshold"], !value.isNull {
                guard let t = value.doubleValue else { throw bad("field 'llm_int8_threshold' must be a number") }
                threshold = t
            }
            self = .bitsAndBytes8Bit(threshold: threshold)
        }
    }

    /// One line for `finch inspect`, e.g. `bitsandbytes NF4, double-quantized scales (compute dtype float32)`.
    public var summary: String {
        switch self {
        case let .bitsAndBytes4Bit(type, double, compute):
            "bitsandbytes \(type.rawValue.uppercased())\(double ? ", double-quantized scales" : "") (compute dtype \(compute); Finch computes in float32)"
        case let .bitsAndBytes8Bit(threshold):
            "bitsandbytes LLM.int8 rows (llm_int8_threshold \(threshold); Finch computes in float32 without outlier decomposition)"
        case let .unsupported(method):
            "\(method) (not supported by Finch)"
        }
    }
}
