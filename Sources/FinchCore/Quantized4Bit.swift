/// bitsandbytes' 4-bit data types (`bnb_4bit_quant_type`; reference/formats.md §1.2, §1.7).
public enum FourBitType: String, Sendable, CaseIterable {
    /// NormalFloat4: 16 quantiles of N(0, 1) scaled to [−1, 1], sorted by index.
    case nf4
    /// A 1-sign, 2-exponent, 1-mantissa float scaled to [−1, 1]; not sorted by index.
    case fp4

    /// The 16 code values, index → value: bitsandbytes' `get_4bit_type` (the `quant_map` of a saved
    /// layer), as the exact Float32 bit patterns torch holds. FP4's index 8 is +0: bitsandbytes'
    /// table writes it as the integer `-0`.
    public var codeValues: [Float] {
        let bits: [UInt32] = switch self {
        case .nf4: [0xBF80_0000, 0xBF32_39B1, 0xBF06_6B30, 0xBECA_32A0, 0xBE91_A24D, 0xBE3D_353F, 0xBDBA_7871, 0x0000_0000,
                    0x3DA2_FAFF, 0x3E24_CAE3, 0x3E7C_04DD, 0x3EAD_033A, 0x3EE1_A4B8, 0x3F10_07AB, 0x3F39_13B3, 0x3F80_0000]
        case .fp4: [0x0000_0000, 0x3BAA_AAAB, 0x3F2A_AAAB, 0x3F80_0000, 0x3EAA_AAAB, 0x3F00_0000, 0x3E2A_AAAB, 0x3E80_0000,
                    0x0000_0000, 0xBBAA_AAAB, 0xBF2A_AAAB, 0xBF80_0000, 0xBEAA_AAAB, 0xBF00_0000, 0xBE2A_AAAB, 0xBE80_0000]
        }
        return bits.map(Float.init(bitPattern:))
    }
}

/// A tensor quantized to 4 bits exactly as bitsandbytes 0.50.2 `quantize_4bit` does (blocksize 64,
/// NF4 or FP4, optionally with double quantization of the block scales): the same packed bytes,
/// the same `absmax` (or nested state) bit for bit, and `dequantize` gives `dequantize_4bit`'s values
/// (reference/formats.md §1.3–1.4; the algorithm and its corner cases are in
/// `Quantized4Bit+Quantize.swift`).
///
/// The tensor is flattened row-major: blocks of 64 elements run across row boundaries when a row
/// is not a multiple of 64 long. Element `2k` is the high nibble of byte `k`, element `2k + 1` the
/// low nibble; an odd count is padded with the code of 0.
///
/// The bytes live in memory owned by `owner` (this value's own allocation when quantized here, or a
/// mapped checkpoint), so a `LinearWeight` can run on them without copies.
public struct Quantized4Bit: @unchecked Sendable {
    /// Elements per block (bitsandbytes' `blocksize` for weights).
    public static let blockSize = 64
    /// Block scales per block of the double quantization (`nested_blocksize`).
    public static let nestedBlockSize = 256

    /// The per-block scales (bitsandbytes' `absmax`), plain or double-quantized.
    public enum Absmax: @unchecked Sendable {
        /// One Float32 per block (`compress_statistics=False`).
        case float32(UnsafeBufferPointer<Float>)
        /// `compress_statistics=True`: block b's scale is `map[codes[b]] · absmax[b / 256] + offset`
        /// in Float32 (bitsandbytes' `weight.absmax` (U8), `nested_absmax`, `nested_offset` and
        /// `nested_quant_map`).
        case doubleQuantized(codes: UnsafeBufferPointer<UInt8>, absmax: UnsafeBufferPointer<Float>, offset: Float,
                             map: UnsafeBufferPointer<Float>)
    }

    public let type: FourBitType
    /// The original shape (`[out, in]` for a linear weight).
    public let shape: [Int]
    /// Number of elements, the product of `shape`.
    public let count: Int
    /// `(count + 1) / 2` bytes of codes.
    public let packed: UnsafeBufferPointer<UInt8>
    public let absmax: Absmax
    /// The 16 code values the bytes index (bitsandbytes' `quant_map`; `type.codeValues` unless a
    /// checkpoint stored another table).
    public let codeValues: [Float]
    /// Keeps the memory behind the buffers alive.
    public let owner: AnyObject?
    /// For each byte value, its two elements' code values (high nibble first): the lookup the
    /// dequantization kernels use.
    let pairs: CodePairs

    /// Number of 64-element blocks, `⌈count / 64⌉`.
    public var blockCount: Int { (count + Self.blockSize - 1) / Self.blockSize }

    /// Bytes held for this tensor: codes, scales and tables.
    public var byteCount: Int {
        let scales = switch absmax {
        case .float32(let a): 4 * a.count
        case .doubleQuantized(let codes, let nested, _, let map): codes.count + 4 * nested.count + 4 * map.count + 4
        }
        return packed.count + scales + 4 * codeValues.count
    }

    /// Wraps existing quantized data (e.g. a pre-quantized bitsandbytes checkpoint) without copying it.
    ///
    /// - Throws: `QuantizationError` if a buffer's length does not match `shape`: `packed` must hold
    ///   `(count + 1) / 2` bytes, the scales one per 64-element block (nested: one per 256 blocks and a
    ///   256-entry map), `codeValues` 16 values.
    public init(type: FourBitType, shape: [Int], packed: UnsafeBufferPointer<UInt8>, absmax: Absmax,
                codeValues: [Float]? = nil, owner: AnyObject?) throws {
        guard shape.allSatisfy({ $0 >= 0 }) else { throw QuantizationError("shape \(shape) has a negative dimension") }
        let count = shape.reduce(1, *)
        let blocks = (count + Self.blockSize - 1) / Self.blockSize
        guard packed.count == (count + 1) / 2 else {
            throw QuantizationError("shape \(shape) needs \((count + 1) / 2) packed bytes, got \(packed.count)")
        }
        switch absmax {
        case .float32(let a):
            guard a.count == blocks else { throw QuantizationError("shape \(shape) needs \(blocks) absmax values, got \(a.count)") }
        case .doubleQuantized(let codes, let nested, let offset, let map):
            let nestedBlocks = (blocks + Self.nestedBlockSize - 1) / Self.nestedBlockSize
            guard codes.count == blocks else { throw QuantizationError("shape \(shape) needs \(blocks) quantized absmax bytes, got \(codes.count)") }
            guard nested.count == nestedBlocks else {
                throw QuantizationError("shape \(shape) needs \(nestedBlocks) nested absmax values, got \(nested.count)")
            }
            guard map.count == 256 else { throw QuantizationError("the nested quant map has \(map.count) entries, expected 256") }
            guard offset.isFinite else { throw QuantizationError("the nested offset \(offset) is not finite") }
        }
        let values = codeValues ?? type.codeValues
        guard values.count == 16 else { throw QuantizationError("the quant map has \(values.count) entries, expected 16") }
        self.init(type: type, shape: shape, count: count, packed: packed, absmax: absmax, codeValues: values, owner: owner)
    }

    /// Memberwise, no checks (the quantizer builds consistent buffers).
    init(type: FourBitType, shape: [Int], count: Int, packed: UnsafeBufferPointer<UInt8>, absmax: Absmax,
         codeValues: [Float], owner: AnyObject?) {
        self.type = type
        self.shape = shape
        self.count = count
        self.packed = packed
        self.absmax = absmax
        self.codeValues = codeValues
        self.owner = owner
        pairs = codeValues == FourBitType.nf4.codeValues ? .nf4 : codeValues == FourBitType.fp4.codeValues ? .fp4 : CodePairs(codeValues)
    }

    /// Whether the scales are double-quantized.
    public var isDoubleQuantized: Bool {
        if case .doubleQuantized = absmax { return true }
        return false
    }

    /// The packed codes as an array.
    public var packedBytes: [UInt8] { Array(packed) }

    /// Block b's Float32 scale: the stored absmax, or its reconstruction from the nested state,
    /// bit-identical to bitsandbytes' `dequantize_blockwise(absmax) + offset`.
    @inline(__always)
    public func scale(block b: Int) -> Float {
        switch absmax {
        case .float32(let a):
            return a[b]
        case .doubleQuantized(let codes, let nested, let offset, let map):
            // Two Float32 roundings, as torch: the product (bitsandbytes' 8-bit dequantization),
            // then `absmax += offset`. Swift does not contract this into an FMA.
            let product = map[Int(codes[b])] * nested[b / Self.nestedBlockSize]
            return product + offset
        }
    }

    /// Every block's Float32 scale (see `scale(block:)`).
    public func blockScales() -> [Float] {
        (0..<blockCount).map { scale(block: $0) }
    }
}

/// An invalid input to the 4-bit quantization, with a message that says what is wrong.
public struct QuantizationError: Error, CustomStringConvertible, Equatable {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// For each byte value b, the code values of its high and low nibble: `(table[b >> 4], table[b & 15])`.
/// One 8-byte load per byte turns packed codes into two Float32 values (2 KiB: stays in L1).
final class CodePairs: @unchecked Sendable {
    let pointer: UnsafeMutablePointer<SIMD2<Float>>

    init(_ table: [Float]) {
        precondition(table.count == 16)
        pointer = .allocate(capacity: 256)
        for b in 0..<256 { pointer[b] = SIMD2(table[b >> 4], table[b & 15]) }
    }

    deinit { pointer.deallocate() }

    static let nf4 = CodePairs(FourBitType.nf4.codeValues)
    static let fp4 = CodePairs(FourBitType.fp4.codeValues)
}
