/// Fused matrix-vector kernels for few tokens (decode): each weight row is read once, its blocks
/// unpacked in registers and multiplied into dot products; nothing dequantized is written to memory
/// (except with `Arithmetic.float32` for block types, which dequantizes one row at a time into L1).
/// Parallel over output rows with the pool's fixed partition: every output element is computed by
/// one thread in a fixed order, so results do not depend on the thread count.
///
/// Integer kernels (`Arithmetic.quantizedActivations`, block types), after ggml's CPU dot products
/// (`ggml_vec_dot_q4_0_q8_0`, `…_q4_1_q8_1`, `…_q8_0_q8_0`, `…_q4_K_q8_K`, `…_q6_K_q8_K`,
/// ggml-cpu/arch/x86/quants.c): the activations of each token are rounded once per call
/// (`QuantizedActivations`), the weight codes are unpacked to 16-bit lanes (`QuantizedKernels`), the
/// products are summed exactly in Int32 with `pmaddwd`, and each group's sum is scaled once in
/// Float32. Differences from ggml:
/// - activations keep 16 bits (ggml: 8), with one scale per 32 elements for every type (ggml's
///   `q8_K` has one per 256 for the K-quants);
/// - the offset terms (`m·Σx` of Q4_1/Q5_1, `−dmin·m_j·Σx` of Q4_K/Q5_K) use the exact Float32
///   sums of the activations, not the sums of the rounded ones;
/// - the code is baseline x86-64 (SSE2: what SwiftPM compiles without `-target-cpu`), so no
///   `maddubs`/VNNI, and lane conversions are written so LLVM cannot turn them into calls
///   (`QuantizedLanes`).
extension LinearWeight {
    /// Rough single-core cost of the decode kernels, in picoseconds per weight element and token
    /// (measured on the 2-core EPYC of NOTES.md with this baseline x86-64 code).
    var decodeCostPerElement: Int {
        if fourBit != nil { return FourBitDecode.costPerElement }
        if int8Rows != nil { return Int8RowDecode.costPerElement }
        switch type {
        case .f32, .bf16: return 100
        case .f16: return 400
        case .q4_0 where arithmetic == .float32, .q4_1 where arithmetic == .float32, .q8_0 where arithmetic == .float32: return 120
        case _ where arithmetic == .float32: return 300
        case .q4_0, .q4_1, .q8_0: return 100
        case .q5_0, .q5_1, .q4_K: return 130
        default: return 200
        }
    }

    /// Rows per pool chunk: enough that a chunk runs at least `minimumChunkNanoseconds`.
    func decodeGrain(tokens: Int) -> Int {
        let picoseconds = max(1, inFeatures * tokens * decodeCostPerElement)
        return max(1, (Self.minimumChunkNanoseconds * 1000 + picoseconds - 1) / picoseconds)
    }

    /// `y = x·Wᵀ (+ y)` for few tokens. Shapes: `x: (tokens, inFeatures)`, `y: (tokens, outFeatures)`.
    func decodeForward(_ x: UnsafePointer<Float>, tokens: Int, into y: UnsafeMutablePointer<Float>,
                       accumulate: Bool, pool: ThreadPool) {
        if let fourBit {
            FourBitDecode.forward(fourBit, x, tokens: tokens, outFeatures: outFeatures, inFeatures: inFeatures,
                                  into: DecodeOutput(y: y, stride: outFeatures, accumulate: accumulate),
                                  grain: decodeGrain(tokens: tokens), pool: pool)
            return
        }
        if let int8Rows {
            Int8RowDecode.forward(int8Rows, x, tokens: tokens, into: DecodeOutput(y: y, stride: outFeatures, accumulate: accumulate),
                                  grain: decodeGrain(tokens: tokens), pool: pool)
            return
        }
        let grain = decodeGrain(tokens: tokens)
        let (type, base, rowBytes, inFeatures) = (self.type, self.base, self.rowBytes, self.inFeatures)
        let output = DecodeOutput(y: y, stride: outFeatures, accumulate: accumulate)

        if arithmetic == .float32 && FloatBlockDecode.supports(type) {
            let count = FloatBlockDecode.scratchCount(type, tokens: tokens, inFeatures: inFeatures)
            QuantizedScratch.shared.withBuffer(of: Float.self, count: count) { scratch in
                FloatBlockDecode.prepare(type, x, tokens: tokens, inFeatures: inFeatures, into: scratch)
                let prepared = UnsafePointer(scratch)
                pool.parallelFor(outFeatures, grain: grain) { rows in
                    FloatBlockDecode.rows(rows, type: type, base: base, rowBytes: rowBytes, inFeatures: inFeatures,
                                          tokens: tokens, prepared: prepared, output: output)
                }
            }
            return
        }
        if type.blockSize == 1 || arithmetic == .float32 {
            pool.parallelFor(outFeatures, grain: grain) { rows in
                if type.blockSize == 1 {
                    FloatDecode.rows(rows, type: type, base: base, rowBytes: rowBytes, inFeatures: inFeatures,
                                     x: x, tokens: tokens, output: output, scratch: nil)
                } else {
                    QuantizedScratch.shared.withBuffer(of: Float.self, count: inFeatures) { scratch in
                        FloatDecode.rows(rows, type: type, base: base, rowBytes: rowBytes, inFeatures: inFeatures,
                                         x: x, tokens: tokens, output: output, scratch: scratch)
                    }
                }
            }
            return
        }

        let order = ActivationOrder(type)
        QuantizedScratch.shared.withBuffer(bytes: QuantizedActivations.byteCount(tokens: tokens, inFeatures: inFeatures)) { raw in
            let act = QuantizedActivations(raw, tokens: tokens, inFeatures: inFeatures)
            for t in 0..<tokens { act.quantize(x + t * inFeatures, token: t, order: order, eightBit: arithmetic == .ggml) }
            pool.parallelFor(outFeatures, grain: grain) { rows in
                switch type {
                case .q8_0: IntegerDecode.rows32(Q8_0Kernel.self, rows, base, rowBytes, act, output)
                case .q4_0: IntegerDecode.rows32(Q4_0Kernel.self, rows, base, rowBytes, act, output)
                case .q4_1: IntegerDecode.rows32(Q4_1Kernel.self, rows, base, rowBytes, act, output)
                case .q5_0: IntegerDecode.rows32(Q5_0Kernel.self, rows, base, rowBytes, act, output)
                case .q5_1: IntegerDecode.rows32(Q5_1Kernel.self, rows, base, rowBytes, act, output)
                case .q4_K: IntegerDecode.rows256(Q4_KKernel.self, rows, base, rowBytes, act, output)
                case .q5_K: IntegerDecode.rows256(Q5_KKernel.self, rows, base, rowBytes, act, output)
                case .q6_K: IntegerDecode.rows256(Q6_KKernel.self, rows, base, rowBytes, act, output)
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
        let p = y + (t &* stride &+ r)
        p.pointee = accumulate ? p.pointee + value : value
    }
}

// MARK: - Integer decode drivers

enum IntegerDecode {
    /// Computes `y[t, r]` for `r` in `rows` and every token, for a weight with 32-element blocks.
    ///
    /// Per row, a short pre-pass converts the blocks' f16 scales four at a time (converted one by
    /// one, they cost as much as a block's whole integer dot product) and forms, per token, the
    /// products `d·dx` and the offset `Σ m·Σx`; the main loop is then four `pmaddwd` and one
    /// `cvtdq2ps`/`mulps`/`addps` per block and token (29 instructions per Q4_1 block).
    @inline(__always)
    static func rows32<K: Block32Kernel>(_ kernel: K.Type, _ rows: Range<Int>, _ base: UnsafeRawPointer, _ rowBytes: Int,
                                             _ act: QuantizedActivations, _ output: DecodeOutput) {
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
                        acc += groupSum32(K.weights(block, bitTable), xq, scaled[b])
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
                            acc.0 += groupSum32(w, xq, s[0])
                            if n > 1 { acc.1 += groupSum32(w, xq + stride, s[padded]) }
                            if n > 2 { acc.2 += groupSum32(w, xq + 2 &* stride, s[2 &* padded]) }
                            if n > 3 { acc.3 += groupSum32(w, xq + 3 &* stride, s[3 &* padded]) }
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
    static func groupSum32(_ w: WeightGroup, _ xq: UnsafeRawPointer, _ scale: Float) -> SIMD4<Float> {
        // 64-byte aligned: the activation buffer is, and groups are 64 bytes apart.
        let sum = (multiplyAdd(w.w0, xq.load(as: SIMD8<Int16>.self)) &+ multiplyAdd(w.w1, xq.load(fromByteOffset: 16, as: SIMD8<Int16>.self)))
            &+ (multiplyAdd(w.w2, xq.load(fromByteOffset: 32, as: SIMD8<Int16>.self)) &+ multiplyAdd(w.w3, xq.load(fromByteOffset: 48, as: SIMD8<Int16>.self)))
        return QuantizedLanes.float(sum) * scale
    }

    /// `a[2k]·b[2k] + a[2k+1]·b[2k+1]` in Int32 lanes: LLVM emits one SSE2 `pmaddwd` for this
    /// pattern (sign-extended products, even plus odd lanes). Exact unless both products of a lane
    /// are (−32768)², which the weight codes (|w| ≤ 128) never reach.
    @inline(__always)
    static func multiplyAdd(_ a: SIMD8<Int16>, _ b: SIMD8<Int16>) -> SIMD4<Int32> {
        QuantizedLanes.multiplyAdd(a, b)
    }

    /// Computes `y[t, r]` for `r` in `rows` and every token, for a K-quant weight: up to four tokens
    /// per pass over a row (accumulators in registers), the eight groups of a superblock unrolled.
    @inline(__always)
    static func rows256<K: SuperBlockKernel>(_ kernel: K.Type, _ rows: Range<Int>, _ base: UnsafeRawPointer, _ rowBytes: Int,
                                                 _ act: QuantizedActivations, _ output: DecodeOutput) {
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
    static func groupSum<K: SuperBlockKernel>(_ w: WeightGroup, _ xq: UnsafeRawPointer, _ s0: Float, _ s1: Float,
                                                  _ kernel: K.Type) -> SIMD4<Float> {
        // 64-byte aligned: the activation buffer is, and groups are 64 bytes apart.
        let first = multiplyAdd(w.w0, xq.load(as: SIMD8<Int16>.self)) &+ multiplyAdd(w.w1, xq.load(fromByteOffset: 16, as: SIMD8<Int16>.self))
        let second = multiplyAdd(w.w2, xq.load(fromByteOffset: 32, as: SIMD8<Int16>.self)) &+ multiplyAdd(w.w3, xq.load(fromByteOffset: 48, as: SIMD8<Int16>.self))
        if K.halfGroupScales {
            // Lanes of w0, w1 are elements 0..<16 and of w2, w3 elements 16..<32 (`.bytePairs`).
            return QuantizedLanes.float(first) * s0 + QuantizedLanes.float(second) * s1
        }
        return QuantizedLanes.float(first &+ second) * s0
    }
}

// MARK: - 16-lane Float32 dot products (bitsandbytes decode)

/// A row's weights as Float32 lanes, for `LaneDot`.
protocol WeightLanes {
    /// Weights `j ..< j + 16`.
    static func load16(_ row: UnsafeRawPointer, _ j: Int) -> SIMD16<Float>
    /// Weight `j`.
    static func load1(_ row: UnsafeRawPointer, _ j: Int) -> Float
}

/// Float32 weights (a dequantized scratch row).
enum Float32Lanes: WeightLanes {
    @inline(__always) static func load16(_ row: UnsafeRawPointer, _ j: Int) -> SIMD16<Float> {
        row.loadUnaligned(fromByteOffset: 4 * j, as: SIMD16<Float>.self)
    }
    @inline(__always) static func load1(_ row: UnsafeRawPointer, _ j: Int) -> Float {
        row.loadUnaligned(fromByteOffset: 4 * j, as: Float.self)
    }
}

/// int8 codes, converted exactly (`vpmovsxbd` + `vcvtdq2ps` with AVX-512).
enum Int8Lanes: WeightLanes {
    @inline(__always) static func load16(_ row: UnsafeRawPointer, _ j: Int) -> SIMD16<Float> {
        Int8RowQuantized.float(row.loadUnaligned(fromByteOffset: j, as: SIMD16<Int8>.self))
    }
    @inline(__always) static func load1(_ row: UnsafeRawPointer, _ j: Int) -> Float {
        Float(row.load(fromByteOffset: j, as: Int8.self))
    }
}

enum LaneDot {
    /// `Σ_j w[j]·x[j]` over `n` weights at `row` in Float32, with 16-lane fused multiply-adds into
    /// two accumulators and a scalar tail.
    @inline(__always)
    static func dot<W: WeightLanes>(_ weights: W.Type, _ row: UnsafeRawPointer, _ x: UnsafePointer<Float>, count n: Int) -> Float {
        let xp = UnsafeRawPointer(x)
        var a = SIMD16<Float>(), b = SIMD16<Float>()
        var j = 0
        while j + 32 <= n {
            a.addProduct(W.load16(row, j), xp.loadUnaligned(fromByteOffset: 4 * j, as: SIMD16<Float>.self))
            b.addProduct(W.load16(row, j + 16), xp.loadUnaligned(fromByteOffset: 4 * j + 64, as: SIMD16<Float>.self))
            j += 32
        }
        if j + 16 <= n {
            a.addProduct(W.load16(row, j), xp.loadUnaligned(fromByteOffset: 4 * j, as: SIMD16<Float>.self))
            j += 16
        }
        var s = (a + b).sum()
        while j < n {
            s += W.load1(row, j) * x[j]
            j += 1
        }
        return s
    }
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
        let (lo, hi) = QuantizedLanes.uint32Halves(row.loadUnaligned(fromByteOffset: 2 * j, as: SIMD8<UInt16>.self))
        return (QuantizedRows.halfToFloat(lo), QuantizedRows.halfToFloat(hi))
    }
    @inline(__always) static func load1(_ row: UnsafeRawPointer, _ j: Int) -> Float {
        HalfPrecision.float(fromHalf: row.u16(2 * j))
    }
}

enum BFloat16Loader: FloatRowLoader {
    @inline(__always) static func load8(_ row: UnsafeRawPointer, _ j: Int) -> (SIMD4<Float>, SIMD4<Float>) {
        let (lo, hi) = QuantizedLanes.uint32Halves(row.loadUnaligned(fromByteOffset: 2 * j, as: SIMD8<UInt16>.self))
        return (unsafeBitCast(lo &<< 16, to: SIMD4<Float>.self), unsafeBitCast(hi &<< 16, to: SIMD4<Float>.self))
    }
    @inline(__always) static func load1(_ row: UnsafeRawPointer, _ j: Int) -> Float {
        HalfPrecision.float(fromBFloat16: row.u16(2 * j))
    }
}
