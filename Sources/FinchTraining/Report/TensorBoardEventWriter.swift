import FinchCore
import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A TensorBoard event file of a training run, written as transformers' `TensorBoardCallback`
/// writes one: `events.out.tfevents.<unix time>.<host>.<pid>.<n>` in the run folder, a first
/// event with `file_version: "brain.Event:2"`, then one event per logged record holding its
/// values as `simple_value` scalars tagged as transformers' `rewrite_logs` does (`loss` →
/// `train/loss`, `rewards/chosen` → `train/rewards/chosen`, `eval_loss` → `eval/loss`) at the
/// record's global step.
///
/// Each event is one TFRecord (tensorflow/core/lib/io/record_writer.cc): the length as a
/// little-endian uint64, the masked CRC-32C of those 8 bytes, the serialized `Event`
/// (tensorboard/compat/proto/event.proto, summary.proto), and the masked CRC-32C of it. Every
/// record goes to the kernel with one `write` as soon as it is appended, so a killed run keeps
/// every scalar logged before the kill.
public final class TensorBoardEventWriter {
    /// The event file's path.
    public let path: String
    private var fd: Int32

    /// `event.proto` / `summary.proto` field numbers.
    enum Field {
        static let wallTime = 1, step = 2, fileVersion = 3, summary = 5, sessionLog = 7, sourceMetadata = 10
        static let summaryValue = 1
        static let valueTag = 1, simpleValue = 2
        static let sessionLogStatus = 1
        static let sourceWriter = 1
    }

    /// `SessionLog.SessionStatus.START`.
    static let sessionStart: Int64 = 1

    /// Creates a new event file in `directory` and writes its version event. With
    /// `resumingAfterStep` (a run continuing from a checkpoint at that step), also writes a
    /// `SessionLog.START` event at the next step: TensorBoard then drops what an earlier file
    /// logged after the checkpoint, as `metrics.jsonl` drops those lines.
    public init(directory: String, resumingAfterStep: Int? = nil, wallTime: Double = Date().timeIntervalSince1970) throws {
        let stem = String(format: "events.out.tfevents.%010ld.%@.%ld.", Int(wallTime), Self.hostname(), Int(getpid()))
        // The last number tells apart writers of one process started in the same second.
        var n = 0
        var opened: Int32 = -1
        var candidate = ""
        repeat {
            candidate = (directory as NSString).appendingPathComponent(stem + String(n))
            opened = open(candidate, O_WRONLY | O_CREAT | O_EXCL | O_APPEND, 0o644)
            n += 1
        } while opened < 0 && errno == EEXIST && n < 1000
        guard opened >= 0 else {
            throw TrainingError(candidate, "cannot create the TensorBoard event file: \(String(cString: strerror(errno)))")
        }
        path = candidate
        fd = opened
        var version = ProtobufWriter()
        version.double(Field.wallTime, wallTime)
        version.string(Field.fileVersion, "brain.Event:2")
        version.message(Field.sourceMetadata) { $0.string(Field.sourceWriter, "finch") }
        try writeRecord(version.bytes)
        if let step = resumingAfterStep {
            var start = ProtobufWriter()
            start.double(Field.wallTime, wallTime)
            start.int64(Field.step, Int64(step + 1))
            start.message(Field.sessionLog) { $0.int64(Field.sessionLogStatus, Self.sessionStart) }
            try writeRecord(start.bytes)
        }
    }

    deinit { if fd >= 0 { close(fd) } }

    /// Appends the record's values as scalars at its step.
    public func append(_ record: TrainingLogRecord, wallTime: Double = Date().timeIntervalSince1970) throws {
        var event = ProtobufWriter()
        event.double(Field.wallTime, wallTime)
        event.int64(Field.step, Int64(record.step))
        event.message(Field.summary) { summary in
            for (key, value) in record.values {
                summary.message(Field.summaryValue) { v in
                    v.string(Field.valueTag, Self.tag(forKey: key))
                    v.float(Field.simpleValue, Float(value))
                }
            }
        }
        try writeRecord(event.bytes)
    }

    /// transformers' `rewrite_logs`: `eval_x` → `eval/x`, `test_x` → `test/x`, else `train/x`.
    public static func tag(forKey key: String) -> String {
        if key.hasPrefix("eval_") { return "eval/" + key.dropFirst(5) }
        if key.hasPrefix("test_") { return "test/" + key.dropFirst(5) }
        return "train/" + key
    }

    /// One TFRecord around `data`.
    static func frame(_ data: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(data.count + 16)
        withUnsafeBytes(of: UInt64(data.count).littleEndian) { out += $0 }
        let lengthCRC = CRC32C.mask(CRC32C.checksum(out))
        withUnsafeBytes(of: lengthCRC.littleEndian) { out += $0 }
        out += data
        withUnsafeBytes(of: CRC32C.mask(CRC32C.checksum(data)).littleEndian) { out += $0 }
        return out
    }

    private func writeRecord(_ data: [UInt8]) throws {
        let record = Self.frame(data)
        try record.withUnsafeBytes { raw in
            var offset = 0
            while offset < raw.count {
                let written = write(fd, raw.baseAddress! + offset, raw.count - offset)
                if written < 0 {
                    if errno == EINTR { continue }
                    throw TrainingError(path, "cannot write to the TensorBoard event file: \(String(cString: strerror(errno)))")
                }
                offset += written
            }
        }
    }

    /// The event files of a run folder (`events.out.tfevents.*`), oldest name first.
    public static func eventFiles(in directory: String) -> [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        return names.filter { $0.hasPrefix("events.out.tfevents.") }.sorted().map { (directory as NSString).appendingPathComponent($0) }
    }

    /// The host name as `socket.gethostname()` gives it, for the file name.
    static func hostname() -> String {
        var buffer = [CChar](repeating: 0, count: 256)
        guard gethostname(&buffer, buffer.count - 1) == 0 else { return "localhost" }
        let name = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return name.isEmpty ? "localhost" : name
    }
}
