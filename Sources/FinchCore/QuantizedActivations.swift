/// The lane order in which a block type's decode kernel unpacks a group of 32 weight codes; each
/// token's rounded activations are stored in the same order (`QuantizedActivations`), so no
/// shuffles are needed in the inner loop (SSE2 has no byte shuffle).
///
/// Within a 32-element group, vector `n` (0..<4) lane `i` (0..<8) holds element:
/// - `.nibbleHalves` (Q4_0, Q4_1: byte j holds elements j and j + 16): `2i + n/2 + 16·(n%2)`;
/// - `.bytePairs` (Q8_0, Q4_K, Q5_K, Q6_K: 32 consecutive bytes or nibbles read as 16-bit lanes):
///   `2i + n%2 + 16·(n/2)`;
/// - `.natural` (Q5_0, Q5_1, whose fifth bits come out in element order): `8n + i`.
enum ActivationOrder {
    case nibbleHalves, bytePairs, natural

    /// The order a block type's kernel expects.
    init(_ type: GGMLType) {
        switch type {
        case .q4_0, .q4_1: self = .nibbleHalves
        case .q5_0, .q5_1: self = .natural
        default: self = .bytePairs
        }
    }
}

/// Activations of a few tokens rounded to 16-bit integers, one scale and one exact sum per 32
/// elements, for the integer decode kernels.
///
/// As ggml's `quantize_row_q8_0`/`q8_1` (ggml-quants.c) but to 16 bits: `d = max|x|/32767`,
/// `q = round(x/d)`, so `|x − d·q| ≤ d/2`. ggml rounds to 8 bits because its AVX2 dot products use
/// `maddubs` (u8 × i8); Finch's use SSE2 `pmaddwd` (i16 × i16), so 16 bits cost nothing and make the
/// rounding error 258× smaller. Rounding is to nearest even (ggml's AVX path, `_mm256_round_ps`;
/// its scalar reference rounds ties away from zero).
///
/// Layout, in one 64-byte-aligned scratch buffer: `values: (tokens, inFeatures) Int16` in
/// `ActivationOrder`, then `scales: (tokens, groups)` and `sums: (tokens, groups)` Float32, where
/// `sums` are the exact Float32 sums of the activations (for the weights' offset terms).
struct QuantizedActivations: @unchecked Sendable {
    let values: UnsafeMutablePointer<Int16>
    let scales: UnsafeMutablePointer<Float>
    let sums: UnsafeMutablePointer<Float>
    let tokens: Int
    let inFeatures: Int
    var groups: Int { inFeatures / 32 }

    static func byteCount(tokens: Int, inFeatures: Int) -> Int {
        tokens * (2 * inFeatures + 2 * 4 * (inFeatures / 32))
    }

    /// - Precondition: `raw` is 64-byte aligned with `byteCount(…)` bytes; `inFeatures % 32 == 0`.
    init(_ raw: UnsafeMutableRawPointer, tokens: Int, inFeatures: Int) {
        precondition(inFeatures % 32 == 0 && Int(bitPattern: raw) % 64 == 0)
        let groups = inFeatures / 32
        values = raw.bindMemory(to: Int16.self, capacity: tokens * inFeatures)
        let floats = (raw + 2 * tokens * inFeatures).bindMemory(to: Float.self, capacity: 2 * tokens * groups)
        scales = floats
        sums = floats + tokens * groups
        self.tokens = tokens
        self.inFeatures = inFeatures
    }

    /// Rounds token `t`'s activations `x: (inFeatures)` group by group, stored in `order`.
    ///
    /// With `eightBit`, ggml's own 8-bit rounding (`LinearWeight.Arithmetic.ggml`).
    /// A group holding a NaN or an infinity gets a NaN scale, so every output it touches is NaN.
    func quantize(_ x: UnsafePointer<Float>, token t: Int, order: ActivationOrder, eightBit: Bool = false) {
        let q = values + t * inFeatures
        for g in 0..<groups {
            let src = UnsafeRawPointer(x + 32 * g)
            @inline(__always) func load(_ k: Int) -> SIMD4<Float> { src.loadUnaligned(fromByteOffset: 16 * k, as: SIMD4<Float>.self) }
            let v0 = load(0), v1 = load(1), v2 = load(2), v3 = load(3), v4 = load(4), v5 = load(5), v6 = load(6), v7 = load(7)
            let sum = (((v0 + v1) + (v2 + v3)) + ((v4 + v5) + (v6 + v7))).sum()
            // max |x| on the bit patterns, whose integer order is the order of non-negative floats
            // (NaN patterns sort above infinity); `pointwiseMax` on floats compiles to scalar code.
            @inline(__always) func magnitude(_ v: SIMD4<Float>) -> SIMD4<Int32> { unsafeBitCast(v, to: SIMD4<Int32>.self) & 0x7FFF_FFFF }
            @inline(__always) func larger(_ a: SIMD4<Int32>, _ b: SIMD4<Int32>) -> SIMD4<Int32> {
                a &+ ((b &- a) & ((a &- b) &>> 31)) // a − b cannot overflow: both are in 0..<2^31
            }
            let m = larger(larger(larger(magnitude(v0), magnitude(v1)), larger(magnitude(v2), magnitude(v3))),
                           larger(larger(magnitude(v4), magnitude(v5)), larger(magnitude(v6), magnitude(v7))))
            let amaxBits = max(max(m[0], m[1]), max(m[2], m[3]))
            let amax = Float(bitPattern: UInt32(amaxBits))
            let finite = amaxBits < 0x7F80_0000 && sum.isFinite
            let dst = UnsafeMutableRawPointer(q + 32 * g)
            scales[t * groups + g] = !finite ? .nan : eightBit ? HalfPrecision.float(fromHalf: HalfPrecision.half(from: amax / 127)) : amax / 32767
            sums[t * groups + g] = sum
            guard finite, amax > 0 else {
                dst.initializeMemory(as: Int16.self, repeating: 0, count: 32)
                continue
            }
            // Round to nearest even by adding 1.5·2^23 (exact for |v| ≤ 2^22); the low 16 bits of
            // the result's bit pattern are then the integer. No libcall, no trapping conversion.
            let inverse = SIMD4<Float>(repeating: (eightBit ? 127 : 32767) / amax), magic = SIMD4<Float>(repeating: 12_582_912)
            @inline(__always) func rounded(_ v: SIMD4<Float>) -> SIMD4<Int32> { unsafeBitCast(v * inverse + magic, to: SIMD4<Int32>.self) }
            let r = (rounded(v0), rounded(v1), rounded(v2), rounded(v3), rounded(v4), rounded(v5), rounded(v6), rounded(v7))
            /// Element e (0..<32) of the group.
            @inline(__always) func element(_ e: Int) -> Int32 {
                switch e >> 2 {
                case 0: r.0[e & 3]
                case 1: r.1[e & 3]
                case 2: r.2[e & 3]
                case 3: r.3[e & 3]
                case 4: r.4[e & 3]
                case 5: r.5[e & 3]
                case 6: r.6[e & 3]
                default: r.7[e & 3]
                }
            }
            // Vector n: elements `first + step·i` for lanes i (constants after unrolling, so LLVM
            // emits `shufps`/`packssdw`).
            @inline(__always) func store(_ n: Int, first: Int, step: Int) {
                var lanes = SIMD8<Int32>()
                for i in 0..<8 { lanes[i] = element(first + step * i) }
                dst.storeBytes(of: QuantizedLanes.int16(truncating: lanes), toByteOffset: 16 * n, as: SIMD8<Int16>.self)
            }
            switch order {
            case .natural:
                store(0, first: 0, step: 1); store(1, first: 8, step: 1); store(2, first: 16, step: 1); store(3, first: 24, step: 1)
            case .bytePairs:
                store(0, first: 0, step: 2); store(1, first: 1, step: 2); store(2, first: 16, step: 2); store(3, first: 17, step: 2)
            case .nibbleHalves:
                store(0, first: 0, step: 2); store(1, first: 16, step: 2); store(2, first: 1, step: 2); store(3, first: 17, step: 2)
            }
        }
    }
}
