import FinchCore
import FinchFormats

/// Turns `ModelSource` tensors into the forms the layers use: linear weights stay in their stored
/// type (memory-mapped, never expanded to Float32), small vectors (norms, biases) become Float32.
struct WeightLoader {
    let source: ModelSource
    /// How block-quantized weights multiply activations in decode (see `LinearWeight.Arithmetic`).
    var arithmetic: LinearWeight.Arithmetic = .float32

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
    func linear(_ module: String, out: Int, in inFeatures: Int) throws -> Linear {
        Linear(weight: try weight(module + ".weight", out: out, in: inFeatures),
               bias: try optionalVector(module + ".bias", count: out))
    }

    /// A [out, in] weight.
    func weight(_ name: String, out: Int, in inFeatures: Int) throws -> LinearWeight {
        var weight = try bitsAndBytesLinear(name, out: out, in: inFeatures) ?? storedLinear(name, out: out, in: inFeatures)
        weight.arithmetic = arithmetic
        return weight
    }

    private func storedLinear(_ name: String, out: Int, in inFeatures: Int) throws -> LinearWeight {
        guard let tensor = source.tensor(name) else { throw ModelError(source.path, "missing tensor '\(name)'") }
        guard tensor.shape == [out, inFeatures] else {
            throw ModelError(source.path, "tensor '\(name)' has shape \(tensor.shape), expected [\(out), \(inFeatures)]")
        }
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

    deinit { storage.deallocate() }
}
