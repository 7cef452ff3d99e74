/// Fused matrix-vector kernels for few tokens (decode): the weight's packed rows are read once
/// and dot products accumulate in registers; no dequantized row is written to memory (except in
/// the `.float32` arithmetic for block-quantized types, which dequantizes one row into L1).
///
/// Integer path (`Arithmetic.quantizedActivations`), following ggml's CPU dot products
/// (`ggml_vec_dot_q4_0_q8_0`, `…_q4_1_q8_1`, `…_q8_0_q8_0`, `…_q4_K_q8_K`, `…_q6_K_q8_K` in
/// ggml-cpu/arch/x86/quants.c): activations are rounded to 8-bit integers per 32 elements, the
/// weight codes are unpacked to 16-bit lanes and multiplied exactly in integers, and each group's
/// integer sum is scaled once in Float32. Differences from ggml:
/// - Activations use one scale per 32 elements for every type (ggml's `q8_K` uses one per 256
///   for the K-quants): finer, so more accurate.
/// - The weight-offset terms (`m·Σx` for Q4_1/Q5_1, `dmin·m_j·Σx` for Q4_K/Q5_K) use the exact
///   Float32 sums of the activations rather than the sums of the rounded activations.
/// - The code targets baseline x86-64 (SSE2), which is what SwiftPM compiles without
///   `-target-cpu`: no `pmaddubsw`/VNNI. Products are `pmullw` on 16-bit lanes; lane sums stay
///   below 2^15 by construction (documented per type) and are widened to Int32 in pairs.
///
/// Activation lane order: to avoid shuffles (SSE2 has no byte shuffle), weights are unpacked in
/// whatever lane order their bytes give, and each token's activations are stored permuted to match
/// (`ActivationOrder`). Within a 32-element group, vector `n` (0..<4), lane `i` (0..<8) holds:
/// - `.nibbleHalves` (Q4_0, Q4_1: byte j holds elements j and j+16):
///   element `2i + n/2 + 16·(n%2)`;
/// - `.natural` (Q5_0, Q5_1, whose fifth bits must come out in element order): element `8n + i`;
/// - `.bytePairs` (Q8_0, Q4_K, Q5_K, Q6_K: a run of 32 bytes or nibbles in element order):
///   element `2i + n%2 + 16·(n/2)`.
extension LinearWeight {
    /// Rough single-core cost of the decode kernels, in picoseconds per weight element and token
    /// (measured on the 2-core AVX-512 EPYC of NOTES.md, baseline x86-64 code).
    var decodeCostPerElement: Int {
        switch type {
        case .f32, .bf16: return 100
        case .f16: return 500
        case _ where arithmetic == .float32: return 300
        case .q4_0, .q4_1, .q8_0: return 100
        case .q5_0, .q5_1, .q4_K: return 130
        default: return 200
        }
    }

    /// Rows per parallel chunk for `tokens` tokens: enough that a chunk runs ≥ `LinearWeight.minimumChunkNanoseconds`.
    func decodeGrain(tokens: Int) -> Int {
        let picoseconds = max(1, inFeatures * tokens * decodeCostPerElement)
        return max(1, (Self.minimumChunkNanoseconds * 1000 + picoseconds - 1) / picoseconds)
    }

    func decodeForward(_ x: UnsafePointer<Float>, tokens: Int, into y: UnsafeMutablePointer<Float>,
                       accumulate: Bool, pool: ThreadPool) {
        let grain = decodeGrain(tokens: tokens)
        let (type, base, rowBytes, inFeatures) = (self.type, self.base, self.rowBytes, self.inFeatures)
        let output = DecodeOutput(y: y, stride: outFeatures, accumulate: accumulate)

        switch type {
        case .f32, .f16, .bf16:
            pool.parallelFor(outFeatures, grain: grain) { rows in
                FloatDecode.rows(rows, type: type, base: base, rowBytes: rowBytes, inFeatures: inFeatures,
                                 x: x, tokens: tokens, output: output, scratch: nil)
            }
            return
        default:
            break
        }

        if arithmetic == .float32 {
            pool.parallelFor(outFeatures, grain: grain) { rows in
                QuantizedScratch.shared.withBuffer(of: Float.self, count: inFeatures) { scratch in
                    FloatDecode.rows(rows, type: type, base: base, rowBytes: rowBytes, inFeatures: inFeatures,
                                     x: x, tokens: tokens, output: output, scratch: scratch)
                }
            }
            return
        }

        let order: ActivationOrder = switch type {
        case .q4_0, .q4_1: .nibbleHalves
        case .q5_0, .q5_1: .natural
        default: .bytePairs
        }
        let bytes = Int8Activations.byteCount(tokens: tokens, inFeatures: inFeatures)
        QuantizedScratch.shared.withBuffer(bytes: bytes) { raw in
            let act = Int8Activations(raw, tokens: tokens, inFeatures: inFeatures)
            for t in 0..<tokens { act.quantize(x + t * inFeatures, token: t, order: order) }
            pool.parallelFor(outFeatures, grain: grain) { rows in
                switch type {
                case .q8_0: Int8Decode.rows32(Q8_0Kernel.self, rows, base, rowBytes, act, output)
                case .q4_0: Int8Decode.rows32(Q4_0Kernel.self, rows, base, rowBytes, act, output)
                case .q4_1: Int8Decode.rows32(Q4_1Kernel.self, rows, base, rowBytes, act, output)
                case .q5_0: Int8Decode.rows32(Q5_0Kernel.self, rows, base, rowBytes, act, output)
                case .q5_1: Int8Decode.rows32(Q5_1Kernel.self, rows, base, rowBytes, act, output)
                case .q4_K: Int8Decode.rows256(Q4_KKernel.self, rows, base, rowBytes, act, output)
                case .q5_K: Int8Decode.rows256(Q5_KKernel.self, rows, base, rowBytes, act, output)
                case .q6_K: Int8Decode.rows256(Q6_KKernel.self, rows, base, rowBytes, act, output)
                default: preconditionFailure("LinearWeight: no decode kernel for \(type.name)")
                }
            }
        }
    }
}

/// Where decode kernels write: `y[t·stride + r]`, added to the old value if `accumulate`.
struct DecodeOutput: @unchecked Sendable {
    let y: UnsafeMutablePointer<Float>
    let stride: Int
    let accumulate: Bool

    @inline(__always)
    func store(_ value: Float, token t: Int, row r: Int) {
        let p = y + t * stride + r
        p.pointee = accumulate ? p.pointee + value : value
    }
}

// MARK: - Activations rounded to 8 bits

/// The lane order in which a weight type's kernel unpacks a group of 32 codes (see the file comment).
enum ActivationOrder {
    case nibbleHalves, bytePairs, natural

}

/// Per-token activations rounded to integers in −127…127 (stored as Int16 lanes for `pmullw`),
/// with one scale and one exact sum per 32 elements. Layout in one scratch buffer:
/// `values: (tokens, inFeatures) Int16`, `scales: (tokens, groups) Float`, `sums: (tokens, groups) Float`.
struct Int8Activations: @unchecked Sendable {
    let values: UnsafeMutablePointer<Int16>
    let scales: UnsafeMutablePointer<Float>
    let sums: UnsafeMutablePointer<Float>
    let tokens: Int
    let inFeatures: Int
    var groups: Int { inFeatures / 32 }

    static func byteCount(tokens: Int, inFeatures: Int) -> Int {
        tokens * (2 * inFeatures + 2 * 4 * (inFeatures / 32))
    }

    init(_ raw: UnsafeMutableRawPointer, tokens: Int, inFeatures: Int) {
        let groups = inFeatures / 32
        values = raw.bindMemory(to: Int16.self, capacity: tokens * inFeatures)
        let floats = (raw + 2 * tokens * inFeatures).bindMemory(to: Float.self, capacity: 2 * tokens * groups)
        scales = floats
        sums = floats + tokens * groups
        self.tokens = tokens
        self.inFeatures = inFeatures
    }

    /// Rounds token `t`'s activations `x[0..<inFeatures]`, group by group, as ggml's
    /// `quantize_row_q8_0`: `d = max|x|/127`, `q = round(x/d)` (ties to even here, as ggml's AVX
    /// path `_mm256_round_ps`; the scalar reference rounds ties away from zero). A group containing
    /// a NaN or an infinity gets a NaN scale, so the outputs it touches are NaN, as in Float32.
    func quantize(_ x: UnsafePointer<Float>, token t: Int, order: ActivationOrder) {
        let q = values + t * inFeatures
        for g in 0..<groups {
            let src = UnsafeRawPointer(x + 32 * g)
            let v0 = src.loadUnaligned(as: SIMD4<Float>.self), v1 = src.loadUnaligned(fromByteOffset: 16, as: SIMD4<Float>.self)
            let v2 = src.loadUnaligned(fromByteOffset: 32, as: SIMD4<Float>.self), v3 = src.loadUnaligned(fromByteOffset: 48, as: SIMD4<Float>.self)
            let v4 = src.loadUnaligned(fromByteOffset: 64, as: SIMD4<Float>.self), v5 = src.loadUnaligned(fromByteOffset: 80, as: SIMD4<Float>.self)
            let v6 = src.loadUnaligned(fromByteOffset: 96, as: SIMD4<Float>.self), v7 = src.loadUnaligned(fromByteOffset: 112, as: SIMD4<Float>.self)
            let sum = (((v0 + v1) + (v2 + v3)) + ((v4 + v5) + (v6 + v7))).sum()
            // max |x| on the bit patterns: for non-negative floats their order is the integer order
            // (NaN patterns sort above infinity). `pointwiseMax` on floats compiles to scalar code.
            @inline(__always) func magnitude(_ v: SIMD4<Float>) -> SIMD4<Int32> { unsafeBitCast(v, to: SIMD4<Int32>.self) & 0x7FFF_FFFF }
            @inline(__always) func larger(_ a: SIMD4<Int32>, _ b: SIMD4<Int32>) -> SIMD4<Int32> {
                a &+ ((b &- a) & ((a &- b) &>> 31)) // a − b cannot overflow: both are in 0..<2^31
            }
            let m = larger(larger(larger(magnitude(v0), magnitude(v1)), larger(magnitude(v2), magnitude(v3))),
                           larger(larger(magnitude(v4), magnitude(v5)), larger(magnitude(v6), magnitude(v7))))
            let amaxBits = max(max(m[0], m[1]), max(m[2], m[3]))
            let amax = Float(bitPattern: UInt32(amaxBits))
            let dst = UnsafeMutableRawPointer(q + 32 * g)
            scales[t * groups + g] = amax / 127
            sums[t * groups + g] = sum
            // A NaN or an infinity in the group: NaN scale, so the outputs it touches are NaN.
            guard amaxBits < 0x7F80_0000, sum.isFinite, amax > 0 else {
                if !(amaxBits < 0x7F80_0000 && sum.isFinite) { scales[t * groups + g] = .nan }
                dst.initializeMemory(as: Int16.self, repeating: 0, count: 32)
                continue
            }
            // Round to nearest even by adding 1.5·2^23 (exact for |v| ≤ 2^22): the low 16 bits of
            // the sum's bit pattern are then the integer. No libcall, no trapping conversion.
            let inverse = SIMD4<Float>(repeating: 127 / amax), magic = SIMD4<Float>(repeating: 12_582_912)
            @inline(__always) func rounded(_ v: SIMD4<Float>) -> SIMD4<Int32> { unsafeBitCast(v * inverse + magic, to: SIMD4<Int32>.self) }
            @inline(__always) func store(_ lanes: SIMD8<Int32>, _ vector: Int) {
                dst.storeBytes(of: SIMD8<Int16>(truncatingIfNeeded: lanes), toByteOffset: 16 * vector, as: SIMD8<Int16>.self)
            }
            let a = SIMD8<Int32>(lowHalf: rounded(v0), highHalf: rounded(v1)), b = SIMD8<Int32>(lowHalf: rounded(v2), highHalf: rounded(v3))
            let c = SIMD8<Int32>(lowHalf: rounded(v4), highHalf: rounded(v5)), d = SIMD8<Int32>(lowHalf: rounded(v6), highHalf: rounded(v7))
            switch order {
            case .natural:
                store(a, 0); store(b, 1); store(c, 2); store(d, 3)
            case .bytePairs:
                // Even elements of 0..<16, odd ones, then the same for 16..<32.
                store(SIMD8(lowHalf: a.evenHalf, highHalf: b.evenHalf), 0)
                store(SIMD8(lowHalf: a.oddHalf, highHalf: b.oddHalf), 1)
                store(SIMD8(lowHalf: c.evenHalf, highHalf: d.evenHalf), 2)
                store(SIMD8(lowHalf: c.oddHalf, highHalf: d.oddHalf), 3)
            case .nibbleHalves:
                // Even elements of 0..<16, of 16..<32, then the odd ones.
                store(SIMD8(lowHalf: a.evenHalf, highHalf: b.evenHalf), 0)
                store(SIMD8(lowHalf: c.evenHalf, highHalf: d.evenHalf), 1)
                store(SIMD8(lowHalf: a.oddHalf, highHalf: b.oddHalf), 2)
                store(SIMD8(lowHalf: c.oddHalf, highHalf: d.oddHalf), 3)
            }
        }
    }
}

// MARK: - Integer decode driver

/// One 32-element group of weight codes widened to 16-bit lanes, in its kernel's activation order.
struct WeightGroup {
    var w0, w1, w2, w3: SIMD8<Int16>
}

/// A K-quant type (256-element superblocks of eight 32-element groups) for the integer decode driver.
///
/// `y_group = scale·dx·Σ w·q + negativeMin·Σx` over a group's 32 elements, where `q`, `dx` are the
/// rounded activations and their scale and `Σx` their exact sum; with `halfGroupScales`, the first
/// 16 elements of group g use `scales.0[g]` and the last 16 `scales.1[g]`.
protocol Int8SuperBlockKernel {
    associatedtype Header
    static var blockBytes: Int { get }
    /// |Σ of four products| ≤ 2^15 − 1 in every lane (|w| ≤ 31 with |q| ≤ 127 → ≤ 15,748).
    static var fourProductsFitInt16: Bool { get }
    /// Q6_K: the two 16-element halves of a group have their own scales.
    static var halfGroupScales: Bool { get }
    /// The type has mins (an offset proportional to the activation sum).
    static var hasMin: Bool { get }
    static func header(_ block: UnsafeRawPointer) -> Header
    /// Group `g`'s codes; `g` is a literal at every call site, so shifts fold to constants.
    static func weights(_ block: UnsafeRawPointer, group g: Int, header: Header) -> WeightGroup
    /// Per-group scales (of the first and second 16 elements; equal unless `halfGroupScales`).
    static func scales(_ header: Header) -> (SIMD8<Float>, SIMD8<Float>)
    static func negativeMins(_ header: Header) -> SIMD8<Float>
}

/// A type with 32-element blocks that start with an f16 scale `d` (and, with `hasMin`, an f16
/// offset `m` right after it): Q8_0, Q4_0, Q4_1, Q5_0, Q5_1. `y_block = d·dx·Σ w·q + m·Σx`.
protocol Int8Block32Kernel {
    static var blockBytes: Int { get }
    /// |Σ of four products| ≤ 2^15 − 1 in every lane (|w| ≤ 31 with |q| ≤ 127 → ≤ 15,748).
    static var fourProductsFitInt16: Bool { get }
    static var hasMin: Bool { get }
    /// `bitTable` is `QuantizedRows.fifthBitTable` (used by Q5_0/Q5_1).
    static func weights(_ block: UnsafeRawPointer, _ bitTable: UnsafePointer<SIMD8<UInt16>>) -> WeightGroup
}

enum Int8Decode {
    /// Computes `y[t, r]` for `r` in `rows` and every token, for a weight with 32-element blocks.
    ///
    /// Per row, a short pre-pass converts the blocks' f16 scales four at a time (the scalar
    /// conversion costs as much as a block's whole integer dot product) and forms, per token, the
    /// products `d·dx` and the offset `Σ m·Σx`; the main loop is then integer SIMD plus one
    /// `mulps`/`addps` per block and token.
    @inline(__always)
    static func rows32<K: Int8Block32Kernel>(_ kernel: K.Type, _ rows: Range<Int>, _ base: UnsafeRawPointer, _ rowBytes: Int,
                                             _ act: Int8Activations, _ output: DecodeOutput) {
        let tokens = act.tokens
        let blocks = rowBytes / K.blockBytes
        let padded = (blocks + 3) & ~3
        QuantizedRows.fifthBitTable.withUnsafeBufferPointer { table in
        let bitTable = table.baseAddress!
        withUnsafeTemporaryAllocation(of: Float.self, capacity: padded * (tokens + 2) + tokens) { buffer in
            let d = buffer.baseAddress!, m = d + padded, scaled = m + padded, offsets = scaled + padded * tokens
            for r in rows {
                let row = base + r &* rowBytes
                blockScales(row, K.blockBytes, blocks, K.hasMin, d, m)
                for t in 0..<tokens {
                    let dx = act.scales + t &* blocks, sums = act.sums + t &* blocks, out = scaled + t &* padded
                    var offset = SIMD4<Float>()
                    var b = 0
                    while b + 4 <= blocks {
                        let dv = UnsafeRawPointer(d + b).load(as: SIMD4<Float>.self)
                        UnsafeMutableRawPointer(out + b).storeBytes(of: dv * UnsafeRawPointer(dx + b).loadUnaligned(as: SIMD4<Float>.self),
                                                                    as: SIMD4<Float>.self)
                        if K.hasMin {
                            offset += UnsafeRawPointer(m + b).load(as: SIMD4<Float>.self) * UnsafeRawPointer(sums + b).loadUnaligned(as: SIMD4<Float>.self)
                        }
                        b &+= 4
                    }
                    var tail: Float = 0
                    while b < blocks {
                        out[b] = d[b] * dx[b]
                        if K.hasMin { tail += m[b] * sums[b] }
                        b &+= 1
                    }
                    offsets[t] = offset.sum() + tail
                }
                if tokens == 1 {
                    var acc = SIMD4<Float>()
                    var xq = UnsafeRawPointer(act.values)
                    var block = row
                    for b in 0..<blocks {
                        acc += groupSum32(K.weights(block, bitTable), xq, scaled[b], K.self)
                        block += K.blockBytes
                        xq += 64
                    }
                    output.store(acc.sum() + offsets[0], token: 0, row: r)
                } else {
                    var acc = (SIMD4<Float>(), SIMD4<Float>(), SIMD4<Float>(), SIMD4<Float>())
                    var t0 = 0
                    // Up to four tokens per pass over the row, accumulators in registers.
                    while t0 < tokens {
                        let n = min(4, tokens - t0)
                        acc = (SIMD4<Float>(), SIMD4<Float>(), SIMD4<Float>(), SIMD4<Float>())
                        var block = row
                        for b in 0..<blocks {
                            let w = K.weights(block, bitTable)
                            let xq = UnsafeRawPointer(act.values + t0 &* act.inFeatures) + 64 &* b
                            let stride = 2 &* act.inFeatures
                            let s = scaled + t0 &* padded + b
                            acc.0 += groupSum32(w, xq, s[0], K.self)
                            if n > 1 { acc.1 += groupSum32(w, xq + stride, s[padded], K.self) }
                            if n > 2 { acc.2 += groupSum32(w, xq + 2 &* stride, s[2 &* padded], K.self) }
                            if n > 3 { acc.3 += groupSum32(w, xq + 3 &* stride, s[3 &* padded], K.self) }
                            block += K.blockBytes
                        }
                        output.store(acc.0.sum() + offsets[t0], token: t0, row: r)
                        if n > 1 { output.store(acc.1.sum() + offsets[t0 + 1], token: t0 + 1, row: r) }
                        if n > 2 { output.store(acc.2.sum() + offsets[t0 + 2], token: t0 + 2, row: r) }
                        if n > 3 { output.store(acc.3.sum() + offsets[t0 + 3], token: t0 + 3, row: r) }
                        t0 += 4
                    }
                }
            }
        }
        }
    }

    /// The f16 `d` (and `m`) of each block of a row as Float32, four blocks per vector conversion.
    /// Reads 4 bytes at each block start (d and m, or d and the first code bytes); the vectors
    /// past the last block re-read the last block, and `d`/`m` have room for `blocks` rounded up to 4.
    @inline(__always)
    static func blockScales(_ row: UnsafeRawPointer, _ blockBytes: Int, _ blocks: Int, _ hasMin: Bool,
                            _ d: UnsafeMutablePointer<Float>, _ m: UnsafeMutablePointer<Float>) {
        var b = 0
        let last = blocks - 1
        while b < blocks {
            let v = SIMD4<UInt32>(row.u32(b &* blockBytes), row.u32(min(b + 1, last) &* blockBytes),
                                  row.u32(min(b + 2, last) &* blockBytes), row.u32(min(b + 3, last) &* blockBytes))
            UnsafeMutableRawPointer(d + b).storeBytes(of: QuantizedRows.halfToFloat(v & 0xFFFF), as: SIMD4<Float>.self)
            if hasMin {
                UnsafeMutableRawPointer(m + b).storeBytes(of: QuantizedRows.halfToFloat(v &>> 16), as: SIMD4<Float>.self)
            }
            b &+= 4
        }
    }

    /// `Σ w·q` over one 32-block times `scale`, as four Float32 lanes.
    @inline(__always)
    static func groupSum32<K: Int8Block32Kernel>(_ w: WeightGroup, _ xq: UnsafeRawPointer, _ scale: Float, _ kernel: K.Type) -> SIMD4<Float> {
        let p0 = w.w0 &* xq.load(as: SIMD8<Int16>.self)
        let p1 = w.w1 &* xq.load(fromByteOffset: 16, as: SIMD8<Int16>.self)
        let p2 = w.w2 &* xq.load(fromByteOffset: 32, as: SIMD8<Int16>.self)
        let p3 = w.w3 &* xq.load(fromByteOffset: 48, as: SIMD8<Int16>.self)
        if K.fourProductsFitInt16 {
            return SIMD4<Float>(pairSums(p0 &+ p1 &+ p2 &+ p3)) * scale
        } else {
            return SIMD4<Float>(pairSums(p0 &+ p1) &+ pairSums(p2 &+ p3)) * scale
        }
    }

    /// Sums of adjacent Int16 lane pairs, widened to Int32 (lane k = v[2k] + v[2k+1]).
    @inline(__always)
    static func pairSums(_ v: SIMD8<Int16>) -> SIMD4<Int32> {
        let u = unsafeBitCast(v, to: SIMD4<Int32>.self)
        return ((u &<< 16) &>> 16) &+ (u &>> 16)
    }

    /// Computes `y[t, r]` for `r` in `rows` and every token, for a K-quant weight: up to four tokens
    /// per pass over a row (accumulators in registers), the eight groups of a superblock unrolled.
    @inline(__always)
    static func rows256<K: Int8SuperBlockKernel>(_ kernel: K.Type, _ rows: Range<Int>, _ base: UnsafeRawPointer, _ rowBytes: Int,
                                                 _ act: Int8Activations, _ output: DecodeOutput) {
        let tokens = act.tokens, groups = act.groups
        let blocks = rowBytes / K.blockBytes
        for r in rows {
            let row = base + r &* rowBytes
            var t0 = 0
            while t0 < tokens {
                let n = min(4, tokens - t0)
                var acc = (SIMD4<Float>(), SIMD4<Float>(), SIMD4<Float>(), SIMD4<Float>())
                var offsets = SIMD4<Float>()
                for b in 0..<blocks {
                    let block = row + b &* K.blockBytes
                    let header = K.header(block)
                    let (scales0, scales1) = K.scales(header)
                    let negativeMins = K.negativeMins(header)
                    // Per token: the groups' scales times the activation scales, and the min terms.
                    @inline(__always) func prepared(_ t: Int) -> (SIMD8<Float>, SIMD8<Float>) {
                        let dx = UnsafeRawPointer(act.scales + (t0 + t) &* groups + 8 &* b).loadUnaligned(as: SIMD8<Float>.self)
                        if K.hasMin {
                            let sums = UnsafeRawPointer(act.sums + (t0 + t) &* groups + 8 &* b).loadUnaligned(as: SIMD8<Float>.self)
                            offsets[t] += (negativeMins * sums).sum()
                        }
                        return (scales0 * dx, K.halfGroupScales ? scales1 * dx : scales0 * dx)
                    }
                    let s0 = prepared(0)
                    let s1 = n > 1 ? prepared(1) : s0
                    let s2 = n > 2 ? prepared(2) : s0
                    let s3 = n > 3 ? prepared(3) : s0
                    let xq = UnsafeRawPointer(act.values + t0 &* act.inFeatures) + 512 &* b
                    let stride = 2 &* act.inFeatures
                    @inline(__always) func group(_ g: Int) {
                        let w = K.weights(block, group: g, header: header)
                        let x = xq + 64 &* g
                        acc.0 += groupSum(w, x, s0.0[g], s0.1[g], K.self)
                        if n > 1 { acc.1 += groupSum(w, x + stride, s1.0[g], s1.1[g], K.self) }
                        if n > 2 { acc.2 += groupSum(w, x + 2 &* stride, s2.0[g], s2.1[g], K.self) }
                        if n > 3 { acc.3 += groupSum(w, x + 3 &* stride, s3.0[g], s3.1[g], K.self) }
                    }
                    group(0); group(1); group(2); group(3); group(4); group(5); group(6); group(7)
                }
                output.store(acc.0.sum() + offsets[0], token: t0, row: r)
                if n > 1 { output.store(acc.1.sum() + offsets[1], token: t0 + 1, row: r) }
                if n > 2 { output.store(acc.2.sum() + offsets[2], token: t0 + 2, row: r) }
                if n > 3 { output.store(acc.3.sum() + offsets[3], token: t0 + 3, row: r) }
                t0 += 4
            }
        }
    }

    /// `Σ w·q` over one group, scaled, as four Float32 lanes (their sum is the group's value).
    @inline(__always)
    static func groupSum<K: Int8SuperBlockKernel>(_ w: WeightGroup, _ xq: UnsafeRawPointer, _ s0: Float, _ s1: Float,
                                                  _ kernel: K.Type) -> SIMD4<Float> {
        // 64-byte aligned: the activation buffer is, and groups are 64 bytes apart.
        let p0 = w.w0 &* xq.load(as: SIMD8<Int16>.self)
        let p1 = w.w1 &* xq.load(fromByteOffset: 16, as: SIMD8<Int16>.self)
        let p2 = w.w2 &* xq.load(fromByteOffset: 32, as: SIMD8<Int16>.self)
        let p3 = w.w3 &* xq.load(fromByteOffset: 48, as: SIMD8<Int16>.self)
        if K.halfGroupScales {
            // Lanes of w0, w1 are elements 0..<16 and of w2, w3 elements 16..<32 (`.bytePairs`).
            return SIMD4<Float>(pairSums(p0 &+ p1)) * s0 + SIMD4<Float>(pairSums(p2 &+ p3)) * s1
        } else if K.fourProductsFitInt16 {
            return SIMD4<Float>(pairSums(p0 &+ p1 &+ p2 &+ p3)) * s0
        } else {
            return SIMD4<Float>(pairSums(p0 &+ p1) &+ pairSums(p2 &+ p3)) * s0
        }
    }
}

// MARK: - Per-type unpacking (block layouts: reference/formats.md §4.6)

@inline(__always)
private func codes(_ v: SIMD8<UInt16>) -> SIMD8<Int16> { unsafeBitCast(v, to: SIMD8<Int16>.self) }

/// Q8_0 (34 B / 32): `d:f16, qs:int8[32]`; w = qs, scale d. One product ≤ 128·127, so only pairs
/// of products are summed in Int16 (≤ 32,512).
enum Q8_0Kernel: Int8Block32Kernel {
    static var blockBytes: Int { 34 }
    static var fourProductsFitInt16: Bool { false }
    static var hasMin: Bool { false }
    @inline(__always)
    static func weights(_ block: UnsafeRawPointer, _ bitTable: UnsafePointer<SIMD8<UInt16>>) -> WeightGroup {
        let v0 = block.loadUnaligned(fromByteOffset: 2, as: SIMD8<Int16>.self)
        let v1 = block.loadUnaligned(fromByteOffset: 18, as: SIMD8<Int16>.self)
        // Low bytes (even elements) sign-extended by shifting up and arithmetically down.
        return WeightGroup(w0: (v0 &<< 8) &>> 8, w1: v0 &>> 8, w2: (v1 &<< 8) &>> 8, w3: v1 &>> 8)
    }
}

/// Q4_0 (18 B / 32): `d:f16, qs:u8[16]`; w = nibble − 8 ∈ −8…7, scale d.
enum Q4_0Kernel: Int8Block32Kernel {
    static var blockBytes: Int { 18 }
    static var fourProductsFitInt16: Bool { true }
    static var hasMin: Bool { false }
    @inline(__always)
    static func weights(_ block: UnsafeRawPointer, _ bitTable: UnsafePointer<SIMD8<UInt16>>) -> WeightGroup {
        let g = nibbleHalves(block.loadUnaligned(fromByteOffset: 2, as: SIMD8<UInt16>.self))
        return WeightGroup(w0: g.w0 &- 8, w1: g.w1 &- 8, w2: g.w2 &- 8, w3: g.w3 &- 8)
    }
}

/// Q4_1 (20 B / 32): `d:f16, m:f16, qs:u8[16]`; w = nibble ∈ 0…15, scale d, offset m.
enum Q4_1Kernel: Int8Block32Kernel {
    static var blockBytes: Int { 20 }
    static var fourProductsFitInt16: Bool { true }
    static var hasMin: Bool { true }
    @inline(__always)
    static func weights(_ block: UnsafeRawPointer, _ bitTable: UnsafePointer<SIMD8<UInt16>>) -> WeightGroup {
        nibbleHalves(block.loadUnaligned(fromByteOffset: 4, as: SIMD8<UInt16>.self))
    }
}

/// Q5_0 (22 B / 32): `d:f16, qh:u32, qs:u8[16]`; w = (nibble | 16·bit) − 16 ∈ −16…15, scale d.
enum Q5_0Kernel: Int8Block32Kernel {
    static var blockBytes: Int { 22 }
    static var fourProductsFitInt16: Bool { true }
    static var hasMin: Bool { false }
    @inline(__always)
    static func weights(_ block: UnsafeRawPointer, _ bitTable: UnsafePointer<SIMD8<UInt16>>) -> WeightGroup {
        let w = fiveBitCodes(block.loadUnaligned(fromByteOffset: 6, as: SIMD16<UInt8>.self), block.u32(2), bitTable)
        return WeightGroup(w0: w.w0 &- 16, w1: w.w1 &- 16, w2: w.w2 &- 16, w3: w.w3 &- 16)
    }
}

/// Q5_1 (24 B / 32): `d:f16, m:f16, qh:u32, qs:u8[16]`; w = nibble | 16·bit ∈ 0…31, scale d, offset m.
enum Q5_1Kernel: Int8Block32Kernel {
    static var blockBytes: Int { 24 }
    static var fourProductsFitInt16: Bool { true }
    static var hasMin: Bool { true }
    @inline(__always)
    static func weights(_ block: UnsafeRawPointer, _ bitTable: UnsafePointer<SIMD8<UInt16>>) -> WeightGroup {
        fiveBitCodes(block.loadUnaligned(fromByteOffset: 8, as: SIMD16<UInt8>.self), block.u32(4), bitTable)
    }
}

/// The 32 nibbles of Q4_0/Q4_1/Q5_x `qs` (byte j: element j low, element j+16 high) in `.nibbleHalves` order.
@inline(__always)
private func nibbleHalves(_ v: SIMD8<UInt16>) -> WeightGroup {
    WeightGroup(w0: codes(v & 0x0F), w1: codes((v &>> 4) & 0x0F), w2: codes((v &>> 8) & 0x0F), w3: codes(v &>> 12))
}

/// Q5_0/Q5_1 codes in `.natural` order: vector k lane i is element 8k + i, i.e. the low (k < 2) or
/// high nibble of byte 8(k%2) + i widened with `punpck*`, plus 16 × bit 8k + i of `h`, read from a
/// table indexed by byte k of `h`. (With the other orders the fifth bits are not consecutive; built
/// with lane shifts, LLVM turns them into per-lane variable shifts, which SSE2 lacks, and
/// scalarizes the whole block.)
@inline(__always)
private func fiveBitCodes(_ qs: SIMD16<UInt8>, _ h: UInt32, _ table: UnsafePointer<SIMD8<UInt16>>) -> WeightGroup {
    let low = qs & 0x0F, high = qs &>> 4
    return WeightGroup(w0: codes(SIMD8<UInt16>(truncatingIfNeeded: low.lowHalf) | table[Int(h & 0xFF)]),
                       w1: codes(SIMD8<UInt16>(truncatingIfNeeded: low.highHalf) | table[Int((h >> 8) & 0xFF)]),
                       w2: codes(SIMD8<UInt16>(truncatingIfNeeded: high.lowHalf) | table[Int((h >> 16) & 0xFF)]),
                       w3: codes(SIMD8<UInt16>(truncatingIfNeeded: high.highHalf) | table[Int(h >> 24)]))
}

/// Scales and mins of a Q4_K/Q5_K block, formed as the reference does: `d·sc_j`, `dmin·m_j`.
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
        scale = SIMD8<Float>(repeating: d) * SIMD8<Float>(sc)
        negativeMin = -(SIMD8<Float>(repeating: dmin) * SIMD8<Float>(m))
    }
}

/// 32 nibbles of a K-quant group: low (`shift` 0) or high (4) nibbles of 32 bytes, `.bytePairs` order.
@inline(__always)
private func nibblePairs(_ v0: SIMD8<UInt16>, _ v1: SIMD8<UInt16>, shift: UInt16) -> WeightGroup {
    WeightGroup(w0: codes((v0 &>> shift) & 0x0F), w1: codes((v0 &>> (shift + 8)) & 0x0F),
                w2: codes((v1 &>> shift) & 0x0F), w3: codes((v1 &>> (shift + 8)) & 0x0F))
}

/// Q4_K (144 B / 256): `d, dmin:f16, scales:u8[12], qs:u8[128]`. Group g uses the low (g even) or
/// high nibbles of `qs[32(g/2) …]`; w ∈ 0…15, scale `d·sc_g`, offset `−dmin·m_g`.
enum Q4_KKernel: Int8SuperBlockKernel {
    static var blockBytes: Int { 144 }
    static var fourProductsFitInt16: Bool { true }
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
enum Q5_KKernel: Int8SuperBlockKernel {
    static var blockBytes: Int { 176 }
    static var fourProductsFitInt16: Bool { true }
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
        // Bit g of the low byte of a lane → 16; of the high byte (bit g + 8) → 16.
        @inline(__always) func fifth(_ h: SIMD8<UInt16>, _ bit: Int) -> SIMD8<Int16> {
            codes((bit >= 4 ? h &>> UInt16(bit - 4) : h &<< UInt16(4 - bit)) & 16)
        }
        return WeightGroup(w0: n.w0 | fifth(h0, g), w1: n.w1 | fifth(h0, g + 8),
                           w2: n.w2 | fifth(h1, g), w3: n.w3 | fifth(h1, g + 8))
    }
    @inline(__always)
    static func scales(_ h: KQuantHeader) -> (SIMD8<Float>, SIMD8<Float>) { (h.scale, h.scale) }
    @inline(__always)
    static func negativeMins(_ h: KQuantHeader) -> SIMD8<Float> { h.negativeMin }
}

/// Q6_K (210 B / 256): `ql:u8[128], qh:u8[64], scales:i8[16], d:f16`. Group g = 4h + j (half h,
/// j = 0…3) holds elements 128h + 32j + l: low (j < 2) or high nibble of `ql[64h + 32(j%2) + l]`,
/// bits 2j…2j+1 of `qh[32h + l]`; w = q − 32 ∈ −32…31; 16-element scales `d·scales[2g]`,
/// `d·scales[2g+1]`. Two products per lane ≤ 2·32·127 = 8,128.
enum Q6_KKernel: Int8SuperBlockKernel {
    static var blockBytes: Int { 210 }
    static var fourProductsFitInt16: Bool { false }
    static var halfGroupScales: Bool { true }
    static var hasMin: Bool { false }
    /// `d·scales[2g]` and `d·scales[2g+1]` for the eight groups, as the reference forms them.
    @inline(__always)
    static func header(_ block: UnsafeRawPointer) -> (SIMD8<Float>, SIMD8<Float>) {
        let d = SIMD8<Float>(repeating: QuantizedRows.halfToFloat(block.u16(208)))
        // Lane g holds scales[2g] (low byte) and scales[2g+1] (high byte).
        let v = block.loadUnaligned(fromByteOffset: 192, as: SIMD8<Int16>.self)
        return (d * SIMD8<Float>(SIMD8<Int32>(truncatingIfNeeded: (v &<< 8) &>> 8)),
                d * SIMD8<Float>(SIMD8<Int32>(truncatingIfNeeded: v &>> 8)))
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
        // Bits 2j…2j+1 of the low byte of a lane → bits 4…5; of the high byte (bits 2j + 8 …) likewise.
        @inline(__always) func high(_ h: SIMD8<UInt16>, _ bit: Int) -> SIMD8<Int16> {
            codes((bit >= 4 ? h &>> UInt16(bit - 4) : h &<< UInt16(4 - bit)) & 48)
        }
        return WeightGroup(w0: (n.w0 | high(h0, 2 * j)) &- 32, w1: (n.w1 | high(h0, 2 * j + 8)) &- 32,
                           w2: (n.w2 | high(h1, 2 * j)) &- 32, w3: (n.w3 | high(h1, 2 * j + 8)) &- 32)
    }
    @inline(__always)
    static func scales(_ h: (SIMD8<Float>, SIMD8<Float>)) -> (SIMD8<Float>, SIMD8<Float>) { h }
    @inline(__always)
    static func negativeMins(_ h: (SIMD8<Float>, SIMD8<Float>)) -> SIMD8<Float> { SIMD8<Float>() }
}

// MARK: - Float32 decode (F32/F16/BF16 weights, and the `.float32` arithmetic)

enum FloatDecode {
    /// `y[t, r] = Σ w[r, j]·x[t, j]` in Float32 for `r` in `rows`. F16/BF16/F32 rows are converted in
    /// registers; block-quantized rows are first dequantized into `scratch` (`inFeatures` floats).
    static func rows(_ rows: Range<Int>, type: GGMLType, base: UnsafeRawPointer, rowBytes: Int, inFeatures: Int,
                     x: UnsafePointer<Float>, tokens: Int, output: DecodeOutput, scratch: UnsafeMutablePointer<Float>?) {
        switch type {
        case .f16:
            for r in rows { dotRow(HalfLoader.self, base + r * rowBytes, r, inFeatures, x, tokens, output) }
        case .bf16:
            for r in rows { dotRow(BFloat16Loader.self, base + r * rowBytes, r, inFeatures, x, tokens, output) }
        case .f32:
            for r in rows { dotRow(FloatLoader.self, base + r * rowBytes, r, inFeatures, x, tokens, output) }
        default:
            guard let scratch else { preconditionFailure("FloatDecode: \(type.name) needs a scratch row") }
            for r in rows {
                QuantizedRows.dequantize(type, base + r * rowBytes, count: inFeatures, into: scratch)
                dotRow(FloatLoader.self, UnsafeRawPointer(scratch), r, inFeatures, x, tokens, output)
            }
        }
    }

    /// Output row `r` for every token from the weights at `row`.
    @inline(__always)
    static func dotRow<L: FloatRowLoader>(_ loader: L.Type, _ row: UnsafeRawPointer, _ r: Int, _ inFeatures: Int,
                                          _ x: UnsafePointer<Float>, _ tokens: Int, _ output: DecodeOutput) {
        let n8 = inFeatures & ~7
        var t = 0
        // Two tokens at a time share each conversion; a single one uses four accumulators.
        while t + 2 <= tokens {
            let x0 = UnsafeRawPointer(x + t * inFeatures), x1 = UnsafeRawPointer(x + (t + 1) * inFeatures)
            var a0 = SIMD4<Float>(), b0 = SIMD4<Float>(), a1 = SIMD4<Float>(), b1 = SIMD4<Float>()
            var j = 0
            while j < n8 {
                let (lo, hi) = L.load8(row, j)
                a0 += lo * x0.loadUnaligned(fromByteOffset: 4 * j, as: SIMD4<Float>.self)
                b0 += hi * x0.loadUnaligned(fromByteOffset: 4 * j + 16, as: SIMD4<Float>.self)
                a1 += lo * x1.loadUnaligned(fromByteOffset: 4 * j, as: SIMD4<Float>.self)
                b1 += hi * x1.loadUnaligned(fromByteOffset: 4 * j + 16, as: SIMD4<Float>.self)
                j += 8
            }
            var s0 = (a0 + b0).sum(), s1 = (a1 + b1).sum()
            while j < inFeatures {
                let w = L.load1(row, j)
                s0 += w * x[t * inFeatures + j]
                s1 += w * x[(t + 1) * inFeatures + j]
                j += 1
            }
            output.store(s0, token: t, row: r)
            output.store(s1, token: t + 1, row: r)
            t += 2
        }
        if t < tokens {
            let x0 = UnsafeRawPointer(x + t * inFeatures)
            var a0 = SIMD4<Float>(), b0 = SIMD4<Float>(), a1 = SIMD4<Float>(), b1 = SIMD4<Float>()
            var j = 0
            while j + 16 <= n8 {
                let (lo, hi) = L.load8(row, j)
                let (lo2, hi2) = L.load8(row, j + 8)
                a0 += lo * x0.loadUnaligned(fromByteOffset: 4 * j, as: SIMD4<Float>.self)
                b0 += hi * x0.loadUnaligned(fromByteOffset: 4 * j + 16, as: SIMD4<Float>.self)
                a1 += lo2 * x0.loadUnaligned(fromByteOffset: 4 * j + 32, as: SIMD4<Float>.self)
                b1 += hi2 * x0.loadUnaligned(fromByteOffset: 4 * j + 48, as: SIMD4<Float>.self)
                j += 16
            }
            while j < n8 {
                let (lo, hi) = L.load8(row, j)
                a0 += lo * x0.loadUnaligned(fromByteOffset: 4 * j, as: SIMD4<Float>.self)
                b0 += hi * x0.loadUnaligned(fromByteOffset: 4 * j + 16, as: SIMD4<Float>.self)
                j += 8
            }
            var s = ((a0 + b0) + (a1 + b1)).sum()
            while j < inFeatures {
                s += L.load1(row, j) * x[t * inFeatures + j]
                j += 1
            }
            output.store(s, token: t, row: r)
        }
    }
}

/// Eight consecutive weights of a row as Float32, for `FloatDecode`.
protocol FloatRowLoader {
    static func load8(_ row: UnsafeRawPointer, _ j: Int) -> (SIMD4<Float>, SIMD4<Float>)
    static func load1(_ row: UnsafeRawPointer, _ j: Int) -> Float
}

enum FloatLoader: FloatRowLoader {
    @inline(__always) static func load8(_ row: UnsafeRawPointer, _ j: Int) -> (SIMD4<Float>, SIMD4<Float>) {
        (row.loadUnaligned(fromByteOffset: 4 * j, as: SIMD4<Float>.self),
         row.loadUnaligned(fromByteOffset: 4 * j + 16, as: SIMD4<Float>.self))
    }
    @inline(__always) static func load1(_ row: UnsafeRawPointer, _ j: Int) -> Float {
        row.loadUnaligned(fromByteOffset: 4 * j, as: Float.self)
    }
}

enum HalfLoader: FloatRowLoader {
    @inline(__always) static func load8(_ row: UnsafeRawPointer, _ j: Int) -> (SIMD4<Float>, SIMD4<Float>) {
        let w = SIMD8<UInt32>(truncatingIfNeeded: row.loadUnaligned(fromByteOffset: 2 * j, as: SIMD8<UInt16>.self))
        return (QuantizedRows.halfToFloat(w.lowHalf), QuantizedRows.halfToFloat(w.highHalf))
    }
    @inline(__always) static func load1(_ row: UnsafeRawPointer, _ j: Int) -> Float {
        HalfPrecision.float(fromHalf: row.u16(2 * j))
    }
}

enum BFloat16Loader: FloatRowLoader {
    @inline(__always) static func load8(_ row: UnsafeRawPointer, _ j: Int) -> (SIMD4<Float>, SIMD4<Float>) {
        let w = SIMD8<UInt32>(truncatingIfNeeded: row.loadUnaligned(fromByteOffset: 2 * j, as: SIMD8<UInt16>.self)) &<< 16
        return (unsafeBitCast(w.lowHalf, to: SIMD4<Float>.self), unsafeBitCast(w.highHalf, to: SIMD4<Float>.self))
    }
    @inline(__always) static func load1(_ row: UnsafeRawPointer, _ j: Int) -> Float {
        HalfPrecision.float(fromBFloat16: row.u16(2 * j))
    }
}
