/// The few pieces of the protocol-buffer wire format an event file needs
/// (protobuf.dev/programming-guides/encoding): varints, 64- and 32-bit little-endian scalars and
/// length-delimited fields, appended to a byte array. Fields are written in the order called;
/// a proto3 reader accepts any order.
struct ProtobufWriter {
    private(set) var bytes: [UInt8] = []

    /// Wire types.
    enum WireType: UInt8 {
        case varint = 0, fixed64 = 1, lengthDelimited = 2, fixed32 = 5
    }

    mutating func tag(_ field: Int, _ type: WireType) {
        varint(UInt64(field) << 3 | UInt64(type.rawValue))
    }

    /// Base-128, least significant group first; negative int64 values take ten bytes, as protobuf
    /// encodes them (two's complement, not zigzag, for `int64` fields).
    mutating func varint(_ value: UInt64) {
        var v = value
        while v >= 0x80 {
            bytes.append(UInt8(v & 0x7F) | 0x80)
            v >>= 7
        }
        bytes.append(UInt8(v))
    }

    /// A `double` field.
    mutating func double(_ field: Int, _ value: Double) {
        tag(field, .fixed64)
        withUnsafeBytes(of: value.bitPattern.littleEndian) { bytes += $0 }
    }

    /// A `float` field.
    mutating func float(_ field: Int, _ value: Float) {
        tag(field, .fixed32)
        withUnsafeBytes(of: value.bitPattern.littleEndian) { bytes += $0 }
    }

    /// An `int64` (or `int32`, `enum`) field.
    mutating func int64(_ field: Int, _ value: Int64) {
        tag(field, .varint)
        varint(UInt64(bitPattern: value))
    }

    /// A `bytes` field, or an embedded message already encoded.
    mutating func lengthDelimited(_ field: Int, _ data: [UInt8]) {
        tag(field, .lengthDelimited)
        varint(UInt64(data.count))
        bytes += data
    }

    /// A `string` field (UTF-8).
    mutating func string(_ field: Int, _ value: String) { lengthDelimited(field, Array(value.utf8)) }

    /// An embedded message built by `body`.
    mutating func message(_ field: Int, _ body: (inout ProtobufWriter) -> Void) {
        var inner = ProtobufWriter()
        body(&inner)
        lengthDelimited(field, inner.bytes)
    }
}
