import Foundation
import XCTest

/// `finch serve`'s argument checks and its one-line errors (the server itself is tested in
/// FinchServerTests and, through the real openai client, by OpenAIClientCheckTests).
final class ServeCommandTests: XCTestCase, FinchCLIRunning {
    func testBadSettingsAreRefusedBeforeLoading() throws {
        for (flags, fragment) in [(["--port", "70000"], "--port"), (["--max-queue", "-1"], "--max-queue"),
                                  (["--max-tokens-limit", "0"], "--max-tokens-limit"), (["--request-timeout", "0"], "--request-timeout"),
                                  (["--max-body-bytes", "0"], "--max-body-bytes"), (["--threads", "0"], "--threads")] {
            let r = try finch(["serve"] + flags)
            XCTAssertNotEqual(r.status, 0, "\(flags)")
            XCTAssertTrue(r.stderr.contains(fragment), "\(flags): \(r.stderr)")
            XCTAssertEqual(r.stdout, "")
        }
    }

    func testMissingModelIsOneLineError() throws {
        let dir = try temporaryDirectory()
        let r = try finch(["serve", "--model", dir + "/nope.gguf", "--port", "0"])
        XCTAssertEqual(r.status, 1)
        XCTAssertTrue(r.stderr.hasPrefix("error: \(dir)/nope.gguf: "), r.stderr)
        XCTAssertEqual(r.stderr.split(separator: "\n").count, 1, r.stderr)
        XCTAssertEqual(r.stdout, "")
    }
}
