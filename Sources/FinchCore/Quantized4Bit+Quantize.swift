/// Quantization from Float32, bit-exact with bitsandbytes 0.50.2 on a CPU (`quantize_4bit` with
/// blocksize 64, `compress_statistics` on or off). What runs there, and what this file reproduces:
///
/// - **4-bit codes** (bitsandbytes' torch reference kernel, `backends/default/ops.py`): per block of
///   64 flattened elements, `absmax = max|x|`; full blocks are scaled by the Float32 reciprocal
///   `1 / max(absmax, 1e-38)`, the short last block is divided by `max(absmax, 1e-38)`, and that
///   clamped value is what it stores as its absmax (a full all-zero block stores 0). The code is
///   `torch.bucketize` on the 15 midpoints of the sorted table: the number of midpoints strictly
///   below the scaled value, so a tie goes to the lower code; FP4's table is unsorted, so that
///   count indexes torch's `argsort` of it. Elements `2k`, `2k + 1` share byte k (high nibble
///   first); an odd count is padded with the code of 0 (NF4: 7, FP4: 0).
/// - **Double quantization** (`functional.py` and the native `cquantize_blockwise_cpu_fp32`):
///   `offset = absmax.mean()` — torch's CPU float sum, a cascade over 8-lane vectors
///   (`TorchReduction`), divided by the count — then the 8-bit blockwise quantization (256 per
///   block) of `absmax − offset` with the signed dynamic map. bitsandbytes' CPU kernel does that
///   with a 65,536-entry lookup table over [−1, 1] instead of a nearest-value search
///   (`DynamicMap8Bit`), which differs from "nearest code" for a few values next to midpoints.
///
/// Non-finite inputs are rejected (bitsandbytes would silently produce NaN scales).
extension Quantized4Bit {
    /// Quantizes `values` (row-major, `shape`'s element count) like bitsandbytes `quantize_4bit`.
    ///
    /// - Parameters:
    ///   - doubleQuantization: bitsandbytes' `compress_statistics` (`bnb_4bit_use_double_quant`).
    ///   - pool: blocks are quantized in parallel; the result does not depend on the pool.
    ///   - torchThreads: the torch intra-op thread count to reproduce in the mean of the scales
    ///     (double quantization only). torch splits a sum of more than 32,768 values (tensors of
    ///     more than 2,097,152 elements) across its threads, which can change the offset's last
    ///     bit; below that size every thread count gives the same value.
    /// - Throws: `QuantizationError` if the count does not match `shape` or a value is not finite.
    public init(quantizing values: UnsafeBufferPointer<Float>, shape: [Int], type: FourBitType = .nf4,
                doubleQuantization: Bool = true, pool: ThreadPool = .serial, torchThreads: Int = 1) throws {
        guard shape.allSatisfy({ $0 >= 0 }) else { throw QuantizationError("shape \(shape) has a negative dimension") }
        let count = shape.reduce(1, *)
        guard count == values.count else {
            throw QuantizationError("shape \(shape) has \(count) elements, got \(values.count) values")
        }
        let blocks = (count + Self.blockSize - 1) / Self.blockSize
        let nestedBlocks = (blocks + Self.nestedBlockSize - 1) / Self.nestedBlockSize
        let memory = Quantized4BitMemory(packedBytes: (count + 1) / 2, blocks: blocks,
                                         nestedBlocks: doubleQuantization ? nestedBlocks : nil)
        // Float32 block scales: kept without double quantization, else a temporary (0.5 bit per
        // weight that double quantization exists to save).
        let temporary = doubleQuantization ? UnsafeMutableBufferPointer<Float>.allocate(capacity: max(blocks, 1)) : nil
        defer { temporary?.deallocate() }
        guard let storage = temporary ?? memory.blockScales else { preconditionFailure("no scale storage") }
        let scales = UnsafeMutableBufferPointer(rebasing: storage[0..<blocks])
        if count > 0, let source = values.baseAddress {
            let packed = SendablePointer(memory.packed.baseAddress!), absmax = SendablePointer(scales.baseAddress!)
            let quantizer = FourBitQuantizer(type)
            // ≈ 0.1 µs per block on one core (1.5 ns per weight).
            pool.parallelFor(blocks, grain: max(1, LinearWeight.minimumChunkNanoseconds / 100)) { range in
                for b in range {
                    let start = b * Self.blockSize
                    absmax.pointer[b] = quantizer.block(source + start, count: min(Self.blockSize, count - start),
                                                        into: packed.pointer + start / 2)
                }
            }
            // Non-finite inputs leave a non-finite scale (`FourBitQuantizer.block`).
            if let b = scales.firstIndex(where: { !$0.isFinite }) {
                let start = b * Self.blockSize
                let i = (start..<min(count, start + Self.blockSize)).first { !values[$0].isFinite } ?? start
                throw QuantizationError("element \(i) (\(values[i])) is not finite; 4-bit quantization needs finite weights")
            }
        }
        let absmax: Absmax
        if let codes = memory.nestedCodes, let nested = memory.nestedAbsmax, let map = memory.nestedMap {
            let offset = TorchReduction.mean(UnsafeBufferPointer(scales), threads: torchThreads)
            // `absmax − offset` in place (the scales are not needed afterwards).
            for b in 0..<blocks { scales[b] = scales[b] - offset }
            DynamicMap8Bit.standard.quantize(UnsafeBufferPointer(scales), blockSize: Self.nestedBlockSize,
                                             codes: codes, absmax: nested)
            _ = map.initialize(from: DynamicMap8Bit.standard.values)
            absmax = .doubleQuantized(codes: UnsafeBufferPointer(codes), absmax: UnsafeBufferPointer(nested), offset: offset,
                                      map: UnsafeBufferPointer(map))
        } else {
            absmax = .float32(UnsafeBufferPointer(scales))
        }
        self.init(type: type, shape: shape, count: count, packed: UnsafeBufferPointer(memory.packed), absmax: absmax,
                  codeValues: type.codeValues, owner: memory)
    }

    /// Quantizes an array (see `init(quantizing:shape:type:doubleQuantization:pool:torchThreads:)`).
    public init(quantizing values: [Float], shape: [Int], type: FourBitType = .nf4, doubleQuantization: Bool = true,
                pool: ThreadPool = .serial, torchThreads: Int = 1) throws {
        self = try values.withUnsafeBufferPointer {
            try Quantized4Bit(quantizing: $0, shape: shape, type: type, doubleQuantization: doubleQuantization,
                              pool: pool, torchThreads: torchThreads)
        }
    }
}

/// The allocations of a tensor quantized here (64-byte aligned), owned by the `Quantized4Bit`.
final class Quantized4BitMemory: @unchecked Sendable {
    let packed: UnsafeMutableBufferPointer<UInt8>
    /// One Float32 absmax per block (no double quantization).
    let blockScales: UnsafeMutableBufferPointer<Float>?
    /// Double quantization: one code per block, one Float32 per 256 blocks, the 256-entry map.
    let nestedCodes: UnsafeMutableBufferPointer<UInt8>?
    let nestedAbsmax: UnsafeMutableBufferPointer<Float>?
    let nestedMap: UnsafeMutableBufferPointer<Float>?

    init(packedBytes: Int, blocks: Int, nestedBlocks: Int?) {
        func allocate<T>(_ type: T.Type, _ count: Int) -> UnsafeMutableBufferPointer<T> {
            let raw = UnsafeMutableRawPointer.allocate(byteCount: max(count * MemoryLayout<T>.stride, 1), alignment: 64)
            return UnsafeMutableBufferPointer(start: raw.bindMemory(to: T.self, capacity: count), count: count)
        }
        packed = allocate(UInt8.self, packedBytes)
        if let nestedBlocks {
            blockScales = nil
            nestedCodes = allocate(UInt8.self, blocks)
            nestedAbsmax = allocate(Float.self, nestedBlocks)
            nestedMap = allocate(Float.self, 256)
        } else {
            blockScales = allocate(Float.self, blocks)
            (nestedCodes, nestedAbsmax, nestedMap) = (nil, nil, nil)
        }
    }

    deinit {
        for p in [UnsafeMutableRawPointer(packed.baseAddress), UnsafeMutableRawPointer(blockScales?.baseAddress),
                  UnsafeMutableRawPointer(nestedCodes?.baseAddress), UnsafeMutableRawPointer(nestedAbsmax?.baseAddress),
                  UnsafeMutableRawPointer(nestedMap?.baseAddress)] {
            p?.deallocate()
        }
    }
}

/// The 4-bit code of one block (see the comment on `Quantized4Bit`'s quantizer extension).
struct FourBitQuantizer: Sendable {
    /// The 15 midpoints of the sorted code values, `(v[k] + v[k+1]) / 2` in Float32.
    let bounds: [Float]
    /// Sorted position → code index (torch `argsort` of the table; identity for NF4).
    let order: [UInt8]
    /// Code of a scaled value of 0 (the padding nibble of an odd count).
    let zeroCode: UInt8

    init(_ type: FourBitType) {
        let values = type.codeValues
        // torch 2.15's argsort of the FP4 table: stable, so +0 (index 0) sorts before the second
        // +0 (index 8) and small positive values get code 8 (checked by the fixtures).
        let order: [UInt8] = switch type {
        case .nf4: Array(0..<16)
        case .fp4: [11, 10, 13, 12, 15, 14, 9, 0, 8, 1, 6, 7, 4, 5, 2, 3]
        }
        let sorted = order.map { values[Int($0)] }
        bounds = (0..<15).map { (sorted[$0] + sorted[$0 + 1]) / 2 }
        self.order = order
        zeroCode = order[bounds.filter { $0 < 0 }.count]
    }

    /// Writes the codes of `count` (1 … 64) elements at `x` into `(count + 1) / 2` bytes and returns
    /// the block's stored absmax — or a non-finite value if an element is not finite.
    func block(_ x: UnsafePointer<Float>, count: Int, into packed: UnsafeMutablePointer<UInt8>) -> Float {
        // max|x| as the integer maximum of the magnitudes' bit patterns: the float order for finite
        // values; infinities and NaNs come out at or above 0x7F80_0000.
        var largest: UInt32 = 0
        for i in 0..<count { largest = max(largest, x[i].bitPattern & 0x7FFF_FFFF) }
        guard largest < 0x7F80_0000 else { return .nan }
        let absmax = Float(bitPattern: largest)
        // `absmax.clamp(min=1e-38)`: torch converts the Python float to Float32 (0x006CE3EE).
        let clamped = max(absmax, Float(bitPattern: 0x006C_E3EE))
        let full = count == Quantized4Bit.blockSize

        // Scaled values of 64 elements (zeros past `count`, the padding of an odd count).
        // `clamp(s, −1, 1)` is left out: every midpoint lies inside (−1, 1), so it cannot change a code.
        var scaled = (SIMD16<Float>(), SIMD16<Float>(), SIMD16<Float>(), SIMD16<Float>())
        withUnsafeMutableBytes(of: &scaled) { raw in
            let s = raw.bindMemory(to: Float.self)
            if full {
                let reciprocal = 1 / clamped
                for i in 0..<64 { s[i] = x[i] * reciprocal }
            } else {
                for i in 0..<count { s[i] = x[i] / clamped }
            }
        }
        // The code's sorted position: the number of midpoints strictly below s, counted as the sign
        // bits of `midpoint − s` (negative exactly when s > midpoint; equal values give +0, and
        // no midpoint is −0).
        @inline(__always) func positions(_ s: SIMD16<Float>) -> SIMD16<UInt32> {
            var q = SIMD16<UInt32>()
            for k in 0..<15 { q &+= unsafeBitCast(SIMD16(repeating: bounds[k]) - s, to: SIMD16<UInt32>.self) &>> 31 }
            return q
        }
        let q = (positions(scaled.0), positions(scaled.1), positions(scaled.2), positions(scaled.3))
        withUnsafeBytes(of: q) { raw in
            let q = raw.bindMemory(to: UInt32.self)
            for k in 0..<((count + 1) / 2) {
                packed[k] = order[Int(q[2 * k])] << 4 | order[Int(q[2 * k + 1])]
            }
        }
        return full ? absmax : clamped
    }
}

/// torch's CPU `sum` of a contiguous Float32 vector, bit for bit (torch 2.15, x86-64): the "cascade
/// sum" of `aten/src/ATen/native/cpu/SumKernel.cpp`. torch registers that kernel for AVX2 only
/// (`REGISTER_DISPATCH` leaves AVX-512 out), so it runs on 8-lane vectors even on AVX-512 CPUs.
///
/// One pass: the vectors are read as rows of 4 (`ilp_factor`), accumulated lane-wise into level 0
/// of a 4-level cascade whose level j absorbs level j − 1 every `2^(j·p)` rows
/// (`p = max(4, ⌈log₂ rows⌉ / 4)`); the leftover vectors join accumulator 0, the 4 accumulators
/// are added in order, then the scalar tail and the 8 lanes into one Float32. Fewer than 8 values
/// take the same cascade on scalars. With several threads and more than 32,768 values, torch sums
/// `⌈n / threads⌉`-long chunks separately and then sums the per-thread results.
enum TorchReduction {
    static func mean(_ x: UnsafeBufferPointer<Float>, threads: Int = 1) -> Float {
        sum(x, threads: threads) / Float(x.count)
    }

    static func sum(_ x: UnsafeBufferPointer<Float>, threads: Int = 1) -> Float {
        let n = x.count
        guard let base = x.baseAddress, n > 0 else { return 0 }
        let grain = 32_768
        guard n >= grain, threads > 1 else { return 0 + inner(base, n) }
        // `parallel_reduce` → `two_pass_reduction`: `at::parallel_for` chunks, one partial sum per
        // thread slot (0 for idle slots), then the sum of the slots.
        let used = min(threads, (n + grain - 1) / grain)
        let chunk = (n + used - 1) / used
        var partials = [Float](repeating: 0, count: threads)
        for t in 0..<used where t * chunk < n {
            partials[t] = 0 + inner(base + t * chunk, min(chunk, n - t * chunk))
        }
        return partials.withUnsafeBufferPointer { 0 + inner($0.baseAddress!, threads) }
    }

    /// `vectorized_inner_sum` (n ≥ 8) or `scalar_inner_sum` for one contiguous run.
    private static func inner(_ x: UnsafePointer<Float>, _ n: Int) -> Float {
        guard n >= 8 else { return rowSum(n) { x[$0] } }
        let vectors = n / 8
        let lanes = rowSum(vectors) { UnsafeRawPointer(x + 8 * $0).loadUnaligned(as: SIMD8<Float>.self) }
        var total: Float = 0
        for k in (8 * vectors)..<n { total += x[k] }
        for lane in 0..<8 { total += lanes[lane] }
        return total
    }

    /// `row_sum`: `count` values as rows of 4 through the cascade, then the leftovers and the 4 partials.
    private static func rowSum<T: CascadeSummand>(_ count: Int, _ load: (Int) -> T) -> T {
        let rows = count / 4
        var partial = multiRowSum(rows, load)
        for i in (4 * rows)..<count { partial.0 = partial.0 + load(i) }
        return ((partial.0 + partial.1) + partial.2) + partial.3
    }

    /// `multi_row_sum` with 4 columns and 4 levels.
    private static func multiRowSum<T: CascadeSummand>(_ rows: Int, _ load: (Int) -> T) -> (T, T, T, T) {
        let power = max(4, ceilLog2(rows) / 4)
        let step = 1 << power, mask = step - 1
        var acc = [[T]](repeating: [T](repeating: .zero, count: 4), count: 4)
        var i = 0
        while i + step <= rows {
            for _ in 0..<step {
                for k in 0..<4 { acc[0][k] = acc[0][k] + load(4 * i + k) }
                i += 1
            }
            for j in 1..<4 {
                for k in 0..<4 {
                    acc[j][k] = acc[j][k] + acc[j - 1][k]
                    acc[j - 1][k] = .zero
                }
                if i & (mask << (j * power)) != 0 { break }
            }
        }
        while i < rows {
            for k in 0..<4 { acc[0][k] = acc[0][k] + load(4 * i + k) }
            i += 1
        }
        for j in 1..<4 {
            for k in 0..<4 { acc[0][k] = acc[0][k] + acc[j][k] }
        }
        return (acc[0][0], acc[0][1], acc[0][2], acc[0][3])
    }

    /// c10's `CeilLog2`: 1 for x ≤ 2, else the bit width of x − 1.
    private static func ceilLog2(_ x: Int) -> Int {
        x <= 2 ? 1 : Int.bitWidth - (x - 1).leadingZeroBitCount
    }
}

/// What the cascade adds: Float32 scalars or 8-lane vectors (lane-wise IEEE additions).
protocol CascadeSummand {
    static var zero: Self { get }
    static func + (a: Self, b: Self) -> Self
}

extension Float: CascadeSummand {}
extension SIMD8: CascadeSummand where Scalar == Float {}

/// bitsandbytes' signed 8-bit dynamic map (`create_dynamic_map()`, reference/formats.md §1.5) and
/// its CPU blockwise quantizer (`quantize_cpu`, libbitsandbytes_cpu 0.50.2), bit for bit:
///
/// - a 65,536-entry table maps `i` (the value `2i/65535 − 1`, Float32 division then subtraction) to
///   the first code whose midpoint with the next, `(c[k] + c[k+1])·0.5`, is not below it;
/// - per block, `absmax = max(0, max|x|)`; an all-zero block gets codes 0; otherwise
///   `v = clamp(x · (1/absmax), −1, 1)` and the code is `table[trunc(fma((v + 1)·0.5, 65535, 0.5))]`
///   (the library is built with FMA contraction, seen in its disassembly; with `0.5` added to a
///   value below 65,536 the fused and the two-step forms round alike).
///
/// Used for the double quantization of 4-bit scales, and by bitsandbytes' 8-bit optimizers, which
/// keep their first moment in this blockwise form with ``standard`` and their second with
/// ``unsigned`` (the same table construction and rounding, over that map's midpoints).
public final class DynamicMap8Bit: Sendable {
    /// The map bitsandbytes uses by default (`name2qmap["dynamic"]`).
    public static let standard = DynamicMap8Bit()

    /// The unsigned map (`create_dynamic_map(signed=False)`, bitsandbytes' `name2qmap["udynamic"]`):
    /// 0 at index 0, 1.0 at index 255, no negative values. Its 256 Float32 bit patterns, as torch
    /// 2.15 builds them (a re-derivation can be off by an ulp, as for the signed map).
    public static let unsigned = DynamicMap8Bit(values: unsignedBitPatterns.map(Float.init(bitPattern:)))

    private static let unsignedBitPatterns: [UInt32] = [
        0x0000_0000, 0x34AE_7BAA, 0x3550_0998, 0x360E_9B38, 0x3692_CCF6, 0x36DE_4C51, 0x3714_E5D5, 0x3783_126E,
        0x37E1_71A0, 0x381F_E868, 0x384F_1800, 0x387E_479A, 0x3896_BB99, 0x38AE_5364, 0x38C5_EB31, 0x3906_594B,
        0x3941_54CA, 0x397C_5049, 0x399B_A5E4, 0x39B9_23A2, 0x39D6_A163, 0x39F4_1F22, 0x3A08_CE71, 0x3A17_8D50,
        0x3A26_4C30, 0x3A35_0B10, 0x3A43_C9EF, 0x3A52_88D0, 0x3A61_47AF, 0x3A70_068E, 0x3A7E_C56E, 0x3A95_8106,
        0x3ABA_5E35, 0x3ADF_3B64, 0x3B02_0C4A, 0x3B14_7AE1, 0x3B26_E978, 0x3B39_5810, 0x3B4B_C6A7, 0x3B5E_3540,
        0x3B70_A3D7, 0x3B81_8937, 0x3B8A_C082, 0x3B93_F7CF, 0x3B9D_2F1A, 0x3BA6_6666, 0x3BAF_9DB2, 0x3BB8_D4FD,
        0x3BC2_0C4A, 0x3BCB_4395, 0x3BD4_7AE1, 0x3BDD_B22E, 0x3BE6_E978, 0x3BF0_20C5, 0x3BF9_580F, 0x3C01_47AE,
        0x3C05_E354, 0x3C0A_7EF9, 0x3C0F_1AA0, 0x3C13_B645, 0x3C18_51EB, 0x3C1C_ED92, 0x3C21_8937, 0x3C2F_5C2A,
        0x3C46_6667, 0x3C5D_70A3, 0x3C74_7AE2, 0x3C85_C28F, 0x3C91_47AF, 0x3C9C_CCCD, 0x3CA8_51EB, 0x3CB3_D70B,
        0x3CBF_5C29, 0x3CCA_E147, 0x3CD6_6667, 0x3CE1_EB87, 0x3CED_70A3, 0x3CF8_F5C3, 0x3D02_3D70, 0x3D08_0000,
        0x3D0D_C28F, 0x3D13_851F, 0x3D19_47AF, 0x3D1F_0A3D, 0x3D24_CCCD, 0x3D2A_8F5C, 0x3D30_51EB, 0x3D36_147B,
        0x3D3B_D70A, 0x3D41_999A, 0x3D47_5C28, 0x3D4D_1EB8, 0x3D52_E147, 0x3D58_A3D7, 0x3D5E_6667, 0x3D64_28F7,
        0x3D69_EB87, 0x3D6F_AE15, 0x3D75_70A3, 0x3D7B_3333, 0x3D80_7AE2, 0x3D83_5C2A, 0x3D86_3D71, 0x3D89_1EB8,
        0x3D8C_0000, 0x3D8E_E148, 0x3D91_C290, 0x3D94_A3D7, 0x3D97_851F, 0x3D9A_6667, 0x3D9D_47AF, 0x3DA0_28F6,
        0x3DA3_0A3E, 0x3DA5_EB85, 0x3DA8_CCCD, 0x3DAB_AE15, 0x3DAE_8F5C, 0x3DB1_70A4, 0x3DB4_51EB, 0x3DB7_3333,
        0x3DBA_147B, 0x3DBC_F5C3, 0x3DBF_D70B, 0x3DC2_B852, 0x3DC5_999A, 0x3DC8_7AE2, 0x3DCB_5C29, 0x3DD4_0000,
        0x3DE2_6666, 0x3DF0_CCCD, 0x3DFF_3333, 0x3E06_CCCC, 0x3E0E_0000, 0x3E15_3334, 0x3E1C_6666, 0x3E23_999A,
        0x3E2A_CCCC, 0x3E32_0000, 0x3E39_3334, 0x3E40_6666, 0x3E47_999A, 0x3E4E_CCCC, 0x3E56_0000, 0x3E5D_3334,
        0x3E64_6666, 0x3E6B_999A, 0x3E72_CCCC, 0x3E7A_0000, 0x3E80_9999, 0x3E84_3333, 0x3E87_CCCD, 0x3E8B_6666,
        0x3E8F_0000, 0x3E92_999A, 0x3E96_3333, 0x3E99_CCCC, 0x3E9D_6666, 0x3EA1_0000, 0x3EA4_999A, 0x3EA8_3333,
        0x3EAB_CCCC, 0x3EAF_6666, 0x3EB3_0000, 0x3EB6_999A, 0x3EBA_3333, 0x3EBD_CCCC, 0x3EC1_6666, 0x3EC5_0000,
        0x3EC8_999A, 0x3ECC_3333, 0x3ECF_CCCC, 0x3ED3_6666, 0x3ED7_0000, 0x3EDA_999A, 0x3EDE_3333, 0x3EE1_CCCC,
        0x3EE5_6666, 0x3EE9_0000, 0x3EEC_999A, 0x3EF0_3333, 0x3EF3_CCCC, 0x3EF7_6666, 0x3EFB_0000, 0x3EFE_9999,
        0x3F01_199A, 0x3F02_E666, 0x3F04_B333, 0x3F06_8000, 0x3F08_4CCC, 0x3F0A_199A, 0x3F0B_E666, 0x3F0D_B334,
        0x3F0F_8000, 0x3F11_4CCD, 0x3F13_199A, 0x3F14_E666, 0x3F16_B334, 0x3F18_8000, 0x3F1A_4CCD, 0x3F1C_199A,
        0x3F1D_E666, 0x3F1F_B334, 0x3F21_8000, 0x3F23_4CCD, 0x3F25_199A, 0x3F26_E666, 0x3F28_B334, 0x3F2A_8000,
        0x3F2C_4CCD, 0x3F2E_199A, 0x3F2F_E666, 0x3F31_B334, 0x3F33_8000, 0x3F35_4CCD, 0x3F37_199A, 0x3F38_E666,
        0x3F3A_B334, 0x3F3C_8000, 0x3F3E_4CCD, 0x3F40_199A, 0x3F41_E666, 0x3F43_B334, 0x3F45_8000, 0x3F47_4CCC,
        0x3F49_199A, 0x3F4A_E666, 0x3F4C_B334, 0x3F4E_8000, 0x3F50_4CCC, 0x3F52_199A, 0x3F53_E666, 0x3F55_B334,
        0x3F57_8000, 0x3F59_4CCC, 0x3F5B_199A, 0x3F5C_E666, 0x3F5E_B334, 0x3F60_8000, 0x3F62_4CCC, 0x3F64_199A,
        0x3F65_E666, 0x3F67_B334, 0x3F69_8000, 0x3F6B_4CCC, 0x3F6D_199A, 0x3F6E_E666, 0x3F70_B334, 0x3F72_8000,
        0x3F74_4CCC, 0x3F76_199A, 0x3F77_E666, 0x3F79_B334, 0x3F7B_8000, 0x3F7D_4CCC, 0x3F7F_199A, 0x3F80_0000,
    ]

    /// The 256 map values, index order.
    public let values: [Float]
    /// 65,536 codes.
    private let table: [UInt8]

    private convenience init() {
        // Indices 128 … 255 as Float32 bit patterns (formats.md §1.5); index 127 is 0 and
        // `map[i] = −map[254 − i]` for i < 127.
        let positive: [UInt32] = [
            0x3513_A3B7, 0x365A_1A94, 0x3702_05FF, 0x37B2_4206, 0x3837_8034, 0x388A_EFB3, 0x38BA_1F4B, 0x3923_D70B,
            0x398C_E705, 0x39C7_E283, 0x3A01_6F01, 0x3A1E_ECC1, 0x3A3C_6A80, 0x3A59_E83E, 0x3A77_65FF, 0x3AA7_EF9D,
            0x3AF1_A9FC, 0x3B1D_B22D, 0x3B42_8F5C, 0x3B67_6C8A, 0x3B86_24DD, 0x3B98_9374, 0x3BAB_020D, 0x3BBD_70A4,
            0x3BCF_DF3B, 0x3BE2_4DD3, 0x3BF4_BC6A, 0x3C03_9581, 0x3C0C_CCCD, 0x3C16_0418, 0x3C1F_3B64, 0x3C3A_E148,
            0x3C68_F5C3, 0x3C8B_851F, 0x3CA2_8F5D, 0x3CB9_999A, 0x3CD0_A3D7, 0x3CE7_AE15, 0x3CFE_B852, 0x3D0A_E148,
            0x3D16_6667, 0x3D21_EB85, 0x3D2D_70A3, 0x3D38_F5C3, 0x3D44_7AE1, 0x3D50_0000, 0x3D5B_851F, 0x3D67_0A3D,
            0x3D72_8F5D, 0x3D7E_147B, 0x3D84_CCCD, 0x3D8A_8F5D, 0x3D90_51EB, 0x3D96_147B, 0x3D9B_D70A, 0x3DA1_999A,
            0x3DA7_5C2A, 0x3DAD_1EB8, 0x3DB2_E148, 0x3DB8_A3D7, 0x3DBE_6667, 0x3DC4_28F7, 0x3DC9_EB85, 0x3DDB_3334,
            0x3DF8_0000, 0x3E0A_6666, 0x3E18_CCCD, 0x3E27_3333, 0x3E35_999A, 0x3E44_0000, 0x3E52_6666, 0x3E60_CCCD,
            0x3E6F_3333, 0x3E7D_9999, 0x3E86_0000, 0x3E8D_3334, 0x3E94_6666, 0x3E9B_999A, 0x3EA2_CCCC, 0x3EAA_0000,
            0x3EB1_3333, 0x3EB8_6666, 0x3EBF_999A, 0x3EC6_CCCC, 0x3ECE_0000, 0x3ED5_3333, 0x3EDC_6666, 0x3EE3_999A,
            0x3EEA_CCCC, 0x3EF2_0000, 0x3EF9_3332, 0x3F00_3333, 0x3F03_CCCC, 0x3F07_6666, 0x3F0B_0000, 0x3F0E_999A,
            0x3F12_3334, 0x3F15_CCCD, 0x3F19_6666, 0x3F1D_0000, 0x3F20_999A, 0x3F24_3334, 0x3F27_CCCD, 0x3F2B_6666,
            0x3F2F_0000, 0x3F32_999A, 0x3F36_3334, 0x3F39_CCCD, 0x3F3D_6666, 0x3F41_0000, 0x3F44_999A, 0x3F48_3333,
            0x3F4B_CCCD, 0x3F4F_6666, 0x3F53_0000, 0x3F56_999A, 0x3F5A_3333, 0x3F5D_CCCD, 0x3F61_6666, 0x3F65_0000,
            0x3F68_999A, 0x3F6C_3333, 0x3F6F_CCCD, 0x3F73_6666, 0x3F77_0000, 0x3F7A_999A, 0x3F7E_3333, 0x3F80_0000,
        ]
        let upper = positive.map(Float.init(bitPattern:))
        self.init(values: (0..<127).map { -upper[126 - $0] } + [0] + upper)
    }

    /// A map with these 256 sorted values and its lookup table.
    private init(values: [Float]) {
        precondition(values.count == 256 && zip(values, values.dropFirst()).allSatisfy { $0 < $1 }, "256 sorted values")
        self.values = values
        let midpoints = (0..<255).map { (values[$0] + values[$0 + 1]) * 0.5 }
        var table = [UInt8](repeating: 0, count: 65_536)
        var code = 0
        for i in 0..<65_536 {
            let v = Float(2 * i) / 65_535 - 1
            while code < 255 && v > midpoints[code] { code += 1 }
            table[i] = UInt8(code)
        }
        self.table = table
    }

    /// Quantizes `x` in blocks of `blockSize` like bitsandbytes `quantize_blockwise` on a CPU: one
    /// code per value and one absmax per block (the last block may be short).
    ///
    /// - Precondition: `x` is finite, `blockSize > 0`, `codes` has `x.count` elements and `absmax`
    ///   one per block.
    public func quantize(_ x: UnsafeBufferPointer<Float>, blockSize: Int, codes: UnsafeMutableBufferPointer<UInt8>,
                         absmax: UnsafeMutableBufferPointer<Float>) {
        precondition(blockSize > 0 && codes.count == x.count && absmax.count == (x.count + blockSize - 1) / blockSize)
        table.withUnsafeBufferPointer { table in
            for b in 0..<absmax.count {
                let block = (b * blockSize)..<min(x.count, (b + 1) * blockSize)
                var largest: Float = 0
                for i in block where abs(x[i]) > largest { largest = abs(x[i]) }
                absmax[b] = largest
                guard largest != 0 else {
                    for i in block { codes[i] = 0 }
                    continue
                }
                let reciprocal = 1 / largest
                for i in block {
                    let v = min(max(x[i] * reciprocal, -1), 1)
                    let position = (v + 1) * 0.5
                    let index = Int(Float(0.5).addingProduct(position, 65_535)) & 0xFFFF
                    codes[i] = table[index]
                }
            }
        }
    }

    /// `quantize` on arrays.
    public func quantize(_ x: [Float], blockSize: Int) -> (codes: [UInt8], absmax: [Float]) {
        var codes = [UInt8](repeating: 0, count: x.count)
        var absmax = [Float](repeating: 0, count: (x.count + blockSize - 1) / blockSize)
        x.withUnsafeBufferPointer { x in
            codes.withUnsafeMutableBufferPointer { c in absmax.withUnsafeMutableBufferPointer { quantize(x, blockSize: blockSize, codes: c, absmax: $0) } }
        }
        return (codes, absmax)
    }

    /// `map[code] · absmax[i / blockSize]` in Float32 (bitsandbytes `dequantize_blockwise`).
    public func dequantize(codes: [UInt8], absmax: [Float], blockSize: Int) -> [Float] {
        precondition(blockSize > 0 && absmax.count == (codes.count + blockSize - 1) / blockSize)
        return codes.indices.map { values[Int(codes[$0])] * absmax[$0 / blockSize] }
    }
}
