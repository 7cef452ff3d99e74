import FinchCore
import FinchFormats

extension CausalLM {
    /// Every parameter under its Hugging Face name (PyTorch's `named_parameters()` order; a tied
    /// lm_head is not repeated), dequantized to Float32 and stored as `dtype`: F32, or F16/BF16
    /// rounded to nearest even as torch's `.to(dtype)` does. What `finch merge` writes.
    public func huggingFaceTensors(dtype: FloatStorageType) throws -> [SafeTensorsWriter.Entry] {
        try fullParameterEntries(dequantizing: true).map { entry in
            let count = entry.shape.reduce(1, *)
            var values = [Float](repeating: 0, count: count)
            values.withUnsafeMutableBufferPointer { entry.copy($0.baseAddress!) }
            switch dtype {
            case .float32:
                return SafeTensorsWriter.Entry(name: entry.name, shape: entry.shape, float32: values)
            case .float16, .bfloat16:
                let halves = values.map { dtype == .float16 ? HalfPrecision.half(from: $0) : HalfPrecision.bfloat16(from: $0) }
                return SafeTensorsWriter.Entry(name: entry.name, dtype: dtype == .float16 ? .f16 : .bf16, shape: entry.shape,
                                               bytes: halves.withUnsafeBytes { Array($0) })
            }
        }
    }
}
