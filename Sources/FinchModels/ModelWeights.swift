import FinchCore
import FinchFormats

/// Turns `ModelSource` tensors into the forms the layers use: linear weights stay in their stored
/// type (memory-mapped, never expanded to Float32), small vectors (norms, biases) become Float32.
struct WeightLoader {
    let source: ModelSource
    /// How block-quantized weights multiply activations in decode (see `LinearWeight.Arithmetic`).
    var arithmetic: LinearWeight.Arithmetic = .float32
    /// Quantization of the blocks' linear layers and storage of the embedding / lm_head.
    var options = ModelLoadOptions()
    /// Runs load-time quantization.
    var pool: ThreadPool = .serial
    /// What loading changed about the stored weights, for logs and `finch inspect`.
    let notes = LoadNotes()

    func has(_ name: String) -> Bool { source.tensor(name) != nil }

    func vector(_ name: String, count: Int) throws -> ParameterVector {
        ParameterVector(try floats(name, count: count))
    }

    func optionalVector(_ name: String, count: Int) throws -> ParameterVector? {
        has(name) ? try vector(name, count: count) : nil
    }

    private func floats(_ name: String, count: Int) throws -> [Float] {
        guard let tensor = source.tensor(name) else { throw ModelError(source.path, "missing tensor '\(name)'") }
        guard tensor.elementCount == count else {
            throw ModelError(source.path, "tensor '\(name)' has \(tensor.elementCount) elements, expected \(count)")
        }
        do { return try source.float32(name) } catch let e as FormatError { throw ModelError(e.path, e.reason) }
    }

    /// The linear module `module` (`<module>.weight`, `[out, in]`, and `<module>.bias` if the file
    /// has one).
    /// A decoder block's linear layer: quantized when `options.quantization` says so.
    func linear(_ module: String, out: Int, in inFeatures: Int) throws -> Linear {
        let name = module + ".weight"
        // A pre-quantized bitsandbytes checkpoint is used as stored, never requantized.
        if var stored = try bitsAndBytesLinear(name, out: out, in: inFeatures) {
            stored.arithmetic = arithmetic
            return Linear(weight: stored, bias: try optionalVector(module + ".bias", count: out))
        }
        let weight: LinearWeight = switch options.quantization {
        case .none: try unquantizedWeight(name, out: out, in: inFeatures)
        case .nf4, .fp4, .int8: try quantizedWeight(name, out: out, in: inFeatures)
        }
        return Linear(weight: weight, bias: try optionalVector(module + ".bias", count: out))
    }

    /// A [out, in] weight in its stored form.
    func weight(_ name: String, out: Int, in inFeatures: Int) throws -> LinearWeight {
        var weight = try bitsAndBytesLinear(name, out: out, in: inFeatures) ?? storedLinear(name, out: out, in: inFeatures)
        weight.arithmetic = arithmetic
        return weight
    }

    /// A weight that is not quantized (the embedding and `lm_head` always, block linears with
    /// quantization `.none`): in the stored form, or converted to `options.unquantizedStorage`.
    func unquantizedWeight(_ name: String, out: Int, in inFeatures: Int) throws -> LinearWeight {
        guard let target = options.unquantizedStorage, let tensor = source.tensor(name) else {
            return try weight(name, out: out, in: inFeatures)
        }
        let current: FloatStorageType? = switch tensor.storage {
        case .safetensors(.f32), .ggml(.f32): .float32
        case .safetensors(.f16), .ggml(.f16): .float16
        case .safetensors(.bf16), .ggml(.bf16): .bfloat16
        default: nil
        }
        if current == target { return try weight(name, out: out, in: inFeatures) }
        try checkShape(tensor, out: out, in: inFeatures)
        let values = try floats(name, count: out * inFeatures)
        notes.add("'\(name)' converted from \(tensor.storage.name) to \(target.rawValue)")
        switch target {
        case .float32:
            return LinearWeight(outFeatures: out, inFeatures: inFeatures, float32: values)
        case .float16, .bfloat16:
            // Round to nearest even, as torch's `.to(dtype)` does.
            let box = ByteBox(count: values.count * 2)
            let halves = box.storage.bindMemory(to: UInt16.self, capacity: values.count)
            for i in values.indices {
                halves[i] = target == .float16 ? HalfPrecision.half(from: values[i]) : HalfPrecision.bfloat16(from: values[i])
            }
            let storage: LinearWeight.Storage = target == .float16 ? .float16(box.pointer) : .bfloat16(box.pointer)
            return LinearWeight(outFeatures: out, inFeatures: inFeatures, storage: storage, owner: box)
        }
    }

    /// A weight quantized at load as bitsandbytes does (`options.quantization`), from any float or
    /// GGUF storage. Block-quantized GGUF weights are dequantized to Float32 first (noted).
    private func quantizedWeight(_ name: String, out: Int, in inFeatures: Int) throws -> LinearWeight {
        guard let tensor = source.tensor(name) else { throw ModelError(source.path, "missing tensor '\(name)'") }
        try checkShape(tensor, out: out, in: inFeatures)
        let method = options.quantization
        switch tensor.storage {
        case .safetensors(.f32), .safetensors(.f16), .safetensors(.bf16), .ggml(.f32), .ggml(.f16), .ggml(.bf16): break
        default: notes.add("'\(name)' dequantized from \(tensor.storage.name) to F32, then quantized to \(method.rawValue)")
        }
        // A mapped, aligned F32 tensor is quantized in place; anything else through a Float32 copy
        // (F16/BF16 widen exactly, so the result equals bitsandbytes on the Float32 tensor).
        let values: [Float]?
        let mapped: UnsafeBufferPointer<Float>?
        if case .safetensors(.f32) = tensor.storage, let bytes = try? source.packedData(tensor),
           let base = bytes.baseAddress, Int(bitPattern: base) % 4 == 0 {
            mapped = UnsafeBufferPointer(start: base.assumingMemoryBound(to: Float.self), count: out * inFeatures)
            values = nil
        } else {
            mapped = nil
            values = try floats(name, count: out * inFeatures)
        }
        func quantize(_ buffer: UnsafeBufferPointer<Float>) throws -> LinearWeight {
            do {
                switch method {
                case .nf4, .fp4:
                    let q = try Quantized4Bit(quantizing: buffer, shape: [out, inFeatures], type: method.fourBitType!,
                                              doubleQuantization: options.doubleQuantization, pool: pool,
                                              torchThreads: options.torchThreads)
                    return LinearWeight(quantized: q)
                case .int8:
                    // bitsandbytes' Int8Params: rounded to float16 first, then row-wise absmax int8.
                    return try LinearWeight(outFeatures: out, inFeatures: inFeatures, quantizingInt8: buffer, pool: pool)
                case .none:
                    preconditionFailure("quantizedWeight called without a quantization")
                }
            } catch let e as QuantizationError {
                throw ModelError(source.path, "cannot quantize '\(name)' to \(method.rawValue): \(e)")
            }
        }
        let weight = try withExtendedLifetime(source) {
            if let mapped { return try quantize(mapped) }
            return try values!.withUnsafeBufferPointer { try quantize($0) }
        }
        source.releasePages(of: tensor)
        return weight
    }

    private func checkShape(_ tensor: ModelTensor, out: Int, in inFeatures: Int) throws {
        guard tensor.shape == [out, inFeatures] else {
            throw ModelError(source.path, "tensor '\(tensor.name)' has shape \(tensor.shape), expected [\(out), \(inFeatures)]")
        }
    }

    private func storedLinear(_ name: String, out: Int, in inFeatures: Int) throws -> LinearWeight {
        guard let tensor = source.tensor(name) else { throw ModelError(source.path, "missing tensor '\(name)'") }
        try checkShape(tensor, out: out, in: inFeatures)
        let packed: UnsafeRawBufferPointer
        do { packed = try source.packedData(tensor) } catch let e as FormatError { throw ModelError(e.path, e.reason) }
        guard let base = packed.baseAddress else { throw ModelError(source.path, "tensor '\(name)' is empty") }
        switch tensor.storage {
        case .ggml(let type):
            guard type.canDequantize else {
                throw ModelError(source.path, "tensor '\(name)' is stored as \(type.name), which Finch's linear layers do not run yet")
            }
            if let heads = tensor.permutedHeads {
                // llama.cpp's Q/K row order (formats.md §4.8): move whole packed rows back to HF order.
                let rowBytes = packed.count / out
                let rows = RoPEPermutation.ggufToHuggingFace(Array(packed), heads: heads, rows: out, rowLength: rowBytes)
                let box = ByteBox(rows)
                return LinearWeight(outFeatures: out, inFeatures: inFeatures, storage: .ggml(type, box.pointer), owner: box)
            }
            return LinearWeight(outFeatures: out, inFeatures: inFeatures, storage: .ggml(type, base), owner: source)
        case .safetensors(let dtype):
            switch dtype {
            case .f32: return LinearWeight(outFeatures: out, inFeatures: inFeatures, storage: .float32(base.assumingMemoryBound(to: Float.self)), owner: source)
            case .f16: return LinearWeight(outFeatures: out, inFeatures: inFeatures, storage: .float16(base), owner: source)
            case .bf16: return LinearWeight(outFeatures: out, inFeatures: inFeatures, storage: .bfloat16(base), owner: source)
            default:
                let values: [Float]
                do { values = try source.float32(name) } catch let e as FormatError { throw ModelError(e.path, e.reason) }
                return LinearWeight(outFeatures: out, inFeatures: inFeatures, float32: values)
            }
        }
    }
}

/// Owns a copy of bytes for a weight that had to be rearranged.
final class ByteBox: @unchecked Sendable {
    let storage: UnsafeMutableRawPointer
    var pointer: UnsafeRawPointer { UnsafeRawPointer(storage) }

    init(_ bytes: [UInt8]) {
        storage = UnsafeMutableRawPointer.allocate(byteCount: max(bytes.count, 1), alignment: 64)
        bytes.withUnsafeBytes { storage.copyMemory(from: $0.baseAddress!, byteCount: bytes.count) }
    }

    /// `count` uninitialized bytes.
    init(count: Int) {
        storage = UnsafeMutableRawPointer.allocate(byteCount: max(count, 1), alignment: 64)
    }

    deinit { storage.deallocate() }
}

/// Messages about what loading changed (conversions, dequantizations), in load order.
final class LoadNotes: @unchecked Sendable {
    // @unchecked: written only during a load, on one thread.
    private(set) var messages: [String] = []
    func add(_ message: String) { messages.append(message) }
}
