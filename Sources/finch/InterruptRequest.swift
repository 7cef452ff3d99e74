import Dispatch
import Foundation

/// Ctrl-C while `finch dpo`/`finch sft` trains: the first SIGINT asks the loop to stop after the
/// step in progress (it then saves a checkpoint and the report, so `--resume` continues); a
/// second one quits at once, as Ctrl-C does elsewhere.
final class InterruptRequest: @unchecked Sendable {
    private let lock = NSLock()
    private var signals = 0
    private var source: DispatchSourceSignal?

    /// Starts catching SIGINT (the default action is off until ``uninstall()``).
    static func install(message: String) -> InterruptRequest {
        let request = InterruptRequest()
        signal(SIGINT, SIG_IGN)
        let source = DispatchSource.makeSignalSource(signal: SIGINT, queue: .global())
        source.setEventHandler { [request] in
            request.lock.lock()
            request.signals += 1
            let count = request.signals
            request.lock.unlock()
            if count > 1 { _exit(130) }
            FileHandle.standardError.write(Data(("\nfinch: " + message + "\n").utf8))
        }
        source.resume()
        request.source = source
        return request
    }

    /// Whether Ctrl-C was pressed.
    var requested: Bool {
        lock.lock()
        defer { lock.unlock() }
        return signals > 0
    }

    /// Restores Ctrl-C's default action.
    func uninstall() {
        source?.cancel()
        source = nil
        signal(SIGINT, SIG_DFL)
    }
}
