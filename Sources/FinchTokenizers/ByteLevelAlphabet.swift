/// GPT-2's reversible byte ↔ Unicode mapping (formats.md §5.2): every byte gets a printable
/// code point so BPE can work on "characters". Bytes 33–126, 161–172 and 174–255 map to themselves;
/// the other 68 bytes, in increasing order, map to U+0100, U+0101, ….
enum ByteLevelAlphabet {
    /// byte → scalar.
    static let scalarOfByte: [Unicode.Scalar] = {
        var table = [Unicode.Scalar](repeating: " ", count: 256)
        var next: UInt32 = 256
        for b in 0..<256 {
            if (33...126).contains(b) || (161...172).contains(b) || (174...255).contains(b) {
                table[b] = Unicode.Scalar(UInt8(b))
            } else {
                table[b] = Unicode.Scalar(next) ?? " " // next ≤ U+0143: always valid
                next += 1
            }
        }
        return table
    }()

    /// scalar value → byte, for scalars in the alphabet (U+0000…U+0143).
    static let byteOfScalar: [Int16] = {
        var table = [Int16](repeating: -1, count: 0x144)
        for (b, s) in scalarOfByte.enumerated() { table[Int(s.value)] = Int16(b) }
        return table
    }()

    /// The byte a scalar stands for, or nil if it is not in the alphabet.
    @inline(__always)
    static func byte(of scalar: Unicode.Scalar) -> UInt8? {
        let v = Int(scalar.value)
        guard v < byteOfScalar.count, byteOfScalar[v] >= 0 else { return nil }
        return UInt8(byteOfScalar[v])
    }

    /// Maps UTF-8 bytes to the alphabet's string.
    static func encode<S: Sequence>(_ bytes: S) -> String where S.Element == UInt8 {
        var out = String.UnicodeScalarView()
        for b in bytes { out.append(scalarOfByte[Int(b)]) }
        return String(out)
    }
}
