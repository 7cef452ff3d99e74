#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation

#if canImport(Glibc)
private let streamSocketType = Int32(SOCK_STREAM.rawValue)
#else
private let streamSocketType = SOCK_STREAM
#endif

private func openSocket() -> Int32 { socket(AF_INET, streamSocketType, 0) }
private func closeDescriptor(_ fd: Int32) { _ = close(fd) }
private func sendBytes(_ fd: Int32, _ bytes: UnsafeRawBufferPointer) -> Int { send(fd, bytes.baseAddress, bytes.count, 0) }

/// A bare TCP connection to a live test server, for what an HTTP client library hides: reading a
/// stream part way and hanging up in the middle of it.
final class RawHTTPConnection {
    private let fd: Int32
    private(set) var received = ""

    init(port: Int) throws {
        fd = openSocket()
        guard fd >= 0 else { throw ServerTestError("socket() failed") }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let status = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard status == 0 else { closeDescriptor(fd); throw ServerTestError("connect() to port \(port) failed") }
    }

    deinit { close() }

    private var closed = false

    /// Closes the connection (both directions), as a client that gives up does.
    func close() {
        guard !closed else { return }
        closed = true
        closeDescriptor(fd)
    }

    /// Sends a POST with a JSON body.
    func post(_ path: String, json: String) throws {
        let head = "POST \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: \(json.utf8.count)\r\n\r\n"
        try send(head + json)
    }

    /// Sends bytes as they are.
    func send(_ text: String) throws {
        let bytes = Array(text.utf8)
        var sent = 0
        while sent < bytes.count {
            let n = bytes[sent...].withUnsafeBytes { sendBytes(fd, $0) }
            guard n > 0 else { throw ServerTestError("send() failed") }
            sent += n
        }
    }

    /// Reads until `received` satisfies `done` or the peer closes; false if the peer closed first.
    @discardableResult
    func read(until done: (String) -> Bool) -> Bool {
        var buffer = [UInt8](repeating: 0, count: 4096)
        var pending: [UInt8] = []
        while !done(received) {
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n <= 0 { return false }
            pending += buffer[0..<n]
            // Keep incomplete UTF-8 sequences for the next read.
            if let text = String(validating: pending, as: UTF8.self) {
                received += text
                pending = []
            }
        }
        return true
    }
}

struct ServerTestError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
