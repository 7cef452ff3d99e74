import FinchCore

/// The element types a safetensors header may name (`dtype`), in the declaration order of the
/// reference Rust crate's `Dtype` enum: the writer sorts tensors by this order, descending.
public enum SafeTensorsDType: String, CaseIterable, Sendable, Codable {
    case bool = "BOOL"
    case f4 = "F4"
    case f6E2M3 = "F6_E2M3"
    case f6E3M2 = "F6_E3M2"
    case u8 = "U8"
    case i8 = "I8"
    case f8E5M2 = "F8_E5M2"
    case f8E4M3 = "F8_E4M3"
    case f8E8M0 = "F8_E8M0"
    case f8E4M3FNUZ = "F8_E4M3FNUZ"
    case f8E5M2FNUZ = "F8_E5M2FNUZ"
    case i16 = "I16"
    case u16 = "U16"
    case f16 = "F16"
    case bf16 = "BF16"
    case i32 = "I32"
    case u32 = "U32"
    case f32 = "F32"
    case c64 = "C64"
    case f64 = "F64"
    case i64 = "I64"
    case u64 = "U64"

    /// Bits per element (F4 and the F6 types are sub-byte).
    public var bitsPerElement: Int {
        switch self {
        case .f4: 4
        case .f6E2M3, .f6E3M2: 6
        case .bool, .u8, .i8, .f8E5M2, .f8E4M3, .f8E8M0, .f8E4M3FNUZ, .f8E5M2FNUZ: 8
        case .i16, .u16, .f16, .bf16: 16
        case .i32, .u32, .f32: 32
        case .c64, .f64, .i64, .u64: 64
        }
    }

    /// Position in the reference crate's enum, used to order tensors when writing.
    var writeRank: Int { Self.allCases.firstIndex(of: self) ?? 0 }

    /// Whether `float32(…)` can convert this type (real floating-point and integer types).
    public var convertsToFloat32: Bool {
        switch self {
        case .f32, .f16, .bf16, .f64, .i8, .u8, .i16, .u16, .i32, .u32, .i64, .u64, .bool: true
        default: false
        }
    }

    /// Bytes used by `count` elements, or nil on overflow or a fractional byte count.
    public func byteCount(elements count: Int) -> Int? {
        let (bits, overflow) = count.multipliedReportingOverflow(by: bitsPerElement)
        guard !overflow, bits % 8 == 0 else { return nil }
        return bits / 8
    }

    /// Converts `count` little-endian elements at `source` to Float32 (exactly for every value
    /// Float32 can hold; wider integers and F64 round to nearest).
    /// - Precondition: `convertsToFloat32`.
    public func convert(_ source: UnsafeRawPointer, count: Int, into out: UnsafeMutablePointer<Float>) {
        switch self {
        case .f32: UnsafeMutableRawPointer(out).copyMemory(from: source, byteCount: 4 * count)
        case .f16: for i in 0..<count { out[i] = HalfPrecision.float(fromHalf: load(source, i, UInt16.self)) }
        case .bf16: for i in 0..<count { out[i] = HalfPrecision.float(fromBFloat16: load(source, i, UInt16.self)) }
        case .f64: for i in 0..<count { out[i] = Float(Double(bitPattern: load(source, i, UInt64.self))) }
        case .bool, .u8: for i in 0..<count { out[i] = Float(load(source, i, UInt8.self)) }
        case .i8: for i in 0..<count { out[i] = Float(load(source, i, Int8.self)) }
        case .i16: for i in 0..<count { out[i] = Float(load(source, i, Int16.self)) }
        case .u16: for i in 0..<count { out[i] = Float(load(source, i, UInt16.self)) }
        case .i32: for i in 0..<count { out[i] = Float(load(source, i, Int32.self)) }
        case .u32: for i in 0..<count { out[i] = Float(load(source, i, UInt32.self)) }
        case .i64: for i in 0..<count { out[i] = Float(load(source, i, Int64.self)) }
        case .u64: for i in 0..<count { out[i] = Float(load(source, i, UInt64.self)) }
        default: preconditionFailure("\(rawValue) does not convert to Float32")
        }
    }
}

@inline(__always)
private func load<T: FixedWidthInteger>(_ base: UnsafeRawPointer, _ index: Int, _: T.Type) -> T {
    T(littleEndian: base.loadUnaligned(fromByteOffset: index * MemoryLayout<T>.size, as: T.self))
}
