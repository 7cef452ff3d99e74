/// Dequantization of ggml blocks to Float32.
///
/// Each formula follows ggml's `dequantize_row_*` (ggml-quants.c) in the operation order of the
/// `gguf` Python package (`quants.py`), so results are bit-identical to `gguf.dequantize`: scales are
/// formed first in Float32 (`d·sc`, `dmin·m`), then multiplied by the integer code, then the offset
/// is added or subtracted. Swift does not contract `a*b+c` into an FMA, which would change the bits.
/// Block layouts: `../shared/reference/formats.md` §4.6.
extension GGMLType {
    /// Dequantizes `count` elements stored in this type at `source` into `destination`.
    ///
    /// - Precondition: `canDequantize`, `count` is a multiple of `blockSize`, and `source` holds
    ///   `byteCount(elements: count)` readable bytes. Callers validate file data before calling.
    public func dequantize(_ source: UnsafeRawPointer, count: Int, into destination: UnsafeMutablePointer<Float>) {
        precondition(count % blockSize == 0, "\(name): \(count) elements is not a whole number of blocks")
        let blocks = count / blockSize
        switch self {
        case .f32:
            // A byte copy: F32 data in a mapped file need not be 4-byte aligned.
            UnsafeMutableRawPointer(destination).copyMemory(from: source, byteCount: 4 * count)
        case .f16:
            for i in 0..<count { destination[i] = HalfPrecision.float(fromHalf: source.u16(2 * i)) }
        case .bf16:
            for i in 0..<count { destination[i] = HalfPrecision.float(fromBFloat16: source.u16(2 * i)) }
        case .q8_0:
            for b in 0..<blocks {
                let block = source + b * 34
                let d = HalfPrecision.float(fromHalf: block.u16(0))
                let out = destination + b * 32
                for j in 0..<32 { out[j] = Float(Int8(bitPattern: block.u8(2 + j))) * d }
            }
        case .q4_0:
            for b in 0..<blocks {
                let block = source + b * 18
                let d = HalfPrecision.float(fromHalf: block.u16(0))
                let out = destination + b * 32
                for j in 0..<16 {
                    let q = block.u8(2 + j)
                    out[j] = d * Float(Int(q & 0x0F) - 8)
                    out[j + 16] = d * Float(Int(q >> 4) - 8)
                }
            }
        case .q4_1:
            for b in 0..<blocks {
                let block = source + b * 20
                let d = HalfPrecision.float(fromHalf: block.u16(0))
                let m = HalfPrecision.float(fromHalf: block.u16(2))
                let out = destination + b * 32
                for j in 0..<16 {
                    let q = block.u8(4 + j)
                    out[j] = d * Float(q & 0x0F) + m
                    out[j + 16] = d * Float(q >> 4) + m
                }
            }
        case .q5_0:
            for b in 0..<blocks {
                let block = source + b * 22
                let d = HalfPrecision.float(fromHalf: block.u16(0))
                let h = block.u32(2)
                let out = destination + b * 32
                for j in 0..<16 {
                    let q = block.u8(6 + j)
                    let lo = UInt32(q & 0x0F) | (((h >> UInt32(j)) & 1) << 4)
                    let hi = UInt32(q >> 4) | (((h >> UInt32(j + 16)) & 1) << 4)
                    out[j] = d * Float(Int(lo) - 16)
                    out[j + 16] = d * Float(Int(hi) - 16)
                }
            }
        case .q5_1:
            for b in 0..<blocks {
                let block = source + b * 24
                let d = HalfPrecision.float(fromHalf: block.u16(0))
                let m = HalfPrecision.float(fromHalf: block.u16(2))
                let h = block.u32(4)
                let out = destination + b * 32
                for j in 0..<16 {
                    let q = block.u8(8 + j)
                    let lo = UInt32(q & 0x0F) | (((h >> UInt32(j)) & 1) << 4)
                    let hi = UInt32(q >> 4) | (((h >> UInt32(j + 16)) & 1) << 4)
                    out[j] = d * Float(lo) + m
                    out[j + 16] = d * Float(hi) + m
                }
            }
        case .q4_K, .q5_K:
            let hasHighBit = self == .q5_K
            let stride = hasHighBit ? 176 : 144
            for b in 0..<blocks {
                let block = source + b * stride
                let d = HalfPrecision.float(fromHalf: block.u16(0))
                let dmin = HalfPrecision.float(fromHalf: block.u16(2))
                let scales = block + 4
                let qh = block + 16            // Q5_K only: 32 bytes of fifth bits
                let qs = block + (hasHighBit ? 48 : 16)
                let out = destination + b * 256
                for chunk in 0..<8 {
                    let (sc, mn) = Self.kQuantScaleMin(scales, chunk)
                    let scale = d * Float(sc)
                    let offset = dmin * Float(mn)
                    let bytes = qs + 32 * (chunk / 2)
                    let shift = UInt8(4 * (chunk % 2))
                    for l in 0..<32 {
                        var q = (bytes.u8(l) >> shift) & 0x0F
                        if hasHighBit { q |= ((qh.u8(l) >> UInt8(chunk)) & 1) << 4 }
                        out[32 * chunk + l] = scale * Float(q) - offset
                    }
                }
            }
        case .q6_K:
            for b in 0..<blocks {
                let block = source + b * 210
                let ql = block, qh = block + 128, scales = block + 192
                let d = HalfPrecision.float(fromHalf: block.u16(208))
                let out = destination + b * 256
                for half in 0..<2 {
                    for group in 0..<4 {
                        // group g of a half: low (g < 2) or high nibbles of ql[64h + 32(g%2) + l],
                        // and bits 2g..2g+1 of qh[32h + l].
                        let lowBytes = ql + 64 * half + 32 * (group % 2)
                        let nibbleShift = UInt8(group < 2 ? 0 : 4)
                        let highBytes = qh + 32 * half
                        for l in 0..<32 {
                            let index = 128 * half + 32 * group + l
                            let low = (lowBytes.u8(l) >> nibbleShift) & 0x0F
                            let high = (highBytes.u8(l) >> UInt8(2 * group)) & 0x03
                            let q = Int(low | (high << 4)) - 32
                            let scale = d * Float(Int8(bitPattern: scales.u8(index / 16)))
                            out[index] = scale * Float(q)
                        }
                    }
                }
            }
        default:
            preconditionFailure("dequantize: \(name) is not supported")
        }
    }

    /// The 6-bit (scale, min) pair `k` (0..<8) of a Q4_K/Q5_K block's 12-byte scale field.
    @inline(__always)
    static func kQuantScaleMin(_ s: UnsafeRawPointer, _ k: Int) -> (UInt8, UInt8) {
        if k < 4 {
            return (s.u8(k) & 63, s.u8(k + 4) & 63)
        }
        let sc = (s.u8(k + 4) & 0x0F) | ((s.u8(k - 4) >> 6) << 4)
        let m = (s.u8(k + 4) >> 4) | ((s.u8(k) >> 6) << 4)
        return (sc, m)
    }
}

extension UnsafeRawPointer {
    @inline(__always) func u8(_ offset: Int) -> UInt8 { load(fromByteOffset: offset, as: UInt8.self) }
    @inline(__always) func u16(_ offset: Int) -> UInt16 {
        UInt16(littleEndian: loadUnaligned(fromByteOffset: offset, as: UInt16.self))
    }
    @inline(__always) func u32(_ offset: Int) -> UInt32 {
        UInt32(littleEndian: loadUnaligned(fromByteOffset: offset, as: UInt32.self))
    }
}
