// Shared helpers for the FinchTraining tests: the golden files written by
// reference/make_optimizer_fixtures.py, and the comparisons (with their own mutation tests in
// CheckerTests).

import FinchFormats
import FinchTraining
import Foundation
import XCTest

enum Fixtures {
    /// `Tests/FinchTrainingTests/Fixtures`, found from this source file so tests work from any cwd.
    static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures").path

    /// `optimizer_expected.json`, parsed once.
    static let expected: Result<JSONValue, any Error> = Result {
        try JSONValue.parse(contentsOf: directory + "/optimizer_expected.json")
    }

    /// `optimizer_trainer_run.safetensors`.
    static func trainerRunTensors() throws -> SafeTensorsFile {
        try SafeTensorsFile(path: directory + "/optimizer_trainer_run.safetensors")
    }

    /// `adamw8bit_expected.json` (reference/make_adamw8bit_fixtures.py), parsed once.
    static let adamw8bitExpected: Result<JSONValue, any Error> = Result {
        try JSONValue.parse(contentsOf: directory + "/adamw8bit_expected.json")
    }

    /// `adamw8bit_run.safetensors`.
    static func adamw8bitTensors() throws -> SafeTensorsFile {
        try SafeTensorsFile(path: directory + "/adamw8bit_run.safetensors")
    }

    static func section(_ key: String) throws -> JSONValue {
        try XCTUnwrap(try expected.get()[key], "optimizer_expected.json has no \(key); run reference/make_optimizer_fixtures.py")
    }
}

extension JSONValue {
    /// The number as a Double, failing the test if it is not one.
    func double(file: StaticString = #filePath, line: UInt = #line) throws -> Double {
        try XCTUnwrap(doubleValue, "not a number: \(self)", file: file, line: line)
    }

    func int(file: StaticString = #filePath, line: UInt = #line) throws -> Int {
        try XCTUnwrap(intValue, "not an integer: \(self)", file: file, line: line)
    }

    func array(file: StaticString = #filePath, line: UInt = #line) throws -> [JSONValue] {
        try XCTUnwrap(arrayValue, "not an array: \(self)", file: file, line: line)
    }
}

/// Distance in units in the last place between two finite Floats of any signs (0 when equal,
/// 1 for neighbours): the difference of their positions on the ordered line of Float bit patterns.
func ulps(_ a: Float, _ b: Float) -> Int {
    func ordered(_ x: Float) -> Int {
        let bits = Int(Int32(bitPattern: x.bitPattern))
        return bits < 0 ? Int(Int32.min) - bits : bits
    }
    return abs(ordered(a) - ordered(b))
}

/// Elements where `|a − b| > atol + rtol·|b|` (or either is NaN), as (index, a, b), worst first.
func mismatches(_ a: [Float], _ b: [Float], atol: Float, rtol: Float) -> [(index: Int, ours: Float, reference: Float)] {
    guard a.count == b.count else { return [(-1, Float(a.count), Float(b.count))] }
    return a.indices
        .filter { abs(a[$0] - b[$0]) > atol + rtol * abs(b[$0]) || a[$0].isNaN || b[$0].isNaN }
        .map { ($0, a[$0], b[$0]) }
        .sorted { abs($0.1 - $0.2) > abs($1.1 - $1.2) }
}

/// Asserts that `body` throws a TrainingError about `subject` whose message contains `fragment`.
func assertTrainingError<T>(_ body: @autoclosure () throws -> T, subject: String, contains fragment: String = "",
                            file: StaticString = #filePath, line: UInt = #line) {
    do {
        _ = try body()
        XCTFail("expected a TrainingError about \(subject)", file: file, line: line)
    } catch let error as TrainingError {
        XCTAssertEqual(error.subject, subject, "\(error)", file: file, line: line)
        XCTAssertTrue(fragment.isEmpty || error.description.contains(fragment), "«\(error)» lacks «\(fragment)»", file: file, line: line)
        XCTAssertFalse(error.description.contains("\n"), "error must be one line: \(error)", file: file, line: line)
    } catch {
        XCTFail("expected TrainingError, got \(error)", file: file, line: line)
    }
}

/// The Trainer settings a TRL fixture run resolved (`resolved` in make_dpo_fixtures.py and
/// make_sft_fixtures.py), logging every step.
func trlArguments(_ c: JSONValue) throws -> TrainingArguments {
    var arguments = TrainingArguments()
    arguments.learningRate = try XCTUnwrap(c["learning_rate"]?.doubleValue)
    arguments.lrSchedulerType = try XCTUnwrap(LearningRateSchedulerType(rawValue: try XCTUnwrap(c["lr_scheduler_type"]?.stringValue)))
    arguments.warmupSteps = try XCTUnwrap(c["warmup_steps"]?.doubleValue)
    arguments.maxGradNorm = try XCTUnwrap(c["max_grad_norm"]?.doubleValue)
    arguments.maxSteps = try XCTUnwrap(c["max_steps"]?.intValue)
    arguments.perDeviceTrainBatchSize = try XCTUnwrap(c["per_device_train_batch_size"]?.intValue)
    arguments.gradientAccumulationSteps = try XCTUnwrap(c["gradient_accumulation_steps"]?.intValue)
    arguments.loggingSteps = 1
    return arguments
}
