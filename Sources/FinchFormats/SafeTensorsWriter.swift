/// Writes safetensors files byte-identical to the reference Python/Rust `safetensors` writer.
///
/// The reference orders tensors by dtype (descending order of its `Dtype` enum, so wide types come
/// first and stay aligned) and then by name (bytewise), packs them contiguously, serializes the
/// header as compact JSON with `__metadata__` first, and pads it with spaces to a multiple of 8.
/// Metadata keys are written sorted (the reference uses a hash map, so its order is arbitrary when
/// there is more than one key).
public enum SafeTensorsWriter {
    /// One tensor to write: its raw little-endian bytes in row-major order.
    public struct Entry: Sendable {
        public var name: String
        public var dtype: SafeTensorsDType
        public var shape: [Int]
        public var bytes: [UInt8]

        public init(name: String, dtype: SafeTensorsDType, shape: [Int], bytes: [UInt8]) {
            self.name = name
            self.dtype = dtype
            self.shape = shape
            self.bytes = bytes
        }

        /// A Float32 tensor.
        public init(name: String, shape: [Int], float32 values: [Float]) {
            self.init(name: name, dtype: .f32, shape: shape,
                      bytes: values.withUnsafeBytes { Array($0) })
        }
    }

    /// The complete file contents.
    public static func serialize(_ entries: [Entry], metadata: [String: String]? = nil, path: String = "<memory>") throws -> [UInt8] {
        let (header, ordered) = try prepare(entries, metadata: metadata, path: path)
        var out = [UInt8]()
        out.reserveCapacity(header.count + ordered.reduce(0) { $0 + $1.bytes.count })
        out.append(contentsOf: header)
        for entry in ordered { out.append(contentsOf: entry.bytes) }
        return out
    }

    /// Writes the file atomically (temporary file + rename).
    public static func write(_ entries: [Entry], metadata: [String: String]? = nil, to path: String) throws {
        let (header, ordered) = try prepare(entries, metadata: metadata, path: path)
        var file = try AtomicFile(path: path)
        do {
            try file.write(header)
            for entry in ordered { try file.write(entry.bytes) }
            try file.commit()
        } catch {
            file.abandon()
            throw error
        }
    }

    /// Returns the 8-byte length + padded header, and the entries in file order.
    static func prepare(_ entries: [Entry], metadata: [String: String]?, path: String) throws -> ([UInt8], [Entry]) {
        var seen = Set<String>()
        for entry in entries {
            guard entry.name != "__metadata__" else { throw FormatError(path, "a tensor cannot be named __metadata__") }
            guard seen.insert(entry.name).inserted else { throw FormatError(path, "tensor '\(entry.name)' is given twice") }
            guard entry.shape.allSatisfy({ $0 >= 0 }),
                  let expected = entry.dtype.byteCount(elements: entry.shape.reduce(1, *)), expected == entry.bytes.count else {
                throw FormatError(path, "tensor '\(entry.name)': \(entry.bytes.count) bytes do not match shape \(entry.shape) of \(entry.dtype.rawValue)")
            }
        }
        let ordered = entries.sorted { a, b in
            if a.dtype.writeRank != b.dtype.writeRank { return a.dtype.writeRank > b.dtype.writeRank }
            return Array(a.name.utf8).lexicographicallyPrecedes(Array(b.name.utf8))
        }
        var members: [(String, JSONValue)] = []
        if let metadata {
            let sorted = metadata.keys.sorted { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) }
            members.append(("__metadata__", .object(sorted.map { ($0, .string(metadata[$0]!)) })))
        }
        var offset = 0
        for entry in ordered {
            members.append((entry.name, .object([
                ("dtype", .string(entry.dtype.rawValue)),
                ("shape", .array(entry.shape.map { .number(String($0)) })),
                ("data_offsets", .array([.number(String(offset)), .number(String(offset + entry.bytes.count))])),
            ])))
            offset += entry.bytes.count
        }
        var json = Array(JSONValue.object(members).compactText.utf8)
        json.append(contentsOf: [UInt8](repeating: 0x20, count: (8 - json.count % 8) % 8))
        var header = [UInt8]()
        let n = UInt64(json.count)
        for i in 0..<8 { header.append(UInt8(truncatingIfNeeded: n >> (8 * UInt64(i)))) }
        header.append(contentsOf: json)
        return (header, ordered)
    }
}
