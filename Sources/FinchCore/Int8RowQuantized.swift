/// A matrix stored as bitsandbytes' LLM.int8 stores frozen linear weights (`Int8Params`,
/// `load_in_8bit=True`; reference/formats.md §1.10): one int8 code per element, row-major
/// (bitsandbytes' `CB`, a checkpoint's `<module>.weight`), and one Float32 absmax per row (`SCB`,
/// a checkpoint's `<module>.SCB`).
///
/// **Quantization** (`init(quantizing:…)`), bit-exact with bitsandbytes 0.50.2 on a CPU
/// (`Int8Params._quantize`, `int8_vectorwise_quant` of `backends/default/ops.py`, threshold 0):
/// the weight is first rounded to float16 (`Int8Params` quantizes `weight.to(float16)`; optional),
/// `SCB[r] = max_j |w[r, j]|` in Float32, and
/// `CB[r, j] = round(w[r, j] · (float32(1 / SCB[r]) · 127))` with round-half-to-even — torch's
/// `127.0 / tensor` is `tensor.reciprocal() * 127`, two roundings, which can differ from
/// `127 / SCB` in the last bit (the fixtures hold such values). An all-zero row gets `SCB = 0` and
/// codes 0 (bitsandbytes computes `0 · ∞ = NaN`, which its int8 cast turns into 0 on x86-64).
///
/// **Dequantization**: `w[r, j] = Float(CB[r, j]) · (SCB[r] · float32(1/127))`, two Float32
/// roundings in that order, exactly as bitsandbytes forms the weight it multiplies by on a CPU
/// (`MatMul8bitFp`, and the input gradient of `MatMul8bitLt`: `CB * (SCB.unsqueeze(1) * (1/127))`).
/// `int8_vectorwise_dequant` rounds in the other order (`(CB · SCB) · (1/127)`) and differs in the
/// last bit for many elements; Finch follows the matmul.
///
/// **Not reproduced: LLM.int8's activation quantization and outlier decomposition.** On a GPU,
/// bitsandbytes' inference path (`MatMul8bitLt`, `llm_int8_threshold = 6.0`) casts activations to
/// float16, rounds each token's activations to int8, multiplies in int32, and computes the input
/// columns holding an |x| ≥ 6 outlier separately in float16. That is a device for fast and
/// accurate int8 tensor-core arithmetic in fp16; it exists because fp16/int8 alone would lose the
/// outliers. Finch computes on a CPU in Float32 with the dequantized weight above, which is what
/// bitsandbytes itself computes with threshold 0 on its CPU training path (`MatMul8bitFp`): no
/// activation is rounded, so there are no outliers to rescue. Logits therefore match
/// transformers' 8-bit model in training mode to Float32 accuracy, and its eval-mode LLM.int8
/// logits only to the size of int8 activation rounding (0.13 on the tiny test Llama).
///
/// The memory belongs to `owner` (this value's own allocation when quantized here, or a mapped
/// checkpoint), so a `LinearWeight` can run on it without copies.
public struct Int8RowQuantized: @unchecked Sendable {
    /// `Float(1.0 / 127.0)`, bitsandbytes' `1.0 / 127.0` as torch applies it to a Float32 tensor.
    public static let reciprocal127 = Float((1.0 as Double) / 127.0)

    public let rows: Int
    public let columns: Int
    /// `rows · columns` codes, row-major (`CB`).
    public let codes: UnsafeBufferPointer<Int8>
    /// One absmax per row (`SCB`), finite and ≥ 0.
    public let absmax: UnsafeBufferPointer<Float>
    /// Keeps the memory behind the buffers alive.
    public let owner: AnyObject?

    /// Wraps existing codes and row absmax (e.g. a pre-quantized bitsandbytes checkpoint) without
    /// copying them.
    ///
    /// - Throws: `QuantizationError` if a buffer's length does not match the shape, or an absmax
    ///   is negative or not finite (bitsandbytes never writes one).
    public init(rows: Int, columns: Int, codes: UnsafeBufferPointer<Int8>, absmax: UnsafeBufferPointer<Float>,
                owner: AnyObject?) throws {
        guard rows >= 0, columns >= 0 else { throw QuantizationError("shape [\(rows), \(columns)] has a negative dimension") }
        guard codes.count == rows * columns else {
            throw QuantizationError("shape [\(rows), \(columns)] needs \(rows * columns) int8 codes, got \(codes.count)")
        }
        guard absmax.count == rows else { throw QuantizationError("shape [\(rows), \(columns)] needs \(rows) row absmax values (SCB), got \(absmax.count)") }
        if let r = absmax.firstIndex(where: { !($0.isFinite && $0 >= 0) }) {
            throw QuantizationError("row \(r) has absmax (SCB) \(absmax[r]); it must be finite and ≥ 0")
        }
        self.init(rows: rows, columns: columns, codes: codes, absmax: absmax, owner: owner, unchecked: ())
    }

    /// Memberwise, no checks (the quantizer builds consistent buffers).
    init(rows: Int, columns: Int, codes: UnsafeBufferPointer<Int8>, absmax: UnsafeBufferPointer<Float>, owner: AnyObject?,
         unchecked: Void) {
        self.rows = rows
        self.columns = columns
        self.codes = codes
        self.absmax = absmax
        self.owner = owner
    }

    /// Quantizes row-major Float32 values (`rows · columns`) like bitsandbytes (see the type's comment).
    ///
    /// - Parameters:
    ///   - halfPrecisionFirst: round the values to float16 first, as `Int8Params` (what
    ///     `load_in_8bit` stores) does; false quantizes the Float32 values themselves, as
    ///     `int8_vectorwise_quant` on a float32 tensor does.
    ///   - pool: rows are quantized in parallel; the result does not depend on the pool.
    /// - Throws: `QuantizationError` if the count does not match the shape, a value is not finite,
    ///   or (with `halfPrecisionFirst`) a value overflows float16 (bitsandbytes would store an
    ///   infinite absmax and meaningless codes).
    public init(quantizing values: UnsafeBufferPointer<Float>, rows: Int, columns: Int, halfPrecisionFirst: Bool = true,
                pool: ThreadPool = .serial) throws {
        guard rows >= 0, columns >= 0 else { throw QuantizationError("shape [\(rows), \(columns)] has a negative dimension") }
        guard values.count == rows * columns else {
            throw QuantizationError("shape [\(rows), \(columns)] has \(rows * columns) elements, got \(values.count) values")
        }
        if let i = values.firstIndex(where: { !$0.isFinite }) {
            throw QuantizationError("element \(i) (\(values[i])) is not finite; int8 quantization needs finite weights")
        }
        if halfPrecisionFirst, let i = values.firstIndex(where: { !HalfPrecision.float(fromHalf: HalfPrecision.half(from: $0)).isFinite }) {
            throw QuantizationError("element \(i) (\(values[i])) overflows float16, which bitsandbytes' Int8Params rounds weights to first")
        }
        let memory = Int8RowMemory(rows: rows, columns: columns)
        if rows > 0, columns > 0, let source = values.baseAddress {
            let codes = SendablePointer(memory.codes.baseAddress!), absmax = SendablePointer(memory.absmax.baseAddress!)
            // ≈ 2 ns per element on one core (the float16 rounding is done by hand).
            pool.parallelFor(rows, grain: max(1, LinearWeight.minimumChunkNanoseconds / max(1, 2 * columns))) { range in
                for r in range {
                    absmax.pointer[r] = Self.quantizeRow(source + r * columns, count: columns, halfPrecisionFirst: halfPrecisionFirst,
                                                         into: codes.pointer + r * columns)
                }
            }
        }
        self.init(rows: rows, columns: columns, codes: UnsafeBufferPointer(memory.codes),
                  absmax: UnsafeBufferPointer(memory.absmax), owner: memory, unchecked: ())
    }

    /// Quantizes an array (see `init(quantizing:rows:columns:halfPrecisionFirst:pool:)`).
    public init(quantizing values: [Float], rows: Int, columns: Int, halfPrecisionFirst: Bool = true,
                pool: ThreadPool = .serial) throws {
        self = try values.withUnsafeBufferPointer {
            try Int8RowQuantized(quantizing: $0, rows: rows, columns: columns, halfPrecisionFirst: halfPrecisionFirst, pool: pool)
        }
    }

    /// One row's codes; returns its absmax. The values are finite (and float16-finite if rounded).
    private static func quantizeRow(_ x: UnsafePointer<Float>, count: Int, halfPrecisionFirst: Bool,
                                    into codes: UnsafeMutablePointer<Int8>) -> Float {
        @inline(__always) func value(_ j: Int) -> Float {
            halfPrecisionFirst ? HalfPrecision.float(fromHalf: HalfPrecision.half(from: x[j])) : x[j]
        }
        var absmax: Float = 0
        for j in 0..<count { absmax = max(absmax, abs(value(j))) }
        guard absmax > 0 else {
            codes.update(repeating: 0, count: count)
            return 0
        }
        // torch: `A * (127.0 / row_stats)` = `A * (row_stats.reciprocal() * 127)`.
        let scale = (1 / absmax) * 127
        for j in 0..<count {
            // |value · scale| ≤ 127 up to a few ulps, so the clamp never changes a code.
            let y = (value(j) * scale).rounded(.toNearestOrEven)
            codes[j] = Int8(max(-127, min(127, y)))
        }
        return absmax
    }

    /// Row r's multiplier `SCB[r] · float32(1/127)` (see the type's comment).
    @inline(__always)
    public func rowScale(_ r: Int) -> Float { absmax[r] * Self.reciprocal127 }

    /// Row r's elements `columns` dequantized into `out` (`columns.count` values).
    public func dequantize(row r: Int, columns range: Range<Int>, into out: UnsafeMutablePointer<Float>) {
        precondition(r >= 0 && r < rows && range.lowerBound >= 0 && range.upperBound <= columns,
                     "Int8RowQuantized.dequantize: row \(r), columns \(range) outside [\(rows), \(columns)]")
        guard let base = codes.baseAddress else { return }
        Self.dequantize(base + r * columns + range.lowerBound, count: range.count, scale: rowScale(r), into: out)
    }

    /// The whole matrix dequantized (row-major, `rows · columns` values).
    public func dequantized() -> [Float] {
        [Float](unsafeUninitializedCapacity: rows * columns) { buffer, initialized in
            if let base = buffer.baseAddress {
                for r in 0..<rows { dequantize(row: r, columns: 0..<columns, into: base + r * columns) }
            }
            initialized = rows * columns
        }
    }

    /// `out[j] = Float(codes[j]) · scale`, 16 lanes at a time.
    @inline(__always)
    static func dequantize(_ codes: UnsafePointer<Int8>, count: Int, scale: Float, into out: UnsafeMutablePointer<Float>) {
        let source = UnsafeRawPointer(codes), destination = UnsafeMutableRawPointer(out)
        let s = SIMD16<Float>(repeating: scale)
        var j = 0
        while j + 16 <= count {
            destination.storeBytes(of: float(source.loadUnaligned(fromByteOffset: j, as: SIMD16<Int8>.self)) * s,
                                   toByteOffset: 4 * j, as: SIMD16<Float>.self)
            j += 16
        }
        while j < count {
            out[j] = Float(codes[j]) * scale
            j += 1
        }
    }

    /// Exact int8 → Float32 lanes, element by element (see `QuantizedLanes` for why).
    @inline(__always)
    static func float(_ v: SIMD16<Int8>) -> SIMD16<Float> {
        var r = SIMD16<Float>()
        for i in 0..<16 { r[i] = Float(v[i]) }
        return r
    }
}

/// The allocations of a matrix quantized here (64-byte aligned), owned by the `Int8RowQuantized`.
final class Int8RowMemory: @unchecked Sendable {
    let codes: UnsafeMutableBufferPointer<Int8>
    let absmax: UnsafeMutableBufferPointer<Float>

    init(rows: Int, columns: Int) {
        let raw = UnsafeMutableRawPointer.allocate(byteCount: max(rows * columns, 1), alignment: 64)
        codes = UnsafeMutableBufferPointer(start: raw.bindMemory(to: Int8.self, capacity: rows * columns), count: rows * columns)
        let scales = UnsafeMutableRawPointer.allocate(byteCount: max(4 * rows, 1), alignment: 64)
        absmax = UnsafeMutableBufferPointer(start: scales.bindMemory(to: Float.self, capacity: rows), count: rows)
    }

    deinit {
        UnsafeMutableRawPointer(codes.baseAddress)?.deallocate()
        UnsafeMutableRawPointer(absmax.baseAddress)?.deallocate()
    }
}
