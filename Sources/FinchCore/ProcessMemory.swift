import Foundation

/// The resident memory of this process as the kernel counts it (`/proc/self/status`), for the
/// run record and the training report.
public enum ProcessMemory {
    /// The peak resident set size in bytes (`VmHWM`, the high-water mark since the process
    /// started); nil where `/proc` is unavailable (macOS).
    public static func peakResidentBytes() -> Int? { statusField("VmHWM") }

    /// The current resident set size in bytes (`VmRSS`).
    public static func residentBytes() -> Int? { statusField("VmRSS") }

    /// A `Name:   1234 kB` line of `/proc/self/status`, in bytes.
    static func statusField(_ name: String) -> Int? {
        guard let text = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return nil }
        for line in text.split(separator: "\n") where line.hasPrefix(name + ":") {
            let fields = line.dropFirst(name.count + 1).split(whereSeparator: { $0 == " " || $0 == "\t" })
            guard let value = fields.first.flatMap({ Int($0) }) else { return nil }
            return fields.count > 1 && fields[1] == "kB" ? value * 1024 : value
        }
        return nil
    }
}
