/// Per-type unpacking of ggml blocks for the integer decode kernels (`IntegerDecode`): each block
/// type turns a group of 32 weights into its integer codes `w` (16-bit lanes, in the type's
/// `ActivationOrder`) plus Float32 scales and offsets, so that over the group
/// `Σ weight·x = scale·Σ w·x + offset·Σ x`. Block layouts: reference/formats.md §4.6; the
/// decomposition is ggml's (`ggml_vec_dot_*` in ggml-cpu/arch/x86/quants.c). Code ranges bound the
/// integer sums: |w| ≤ 128 and |q| ≤ 32767 give |Σ of 32 products| ≤ 2^27 < 2^31.

/// One 32-element group of weight codes in 16-bit lanes (vector n lane i: see `ActivationOrder`).
struct WeightGroup {
    var w0, w1, w2, w3: SIMD8<Int16>
}

@inline(__always)
private func codes(_ v: SIMD8<UInt16>) -> SIMD8<Int16> { unsafeBitCast(v, to: SIMD8<Int16>.self) }

// MARK: - 32-element blocks

/// A type whose 32-element blocks start with an f16 scale `d` and, with `hasMin`, an f16 offset
/// `m` right after it: Q8_0, Q4_0, Q4_1, Q5_0, Q5_1. Over a block, `Σ weight·x = d·Σ w·x + m·Σ x`.
protocol Block32Kernel {
    static var blockBytes: Int { get }
    static var hasMin: Bool { get }
    /// The block's codes. `bitTable` is `QuantizedRows.fifthBitTable` (used by Q5_0/Q5_1).
    static func weights(_ block: UnsafeRawPointer, _ bitTable: UnsafePointer<SIMD8<UInt16>>) -> WeightGroup
}

/// Q8_0 (34 B / 32): `d:f16, qs:i8[32]`; w = qs ∈ −128…127. `.bytePairs`.
enum Q8_0Kernel: Block32Kernel {
    static var blockBytes: Int { 34 }
    static var hasMin: Bool { false }
    @inline(__always)
    static func weights(_ block: UnsafeRawPointer, _ bitTable: UnsafePointer<SIMD8<UInt16>>) -> WeightGroup {
        let v0 = block.loadUnaligned(fromByteOffset: 2, as: SIMD8<Int16>.self)
        let v1 = block.loadUnaligned(fromByteOffset: 18, as: SIMD8<Int16>.self)
        // Low bytes (even elements) sign-extended by shifting up and arithmetically back down.
        return WeightGroup(w0: (v0 &<< 8) &>> 8, w1: v0 &>> 8, w2: (v1 &<< 8) &>> 8, w3: v1 &>> 8)
    }
}

/// Q4_0 (18 B / 32): `d:f16, qs:u8[16]`; w = nibble − 8 ∈ −8…7. `.nibbleHalves`.
enum Q4_0Kernel: Block32Kernel {
    static var blockBytes: Int { 18 }
    static var hasMin: Bool { false }
    @inline(__always)
    static func weights(_ block: UnsafeRawPointer, _ bitTable: UnsafePointer<SIMD8<UInt16>>) -> WeightGroup {
        let g = nibbleHalves(block.loadUnaligned(fromByteOffset: 2, as: SIMD8<UInt16>.self))
        return WeightGroup(w0: g.w0 &- 8, w1: g.w1 &- 8, w2: g.w2 &- 8, w3: g.w3 &- 8)
    }
}

/// Q4_1 (20 B / 32): `d:f16, m:f16, qs:u8[16]`; w = nibble ∈ 0…15, offset m. `.nibbleHalves`.
enum Q4_1Kernel: Block32Kernel {
    static var blockBytes: Int { 20 }
    static var hasMin: Bool { true }
    @inline(__always)
    static func weights(_ block: UnsafeRawPointer, _ bitTable: UnsafePointer<SIMD8<UInt16>>) -> WeightGroup {
        nibbleHalves(block.loadUnaligned(fromByteOffset: 4, as: SIMD8<UInt16>.self))
    }
}

/// Q5_0 (22 B / 32): `d:f16, qh:u32, qs:u8[16]`; w = (nibble | 16·bit) − 16 ∈ −16…15. `.natural`.
enum Q5_0Kernel: Block32Kernel {
    static var blockBytes: Int { 22 }
    static var hasMin: Bool { false }
    @inline(__always)
    static func weights(_ block: UnsafeRawPointer, _ bitTable: UnsafePointer<SIMD8<UInt16>>) -> WeightGroup {
        let w = fiveBitCodes(block.loadUnaligned(fromByteOffset: 6, as: SIMD8<UInt8>.self),
                             block.loadUnaligned(fromByteOffset: 14, as: SIMD8<UInt8>.self), block.u32(2), bitTable)
        return WeightGroup(w0: w.w0 &- 16, w1: w.w1 &- 16, w2: w.w2 &- 16, w3: w.w3 &- 16)
    }
}

/// Q5_1 (24 B / 32): `d:f16, m:f16, qh:u32, qs:u8[16]`; w = nibble | 16·bit ∈ 0…31, offset m. `.natural`.
enum Q5_1Kernel: Block32Kernel {
    static var blockBytes: Int { 24 }
    static var hasMin: Bool { true }
    @inline(__always)
    static func weights(_ block: UnsafeRawPointer, _ bitTable: UnsafePointer<SIMD8<UInt16>>) -> WeightGroup {
        fiveBitCodes(block.loadUnaligned(fromByteOffset: 8, as: SIMD8<UInt8>.self),
                     block.loadUnaligned(fromByteOffset: 16, as: SIMD8<UInt8>.self), block.u32(4), bitTable)
    }
}

/// The 32 nibbles of a Q4_0/Q4_1 `qs` (byte j: element j low, element j + 16 high) read as eight
/// 16-bit lanes (lane i = bytes 2i, 2i + 1), in `.nibbleHalves` order.
@inline(__always)
private func nibbleHalves(_ v: SIMD8<UInt16>) -> WeightGroup {
    WeightGroup(w0: codes(v & 0x0F), w1: codes((v &>> 4) & 0x0F), w2: codes((v &>> 8) & 0x0F), w3: codes(v &>> 12))
}

/// Q5_0/Q5_1 codes in `.natural` order: vector k lane i is element 8k + i, the low (k < 2) or high
/// nibble of byte 8(k%2) + i (`q0` = bytes 0..<8, `q1` = 8..<16) plus 16 × bit 8k + i of `h`, looked
/// up by byte k of `h`. In any order where these bits are not consecutive, LLVM turns the bit
/// extraction into per-lane variable shifts, which SSE2 lacks, and scalarizes the whole block.
@inline(__always)
private func fiveBitCodes(_ q0: SIMD8<UInt8>, _ q1: SIMD8<UInt8>, _ h: UInt32, _ table: UnsafePointer<SIMD8<UInt16>>) -> WeightGroup {
    WeightGroup(w0: codes(QuantizedLanes.uint16(q0 & 0x0F) | table[Int(h & 0xFF)]),
                w1: codes(QuantizedLanes.uint16(q1 & 0x0F) | table[Int((h >> 8) & 0xFF)]),
                w2: codes(QuantizedLanes.uint16(q0 &>> 4) | table[Int((h >> 16) & 0xFF)]),
                w3: codes(QuantizedLanes.uint16(q1 &>> 4) | table[Int(h >> 24)]))
}

// MARK: - K-quants (256-element superblocks of eight 32-element groups)

/// A K-quant type. Over group g of a superblock,
/// `Σ weight·x = scales.0[g]·Σ_{first 16} w·x + scales.1[g]·Σ_{last 16} w·x + negativeMins[g]·Σ x`
/// (`scales.0 == scales.1` unless `halfGroupScales`). `.bytePairs` order.
protocol SuperBlockKernel {
    associatedtype Header
    static var blockBytes: Int { get }
    /// Q6_K: the two 16-element halves of a group have their own scales.
    static var halfGroupScales: Bool { get }
    /// The type has mins (an offset proportional to the activation sum).
    static var hasMin: Bool { get }
    static func header(_ block: UnsafeRawPointer) -> Header
    /// Group `g`'s codes; `g` is a literal at every call site, so shifts fold to constants.
    static func weights(_ block: UnsafeRawPointer, group g: Int, header: Header) -> WeightGroup
    static func scales(_ header: Header) -> (SIMD8<Float>, SIMD8<Float>)
    static func negativeMins(_ header: Header) -> SIMD8<Float>
}

/// Scales and mins of a Q4_K/Q5_K block, formed as the reference forms them: `d·sc_j`, `dmin·m_j`.
struct KQuantHeader {
    var scale: SIMD8<Float>
    var negativeMin: SIMD8<Float>

    @inline(__always)
    init(_ block: UnsafeRawPointer) {
        let d = QuantizedRows.halfToFloat(block.u16(0))
        let dmin = QuantizedRows.halfToFloat(block.u16(2))
        var sc = SIMD8<Int32>(), m = SIMD8<Int32>()
        for j in 0..<8 {
            let (a, b) = GGMLType.kQuantScaleMin(block + 4, j)
            sc[j] = Int32(a)
            m[j] = Int32(b)
        }
        scale = SIMD8<Float>(repeating: d) * QuantizedLanes.float(sc)
        negativeMin = -(SIMD8<Float>(repeating: dmin) * QuantizedLanes.float(m))
    }
}

/// 32 nibbles of a K-quant group, the low (`shift` 0) or high (4) nibbles of 32 bytes read as two
/// sets of 16-bit lanes, in `.bytePairs` order.
@inline(__always)
private func nibblePairs(_ v0: SIMD8<UInt16>, _ v1: SIMD8<UInt16>, shift: UInt16) -> WeightGroup {
    WeightGroup(w0: codes((v0 &>> shift) & 0x0F), w1: codes((v0 &>> (shift + 8)) & 0x0F),
                w2: codes((v1 &>> shift) & 0x0F), w3: codes((v1 &>> (shift + 8)) & 0x0F))
}

/// Bits `bit …` of each 16-bit lane moved to bit 4 and masked with `mask` (16: one bit, 48: two).
@inline(__always)
private func highBits(_ h: SIMD8<UInt16>, _ bit: Int, _ mask: UInt16) -> SIMD8<Int16> {
    codes((bit >= 4 ? h &>> UInt16(bit - 4) : h &<< UInt16(4 - bit)) & mask)
}

/// Q4_K (144 B / 256): `d, dmin:f16, scales:u8[12], qs:u8[128]`. Group g: low (g even) or high
/// nibbles of `qs[32(g/2) …]`; w ∈ 0…15, scale `d·sc_g`, offset `−dmin·m_g`.
enum Q4_KKernel: SuperBlockKernel {
    static var blockBytes: Int { 144 }
    static var halfGroupScales: Bool { false }
    static var hasMin: Bool { true }
    @inline(__always)
    static func header(_ block: UnsafeRawPointer) -> KQuantHeader { KQuantHeader(block) }
    @inline(__always)
    static func weights(_ block: UnsafeRawPointer, group g: Int, header: KQuantHeader) -> WeightGroup {
        let q = block + 16 + 32 * (g >> 1)
        return nibblePairs(q.loadUnaligned(as: SIMD8<UInt16>.self), q.loadUnaligned(fromByteOffset: 16, as: SIMD8<UInt16>.self),
                           shift: UInt16(4 * (g & 1)))
    }
    @inline(__always)
    static func scales(_ h: KQuantHeader) -> (SIMD8<Float>, SIMD8<Float>) { (h.scale, h.scale) }
    @inline(__always)
    static func negativeMins(_ h: KQuantHeader) -> SIMD8<Float> { h.negativeMin }
}

/// Q5_K (176 B / 256): Q4_K plus `qh:u8[32]` after the scales; element l of group g has fifth bit
/// `(qh[l] >> g) & 1`. w ∈ 0…31.
enum Q5_KKernel: SuperBlockKernel {
    static var blockBytes: Int { 176 }
    static var halfGroupScales: Bool { false }
    static var hasMin: Bool { true }
    @inline(__always)
    static func header(_ block: UnsafeRawPointer) -> KQuantHeader { KQuantHeader(block) }
    @inline(__always)
    static func weights(_ block: UnsafeRawPointer, group g: Int, header: KQuantHeader) -> WeightGroup {
        let q = block + 48 + 32 * (g >> 1)
        let n = nibblePairs(q.loadUnaligned(as: SIMD8<UInt16>.self), q.loadUnaligned(fromByteOffset: 16, as: SIMD8<UInt16>.self),
                            shift: UInt16(4 * (g & 1)))
        let h0 = block.loadUnaligned(fromByteOffset: 16, as: SIMD8<UInt16>.self)
        let h1 = block.loadUnaligned(fromByteOffset: 32, as: SIMD8<UInt16>.self)
        // Lane i of h0 holds qh[2i] (low byte, element 2i) and qh[2i + 1] (high byte).
        return WeightGroup(w0: n.w0 | highBits(h0, g, 16), w1: n.w1 | highBits(h0, g + 8, 16),
                           w2: n.w2 | highBits(h1, g, 16), w3: n.w3 | highBits(h1, g + 8, 16))
    }
    @inline(__always)
    static func scales(_ h: KQuantHeader) -> (SIMD8<Float>, SIMD8<Float>) { (h.scale, h.scale) }
    @inline(__always)
    static func negativeMins(_ h: KQuantHeader) -> SIMD8<Float> { h.negativeMin }
}

/// Q6_K (210 B / 256): `ql:u8[128], qh:u8[64], scales:i8[16], d:f16`. Group g = 4h + j (half h,
/// j = 0…3) holds elements 128h + 32j + l: the low (j < 2) or high nibble of
/// `ql[64h + 32(j%2) + l]` and bits 2j…2j+1 of `qh[32h + l]`; w = q − 32 ∈ −32…31, with
/// 16-element scales `d·scales[2g]` and `d·scales[2g+1]`.
enum Q6_KKernel: SuperBlockKernel {
    static var blockBytes: Int { 210 }
    static var halfGroupScales: Bool { true }
    static var hasMin: Bool { false }
    /// `d·scales[2g]` and `d·scales[2g+1]` for the eight groups, formed as the reference does.
    @inline(__always)
    static func header(_ block: UnsafeRawPointer) -> (SIMD8<Float>, SIMD8<Float>) {
        let d = SIMD8<Float>(repeating: QuantizedRows.halfToFloat(block.u16(208)))
        // Lane g holds scales[2g] (low byte) and scales[2g+1] (high byte).
        let v = block.loadUnaligned(fromByteOffset: 192, as: SIMD8<Int16>.self)
        return (d * QuantizedLanes.float(QuantizedLanes.int32((v &<< 8) &>> 8)),
                d * QuantizedLanes.float(QuantizedLanes.int32(v &>> 8)))
    }
    @inline(__always)
    static func weights(_ block: UnsafeRawPointer, group g: Int, header: (SIMD8<Float>, SIMD8<Float>)) -> WeightGroup {
        let half = g >> 2, j = g & 3
        let ql = block + 64 * half + 32 * (j & 1)
        let qh = block + 128 + 32 * half
        let n = nibblePairs(ql.loadUnaligned(as: SIMD8<UInt16>.self), ql.loadUnaligned(fromByteOffset: 16, as: SIMD8<UInt16>.self),
                            shift: UInt16(4 * (j >> 1)))
        let h0 = qh.loadUnaligned(as: SIMD8<UInt16>.self)
        let h1 = qh.loadUnaligned(fromByteOffset: 16, as: SIMD8<UInt16>.self)
        return WeightGroup(w0: (n.w0 | highBits(h0, 2 * j, 48)) &- 32, w1: (n.w1 | highBits(h0, 2 * j + 8, 48)) &- 32,
                           w2: (n.w2 | highBits(h1, 2 * j, 48)) &- 32, w3: (n.w3 | highBits(h1, 2 * j + 8, 48)) &- 32)
    }
    @inline(__always)
    static func scales(_ h: (SIMD8<Float>, SIMD8<Float>)) -> (SIMD8<Float>, SIMD8<Float>) { h }
    @inline(__always)
    static func negativeMins(_ h: (SIMD8<Float>, SIMD8<Float>)) -> SIMD8<Float> { SIMD8<Float>() }
}
