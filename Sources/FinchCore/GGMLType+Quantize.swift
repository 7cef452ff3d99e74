/// Quantization of Float32 rows into ggml blocks, for GGUF export.
///
/// Each block follows ggml's reference quantizers (`quantize_row_q8_0_ref`, `quantize_row_q4_0_ref`,
/// `quantize_row_q4_1_ref` in ggml-quants.c), which the `gguf` Python package's `quants.py` also
/// reproduces bit for bit: the scale is computed in Float32, its reciprocal is 0 for a zero scale,
/// codes come from the unrounded Float32 scale, and only the stored scale (and Q4_1's minimum) is
/// rounded to f16. `../shared/reference/formats.md` §4.6 has the formulas.
extension GGMLType {
    /// Types `quantize` can write.
    public var canQuantize: Bool {
        switch self {
        case .f32, .f16, .bf16, .q8_0, .q4_0, .q4_1: true
        default: false
        }
    }

    /// Quantizes `count` Float32 values at `source` into this type at `destination`, which must
    /// hold `byteCount(elements: count)` bytes.
    ///
    /// - Precondition: `canQuantize` and `count` is a multiple of `blockSize` (callers choose a
    ///   float type for rows that are not, as llama.cpp's converter does).
    public func quantize(_ source: UnsafePointer<Float>, count: Int, into destination: UnsafeMutableRawPointer) {
        precondition(canQuantize, "\(name) cannot be written")
        precondition(count % blockSize == 0, "\(name): \(count) elements is not a whole number of blocks")
        let blocks = count / blockSize
        switch self {
        case .f32:
            destination.copyMemory(from: source, byteCount: 4 * count)
        case .f16:
            for i in 0..<count { destination.storeBytes(of: HalfPrecision.half(from: source[i]).littleEndian, toByteOffset: 2 * i, as: UInt16.self) }
        case .bf16:
            for i in 0..<count { destination.storeBytes(of: HalfPrecision.bfloat16(from: source[i]).littleEndian, toByteOffset: 2 * i, as: UInt16.self) }
        case .q8_0:
            for b in 0..<blocks {
                let x = source + 32 * b, block = destination + 34 * b
                var amax: Float = 0
                for j in 0..<32 { amax = max(amax, abs(x[j])) }
                let d = amax / 127
                let id: Float = d != 0 ? 1 / d : 0
                block.storeBytes(of: HalfPrecision.half(from: d).littleEndian, as: UInt16.self)
                for j in 0..<32 {
                    // C's roundf: half away from zero, which is Swift's default rounding rule.
                    let q = (x[j] * id).rounded()
                    block.storeBytes(of: Int8(q), toByteOffset: 2 + j, as: Int8.self)
                }
            }
        case .q4_0:
            for b in 0..<blocks {
                let x = source + 32 * b, block = destination + 18 * b
                // The signed value of largest magnitude; the first one on ties.
                var amax: Float = 0, signedMax: Float = 0
                for j in 0..<32 where amax < abs(x[j]) { amax = abs(x[j]); signedMax = x[j] }
                let d = signedMax / -8
                let id: Float = d != 0 ? 1 / d : 0
                block.storeBytes(of: HalfPrecision.half(from: d).littleEndian, as: UInt16.self)
                for j in 0..<16 {
                    let low = min(15, Int(x[j] * id + 8.5)), high = min(15, Int(x[j + 16] * id + 8.5))
                    block.storeBytes(of: UInt8(low | high << 4), toByteOffset: 2 + j, as: UInt8.self)
                }
            }
        case .q4_1:
            for b in 0..<blocks {
                let x = source + 32 * b, block = destination + 20 * b
                var lo = Float.greatestFiniteMagnitude, hi = -Float.greatestFiniteMagnitude
                for j in 0..<32 { lo = min(lo, x[j]); hi = max(hi, x[j]) }
                let d = (hi - lo) / 15
                let id: Float = d != 0 ? 1 / d : 0
                block.storeBytes(of: HalfPrecision.half(from: d).littleEndian, as: UInt16.self)
                block.storeBytes(of: HalfPrecision.half(from: lo).littleEndian, toByteOffset: 2, as: UInt16.self)
                for j in 0..<16 {
                    let low = min(15, Int((x[j] - lo) * id + 0.5)), high = min(15, Int((x[j + 16] - lo) * id + 0.5))
                    block.storeBytes(of: UInt8(low | high << 4), toByteOffset: 4 + j, as: UInt8.self)
                }
            }
        default:
            preconditionFailure("unreachable: canQuantize was checked")
        }
    }
}
