import FinchCore
import FinchFormats

/// Pre-quantized bitsandbytes checkpoints (transformers `save_pretrained` of a model loaded with
/// `BitsAndBytesConfig(load_in_4bit=…)` or `load_in_8bit`): the quantized linear weights are
/// wrapped as stored — packed 4-bit codes and their scales, or int8 rows and `SCB` — in the mapped
/// file, never requantized or expanded (`ModelSource.bitsAndBytesWeight`). Embeddings, lm_head,
/// norms and biases are not quantized by bitsandbytes and load as usual.
extension WeightLoader {
    /// The bitsandbytes-quantized weight `name` as a `[out, in]` linear weight, or nil when the
    /// checkpoint stores it unquantized.
    /// - Throws: `ModelError` naming the file and tensor for invalid or unsupported state, a shape
    ///   other than `[out, in]`, or a `quantization_config` method Finch cannot load.
    func bitsAndBytesLinear(_ name: String, out: Int, in inFeatures: Int) throws -> LinearWeight? {
        if case .unsupported(let method) = source.quantization {
            throw ModelError(source.path + "/config.json",
                             "quantization_config.quant_method '\(method)' is not supported; Finch loads unquantized and bitsandbytes (4-bit, 8-bit) checkpoints")
        }
        let stored: BitsAndBytesWeight?
        do { stored = try source.bitsAndBytesWeight(name) } catch let e as FormatError { throw ModelError(e.path, e.reason) }
        guard let stored else { return nil }
        guard stored.shape == [out, inFeatures] else {
            throw ModelError(source.filePath(of: name), "tensor '\(name)' is a bitsandbytes weight of shape \(stored.shape), expected [\(out), \(inFeatures)]")
        }
        switch stored {
        case .fourBit(let q): return LinearWeight(quantized: q)
        case .int8Rows(let q): return LinearWeight(int8Rows: q)
        }
    }
}
