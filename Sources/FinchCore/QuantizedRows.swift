/// Vectorized dequantization of whole rows of ggml blocks to Float32, bit-identical to
/// `GGMLType.dequantize` (the scalar reference).
///
/// Used by `LinearWeight` to fill the Float32 panels it hands to `sgemm` (prefill, backward) and by
/// the Float32 decode path. Every formula performs the reference's Float32 operations in the same
/// order (`d·sc` and `dmin·m` formed first, then `scale·q`, then `+ m` or `− offset`; Swift never
/// contracts `a*b+c` into an FMA), so a lane computes exactly what the reference computes for that
/// element. `Tests/FinchCoreTests/LinearWeightTests` checks this bit for bit for every type.
///
/// Code generation: the package is compiled for baseline x86-64 (SSE2: no FMA, no F16C, no
/// per-lane variable shifts), so only operations that lower to single SSE2 instructions are used:
/// lane conversions go through `QuantizedLanes`, and lane predicates are built from integer
/// arithmetic (`SIMDMask` and `pointwiseMax` on floats compile to scalar loops).
enum QuantizedRows {
    /// Dequantizes `count` elements (a whole number of blocks) of `type` at `source` into `destination`.
    ///
    /// - Precondition: `type.canDequantize`, `count % type.blockSize == 0`.
    static func dequantize(_ type: GGMLType, _ source: UnsafeRawPointer, count: Int,
                           into destination: UnsafeMutablePointer<Float>) {
        precondition(count % type.blockSize == 0, "\(type.name): \(count) elements is not a whole number of blocks")
        let blocks = count / type.blockSize
        let out = UnsafeMutableRawPointer(destination)
        switch type {
        case .f32:
            out.copyMemory(from: source, byteCount: 4 * count)
        case .f16:
            var i = 0
            while i + 8 <= count {
                let (lo, hi) = QuantizedLanes.uint32Halves(source.loadUnaligned(fromByteOffset: 2 * i, as: SIMD8<UInt16>.self))
                out.storeBytes(of: halfToFloat(lo), toByteOffset: 4 * i, as: SIMD4<Float>.self)
                out.storeBytes(of: halfToFloat(hi), toByteOffset: 4 * i + 16, as: SIMD4<Float>.self)
                i += 8
            }
            while i < count {
                destination[i] = HalfPrecision.float(fromHalf: source.u16(2 * i))
                i += 1
            }
        case .bf16:
            var i = 0
            while i + 8 <= count {
                let (lo, hi) = QuantizedLanes.uint32Halves(source.loadUnaligned(fromByteOffset: 2 * i, as: SIMD8<UInt16>.self))
                out.storeBytes(of: unsafeBitCast(lo &<< 16, to: SIMD4<Float>.self), toByteOffset: 4 * i, as: SIMD4<Float>.self)
                out.storeBytes(of: unsafeBitCast(hi &<< 16, to: SIMD4<Float>.self), toByteOffset: 4 * i + 16, as: SIMD4<Float>.self)
                i += 8
            }
            while i < count {
                destination[i] = HalfPrecision.float(fromBFloat16: source.u16(2 * i))
                i += 1
            }
        case .q8_0:
            for b in 0..<blocks {
                let block = source + 34 * b
                let d = SIMD8<Float>(repeating: HalfPrecision.float(fromHalf: block.u16(0)))
                let o = out + 128 * b
                for k in 0..<4 {
                    let q = block.loadUnaligned(fromByteOffset: 2 + 8 * k, as: SIMD8<Int8>.self)
                    // Reference: Float(Int8(q)) * d.
                    o.storeBytes(of: QuantizedLanes.float(QuantizedLanes.int32(q)) * d, toByteOffset: 32 * k, as: SIMD8<Float>.self)
                }
            }
        case .q4_0, .q4_1:
            let hasMin = type == .q4_1
            let stride = hasMin ? 20 : 18
            for b in 0..<blocks {
                let block = source + stride * b
                let d = SIMD8<Float>(repeating: HalfPrecision.float(fromHalf: block.u16(0)))
                let m = SIMD8<Float>(repeating: hasMin ? HalfPrecision.float(fromHalf: block.u16(2)) : 0)
                let o = out + 128 * b
                for h in 0..<2 {
                    for part in 0..<2 {
                        let bytes = block.loadUnaligned(fromByteOffset: (hasMin ? 4 : 2) + 8 * part, as: SIMD8<UInt8>.self)
                        let q = QuantizedLanes.int32(h == 0 ? bytes & 0x0F : bytes &>> 4)
                        // Reference: d * Float(q - 8) (Q4_0), d * Float(q) + m (Q4_1).
                        let v = hasMin ? d * QuantizedLanes.float(q) + m : d * QuantizedLanes.float(q &- 8)
                        o.storeBytes(of: v, toByteOffset: 64 * h + 32 * part, as: SIMD8<Float>.self)
                    }
                }
            }
        case .q5_0, .q5_1:
            let hasMin = type == .q5_1
            let stride = hasMin ? 24 : 22
            for b in 0..<blocks {
                let block = source + stride * b
                let d = SIMD8<Float>(repeating: HalfPrecision.float(fromHalf: block.u16(0)))
                let m = SIMD8<Float>(repeating: hasMin ? HalfPrecision.float(fromHalf: block.u16(2)) : 0)
                let h = block.u32(hasMin ? 4 : 2)
                let o = out + 128 * b
                for part in 0..<4 {
                    // Elements 8·part ..< 8·part + 8: nibble (low for part < 2, high otherwise) of
                    // qs[8·(part%2) …] and bits 8·part … of h as the fifth bit.
                    let bytes = block.loadUnaligned(fromByteOffset: (hasMin ? 8 : 6) + 8 * (part % 2), as: SIMD8<UInt8>.self)
                    let nibbles = part < 2 ? bytes & 0x0F : bytes &>> 4
                    let q = QuantizedLanes.int32(nibbles) | fifthBits(UInt32(truncatingIfNeeded: h >> UInt32(8 * part)) & 0xFF)
                    let v = hasMin ? d * QuantizedLanes.float(q) + m : d * QuantizedLanes.float(q &- 16)
                    o.storeBytes(of: v, toByteOffset: 32 * part, as: SIMD8<Float>.self)
                }
            }
        case .q4_K, .q5_K:
            let hasHighBit = type == .q5_K
            let stride = hasHighBit ? 176 : 144
            for b in 0..<blocks {
                let block = source + stride * b
                let d = HalfPrecision.float(fromHalf: block.u16(0))
                let dmin = HalfPrecision.float(fromHalf: block.u16(2))
                let qsOffset = hasHighBit ? 48 : 16
                let o = out + 1024 * b
                for chunk in 0..<8 {
                    let (sc, mn) = GGMLType.kQuantScaleMin(block + 4, chunk)
                    let scale = SIMD8<Float>(repeating: d * Float(sc))
                    let offset = SIMD8<Float>(repeating: dmin * Float(mn))
                    let shift = UInt8(4 * (chunk % 2))
                    for part in 0..<4 {
                        let bytes = block.loadUnaligned(fromByteOffset: qsOffset + 32 * (chunk / 2) + 8 * part, as: SIMD8<UInt8>.self)
                        var q = (bytes &>> shift) & 0x0F
                        if hasHighBit {
                            let qh = block.loadUnaligned(fromByteOffset: 16 + 8 * part, as: SIMD8<UInt8>.self)
                            q |= ((qh &>> UInt8(chunk)) & 1) &<< 4
                        }
                        // Reference: scale * Float(q) - offset.
                        let v = scale * QuantizedLanes.float(QuantizedLanes.int32(q)) - offset
                        o.storeBytes(of: v, toByteOffset: 128 * chunk + 32 * part, as: SIMD8<Float>.self)
                    }
                }
            }
        case .q6_K:
            for b in 0..<blocks {
                let block = source + 210 * b
                let d = HalfPrecision.float(fromHalf: block.u16(208))
                let o = out + 1024 * b
                for half in 0..<2 {
                    for group in 0..<4 {
                        let lowOffset = 64 * half + 32 * (group % 2)
                        let nibbleShift = UInt8(group < 2 ? 0 : 4)
                        for part in 0..<4 {
                            let l = 8 * part
                            let low = (block.loadUnaligned(fromByteOffset: lowOffset + l, as: SIMD8<UInt8>.self) &>> nibbleShift) & 0x0F
                            let high = (block.loadUnaligned(fromByteOffset: 128 + 32 * half + l, as: SIMD8<UInt8>.self) &>> UInt8(2 * group)) & 0x03
                            let q = QuantizedLanes.int32(low | (high &<< 4)) &- 32
                            let index = 128 * half + 32 * group + l
                            // Reference: (d * Float(scale)) * Float(q), scale = scales[index / 16].
                            let scale = SIMD8<Float>(repeating: d * Float(Int8(bitPattern: block.u8(192 + index / 16))))
                            o.storeBytes(of: scale * QuantizedLanes.float(q), toByteOffset: 4 * index, as: SIMD8<Float>.self)
                        }
                    }
                }
            }
        default:
            preconditionFailure("QuantizedRows.dequantize: \(type.name) is not supported")
        }
    }

    /// `16 · bit j of bits` in lane j (j < 8).
    @inline(__always)
    static func fifthBits(_ bits: UInt32) -> SIMD8<Int32> {
        QuantizedLanes.int32(unsafeBitCast(spreadBits(bits), to: SIMD8<UInt8>.self))
    }

    /// For every byte value b, lane j = 16 · bit j of b: the Q5 fifth bits of eight elements.
    static let fifthBitTable: [SIMD8<UInt16>] = (0..<256).map { b in
        QuantizedLanes.uint16(unsafeBitCast(spreadBits(UInt32(b)), to: SIMD8<UInt8>.self))
    }

    /// Byte j (j < 8) of the result is `16 · bit j of bits` (bits above 7 are ignored).
    ///
    /// Scalar bit tricks on purpose: written with vector lanes (`splat(bits) & (1 << j)`), LLVM
    /// turns it into per-lane variable shifts, which SSE2 lacks, and scalarizes it badly. Here the
    /// byte is copied into all 8 bytes (multiplication by 0x0101…, no carries), byte j keeps bit j,
    /// adding 0x7F sets a byte's top bit exactly when that bit was set (no carry out of a byte),
    /// and the top bits are moved to bit 4.
    @inline(__always)
    static func spreadBits(_ bits: UInt32) -> UInt64 {
        let copies = UInt64(bits & 0xFF) &* 0x0101_0101_0101_0101
        return (((copies & 0x8040_2010_0804_0201) &+ 0x7F7F_7F7F_7F7F_7F7F) & 0x8080_8080_8080_8080) &>> 3
    }

    /// IEEE binary16 → Float32 for four halves held in the low 16 bits of each lane; exact for
    /// every input (normal, subnormal, zero, infinity, NaN), matching `HalfPrecision.float(fromHalf:)`.
    ///
    /// Normal halves only need their exponent rebased (+112); infinities and NaNs get a further
    /// +112 so the exponent becomes 255; subnormals are formed as `2^-14·(1 + m/1024) − 2^-14`,
    /// exact by Sterbenz's lemma (the trick of F. Giesen's `half_to_float_fast`).
    @inline(__always)
    static func halfToFloat(_ h: SIMD4<UInt32>) -> SIMD4<Float> {
        let u = (h & 0x7FFF) &<< 13
        let e = u & 0x0F80_0000
        // All-ones where the half's exponent is 31 (inf/NaN): e + 2^23 reaches bit 28 only then.
        let special = 0 &- ((e &+ 0x0080_0000) &>> 28)
        // All-ones where the half's exponent is 0 (zero/subnormal): e − 1 wraps only then.
        let tiny = unsafeBitCast(unsafeBitCast(e &- 1, to: SIMD4<Int32>.self) &>> 31, to: SIMD4<UInt32>.self)
        let bits = u &+ 0x3800_0000 &+ (special & 0x3800_0000) &+ (tiny & 0x0080_0000)
        let f = unsafeBitCast(bits, to: SIMD4<Float>.self) - unsafeBitCast(tiny & 0x3880_0000, to: SIMD4<Float>.self)
        return unsafeBitCast(unsafeBitCast(f, to: SIMD4<UInt32>.self) | ((h & 0x8000) &<< 16), to: SIMD4<Float>.self)
    }

    /// Exact half → float for one scalar, branch-free (used for block scales in the hot loops).
    @inline(__always)
    static func halfToFloat(_ h: UInt16) -> Float {
        let u = UInt32(h & 0x7FFF) << 13
        let e = u & 0x0F80_0000
        let special: UInt32 = e == 0x0F80_0000 ? 0x3800_0000 : 0
        let tiny = e == 0
        let f = Float(bitPattern: u &+ 0x3800_0000 &+ special &+ (tiny ? 0x0080_0000 : 0)) - (tiny ? 0x1p-14 : 0)
        return Float(bitPattern: f.bitPattern | UInt32(h & 0x8000) << 16)
    }
}
