import FinchCore

/// Writes a GGUF version 3 file (`../shared/reference/formats.md` §4.1) the way the `gguf` Python
/// package's `GGUFWriter` lays it out: header, metadata in the given order, tensor infos with
/// offsets packed in order and aligned, zero padding to the alignment, then each tensor's bytes
/// padded to the alignment. Tensor data is produced one tensor at a time, so a model is never
/// held twice in memory; the file appears under its name only when complete (`AtomicFile`).
public enum GGUFWriter {
    /// One tensor to write: its ggml dimensions (`ne`, fastest-varying first — the reverse of the
    /// PyTorch shape), its type, and a closure that fills its bytes when the writer reaches it.
    public struct Tensor {
        public var name: String
        public var dimensions: [Int]
        public var type: GGMLType
        public var fill: (UnsafeMutableRawBufferPointer) throws -> Void

        public init(name: String, dimensions: [Int], type: GGMLType, fill: @escaping (UnsafeMutableRawBufferPointer) throws -> Void) {
            self.name = name
            self.dimensions = dimensions
            self.type = type
            self.fill = fill
        }

        /// Bytes of the tensor's data.
        public var byteCount: Int { dimensions.reduce(1, *) / type.blockSize * type.typeSize }
    }

    /// Writes `metadata` (keys unique, in order) and `tensors` to `path`.
    ///
    /// - Throws: `FormatError` naming the key or tensor for invalid input (duplicate names, a name
    ///   over 63 bytes, more than 4 dimensions, a row length that is not a whole number of blocks),
    ///   and for write failures; nothing is left under `path` then.
    public static func write(metadata: [(String, GGUFValue)], tensors: [Tensor], to path: String) throws {
        var alignment = 32
        if let value = metadata.first(where: { $0.0 == "general.alignment" })?.1 {
            guard case .uint32(let a) = value, a > 0, a & (a - 1) == 0, a % 8 == 0 else {
                throw FormatError(path, "metadata 'general.alignment' must be a UINT32 power of two and a multiple of 8")
            }
            alignment = Int(a)
        }
        var keys = Set<String>()
        for (key, value) in metadata {
            guard keys.insert(key).inserted else { throw FormatError(path, "metadata key '\(key)' appears twice") }
            guard value.isWellTyped else { throw FormatError(path, "metadata '\(key)': an array element does not have the array's element type") }
        }
        var names = Set<String>()
        for t in tensors {
            guard names.insert(t.name).inserted else { throw FormatError(path, "tensor '\(t.name)' appears twice") }
            guard t.name.utf8.count <= 63 else { throw FormatError(path, "tensor name '\(t.name)' is longer than 63 bytes") }
            guard (1...4).contains(t.dimensions.count), t.dimensions.allSatisfy({ $0 > 0 }) else {
                throw FormatError(path, "tensor '\(t.name)': dimensions \(t.dimensions) must be 1 to 4 positive sizes")
            }
            guard t.dimensions[0] % t.type.blockSize == 0 else {
                throw FormatError(path, "tensor '\(t.name)': row length \(t.dimensions[0]) is not a multiple of \(t.type.name)'s block of \(t.type.blockSize)")
            }
        }

        var header = ByteSink()
        header.bytes += Array("GGUF".utf8)
        header.append(UInt32(3))
        header.append(UInt64(tensors.count))
        header.append(UInt64(metadata.count))
        for (key, value) in metadata {
            header.append(string: key)
            header.append(value.type.rawValue)
            header.append(value: value)
        }
        var offset = 0
        for t in tensors {
            header.append(string: t.name)
            header.append(UInt32(t.dimensions.count))
            for d in t.dimensions { header.append(UInt64(d)) }
            header.append(t.type.rawValue)
            header.append(UInt64(offset))
            offset += align(t.byteCount, alignment)
        }
        header.bytes += [UInt8](repeating: 0, count: align(header.bytes.count, alignment) - header.bytes.count)

        var file = try AtomicFile(path: path)
        do {
            try file.write(header.bytes)
            for t in tensors {
                let padded = align(t.byteCount, alignment)
                let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: max(padded, 1), alignment: 64)
                defer { buffer.deallocate() }
                buffer.initializeMemory(as: UInt8.self, repeating: 0)
                try t.fill(UnsafeMutableRawBufferPointer(rebasing: buffer[0..<t.byteCount]))
                try file.write(UnsafeRawBufferPointer(rebasing: buffer[0..<padded]))
            }
            try file.commit()
        } catch {
            file.abandon()
            throw error
        }
    }

    static func align(_ n: Int, _ alignment: Int) -> Int { (n + alignment - 1) / alignment * alignment }
}

extension GGUFValue {
    /// Whether every array element has its array's declared element type.
    var isWellTyped: Bool {
        guard case .array(let type, let items) = self else { return true }
        return items.allSatisfy { $0.type == type && $0.isWellTyped }
    }
}

/// Little-endian encoding of GGUF header fields.
private struct ByteSink {
    var bytes: [UInt8] = []

    mutating func append<T: FixedWidthInteger>(_ value: T) {
        withUnsafeBytes(of: value.littleEndian) { bytes += $0 }
    }

    mutating func append(string: String) {
        append(UInt64(string.utf8.count))
        bytes += Array(string.utf8)
    }

    mutating func append(value: GGUFValue) {
        switch value {
        case .uint8(let v): append(v)
        case .int8(let v): append(v)
        case .uint16(let v): append(v)
        case .int16(let v): append(v)
        case .uint32(let v): append(v)
        case .int32(let v): append(v)
        case .float32(let v): append(v.bitPattern)
        case .bool(let v): append(UInt8(v ? 1 : 0))
        case .string(let v): append(string: v)
        case .uint64(let v): append(v)
        case .int64(let v): append(v)
        case .float64(let v): append(v.bitPattern)
        case .array(let type, let items):
            append(type.rawValue)
            append(UInt64(items.count))
            for item in items { append(value: item) }
        }
    }
}
