import FinchCore
import Foundation

/// A TensorBoard event file read back independently of the writer: TFRecord framing with both
/// masked CRC-32Cs checked, and the `Event` / `Summary` protobuf fields the writer uses decoded
/// from the wire format (field numbers from tensorboard/compat/proto/event.proto, summary.proto).
struct TensorBoardEventFile {
    struct Event {
        var wallTime = 0.0
        var step: Int64 = 0
        var fileVersion: String?
        var sourceWriter: String?
        /// `SessionLog.status` (1 = START) when the event is a session log.
        var sessionStatus: Int64?
        var scalars: [(tag: String, value: Float)] = []
    }

    struct Failure: Error, CustomStringConvertible { var description: String }

    var events: [Event]

    init(path: String) throws {
        guard let data = FileManager.default.contents(atPath: path) else { throw Failure(description: "\(path): cannot read") }
        events = try Self.records(Array(data)).map(Self.event)
    }

    /// The payloads of the records; any framing or CRC error throws with its offset.
    static func records(_ bytes: [UInt8]) throws -> [[UInt8]] {
        func u64(_ at: Int) -> UInt64 { (0..<8).reduce(0) { $0 | UInt64(bytes[at + $1]) << (8 * $1) } }
        func u32(_ at: Int) -> UInt32 { (0..<4).reduce(0) { $0 | UInt32(bytes[at + $1]) << (8 * $1) } }
        var out: [[UInt8]] = []
        var offset = 0
        while offset < bytes.count {
            guard bytes.count - offset >= 12 else { throw Failure(description: "truncated header at \(offset)") }
            let length = Int(u64(offset))
            guard CRC32C.unmask(u32(offset + 8)) == CRC32C.checksum(Array(bytes[offset..<offset + 8])) else {
                throw Failure(description: "length CRC mismatch at \(offset)")
            }
            guard bytes.count - offset - 12 >= length + 4 else { throw Failure(description: "truncated record at \(offset)") }
            let data = Array(bytes[offset + 12..<offset + 12 + length])
            guard CRC32C.unmask(u32(offset + 12 + length)) == CRC32C.checksum(data) else {
                throw Failure(description: "data CRC mismatch at \(offset)")
            }
            out.append(data)
            offset += 12 + length + 4
        }
        return out
    }

    enum Field {
        case varint(UInt64)
        case fixed64(UInt64)
        case fixed32(UInt32)
        case bytes([UInt8])
    }

    /// The (field number, value) pairs of one message.
    static func fields(_ bytes: [UInt8]) throws -> [(Int, Field)] {
        var i = 0
        func varint() throws -> UInt64 {
            var value: UInt64 = 0, shift: UInt64 = 0
            while true {
                guard i < bytes.count, shift < 64 else { throw Failure(description: "bad varint") }
                let b = bytes[i]
                i += 1
                value |= UInt64(b & 0x7F) << shift
                if b < 0x80 { return value }
                shift += 7
            }
        }
        func fixed(_ n: Int) throws -> UInt64 {
            guard i + n <= bytes.count else { throw Failure(description: "truncated fixed field") }
            defer { i += n }
            return (0..<n).reduce(0) { $0 | UInt64(bytes[i + $1]) << (8 * $1) }
        }
        var out: [(Int, Field)] = []
        while i < bytes.count {
            let key = try varint()
            let number = Int(key >> 3)
            switch key & 7 {
            case 0: out.append((number, .varint(try varint())))
            case 1: out.append((number, .fixed64(try fixed(8))))
            case 5: out.append((number, .fixed32(UInt32(try fixed(4)))))
            case 2:
                let n = Int(try varint())
                guard i + n <= bytes.count else { throw Failure(description: "truncated bytes field") }
                out.append((number, .bytes(Array(bytes[i..<i + n]))))
                i += n
            default: throw Failure(description: "wire type \(key & 7)")
            }
        }
        return out
    }

    static func event(_ bytes: [UInt8]) throws -> Event {
        var e = Event()
        for (number, field) in try fields(bytes) {
            switch (number, field) {
            case (1, .fixed64(let bits)): e.wallTime = Double(bitPattern: bits)
            case (2, .varint(let v)): e.step = Int64(bitPattern: v)
            case (3, .bytes(let b)): e.fileVersion = String(decoding: b, as: UTF8.self)
            case (5, .bytes(let summary)):
                for (n, value) in try fields(summary) {
                    guard n == 1, case .bytes(let v) = value else { throw Failure(description: "unexpected Summary field \(n)") }
                    var tag: String?, scalar: Float?
                    for (m, f) in try fields(v) {
                        switch (m, f) {
                        case (1, .bytes(let t)): tag = String(decoding: t, as: UTF8.self)
                        case (2, .fixed32(let bits)): scalar = Float(bitPattern: bits)
                        default: throw Failure(description: "unexpected Summary.Value field \(m)")
                        }
                    }
                    guard let tag, let scalar else { throw Failure(description: "a Summary.Value without tag or simple_value") }
                    e.scalars.append((tag, scalar))
                }
            case (7, .bytes(let log)):
                for (n, f) in try fields(log) { if n == 1, case .varint(let s) = f { e.sessionStatus = Int64(s) } }
            case (10, .bytes(let source)):
                for (n, f) in try fields(source) { if n == 1, case .bytes(let w) = f { e.sourceWriter = String(decoding: w, as: UTF8.self) } }
            default: throw Failure(description: "unexpected Event field \(number)")
            }
        }
        return e
    }
}
