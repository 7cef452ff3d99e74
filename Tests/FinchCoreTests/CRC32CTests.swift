import FinchCore
import XCTest

/// CRC-32C against RFC 3720 appendix B.4's vectors and the usual check value, and TFRecord's
/// masking.
final class CRC32CTests: XCTestCase {
    func testStandardVectors() {
        XCTAssertEqual(CRC32C.checksum(Array("123456789".utf8)), 0xE306_9283)
        XCTAssertEqual(CRC32C.checksum([]), 0)
        // RFC 3720 B.4: 32 bytes of zeros, of ones, ascending, descending, and an iSCSI read PDU.
        XCTAssertEqual(CRC32C.checksum([UInt8](repeating: 0, count: 32)), 0x8A91_36AA)
        XCTAssertEqual(CRC32C.checksum([UInt8](repeating: 0xFF, count: 32)), 0x62A8_AB43)
        XCTAssertEqual(CRC32C.checksum((0..<32).map { UInt8($0) }), 0x46DD_794E)
        XCTAssertEqual(CRC32C.checksum((0..<32).reversed().map { UInt8($0) }), 0x113F_DB5C)
        let pdu: [UInt8] = [
            0x01, 0xC0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
            0x14, 0x00, 0x00, 0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00, 0x00, 0x14, 0x00, 0x00, 0x00, 0x18,
            0x28, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        ]
        XCTAssertEqual(CRC32C.checksum(pdu), 0xD996_3A56)
    }

    func testStreamingEqualsOneShot() {
        var rng = SplitMix64(seed: 7)
        let bytes = (0..<1000).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
        var crc = CRC32C()
        var offset = 0
        for size in [0, 1, 3, 17, 200, 779] {
            crc.update(Array(bytes[offset..<offset + size]))
            offset += size
        }
        XCTAssertEqual(offset, bytes.count)
        XCTAssertEqual(crc.value, CRC32C.checksum(bytes))
        var other = bytes
        other[500] ^= 1
        XCTAssertNotEqual(CRC32C.checksum(other), CRC32C.checksum(bytes), "one flipped bit changes the checksum")
    }

    /// TensorFlow's mask: rotate right by 15, add 0xa282ead8; unmask inverts it. 0xC78AB0E5 is
    /// what tensorboard's `masked_crc32c(b"123456789")` returns.
    func testMask() {
        let crc = CRC32C.checksum(Array("123456789".utf8))
        XCTAssertEqual(CRC32C.mask(crc), 0xC78A_B0E5)
        XCTAssertEqual(CRC32C.mask(0), 0xA282_EAD8)
        for value: UInt32 in [0, 1, 0xFFFF_FFFF, 0x1234_5678, crc] { XCTAssertEqual(CRC32C.unmask(CRC32C.mask(value)), value) }
    }
}
