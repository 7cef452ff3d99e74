/// Fused Float32 decode for the 32-element block types Q8_0, Q4_0 and Q4_1 (`Arithmetic.float32`):
/// per block b of a row, `d_b · Σ_i c_i·x_i (+ m_b · Σ_i x_i)`, with the integer codes `c_i`
/// converted exactly to Float32 in registers and multiplied in Float32. This is the same sum as
/// dequantizing (`w_i = d_b·c_i + m_b`, ggml's `dequantize_row_q4_1`) and then taking the dot
/// product, but no weight is rounded to Float32 on its own and nothing is written to memory.
///
/// Layout trick (no lane shuffles, which Swift's SIMD types cannot express portably): the code
/// bytes of a row are read as 32-bit words, 16 words per step (four Q4 blocks of 16 bytes, or two
/// Q8_0 blocks of 32); byte k (and, for Q4, nibble n) of every word is isolated with one shift and
/// one mask, and turned into a float exactly by or-ing it into the mantissa of 2²³ and subtracting
/// 2²³. Lane L of the vector for (n, k) then holds element `32·block + 16n + 4i + k` of word
/// `L = wordsPerBlock·block + i`. The activations are permuted once per call into that order
/// (`FloatBlockLayout`), so each step is shift, and, or, subtract, multiply, add on 16 lanes: one
/// AVX-512 instruction each when the package is compiled for the host CPU (Package.swift), four
/// SSE instructions otherwise. `Σ_i x_i` per block (for Q4_1's `m`) is computed once per call.
enum FloatBlockDecode {
    static func supports(_ type: GGMLType) -> Bool {
        type == .q8_0 || type == .q4_0 || type == .q4_1
    }

    /// Scratch floats a call with `tokens` tokens needs: the permuted activations and block sums.
    static func scratchCount(_ type: GGMLType, tokens: Int, inFeatures: Int) -> Int {
        let layout = FloatBlockLayout(type, inFeatures: inFeatures)
        return tokens * layout.perToken
    }

    /// `y[t, r] (+)= Σ_j w[r, j]·x[t, j]` for `r` in `rows` and every token; `prepared` is the output of
    /// `prepare` for these activations.
    static func rows(_ rows: Range<Int>, type: GGMLType, base: UnsafeRawPointer, rowBytes: Int, inFeatures: Int,
                     tokens: Int, prepared: UnsafePointer<Float>, output: DecodeOutput) {
        let layout = FloatBlockLayout(type, inFeatures: inFeatures)
        switch type {
        case .q8_0: run(Q8_0Codes.self, layout, rows, base, rowBytes, tokens, prepared, output)
        case .q4_0: run(Q4_0Codes.self, layout, rows, base, rowBytes, tokens, prepared, output)
        case .q4_1: run(Q4_1Codes.self, layout, rows, base, rowBytes, tokens, prepared, output)
        default: preconditionFailure("FloatBlockDecode: no kernel for \(type.name)")
        }
    }

    /// Writes, per token, the activations in kernel order (zero-padded to whole steps) followed by
    /// the Float32 sum of each block, into `scratch` (`scratchCount` floats).
    static func prepare(_ type: GGMLType, _ x: UnsafePointer<Float>, tokens: Int, inFeatures: Int,
                        into scratch: UnsafeMutablePointer<Float>) {
        let layout = FloatBlockLayout(type, inFeatures: inFeatures)
        let permuted = layout.permutedCount
        let nibbles = layout.nibbles, wordsPerBlock = layout.wordsPerBlock, blocksPerStep = layout.blocksPerStep
        for t in 0..<tokens {
            let source = x + t * inFeatures
            let target = scratch + t * layout.perToken
            target.update(repeating: 0, count: permuted)
            for block in 0..<layout.blocks {
                let step = block / blocksPerStep
                let laneBase = (block % blocksPerStep) * wordsPerBlock
                for n in 0..<nibbles {
                    for i in 0..<wordsPerBlock {
                        for k in 0..<4 {
                            let vector = n * 4 + k
                            target[(step * nibbles * 4 + vector) * 16 + laneBase + i] = source[32 * block + 16 * n + 4 * i + k]
                        }
                    }
                }
            }
            let sums = target + permuted
            for block in 0..<layout.blocks {
                let row = UnsafeRawPointer(source + 32 * block)
                let v = row.loadUnaligned(as: SIMD16<Float>.self) + row.loadUnaligned(fromByteOffset: 64, as: SIMD16<Float>.self)
                sums[block] = v.sum()
            }
        }
    }

    @inline(__always)
    static func run<K: FloatBlockCodes>(_ kernel: K.Type, _ layout: FloatBlockLayout, _ rows: Range<Int>,
                                        _ base: UnsafeRawPointer, _ rowBytes: Int, _ tokens: Int,
                                        _ prepared: UnsafePointer<Float>, _ output: DecodeOutput) {
        let blocks = layout.blocks, steps = layout.steps
        let fullSteps = blocks / K.blocksPerStep
        let perToken = layout.perToken, stepBytes = K.vectors &* 64
        for r in rows {
            let row = base + r &* rowBytes
            for t in 0..<tokens {
                let x = UnsafeRawPointer(prepared + t &* perToken)
                let sums = UnsafeRawPointer(prepared + t &* perToken + layout.permutedCount)
                var acc0 = SIMD16<Float>(), acc1 = SIMD16<Float>()
                var offsets = SIMD4<Float>()
                var step = 0
                // Two steps per iteration into separate accumulators (independent add chains).
                while step + 2 <= fullSteps {
                    let first = step &* K.blocksPerStep, next = first &+ K.blocksPerStep
                    acc0.addProduct(K.dot(K.words(row, first: first), x + step &* stepBytes), K.laneScales(row, first: first))
                    acc1.addProduct(K.dot(K.words(row, first: next), x + (step &+ 1) &* stepBytes), K.laneScales(row, first: next))
                    if K.hasMin {
                        offsets += K.minima(row, first: first) * sums.loadUnaligned(fromByteOffset: 4 &* first, as: SIMD4<Float>.self)
                        offsets += K.minima(row, first: next) * sums.loadUnaligned(fromByteOffset: 4 &* next, as: SIMD4<Float>.self)
                    }
                    step &+= 2
                }
                while step < steps {
                    let first = step &* K.blocksPerStep
                    let count = min(K.blocksPerStep, blocks &- first)
                    let words = count == K.blocksPerStep ? K.words(row, first: first) : K.partialWords(row, first: first, blocks: blocks)
                    acc0 += K.dot(words, x + step &* stepBytes) * K.laneScales(row, first: first, count: count)
                    if K.hasMin {
                        for b in first..<(first &+ count) {
                            offsets[0] += K.minimum(row, block: b) * sums.load(fromByteOffset: 4 &* b, as: Float.self)
                        }
                    }
                    step &+= 1
                }
                output.store((acc0 + acc1).sum() + offsets.sum(), token: t, row: r)
            }
        }
    }
}

/// Shape of the permuted activations for one row length.
struct FloatBlockLayout {
    let blocks: Int
    let wordsPerBlock: Int
    let nibbles: Int
    var blocksPerStep: Int { 16 / wordsPerBlock }
    var steps: Int { (blocks + blocksPerStep - 1) / blocksPerStep }
    /// Floats per token: every step holds `4·nibbles` vectors of 16 lanes.
    var permutedCount: Int { steps * nibbles * 4 * 16 }
    /// Floats per token in the scratch: the permuted activations, then the block sums, rounded up
    /// to 16 so that every token's vectors stay 64-byte aligned.
    var perToken: Int { permutedCount + (blocks + 15) & ~15 }

    init(_ type: GGMLType, inFeatures: Int) {
        blocks = inFeatures / 32
        (wordsPerBlock, nibbles) = type == .q8_0 ? (8, 1) : (4, 2)
    }
}

/// Per-type pieces of `FloatBlockDecode.run`.
protocol FloatBlockCodes {
    static var blockBytes: Int { get }
    static var hasMin: Bool { get }
    static var blocksPerStep: Int { get }
    /// 16-lane vectors per step (`4·nibbles`).
    static var vectors: Int { get }
    /// The 16 code words of blocks `first ..< first + blocksPerStep`.
    static func words(_ row: UnsafeRawPointer, first: Int) -> SIMD16<UInt32>
    /// The same for the last, partial step: words past `blocks` are zero.
    static func partialWords(_ row: UnsafeRawPointer, first: Int, blocks: Int) -> SIMD16<UInt32>
    /// `Σ_v codes_v · x_v` lane by lane, `x` the step's permuted activations.
    static func dot(_ words: SIMD16<UInt32>, _ x: UnsafeRawPointer) -> SIMD16<Float>
}

#if os(macOS) && arch(x86_64)
/// Float16 is unavailable here: the exact bit-level conversion.
@inline(__always) private func half(_ bits: UInt16) -> Float { HalfPrecision.float(fromHalf: bits) }
#else
/// One f16 to Float32 (a single `vcvtph2ps` with F16C; exact either way).
@inline(__always) private func half(_ bits: UInt16) -> Float { Float(Float16(bitPattern: bits)) }
#endif

extension FloatBlockCodes {
    /// Block b's scale `d` (the f16 at the start of the block).
    @inline(__always)
    static func scale(_ row: UnsafeRawPointer, block b: Int) -> Float {
        half(row.loadUnaligned(fromByteOffset: b &* blockBytes, as: UInt16.self))
    }

    /// Block b's minimum `m` (the f16 after `d`; Q4_1).
    @inline(__always)
    static func minimum(_ row: UnsafeRawPointer, block b: Int) -> Float {
        half(row.loadUnaligned(fromByteOffset: b &* blockBytes &+ 2, as: UInt16.self))
    }

    /// The minima of blocks `first ..< first + 4`.
    @inline(__always)
    static func minima(_ row: UnsafeRawPointer, first: Int) -> SIMD4<Float> {
        SIMD4(minimum(row, block: first), minimum(row, block: first &+ 1), minimum(row, block: first &+ 2), minimum(row, block: first &+ 3))
    }

    /// Each lane's block scale for the step starting at block `first`: lane L belongs to block
    /// `first + L / (16 / blocksPerStep)`; blocks at or past `first + count` get 0.
    @inline(__always)
    static func laneScales(_ row: UnsafeRawPointer, first: Int, count: Int? = nil) -> SIMD16<Float> {
        let n = count ?? blocksPerStep
        @inline(__always) func d(_ j: Int) -> Float { j < n ? scale(row, block: first &+ j) : 0 }
        if blocksPerStep == 4 {
            let (a, b, c, e) = (d(0), d(1), d(2), d(3))
            return SIMD16(a, a, a, a, b, b, b, b, c, c, c, c, e, e, e, e)
        }
        let (a, b) = (d(0), d(1))
        return SIMD16(a, a, a, a, a, a, a, a, b, b, b, b, b, b, b, b)
    }

    /// Codes in 0 … 255 (already masked) to Float32 minus `bias`, exactly.
    @inline(__always)
    static func float(_ codes: SIMD16<UInt32>, minus bias: Float) -> SIMD16<Float> {
        unsafeBitCast(codes | 0x4B00_0000, to: SIMD16<Float>.self) - (8_388_608 + bias)
    }

    @inline(__always)
    static func load(_ x: UnsafeRawPointer, _ vector: Int) -> SIMD16<Float> {
        x.load(fromByteOffset: 64 &* vector, as: SIMD16<Float>.self)
    }
}

/// Four Q4 blocks' 16 code bytes at `offset` into each block; blocks at or past `blocks` read as 0.
@inline(__always)
private func nibbleWords(_ row: UnsafeRawPointer, first: Int, blocks: Int, blockBytes: Int, offset: Int) -> SIMD16<UInt32> {
    @inline(__always) func block(_ b: Int) -> SIMD4<UInt32> {
        b < blocks ? row.loadUnaligned(fromByteOffset: b &* blockBytes &+ offset, as: SIMD4<UInt32>.self) : SIMD4()
    }
    return SIMD16(lowHalf: SIMD8(lowHalf: block(first), highHalf: block(first + 1)),
                  highHalf: SIMD8(lowHalf: block(first + 2), highHalf: block(first + 3)))
}

/// `Σ_v codes_v·x_v` for nibble codes minus `bias` (vector v = 4n + k: nibble n of byte k), with
/// fused multiply-adds (one rounding per term).
@inline(__always)
private func nibbleDot(_ w: SIMD16<UInt32>, _ x: UnsafeRawPointer, bias: Float) -> SIMD16<Float> {
    @inline(__always) func codes(_ shift: UInt32) -> SIMD16<Float> {
        Q4_1Codes.float((w &>> shift) & 0xF, minus: bias)
    }
    var a = codes(0) * Q4_1Codes.load(x, 0)
    var b = codes(4) * Q4_1Codes.load(x, 4)
    a.addProduct(codes(8), Q4_1Codes.load(x, 1))
    b.addProduct(codes(12), Q4_1Codes.load(x, 5))
    a.addProduct(codes(16), Q4_1Codes.load(x, 2))
    b.addProduct(codes(20), Q4_1Codes.load(x, 6))
    a.addProduct(codes(24), Q4_1Codes.load(x, 3))
    b.addProduct(codes(28), Q4_1Codes.load(x, 7))
    return a + b
}

/// Q8_0 (34 B): `d:f16, qs:i8[32]`, w = d·qs.
enum Q8_0Codes: FloatBlockCodes {
    static var blockBytes: Int { 34 }
    static var hasMin: Bool { false }
    static var blocksPerStep: Int { 2 }
    static var vectors: Int { 4 }
    @inline(__always)
    static func words(_ row: UnsafeRawPointer, first: Int) -> SIMD16<UInt32> {
        SIMD16(lowHalf: row.loadUnaligned(fromByteOffset: first &* 34 &+ 2, as: SIMD8<UInt32>.self),
               highHalf: row.loadUnaligned(fromByteOffset: first &* 34 &+ 36, as: SIMD8<UInt32>.self))
    }
    @inline(__always)
    static func partialWords(_ row: UnsafeRawPointer, first: Int, blocks: Int) -> SIMD16<UInt32> {
        SIMD16(lowHalf: row.loadUnaligned(fromByteOffset: first &* 34 &+ 2, as: SIMD8<UInt32>.self), highHalf: SIMD8())
    }
    @inline(__always)
    static func dot(_ w: SIMD16<UInt32>, _ x: UnsafeRawPointer) -> SIMD16<Float> {
        // Signed bytes: flipping the sign bit gives q + 128 ∈ 0 … 255; subtract 128 after converting.
        let u = w ^ 0x8080_8080
        var a = float(u & 0xFF, minus: 128) * load(x, 0)
        var b = float((u &>> 8) & 0xFF, minus: 128) * load(x, 1)
        a.addProduct(float((u &>> 16) & 0xFF, minus: 128), load(x, 2))
        b.addProduct(float(u &>> 24, minus: 128), load(x, 3))
        return a + b
    }
}

/// Q4_0 (18 B): `d:f16, qs:u8[16]`; element j < 16 is the low nibble of byte j, element j + 16
/// its high nibble; w = d·(nibble − 8).
enum Q4_0Codes: FloatBlockCodes {
    static var blockBytes: Int { 18 }
    static var hasMin: Bool { false }
    static var blocksPerStep: Int { 4 }
    static var vectors: Int { 8 }
    @inline(__always)
    static func words(_ row: UnsafeRawPointer, first: Int) -> SIMD16<UInt32> {
        nibbleWords(row, first: first, blocks: .max, blockBytes: 18, offset: 2)
    }
    @inline(__always)
    static func partialWords(_ row: UnsafeRawPointer, first: Int, blocks: Int) -> SIMD16<UInt32> {
        nibbleWords(row, first: first, blocks: blocks, blockBytes: 18, offset: 2)
    }
    @inline(__always)
    static func dot(_ w: SIMD16<UInt32>, _ x: UnsafeRawPointer) -> SIMD16<Float> { nibbleDot(w, x, bias: 8) }
}

/// Q4_1 (20 B): `d:f16, m:f16, qs:u8[16]`, nibbles as Q4_0; w = d·nibble + m.
enum Q4_1Codes: FloatBlockCodes {
    static var blockBytes: Int { 20 }
    static var hasMin: Bool { true }
    static var blocksPerStep: Int { 4 }
    static var vectors: Int { 8 }
    @inline(__always)
    static func words(_ row: UnsafeRawPointer, first: Int) -> SIMD16<UInt32> {
        // One 64-byte load and one 16-byte load cover the four blocks (80 bytes); the code words
        // are picked out with one two-source lane shuffle (LLVM: `vpermt2d`). Built from four
        // separate 16-byte loads instead, LLVM splits every 16-lane operation into 4-lane pieces.
        let a = row.loadUnaligned(fromByteOffset: first &* 20, as: SIMD16<UInt32>.self)
        let b = row.loadUnaligned(fromByteOffset: first &* 20 &+ 64, as: SIMD4<UInt32>.self)
        return SIMD16(a[1], a[2], a[3], a[4], a[6], a[7], a[8], a[9], a[11], a[12], a[13], a[14], b[0], b[1], b[2], b[3])
    }
    @inline(__always)
    static func partialWords(_ row: UnsafeRawPointer, first: Int, blocks: Int) -> SIMD16<UInt32> {
        nibbleWords(row, first: first, blocks: blocks, blockBytes: 20, offset: 4)
    }
    @inline(__always)
    static func dot(_ w: SIMD16<UInt32>, _ x: UnsafeRawPointer) -> SIMD16<Float> { nibbleDot(w, x, bias: 0) }
}
