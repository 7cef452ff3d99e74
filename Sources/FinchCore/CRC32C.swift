/// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78; RFC 3720 appendix B.4), for the record
/// framing of TensorBoard event files (TFRecord), which also stores it "masked".
public struct CRC32C: Sendable {
    /// The running register (pre- and post-conditioned with all ones, as the standard defines).
    private var state: UInt32 = 0xFFFF_FFFF

    /// Byte-at-a-time table of the reflected polynomial.
    private static let table: [UInt32] = (0..<256).map { n in
        var c = UInt32(n)
        for _ in 0..<8 { c = c & 1 != 0 ? (c >> 1) ^ 0x82F6_3B78 : c >> 1 }
        return c
    }

    public init() {}

    /// Feeds bytes.
    public mutating func update(_ bytes: UnsafeRawBufferPointer) {
        var c = state
        Self.table.withUnsafeBufferPointer { t in
            for b in bytes { c = t[Int((c ^ UInt32(b)) & 0xFF)] ^ (c >> 8) }
        }
        state = c
    }

    /// Feeds a byte array.
    public mutating func update(_ bytes: [UInt8]) { bytes.withUnsafeBytes { update($0) } }

    /// The checksum of the bytes fed so far.
    public var value: UInt32 { state ^ 0xFFFF_FFFF }

    /// The checksum of `bytes`.
    public static func checksum(_ bytes: [UInt8]) -> UInt32 {
        var crc = CRC32C()
        crc.update(bytes)
        return crc.value
    }

    /// TFRecord's masked form: rotated right by 15 bits plus a constant, so that a CRC stored
    /// inside checksummed data does not checksum to a fixed pattern (TensorFlow's `crc32c::Mask`).
    public static func mask(_ crc: UInt32) -> UInt32 {
        ((crc >> 15) | (crc << 17)) &+ 0xA282_EAD8
    }

    /// The inverse of ``mask(_:)``.
    public static func unmask(_ masked: UInt32) -> UInt32 {
        let rotated = masked &- 0xA282_EAD8
        return (rotated >> 17) | (rotated << 15)
    }
}
