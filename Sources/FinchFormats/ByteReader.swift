/// A bounds-checked little-endian cursor over a file's bytes. Every read checks the remaining length
/// first and throws a `FormatError` naming the file and the byte offset, so a truncated or hostile
/// file can never make Finch read out of bounds.
struct ByteReader {
    let path: String
    let bytes: UnsafeRawBufferPointer
    private(set) var offset: Int

    init(path: String, bytes: UnsafeRawBufferPointer, offset: Int = 0) {
        self.path = path
        self.bytes = bytes
        self.offset = offset
    }

    var remaining: Int { bytes.count - offset }

    func error(_ what: String) -> FormatError { FormatError(path, "\(what) (at byte \(offset))") }

    mutating func require(_ count: Int, _ what: @autoclosure () -> String) throws {
        guard count >= 0, count <= remaining else {
            throw error("unexpected end of file reading \(what()): needs \(count) bytes, \(remaining) left")
        }
    }

    mutating func read<T: FixedWidthInteger>(_: T.Type, _ what: @autoclosure () -> String) throws -> T {
        try require(MemoryLayout<T>.size, what())
        let value = T(littleEndian: bytes.loadUnaligned(fromByteOffset: offset, as: T.self))
        offset += MemoryLayout<T>.size
        return value
    }

    mutating func readBytes(_ count: Int, _ what: @autoclosure () -> String) throws -> UnsafeRawBufferPointer {
        try require(count, what())
        let slice = UnsafeRawBufferPointer(rebasing: bytes[offset..<(offset + count)])
        offset += count
        return slice
    }

    mutating func seek(to newOffset: Int) throws {
        guard newOffset >= 0, newOffset <= bytes.count else { throw error("offset \(newOffset) is past the end of the file") }
        offset = newOffset
    }
}
