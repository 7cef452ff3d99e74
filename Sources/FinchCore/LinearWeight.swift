#if canImport(Accelerate)
import Accelerate
#else
import CBLAS
#endif

/// A linear layer's weight, shape `[outFeatures, inFeatures]` (PyTorch layout), in its stored form.
///
/// The weight is never expanded to Float32 as a whole. Two kinds of kernels run on the stored bytes
/// (DESIGN.md §3):
/// - **Few tokens (decode)**: fused matrix-vector kernels read the packed rows and accumulate dot
///   products in registers, parallel over output rows (`LinearWeight+Decode.swift`).
/// - **Many tokens (prefill, training)**: panels of rows are dequantized bit-exactly into reusable
///   scratch and multiplied with `sgemm` (`LinearWeight+Panels.swift`).
///
/// Float32 weights go straight to BLAS (`sgemv`/`sgemm`). Everything computes in Float32 except the
/// decode kernels of ggml block-quantized types, which by default round activations to 16-bit
/// integers per 32 elements (see `Arithmetic`); bitsandbytes 4-bit weights (`.fourBit`) and LLM.int8
/// weights (`.int8Rows`) always compute in Float32 (`LinearWeight+FourBit.swift`,
/// `LinearWeight+Int8.swift`). Decode results do not depend on the thread
/// count (every output element is computed by one thread, in a fixed order); `sgemm` results are
/// OpenBLAS's.
public struct LinearWeight: @unchecked Sendable {
    /// Where the weight's bytes are and how they are encoded.
    public enum Storage: @unchecked Sendable {
        case float32(UnsafePointer<Float>)
        /// IEEE half, row-major.
        case float16(UnsafeRawPointer)
        /// bfloat16, row-major.
        case bfloat16(UnsafeRawPointer)
        /// ggml blocks, each row a whole number of blocks along `inFeatures`: F32, F16, BF16, Q8_0,
        /// Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K or Q6_K (`GGMLType.canDequantize`).
        case ggml(GGMLType, UnsafeRawPointer)
        /// bitsandbytes 4-bit blocks (NF4 or FP4, plain or double-quantized scales) of the flattened
        /// `[outFeatures, inFeatures]` matrix; any row length (blocks may cross rows). Always
        /// computed in Float32 (`arithmetic` does not apply).
        case fourBit(Quantized4Bit)
        /// bitsandbytes LLM.int8 rows: int8 codes with one Float32 absmax per output row
        /// (`Int8RowQuantized`). Always computed in Float32 with the dequantized weight; LLM.int8's
        /// int8 activations and outlier decomposition are not reproduced (see `Int8RowQuantized`).
        case int8Rows(Int8RowQuantized)
    }

    /// How the decode kernels multiply block-quantized weights (Q8_0 … Q6_K) by activations.
    ///
    /// F32, F16 and BF16 weights always compute in Float32, and so does every call with more than
    /// `decodeTokenLimit` tokens (dequantized panels and `sgemm`) and `backwardInput`.
    public enum Arithmetic: Sendable, Equatable {
        /// As ggml does on CPUs (`ggml_vec_dot_q4_1_q8_1`, `…_q8_0_q8_0`, `…_q4_K_q8_K`): each
        /// token's activations are rounded to integers with one Float32 scale per 32 elements, the
        /// products with the weight codes are summed exactly in Int32, and each group's sum is scaled
        /// in Float32. Finch rounds to 16 bits (`d = max|x|/32767`; ggml: 8 bits, `max|x|/127`), so
        /// per group `|error| ≤ Σ|w − offset|·d/2`: about 2^-16 of `Σ|w|·max|x|`, the size of
        /// Float32 accumulation error. Offsets (Q4_1/Q5_1 `m`, K-quant mins) multiply the exact
        /// Float32 activation sums. On the SmolLM2 decode step about 1.2× faster than `.float32`
        /// today (its kernels were tuned for SSE2 `pmaddwd`; see BENCHMARKS.md).
        case quantizedActivations
        /// llama.cpp's CPU arithmetic, for token-for-token comparisons with it: as
        /// `.quantizedActivations` but rounded to 8 bits as ggml's `quantize_row_q8_0` does on x86
        /// (scale `f16(max|x|/127)`, codes `round-to-even(x·127/max|x|)`), and at every token
        /// count, prefill included, where llama.cpp also multiplies quantized activations. Exact
        /// for Q8_0/Q4_0 weights up to Float32 summation order; Q4_1/Q5_1 offsets still use the
        /// exact activation sums (ggml's Q8_1 stores them in f16).
        case ggml
        /// Multiplied in Float32: Q8_0/Q4_0/Q4_1 rows by a fused kernel that converts the codes in
        /// registers (`FloatBlockDecode`: `d·Σc·x + m·Σx`), other block types dequantized bit-exactly
        /// into L1 first. The result differs from `GGMLType.dequantize` + a Float64 dot product
        /// only by Float32 rounding.
        case float32
    }

    /// The smallest amount of work, in nanoseconds on one core, that a kernel hands to a
    /// `ThreadPool` chunk. The pool's workers spin between jobs, so a chunk starts within about a
    /// microsecond; on the SmolLM2 decode step, 2–5 µs thresholds measured best (150 µs, right for
    /// the earlier `concurrentPerform` pool that took ≈ 50 µs to start a worker, was 1.75× slower).
    public static let minimumChunkNanoseconds = 5_000

    /// The default `decodeTokenLimit` for a storage type: about where dequantized panels + `sgemm`
    /// start to win on the SmolLM2 shapes (`LinearWeightTests.testBenchmark`, crossover section).
    /// With OpenBLAS's own threads, every `sgemm` pays ≈ 0.3 ms of fixed cost (it re-packs the whole
    /// panel and wakes its workers), so fused kernels win longer; with single-threaded BLAS split
    /// over the pool, panels win from about 6 tokens. F16's fused kernel is the slowest (its exact
    /// half → float conversion costs ≈ 5 instructions per weight without F16C).
    public static func defaultDecodeTokenLimit(for type: GGMLType, singleThreadedBLAS: Bool) -> Int {
        switch type {
        case .f16: singleThreadedBLAS ? 2 : 4
        case .bf16, .q5_K, .q6_K: singleThreadedBLAS ? 4 : 8
        default: singleThreadedBLAS ? 6 : 12
        }
    }

    public let outFeatures: Int
    public let inFeatures: Int
    public let storage: Storage
    /// Keeps the memory behind `storage` alive (a mapped file, an array box …).
    public let owner: AnyObject?
    /// Decode arithmetic for block-quantized weights; `.quantizedActivations` unless set.
    public var arithmetic: Arithmetic = .quantizedActivations
    /// Calls with at most this many tokens use the fused decode kernels; more use panels + `sgemm`.
    /// Unless set, `defaultDecodeTokenLimit(for:singleThreadedBLAS:)` for the current BLAS threading.
    public var decodeTokenLimit: Int {
        get {
            if let limit = decodeTokenLimitOverride { return limit }
            if arithmetic == .ggml && type.blockSize > 1 && fourBit == nil && int8Rows == nil { return .max }
            if fourBit != nil { return Self.fourBitDecodeTokenLimit(singleThreadedBLAS: LinearBLAS.isSingleThreaded) }
            if int8Rows != nil { return Self.int8DecodeTokenLimit(singleThreadedBLAS: LinearBLAS.isSingleThreaded) }
            return Self.defaultDecodeTokenLimit(for: type, singleThreadedBLAS: LinearBLAS.isSingleThreaded)
        }
        set { decodeTokenLimitOverride = newValue }
    }
    private var decodeTokenLimitOverride: Int?

    /// The storage as a ggml type (Float32/F16/BF16 cases mapped to F32/F16/BF16); nil for
    /// bitsandbytes storage (4-bit, int8 rows).
    let ggmlType: GGMLType?
    /// The 4-bit tensor of `.fourBit` storage.
    let fourBit: Quantized4Bit?
    /// The int8 rows of `.int8Rows` storage.
    let int8Rows: Int8RowQuantized?
    /// The base address of the stored bytes.
    let base: UnsafeRawPointer
    /// Bytes per row of `inFeatures` elements (ggml storage; 0 for bitsandbytes storage: 4-bit rows
    /// need not start on a byte).
    let rowBytes: Int

    /// `ggmlType`, on the paths that only ggml-like storage takes.
    var type: GGMLType {
        guard let ggmlType else { preconditionFailure("LinearWeight: bitsandbytes storage reached a ggml-only path") }
        return ggmlType
    }

    /// - Precondition: the type is supported and `inFeatures` is a whole number of its blocks;
    ///   the storage holds `outFeatures` rows (4-bit: exactly `outFeatures·inFeatures` elements;
    ///   int8 rows: shape `[outFeatures, inFeatures]`).
    ///   (Loaders validate file data before building one.)
    public init(outFeatures: Int, inFeatures: Int, storage: Storage, owner: AnyObject?) {
        precondition(outFeatures >= 0 && inFeatures >= 0, "LinearWeight: negative shape [\(outFeatures), \(inFeatures)]")
        // BLAS takes 32-bit dimensions.
        precondition(outFeatures <= Int(Int32.max) && inFeatures <= Int(Int32.max),
                     "LinearWeight: shape [\(outFeatures), \(inFeatures)] exceeds BLAS's 32-bit dimensions")
        self.outFeatures = outFeatures
        self.inFeatures = inFeatures
        self.storage = storage
        self.owner = owner
        // bitsandbytes storage: the kernels read the `Quantized4Bit` / `Int8RowQuantized` value.
        switch storage {
        case .fourBit(let q):
            precondition(q.count == outFeatures * inFeatures,
                         "LinearWeight: a 4-bit tensor of \(q.count) elements cannot be [\(outFeatures), \(inFeatures)]")
            (fourBit, int8Rows) = (q, nil)
        case .int8Rows(let q):
            precondition(q.rows == outFeatures && q.columns == inFeatures,
                         "LinearWeight: int8 rows of shape [\(q.rows), \(q.columns)] cannot be [\(outFeatures), \(inFeatures)]")
            (fourBit, int8Rows) = (nil, q)
        case .float32, .float16, .bfloat16, .ggml:
            (fourBit, int8Rows) = (nil, nil)
        }
        if fourBit != nil || int8Rows != nil {
            ggmlType = nil
            // Not read on bitsandbytes paths; any valid address for an empty tensor.
            let bytes = fourBit.flatMap { UnsafeRawPointer($0.packed.baseAddress) } ?? int8Rows.flatMap { UnsafeRawPointer($0.codes.baseAddress) }
            base = bytes ?? UnsafeRawPointer(CodePairs.nf4.pointer)
            rowBytes = 0
            return
        }
        let (type, base): (GGMLType, UnsafeRawPointer) = switch storage {
        case .float32(let p): (.f32, UnsafeRawPointer(p))
        case .float16(let p): (.f16, p)
        case .bfloat16(let p): (.bf16, p)
        case .ggml(let t, let p): (t, p)
        case .fourBit, .int8Rows: preconditionFailure("unreachable")
        }
        precondition(type.canDequantize,
                     "LinearWeight: \(type.name) is not supported (supported: \(GGMLType.dequantizable.map(\.name)))")
        guard let rowBytes = type.byteCount(elements: inFeatures) else {
            preconditionFailure("LinearWeight: inFeatures \(inFeatures) is not a multiple of \(type.name)'s block of \(type.blockSize)")
        }
        self.ggmlType = type
        self.base = base
        self.rowBytes = rowBytes
    }

    /// Quantizes row-major Float32 values (`[outFeatures, inFeatures]`) to bitsandbytes 4-bit blocks,
    /// bit-exactly as `quantize_4bit` does (see `Quantized4Bit`): how a loader turns a float or
    /// dequantized GGUF tensor into a QLoRA base weight.
    public init(outFeatures: Int, inFeatures: Int, quantizing values: UnsafeBufferPointer<Float>, type: FourBitType = .nf4,
                doubleQuantization: Bool = true, pool: ThreadPool = .serial) throws {
        let q = try Quantized4Bit(quantizing: values, shape: [outFeatures, inFeatures], type: type,
                                  doubleQuantization: doubleQuantization, pool: pool)
        self.init(quantized: q)
    }

    /// A 4-bit weight of shape `quantized.shape` (`[outFeatures, inFeatures]`), kept alive by this value.
    public init(quantized: Quantized4Bit) {
        precondition(quantized.shape.count == 2, "LinearWeight: a 4-bit tensor of shape \(quantized.shape) is not a matrix")
        self.init(outFeatures: quantized.shape[0], inFeatures: quantized.shape[1], storage: .fourBit(quantized),
                  owner: quantized.owner)
    }

    /// Quantizes row-major Float32 values (`[outFeatures, inFeatures]`) to LLM.int8 rows bit-exactly as
    /// bitsandbytes' `Int8Params` does (`load_in_8bit`; with `halfPrecisionFirst: false`, as
    /// `int8_vectorwise_quant` on the Float32 values; see `Int8RowQuantized`).
    public init(outFeatures: Int, inFeatures: Int, quantizingInt8 values: UnsafeBufferPointer<Float>,
                halfPrecisionFirst: Bool = true, pool: ThreadPool = .serial) throws {
        let q = try Int8RowQuantized(quantizing: values, rows: outFeatures, columns: inFeatures,
                                     halfPrecisionFirst: halfPrecisionFirst, pool: pool)
        self.init(int8Rows: q)
    }

    /// An LLM.int8 weight of shape `[rows, columns]` (`[outFeatures, inFeatures]`), kept alive by this value.
    public init(int8Rows: Int8RowQuantized) {
        self.init(outFeatures: int8Rows.rows, inFeatures: int8Rows.columns, storage: .int8Rows(int8Rows), owner: int8Rows.owner)
    }

    /// Convenience: owns a copy of Float32 values (row-major `[outFeatures, inFeatures]`).
    public init(outFeatures: Int, inFeatures: Int, float32 values: [Float]) {
        precondition(values.count == outFeatures * inFeatures,
                     "LinearWeight: \(values.count) values for shape [\(outFeatures), \(inFeatures)]")
        let box = FloatBox(values)
        self.init(outFeatures: outFeatures, inFeatures: inFeatures, storage: .float32(UnsafePointer(box.pointer)), owner: box)
    }

    /// `y = x·Wᵀ` (`+ y` if `accumulate`).
    ///
    /// Shapes: `x: (tokens, inFeatures)` row-major Float32, `y: (tokens, outFeatures)`.
    public func forward(_ x: UnsafePointer<Float>, tokens: Int, into y: UnsafeMutablePointer<Float>,
                        accumulate: Bool = false, pool: ThreadPool) {
        precondition(tokens >= 0)
        guard tokens > 0, outFeatures > 0 else { return }
        if inFeatures == 0 {
            if !accumulate { y.update(repeating: 0, count: tokens * outFeatures) }
            return
        }
        if let w = float32Pointer {
            let (outFeatures, inFeatures) = (self.outFeatures, self.inFeatures)
            let output = SendablePointer(y)
            // Output rows split over the pool when BLAS runs single-threaded (see `LinearBLAS`).
            pool.parallelFor(outFeatures, grain: LinearBLAS.isSingleThreaded ? decodeGrain(tokens: tokens) : .max) { rows in
                LinearBLAS.forward(w + rows.lowerBound * inFeatures, rows: rows.count, in: inFeatures, x: x, tokens: tokens,
                                   y: output.pointer + rows.lowerBound, ldy: outFeatures, accumulate: accumulate)
            }
        } else if tokens <= decodeTokenLimit {
            decodeForward(x, tokens: tokens, into: y, accumulate: accumulate, pool: pool)
        } else {
            panelForward(x, tokens: tokens, into: y, accumulate: accumulate, pool: pool)
        }
    }

    /// `dx = dy·W` (`+ dx` if `accumulate`), the input gradient of `forward`.
    ///
    /// Shapes: `dy: (tokens, outFeatures)` row-major Float32, `dx: (tokens, inFeatures)`.
    /// Computed in Float32 for every storage type (panels of dequantized rows and `sgemm`).
    public func backwardInput(_ dy: UnsafePointer<Float>, tokens: Int, into dx: UnsafeMutablePointer<Float>,
                              accumulate: Bool = false, pool: ThreadPool) {
        precondition(tokens >= 0)
        guard tokens > 0, inFeatures > 0 else { return }
        if outFeatures == 0 {
            if !accumulate { dx.update(repeating: 0, count: tokens * inFeatures) }
            return
        }
        if let w = float32Pointer {
            let (outFeatures, inFeatures) = (self.outFeatures, self.inFeatures)
            let output = SendablePointer(dx)
            // Input columns split over the pool when BLAS runs single-threaded (see `LinearBLAS`).
            let grain = LinearBLAS.isSingleThreaded ? max(1, Self.minimumChunkNanoseconds * 10 / max(1, outFeatures * tokens)) : .max
            pool.parallelFor(inFeatures, grain: grain) { columns in
                LinearBLAS.backwardInput(w + columns.lowerBound, out: outFeatures, columns: columns.count, ldw: inFeatures,
                                         dy: dy, tokens: tokens, dx: output.pointer + columns.lowerBound, ldx: inFeatures,
                                         accumulate: accumulate)
            }
        } else {
            panelBackwardInput(dy, tokens: tokens, into: dx, accumulate: accumulate, pool: pool)
        }
    }

    /// Row `r` dequantized to `inFeatures` Float32 values, bit-identical to `GGMLType.dequantize`
    /// (bitsandbytes storage: to `Quantized4Bit.dequantize` / `Int8RowQuantized.dequantize`; for
    /// embedding lookups: `token_embd` is a `[vocab, hidden]` weight).
    public func row(_ r: Int, into out: UnsafeMutablePointer<Float>) {
        precondition(r >= 0 && r < outFeatures, "LinearWeight.row: \(r) is outside 0..<\(outFeatures)")
        if let fourBit {
            fourBit.dequantize((r * inFeatures)..<((r + 1) * inFeatures), into: out)
            return
        }
        if let int8Rows {
            int8Rows.dequantize(row: r, columns: 0..<inFeatures, into: out)
            return
        }
        QuantizedRows.dequantize(type, base + r * rowBytes, count: inFeatures, into: out)
    }

    /// Bytes of the stored weight: codes and scales for quantized storage (4-bit: including the
    /// double-quantization state), the element bytes for float storage.
    public var storedByteCount: Int {
        if let fourBit { return fourBit.byteCount }
        return outFeatures * rowBytes
    }

    /// The weight as an aligned Float32 matrix BLAS can read directly, if it is one.
    var float32Pointer: UnsafePointer<Float>? {
        guard ggmlType == .f32, Int(bitPattern: base) % MemoryLayout<Float>.alignment == 0 else { return nil }
        return base.assumingMemoryBound(to: Float.self)
    }
}

/// Owns a heap copy of Float32 values for `LinearWeight(outFeatures:inFeatures:float32:)`.
private final class FloatBox: @unchecked Sendable {
    let pointer: UnsafeMutablePointer<Float>
    init(_ values: [Float]) {
        pointer = .allocate(capacity: max(values.count, 1))
        values.withUnsafeBufferPointer { buffer in
            if let source = buffer.baseAddress { pointer.initialize(from: source, count: buffer.count) }
        }
    }
    deinit { pointer.deallocate() }
}

/// Float32 weights and panels through BLAS: `cblas_sgemv` for one token, `BLAS.gemm` otherwise.
///
/// Two thread pools on two cores fight: OpenBLAS's workers spin for a while after each call, and so
/// do `ThreadPool`'s, so a decode step right after a 512-token prefill `sgemm` took 105 ms instead
/// of 9 ms (OpenBLAS 0.3.21 with 2 threads; 8.4 ms with `OPENBLAS_NUM_THREADS=1`). When OpenBLAS is
/// set to one thread, the kernels split their BLAS work over the pool themselves (forward: output
/// rows; backward: input columns), which is as fast for prefill; otherwise they leave the
/// threading to OpenBLAS.
enum LinearBLAS {
    /// Whether each BLAS call runs on the calling thread only.
    static var isSingleThreaded: Bool {
        #if canImport(Accelerate)
        false
        #else
        openblas_get_num_threads() == 1
        #endif
    }

    /// `y(tokens, rows) = x(tokens, in)·wᵀ (+ y)`, `w: (rows, in)` row-major; `y` rows `ldy` apart.
    static func forward(_ w: UnsafePointer<Float>, rows: Int, in k: Int, x: UnsafePointer<Float>, tokens: Int,
                        y: UnsafeMutablePointer<Float>, ldy: Int, accumulate: Bool) {
        let beta: Float = accumulate ? 1 : 0
        if tokens == 1 {
            cblas_sgemv(CblasRowMajor, CblasNoTrans, Int32(rows), Int32(k), 1, w, Int32(k), x, 1, beta, y, 1)
        } else {
            gemmTransposedB(m: tokens, n: rows, k: k, a: x, lda: k, b: w, ldb: k, c: y, ldc: ldy, beta: beta)
        }
    }

    /// `dx(tokens, columns) = dy(tokens, out)·w (+ dx)`, `w: (out, columns)` with rows `ldw` apart,
    /// `dx` rows `ldx` apart.
    static func backwardInput(_ w: UnsafePointer<Float>, out: Int, columns: Int, ldw: Int, dy: UnsafePointer<Float>, tokens: Int,
                              dx: UnsafeMutablePointer<Float>, ldx: Int, accumulate: Bool) {
        let beta: Float = accumulate ? 1 : 0
        if tokens == 1 {
            cblas_sgemv(CblasRowMajor, CblasTrans, Int32(out), Int32(columns), 1, w, Int32(ldw), dy, 1, beta, dx, 1)
        } else {
            gemm(m: tokens, n: columns, k: out, a: dy, lda: out, b: w, ldb: ldw, c: dx, ldc: ldx, beta: beta)
        }
    }

    /// `c = a·bᵀ + beta·c` with `a: (m, k)`, `b: (n, k)`, `c: (m, n)`, row-major with leading dimensions.
    static func gemmTransposedB(m: Int, n: Int, k: Int, a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
                                c: UnsafeMutablePointer<Float>, ldc: Int, beta: Float) {
        BLAS.gemm(transposeA: false, transposeB: true, m: m, n: n, k: k, a: a, lda: lda, b: b, ldb: ldb, c: c, ldc: ldc, beta: beta)
    }

    /// `c = a·b + beta·c` with `a: (m, k)`, `b: (k, n)`, `c: (m, n)`, row-major with leading dimensions.
    static func gemm(m: Int, n: Int, k: Int, a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
                     c: UnsafeMutablePointer<Float>, ldc: Int, beta: Float) {
        BLAS.gemm(transposeA: false, transposeB: false, m: m, n: n, k: k, a: a, lda: lda, b: b, ldb: ldb, c: c, ldc: ldc, beta: beta)
    }
}
