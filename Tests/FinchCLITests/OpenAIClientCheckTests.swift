import Foundation
import XCTest

/// Runs `scripts/check-openai-client`: the real `openai` Python client (installed by the script in
/// a venv outside the repo) against the built `finch serve`, non-streamed and streamed, must get
/// the text of `finch generate --chat` for the same seed and settings. The script skips itself
/// (exit 0, "skipped: …") when python3 or its venv module is missing.
final class OpenAIClientCheckTests: XCTestCase {
    func testOpenAIClientGetsTheTextOfFinchGenerate() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let process = Process()
        process.executableURL = root.appendingPathComponent("scripts/check-openai-client")
        process.environment = ProcessInfo.processInfo.environment.merging(["FINCH": CLITests.finchPath]) { $1 }
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        let text = String(decoding: data, as: UTF8.self)
        print(text)
        XCTAssertEqual(process.terminationStatus, 0, text)
        if !text.hasPrefix("skipped:") {
            XCTAssertEqual(text.components(separatedBy: "\n").filter { $0.hasPrefix("ok (") }.count, 2, text)
        }
    }
}
