import FinchCore

/// One tensor of a GGUF file.
public struct GGUFTensorInfo: Sendable, Equatable {
    public var name: String
    /// ggml dimensions, fastest-varying first (`ne[0]` is the row length).
    public var dimensions: [Int]
    public var type: GGMLType
    /// Offset from the start of the data section.
    public var offset: Int
    /// Bytes of packed data.
    public var byteCount: Int

    /// The PyTorch/row-major shape: `dimensions` reversed.
    public var shape: [Int] { dimensions.reversed() }
    public var elementCount: Int { dimensions.reduce(1, *) }
}

/// A GGUF v2/v3 file, memory-mapped and validated (`../shared/reference/formats.md` §4).
///
/// Every count, length and offset read from the file is checked against the bytes that remain
/// before anything is allocated, so a corrupt or hostile file gives a `FormatError` naming the
/// file, the byte offset and the field, never a crash or a giant allocation.
public final class GGUFFile: Sendable {
    public let path: String
    public let version: UInt32
    /// Metadata keys in file order.
    public let metadataKeys: [String]
    public let metadata: [String: GGUFValue]
    /// Tensors in file order.
    public let tensors: [GGUFTensorInfo]
    public let alignment: Int
    /// File offset of the data section.
    public let dataStart: Int
    private let tensorIndex: [String: Int]
    private let file: MappedFile

    static let magic: UInt32 = 0x4655_4747 // "GGUF" read as a little-endian u32
    static let maxDimensions = 4
    static let maxNesting = 8

    public init(path: String) throws {
        let file = try MappedFile(path: path)
        self.file = file
        self.path = path
        var reader = ByteReader(path: path, bytes: file.bytes)
        guard !file.bytes.isEmpty else { throw FormatError(path, "empty file, not a GGUF file") }
        guard file.bytes.count >= 4, try reader.read(UInt32.self, "magic") == Self.magic else {
            throw FormatError(path, "wrong magic: not a GGUF file (expected the bytes 'GGUF' at offset 0)")
        }
        let version = try reader.read(UInt32.self, "version")
        guard version == 2 || version == 3 else {
            if version == 1 { throw FormatError(path, "GGUF version 1 is obsolete and not supported; re-convert the model") }
            if version.byteSwapped == 2 || version.byteSwapped == 3 {
                throw FormatError(path, "big-endian GGUF files are not supported")
            }
            throw FormatError(path, "unsupported GGUF version \(version) (supported: 2, 3)")
        }
        self.version = version
        let tensorCount = try reader.read(UInt64.self, "tensor count")
        let kvCount = try reader.read(UInt64.self, "metadata count")
        // Each metadata pair takes at least 13 bytes and each tensor info at least 24: a count the
        // remaining bytes cannot hold is corrupt, and is rejected before allocating anything.
        guard kvCount <= UInt64(reader.remaining / 13) else {
            throw reader.error("metadata count \(kvCount) is impossible for a file of \(file.bytes.count) bytes")
        }
        guard tensorCount <= UInt64(reader.remaining / 24) else {
            throw reader.error("tensor count \(tensorCount) is impossible for a file of \(file.bytes.count) bytes")
        }

        var keys: [String] = []
        var metadata: [String: GGUFValue] = [:]
        for _ in 0..<Int(kvCount) {
            let key = try Self.readString(&reader, "metadata key")
            let rawType = try reader.read(UInt32.self, "type of '\(key)'")
            guard let type = GGUFValueType(rawValue: rawType) else {
                throw reader.error("metadata '\(key)' has unknown value type \(rawType)")
            }
            let value = try Self.readValue(&reader, type: type, key: key, depth: 0)
            guard metadata[key] == nil else { throw reader.error("metadata key '\(key)' appears twice") }
            keys.append(key)
            metadata[key] = value
        }
        self.metadataKeys = keys
        self.metadata = metadata

        var alignment = 32
        if let value = metadata["general.alignment"] {
            guard case .uint32(let a) = value, a > 0, a & (a - 1) == 0 else {
                throw FormatError(path, "general.alignment must be a UINT32 power of two, found \(value)")
            }
            alignment = Int(a)
        }
        self.alignment = alignment

        var infos: [GGUFTensorInfo] = []
        var names = Set<String>()
        for i in 0..<Int(tensorCount) {
            let name = try Self.readString(&reader, "name of tensor \(i)")
            let nDims = try reader.read(UInt32.self, "dimension count of '\(name)'")
            guard nDims <= UInt32(Self.maxDimensions) else {
                throw reader.error("tensor '\(name)' has \(nDims) dimensions (at most \(Self.maxDimensions))")
            }
            var dims: [Int] = []
            var count = 1
            for _ in 0..<Int(nDims) {
                let d = try reader.read(UInt64.self, "dimensions of '\(name)'")
                guard d <= UInt64(Int.max) else { throw reader.error("tensor '\(name)' has dimension \(d), too large") }
                let (product, overflow) = count.multipliedReportingOverflow(by: Int(d))
                guard !overflow else { throw reader.error("tensor '\(name)' dimensions overflow the element count") }
                count = product
                dims.append(Int(d))
            }
            let rawType = try reader.read(UInt32.self, "type of '\(name)'")
            guard let type = GGMLType(rawValue: rawType) else {
                throw reader.error("tensor '\(name)' has unknown ggml type \(rawType)")
            }
            let offset = try reader.read(UInt64.self, "offset of '\(name)'")
            guard dims.first.map({ $0 % type.blockSize == 0 }) ?? true else {
                throw FormatError(path, "tensor '\(name)': row length \(dims[0]) is not a multiple of the \(type.name) block size \(type.blockSize)")
            }
            guard let bytes = type.byteCount(elements: count) else {
                throw FormatError(path, "tensor '\(name)': size of \(dims) × \(type.name) overflows")
            }
            guard offset <= UInt64(Int.max) else { throw FormatError(path, "tensor '\(name)': offset \(offset) is too large") }
            guard names.insert(name).inserted else { throw FormatError(path, "tensor name '\(name)' appears twice") }
            infos.append(GGUFTensorInfo(name: name, dimensions: dims, type: type, offset: Int(offset), byteCount: bytes))
        }
        let (alignedStart, overflow) = reader.offset.addingReportingOverflow(alignment - 1)
        guard !overflow else { throw reader.error("data section start overflows") }
        dataStart = alignedStart / alignment * alignment
        let dataLength = file.bytes.count - dataStart

        // Tensors must lie in the data section, aligned, in file order without overlap.
        var previousEnd = 0
        var previousName = ""
        for info in infos {
            if info.offset % alignment != 0 {
                throw FormatError(path, "tensor '\(info.name)': offset \(info.offset) is not a multiple of the alignment \(alignment)")
            }
            if info.offset < previousEnd {
                throw FormatError(path, "tensor '\(info.name)': offset \(info.offset) overlaps or precedes tensor '\(previousName)' (which ends at \(previousEnd)); offsets must be in order and not overlap")
            }
            let (end, overflow) = info.offset.addingReportingOverflow(info.byteCount)
            guard !overflow, end <= dataLength else {
                throw FormatError(path, "tensor '\(info.name)': data [\(info.offset), \(info.offset &+ info.byteCount)) runs past the end of the file (data section is \(max(dataLength, 0)) bytes); truncated file?")
            }
            previousEnd = end
            previousName = info.name
        }
        self.tensors = infos
        self.tensorIndex = Dictionary(uniqueKeysWithValues: infos.enumerated().map { ($1.name, $0) })
    }

    static func readString(_ reader: inout ByteReader, _ what: String) throws -> String {
        let length = try reader.read(UInt64.self, "length of \(what)")
        guard length <= UInt64(reader.remaining) else {
            throw reader.error("\(what): string length \(length) runs past the end of the file")
        }
        let bytes = try reader.readBytes(Int(length), what)
        guard let string = String(validating: bytes, as: UTF8.self) else {
            throw reader.error("\(what) is not valid UTF-8")
        }
        return string
    }

    static func readValue(_ reader: inout ByteReader, type: GGUFValueType, key: String, depth: Int) throws -> GGUFValue {
        switch type {
        case .uint8: return .uint8(try reader.read(UInt8.self, key))
        case .int8: return .int8(try reader.read(Int8.self, key))
        case .uint16: return .uint16(try reader.read(UInt16.self, key))
        case .int16: return .int16(try reader.read(Int16.self, key))
        case .uint32: return .uint32(try reader.read(UInt32.self, key))
        case .int32: return .int32(try reader.read(Int32.self, key))
        case .float32: return .float32(Float(bitPattern: try reader.read(UInt32.self, key)))
        case .uint64: return .uint64(try reader.read(UInt64.self, key))
        case .int64: return .int64(try reader.read(Int64.self, key))
        case .float64: return .float64(Double(bitPattern: try reader.read(UInt64.self, key)))
        case .bool:
            let byte = try reader.read(UInt8.self, key)
            guard byte <= 1 else { throw reader.error("metadata '\(key)': BOOL value \(byte) is neither 0 nor 1") }
            return .bool(byte == 1)
        case .string: return .string(try readString(&reader, "metadata '\(key)'"))
        case .array:
            guard depth < maxNesting else { throw reader.error("metadata '\(key)': arrays nested deeper than \(maxNesting)") }
            let rawType = try reader.read(UInt32.self, "element type of '\(key)'")
            guard let elementType = GGUFValueType(rawValue: rawType) else {
                throw reader.error("metadata '\(key)': unknown array element type \(rawType)")
            }
            let count = try reader.read(UInt64.self, "element count of '\(key)'")
            guard count <= UInt64(reader.remaining / elementType.minimumEncodedSize) else {
                throw reader.error("metadata '\(key)': array count \(count) is impossible for the bytes left")
            }
            var items: [GGUFValue] = []
            items.reserveCapacity(Int(count))
            for _ in 0..<Int(count) {
                items.append(try readValue(&reader, type: elementType, key: key, depth: depth + 1))
            }
            return .array(elementType, items)
        }
    }

    /// The info of tensor `name`, or nil.
    public func tensor(_ name: String) -> GGUFTensorInfo? { tensorIndex[name].map { tensors[$0] } }

    /// The packed bytes of a tensor of this file (valid while this object lives).
    public func data(_ info: GGUFTensorInfo) -> UnsafeRawBufferPointer {
        let start = dataStart + info.offset
        return UnsafeRawBufferPointer(rebasing: file.bytes[start..<(start + info.byteCount)])
    }

    /// The tensor dequantized to Float32, in ggml order (row-major over the reversed dimensions).
    public func float32(_ info: GGUFTensorInfo) throws -> [Float] {
        guard info.type.canDequantize else {
            throw FormatError(path, "tensor '\(info.name)' has type \(info.type.name), which Finch cannot dequantize (supported: \(GGMLType.dequantizable.map(\.name).joined(separator: ", ")))")
        }
        let raw = data(info)
        let count = info.elementCount
        return [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
            if let source = raw.baseAddress, let out = buffer.baseAddress {
                info.type.dequantize(source, count: count, into: out)
            }
            initialized = count
        }
    }

    /// Metadata value `key`, or nil.
    public subscript(key: String) -> GGUFValue? { metadata[key] }
}
