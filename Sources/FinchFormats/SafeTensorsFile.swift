/// One tensor entry of a safetensors header.
public struct SafeTensorInfo: Sendable, Equatable {
    public var name: String
    public var dtype: SafeTensorsDType
    /// Shape in row-major (C) order; `[]` is a scalar.
    public var shape: [Int]
    /// Byte range inside the data buffer (which starts at file offset `8 + N`).
    public var dataRange: Range<Int>

    public var elementCount: Int { shape.reduce(1, *) }
}

/// A safetensors file, memory-mapped and validated (format: `../shared/reference/formats.md` §3).
///
/// Opening validates everything the reference Rust reader validates — header size and JSON, dtype
/// names, shapes, offsets contiguous from 0 with no overlap or gap, byte lengths matching shape ×
/// dtype, the last tensor ending at the end of the file — so later reads need no checks.
public final class SafeTensorsFile: Sendable {
    public let path: String
    /// Tensors in data-buffer order.
    public let tensors: [SafeTensorInfo]
    /// `__metadata__` (string → string), empty if absent.
    public let metadata: [String: String]
    /// File offset where the data buffer starts (`8 + N`).
    public let dataStart: Int
    private let index: [String: Int]
    private let file: MappedFile

    /// The largest header the reference reader accepts.
    public static let maxHeaderSize = 100_000_000

    public init(path: String) throws {
        let file = try MappedFile(path: path)
        self.file = file
        self.path = path
        let bytes = file.bytes
        var reader = ByteReader(path: path, bytes: bytes)
        guard bytes.count >= 8 else {
            throw FormatError(path, bytes.isEmpty ? "empty file, not a safetensors file" : "file of \(bytes.count) bytes is too short for a safetensors header")
        }
        let headerLength = try reader.read(UInt64.self, "header length")
        guard headerLength <= UInt64(Self.maxHeaderSize) else {
            throw FormatError(path, "header length \(headerLength) exceeds the \(Self.maxHeaderSize)-byte limit; not a safetensors file?")
        }
        let n = Int(headerLength)
        guard n <= reader.remaining else {
            throw FormatError(path, "header length \(n) runs past the end of the file (\(reader.remaining) bytes after the length field)")
        }
        let headerBytes = try reader.readBytes(n, "header")
        guard n > 0, headerBytes[0] == UInt8(ascii: "{") else {
            throw FormatError(path, "header does not start with '{'; not a safetensors file")
        }
        let header = try JSONValue.parse(headerBytes, path: path, rejectDuplicateKeys: true)
        guard case .object(let members) = header else {
            throw FormatError(path, "header is not a JSON object")
        }
        dataStart = 8 + n
        let dataLength = bytes.count - dataStart

        var metadata: [String: String] = [:]
        var infos: [SafeTensorInfo] = []
        for (name, value) in members {
            if name == "__metadata__" {
                guard case .object(let entries) = value else { throw FormatError(path, "__metadata__ is not an object") }
                for (key, v) in entries {
                    guard let s = v.stringValue else { throw FormatError(path, "__metadata__.\(key) is not a string (all metadata values must be strings)") }
                    metadata[key] = s
                }
                continue
            }
            infos.append(try Self.parseEntry(name: name, value, path: path))
        }
        // Contiguity, as the reference reader checks it: sorted by offsets, each tensor begins where
        // the previous ended, and the last ends exactly at the end of the file.
        infos.sort { ($0.dataRange.lowerBound, $0.dataRange.upperBound) < ($1.dataRange.lowerBound, $1.dataRange.upperBound) }
        var expectedStart = 0
        for info in infos {
            if info.dataRange.lowerBound != expectedStart {
                let what = info.dataRange.lowerBound < expectedStart ? "overlaps the previous tensor" : "leaves a gap after the previous tensor"
                throw FormatError(path, "tensor '\(info.name)': data_offsets [\(info.dataRange.lowerBound), \(info.dataRange.upperBound)] \(what) (expected to start at \(expectedStart))")
            }
            expectedStart = info.dataRange.upperBound
        }
        if expectedStart != dataLength {
            if expectedStart > dataLength {
                let last = infos.last?.name ?? ""
                throw FormatError(path, "tensor '\(last)' ends at data offset \(expectedStart), past the end of the file (data section is \(dataLength) bytes); truncated file?")
            }
            throw FormatError(path, "tensors cover \(expectedStart) bytes but the data section has \(dataLength); trailing bytes")
        }
        self.tensors = infos
        self.metadata = metadata
        self.index = Dictionary(uniqueKeysWithValues: infos.enumerated().map { ($1.name, $0) })
    }

    private static func parseEntry(name: String, _ value: JSONValue, path: String) throws -> SafeTensorInfo {
        func bad(_ what: String) -> FormatError { FormatError(path, "tensor '\(name)': \(what)") }
        guard case .object = value else { throw bad("entry is not an object") }
        guard let dtypeName = value["dtype"]?.stringValue else { throw bad("missing string field 'dtype'") }
        guard let dtype = SafeTensorsDType(rawValue: dtypeName) else {
            throw bad("unknown dtype '\(dtypeName)' (known: \(SafeTensorsDType.allCases.map(\.rawValue).joined(separator: ", ")))")
        }
        guard let shapeValues = value["shape"]?.arrayValue else { throw bad("missing array field 'shape'") }
        var shape: [Int] = []
        var count = 1
        for d in shapeValues {
            guard let dim = d.intValue, dim >= 0 else { throw bad("shape has a value that is not a non-negative integer") }
            let (product, overflow) = count.multipliedReportingOverflow(by: dim)
            guard !overflow else { throw bad("shape \(shapeValues.map { $0.intValue ?? -1 }) overflows the element count") }
            count = product
            shape.append(dim)
        }
        guard let offsets = value["data_offsets"]?.arrayValue, offsets.count == 2,
              let begin = offsets[0].intValue, let end = offsets[1].intValue, begin >= 0, end >= begin else {
            throw bad("'data_offsets' must be two integers [begin, end] with begin ≤ end")
        }
        guard let bytes = dtype.byteCount(elements: count) else {
            throw bad("shape \(shape) × \(dtype.rawValue) is not a whole number of bytes or overflows")
        }
        guard end - begin == bytes else {
            throw bad("data_offsets [\(begin), \(end)] hold \(end - begin) bytes but shape \(shape) of \(dtype.rawValue) needs \(bytes)")
        }
        return SafeTensorInfo(name: name, dtype: dtype, shape: shape, dataRange: begin..<end)
    }

    /// The entry for `name`, or nil.
    public func info(_ name: String) -> SafeTensorInfo? { index[name].map { tensors[$0] } }

    /// The raw bytes of tensor `name` (valid while this object lives).
    public func data(_ name: String) throws -> UnsafeRawBufferPointer {
        guard let info = info(name) else { throw FormatError(path, "no tensor named '\(name)'") }
        return data(info)
    }

    /// The raw bytes of a tensor of this file.
    public func data(_ info: SafeTensorInfo) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(rebasing: file.bytes[(dataStart + info.dataRange.lowerBound)..<(dataStart + info.dataRange.upperBound)])
    }

    /// Tensor `name` converted to Float32, row-major.
    public func float32(_ name: String) throws -> [Float] {
        guard let info = info(name) else { throw FormatError(path, "no tensor named '\(name)'") }
        guard info.dtype.convertsToFloat32 else {
            throw FormatError(path, "tensor '\(name)' has dtype \(info.dtype.rawValue), which Finch cannot convert to Float32")
        }
        let raw = data(info)
        return [Float](unsafeUninitializedCapacity: info.elementCount) { buffer, initialized in
            if let base = raw.baseAddress, let out = buffer.baseAddress {
                info.dtype.convert(base, count: info.elementCount, into: out)
            }
            initialized = info.elementCount
        }
    }
}
