#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Writes a file so that it either appears whole or not at all: the bytes go to a temporary file
/// in the same directory, which is flushed and then renamed over the destination. On any error the
/// temporary file is removed and the destination is untouched.
public struct AtomicFile {
    public let path: String
    private let temporaryPath: String
    private var fd: Int32

    /// Creates the temporary file next to `path`.
    public init(path: String) throws {
        self.path = path
        var template = Array((path + ".tmp-XXXXXX").utf8CString)
        let fd = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        guard fd >= 0 else { throw FormatError(path, "cannot create a temporary file next to it: \(String(cString: strerror(errno)))") }
        // mkstemp creates the file 0600; give it the permissions a plain create would (0666 & ~umask).
        let mask = umask(0)
        umask(mask)
        fchmod(fd, 0o666 & ~mask)
        self.fd = fd
        self.temporaryPath = String(decoding: template.dropLast().map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// Appends bytes.
    public mutating func write(_ bytes: UnsafeRawBufferPointer) throws {
        guard var pointer = bytes.baseAddress else { return }
        var left = bytes.count
        while left > 0 {
            let written = Glibc_write(fd, pointer, left)
            if written < 0 {
                if errno == EINTR { continue }
                let message = String(cString: strerror(errno))
                abandon()
                throw FormatError(path, "write failed: \(message)")
            }
            pointer += written
            left -= written
        }
    }

    /// Appends a byte array.
    public mutating func write(_ bytes: [UInt8]) throws {
        try bytes.withUnsafeBytes { try write($0) }
    }

    /// Flushes and moves the file into place.
    public mutating func commit() throws {
        if fsync(fd) != 0 || close(fd) != 0 {
            let message = String(cString: strerror(errno))
            fd = -1
            abandon()
            throw FormatError(path, "cannot flush: \(message)")
        }
        fd = -1
        if rename(temporaryPath, path) != 0 {
            let message = String(cString: strerror(errno))
            abandon()
            throw FormatError(path, "cannot move the finished file into place: \(message)")
        }
    }

    /// Removes the temporary file; the destination is left as it was.
    public mutating func abandon() {
        if fd >= 0 { close(fd); fd = -1 }
        unlink(temporaryPath)
    }

    /// Writes `bytes` to `path` atomically.
    public static func write(_ bytes: [UInt8], to path: String) throws {
        var file = try AtomicFile(path: path)
        try file.write(bytes)
        try file.commit()
    }
}

#if canImport(Glibc)
@inline(__always) private func Glibc_write(_ fd: Int32, _ p: UnsafeRawPointer, _ n: Int) -> Int { Glibc.write(fd, p, n) }
#else
@inline(__always) private func Glibc_write(_ fd: Int32, _ p: UnsafeRawPointer, _ n: Int) -> Int { Darwin.write(fd, p, n) }
#endif
