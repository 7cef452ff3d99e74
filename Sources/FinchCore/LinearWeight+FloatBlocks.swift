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
        let perToken = layout.perToken
        let padded = steps * K.blocksPerStep + 4
        // d and m per block, then d repeated over each block's lanes (16 floats per step).
        withUnsafeTemporaryAllocation(of: SIMD16<Float>.self, capacity: steps + (2 * padded + 15) / 16) { buffer in
            let laneScales = buffer.baseAddress!
            let d = UnsafeMutableRawPointer(laneScales + steps).assumingMemoryBound(to: Float.self), m = d + padded
            for r in rows {
                let row = base + r &* rowBytes
                IntegerDecode.blockScales(row, K.blockBytes, blocks, K.hasMin, d, m)
                for b in blocks..<(steps * K.blocksPerStep) { d[b] = 0 }
                K.expand(d, steps: steps, into: laneScales)
                for t in 0..<tokens {
                    let x = UnsafeRawPointer(prepared + t &* perToken)
                    var acc0 = SIMD16<Float>(), acc1 = SIMD16<Float>()
                    var step = 0
                    // Two steps per iteration into separate accumulators (independent add chains).
                    while step + 2 <= fullSteps {
                        let first = step &* K.blocksPerStep
                        acc0 += K.dot(K.words(row, first: first), x + step &* (K.vectors &* 64)) * laneScales[step]
                        acc1 += K.dot(K.words(row, first: first &+ K.blocksPerStep), x + (step &+ 1) &* (K.vectors &* 64))
                            * laneScales[step &+ 1]
                        step &+= 2
                    }
                    if step < fullSteps {
                        acc0 += K.dot(K.words(row, first: step &* K.blocksPerStep), x + step &* (K.vectors &* 64)) * laneScales[step]
                        step &+= 1
                    }
                    if step < steps {
                        let words = K.partialWords(row, first: step &* K.blocksPerStep, blocks: blocks)
                        acc1 += K.dot(words, x + step &* (K.vectors &* 64)) * laneScales[step]
                    }
                    var value = (acc0 + acc1).sum()
                    if K.hasMin {
                        let sums = prepared + t &* perToken + layout.permutedCount
                        var offset = SIMD4<Float>()
                        var j = 0
                        while j + 4 <= blocks {
                            offset += UnsafeRawPointer(m + j).loadUnaligned(as: SIMD4<Float>.self)
                                * UnsafeRawPointer(sums + j).loadUnaligned(as: SIMD4<Float>.self)
                            j &+= 4
                        }
                        var tail: Float = 0
                        while j < blocks { tail += m[j] * sums[j]; j &+= 1 }
                        value += offset.sum() + tail
                    }
                    output.store(value, token: t, row: r)
                }
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

extension FloatBlockCodes {
    /// Each lane's block scale (lane L belongs to block `L / (16 / blocksPerStep)`), per step.
    @inline(__always)
    static func expand(_ d: UnsafePointer<Float>, steps: Int, into lanes: UnsafeMutablePointer<SIMD16<Float>>) {
        let raw = UnsafeMutableRawPointer(lanes)
        let width = 16 / blocksPerStep
        for b in 0..<(steps * blocksPerStep) {
            if width == 4 {
                raw.storeBytes(of: SIMD4<Float>(repeating: d[b]), toByteOffset: 16 &* b, as: SIMD4<Float>.self)
            } else {
                raw.storeBytes(of: SIMD8<Float>(repeating: d[b]), toByteOffset: 32 &* b, as: SIMD8<Float>.self)
            }
        }
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

/// `Σ_v codes_v·x_v` for nibble codes minus `bias` (vector v = 4n + k: nibble n of byte k).
@inline(__always)
private func nibbleDot(_ w: SIMD16<UInt32>, _ x: UnsafeRawPointer, bias: Float) -> SIMD16<Float> {
    @inline(__always) func term<K: FloatBlockCodes>(_ k: K.Type, _ shift: UInt32, _ v: Int) -> SIMD16<Float> {
        K.float((w &>> shift) & 0xF, minus: bias) * K.load(x, v)
    }
    let a = term(Q4_1Codes.self, 0, 0) + term(Q4_1Codes.self, 8, 1)
    let b = term(Q4_1Codes.self, 16, 2) + term(Q4_1Codes.self, 24, 3)
    let c = term(Q4_1Codes.self, 4, 4) + term(Q4_1Codes.self, 12, 5)
    let e = term(Q4_1Codes.self, 20, 6) + term(Q4_1Codes.self, 28, 7)
    return (a + b) + (c + e)
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
        let a = float(u & 0xFF, minus: 128) * load(x, 0) + float((u &>> 8) & 0xFF, minus: 128) * load(x, 1)
        let b = float((u &>> 16) & 0xFF, minus: 128) * load(x, 2) + float(u &>> 24, minus: 128) * load(x, 3)
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
        nibbleWords(row, first: first, blocks: .max, blockBytes: 20, offset: 4)
    }
    @inline(__always)
    static func partialWords(_ row: UnsafeRawPointer, first: Int, blocks: Int) -> SIMD16<UInt32> {
        nibbleWords(row, first: first, blocks: blocks, blockBytes: 20, offset: 4)
    }
    @inline(__always)
    static func dot(_ w: SIMD16<UInt32>, _ x: UnsafeRawPointer) -> SIMD16<Float> { nibbleDot(w, x, bias: 0) }
}
