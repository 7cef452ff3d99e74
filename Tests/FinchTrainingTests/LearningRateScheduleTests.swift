import FinchFormats
import FinchTraining
import XCTest

/// Learning rates against `transformers.get_scheduler` (5.24): 72 cases over the five schedule
/// types (cosine_with_min_lr with min_lr and with min_lr_rate) × N ∈ {1, 3, 4, 5, 7, 10, 37, 50,
/// 100} with W = 0, W < N, W = N, W > N, integer warmup, ratio warmup (0.1, 0.25, 0.5, 0.0) and a
/// truncated float count (2.7). Every value must be bit-identical (Double), s = 0 … N + 1.
final class LearningRateScheduleTests: XCTestCase {
    func schedule(_ case_: JSONValue) throws -> (LearningRateSchedule, expected: [Double], name: String) {
        let type = try XCTUnwrap(LearningRateSchedulerType(rawValue: XCTUnwrap(case_["type"]?.stringValue)))
        let n = try XCTUnwrap(case_["num_training_steps"]).int()
        let warmupArgument = try XCTUnwrap(case_["warmup_steps"]).double()
        let resolved = LearningRateSchedule.resolvedWarmupSteps(warmupArgument, trainingSteps: n)
        XCTAssertEqual(resolved, try XCTUnwrap(case_["resolved_warmup_steps"]).int(), "warmup \(warmupArgument) of \(n)")
        let kwargs = case_["scheduler_kwargs"]
        let schedule = try LearningRateSchedule(
            type: type, learningRate: try XCTUnwrap(case_["learning_rate"]).double(), warmupSteps: resolved,
            trainingSteps: n, minLR: kwargs?["min_lr"]?.doubleValue, minLRRate: kwargs?["min_lr_rate"]?.doubleValue)
        let expected = try XCTUnwrap(case_["lrs"]).array().map { try $0.double() }
        return (schedule, expected, "\(type.rawValue) N=\(n) warmup_steps=\(warmupArgument) \(kwargs?.compactText ?? "")")
    }

    /// Indices s where the schedule differs from the reference in any bit.
    static func differences(_ schedule: LearningRateSchedule, _ expected: [Double]) -> [Int] {
        expected.indices.filter { schedule.learningRate(at: $0).bitPattern != expected[$0].bitPattern }
    }

    func testMatchesTransformersGetSchedulerBitForBit() throws {
        let cases = try Fixtures.section("schedules").array()
        XCTAssertEqual(cases.count, 72)
        for case_ in cases {
            let (schedule, expected, name) = try schedule(case_)
            XCTAssertEqual(expected.count, schedule.trainingSteps + 2)
            let bad = Self.differences(schedule, expected)
            XCTAssertTrue(bad.isEmpty, "\(name): s=\(bad.prefix(3)) ours \(bad.prefix(3).map { schedule.learningRate(at: $0) }) "
                          + "vs \(bad.prefix(3).map { expected[$0] })")
        }
    }

    func testTheComparisonCatchesAOneUlpChange() throws {
        let (schedule, expected, _) = try schedule(try Fixtures.section("schedules").array()[25])
        XCTAssertEqual([schedule.type, .linear], [.linear, .linear])
        XCTAssertEqual([schedule.trainingSteps, schedule.warmupSteps], [10, 3])
        XCTAssertTrue(Self.differences(schedule, expected).isEmpty)
        var perturbed = expected
        perturbed[5] = perturbed[5].nextUp
        XCTAssertEqual(Self.differences(schedule, perturbed), [5])
    }

    func testFirstUpdateUsesLambdaZero() throws {
        let warm = try LearningRateSchedule(type: .cosine, learningRate: 1e-3, warmupSteps: 3, trainingSteps: 10)
        XCTAssertEqual(warm.learningRate(at: 0), 0, "with warmup the first update has lr 0")
        XCTAssertEqual(warm.learningRate(forStep: 1), 0, "optimizer step 1 runs at λ(0)")
        XCTAssertEqual(warm.learningRate(forStep: 4), 1e-3)
        XCTAssertEqual(warm.learningRate(at: 3), 1e-3, "peak right after warmup")
        let cold = try LearningRateSchedule(type: .linear, learningRate: 1e-3, warmupSteps: 0, trainingSteps: 10)
        XCTAssertEqual(cold.learningRate(at: 0), 1e-3, "no warmup: the first update uses the full rate")
        XCTAssertEqual(cold.learningRate(at: 10), 0)
        XCTAssertEqual(cold.learningRate(at: 12), 0, "clamped at 0 past the end")
    }

    func testOneStepAndWarmupAtLeastN() throws {
        let one = try LearningRateSchedule(type: .linear, learningRate: 1, warmupSteps: 0, trainingSteps: 1)
        XCTAssertEqual([one.learningRate(at: 0), one.learningRate(at: 1)], [1, 0])
        let oneWarm = try LearningRateSchedule(type: .cosine, learningRate: 1, warmupSteps: 1, trainingSteps: 1)
        XCTAssertEqual(oneWarm.learningRate(at: 0), 0, "N = W = 1: the only update has lr 0")
        // W > N: the run never leaves warmup.
        let long = try LearningRateSchedule(type: .linear, learningRate: 1, warmupSteps: 8, trainingSteps: 5)
        XCTAssertEqual((0..<5).map { long.learningRate(at: $0) }, [0, 0.125, 0.25, 0.375, 0.5])
        XCTAssertEqual(try LearningRateSchedule(type: .constant, learningRate: 2, warmupSteps: 5, trainingSteps: 5).learningRate(at: 0), 2,
                       "constant ignores warmup as get_scheduler does")
    }

    func testWarmupResolution() {
        XCTAssertEqual(LearningRateSchedule.resolvedWarmupSteps(0, trainingSteps: 100), 0)
        XCTAssertEqual(LearningRateSchedule.resolvedWarmupSteps(0.1, trainingSteps: 100), 10)
        XCTAssertEqual(LearningRateSchedule.resolvedWarmupSteps(0.1, trainingSteps: 101), 11, "ceil of a ratio")
        XCTAssertEqual(LearningRateSchedule.resolvedWarmupSteps(1, trainingSteps: 100), 1, "1 is a count, not a ratio")
        XCTAssertEqual(LearningRateSchedule.resolvedWarmupSteps(2.7, trainingSteps: 100), 2, "counts truncate like int()")
    }

    func testMinLRFloorAndKwargErrors() throws {
        let rate = try LearningRateSchedule(type: .cosineWithMinLR, learningRate: 2e-4, warmupSteps: 0, trainingSteps: 10, minLR: 2e-5)
        XCTAssertEqual(rate.minLRRate, 0.1, accuracy: 1e-15)
        XCTAssertEqual(rate.learningRate(at: 10), 2e-5, accuracy: 1e-18, "ends at min_lr")
        assertTrainingError(try LearningRateSchedule(type: .cosineWithMinLR, learningRate: 1, warmupSteps: 0, trainingSteps: 5),
                            subject: "lr_scheduler_kwargs", contains: "min_lr")
        assertTrainingError(try LearningRateSchedule(type: .cosineWithMinLR, learningRate: 1, warmupSteps: 0, trainingSteps: 5,
                                                     minLR: 0.1, minLRRate: 0.1),
                            subject: "lr_scheduler_kwargs", contains: "only one")
        assertTrainingError(try LearningRateSchedule(type: .linear, learningRate: 1, warmupSteps: 0, trainingSteps: 5, minLRRate: 0.1),
                            subject: "lr_scheduler_kwargs", contains: "cosine_with_min_lr")
        assertTrainingError(try LearningRateSchedule(type: .linear, learningRate: 1, warmupSteps: -1, trainingSteps: 5),
                            subject: "warmup_steps")
    }
}
