import FinchTraining
import XCTest

/// Step counting and accumulation windows as transformers 5.24's Trainer (the Trainer run of the
/// fixture is checked step by step in TrainerReplayTests; these are the edge cases).
final class TrainingPlanTests: XCTestCase {
    func testPartialLastWindowPerEpoch() throws {
        let plan = try TrainingPlan(batchesPerEpoch: 7, gradientAccumulationSteps: 2, maxSteps: 10)
        XCTAssertEqual(plan.stepsPerEpoch, 4)
        XCTAssertEqual(plan.totalSteps, 10)
        XCTAssertEqual(plan.epochs, 3)
        XCTAssertEqual(plan.windows.map(\.size), [2, 2, 2, 1, 2, 2, 2, 1, 2, 2])
        XCTAssertEqual(plan.windows.map(\.epoch), [0, 0, 0, 0, 1, 1, 1, 1, 2, 2])
        XCTAssertEqual(plan.window(forStep: 4).batches, 6..<7)
        XCTAssertEqual(plan.window(forStep: 4).lossScale, 1, "a 1-batch window is divided by 1, not by GA")
        XCTAssertEqual(plan.window(forStep: 5).lossScale, 0.5)
        XCTAssertEqual(plan.window(forStep: 10).epochProgress, 2 + 4.0 / 7)
    }

    func testEpochBasedCounts() throws {
        // ceil(len/GA) steps per epoch, ceil(epochs · U) steps.
        let plan = try TrainingPlan(batchesPerEpoch: 10, gradientAccumulationSteps: 4, numTrainEpochs: 1.5)
        XCTAssertEqual(plan.stepsPerEpoch, 3)
        XCTAssertEqual(plan.totalSteps, 5)
        XCTAssertEqual(plan.epochs, 2)
        XCTAssertEqual(plan.windows.map(\.size), [4, 4, 2, 4, 4])
        // Fewer batches than GA: one step per epoch over all of them.
        let small = try TrainingPlan(batchesPerEpoch: 3, gradientAccumulationSteps: 8, numTrainEpochs: 2)
        XCTAssertEqual(small.windows.map(\.batches), [0..<3, 0..<3])
        XCTAssertEqual(small.window(forStep: 1).lossScale, 1 / Float(3))
    }

    func testFromArgumentsKeepsTheLastSmallBatch() throws {
        var arguments = TrainingArguments()
        arguments.perDeviceTrainBatchSize = 8
        arguments.gradientAccumulationSteps = 1
        arguments.numTrainEpochs = 1
        let plan = try TrainingPlan(examples: 17, arguments: arguments)
        XCTAssertEqual(plan.batchesPerEpoch, 3, "ceil(17 / 8)")
        XCTAssertEqual(plan.totalSteps, 3)
        XCTAssertEqual(try TrainingPlan(examples: 1, arguments: arguments).totalSteps, 1, "N = 1")
    }

    func testBadCountsNameTheField() {
        assertTrainingError(try TrainingPlan(batchesPerEpoch: 0, gradientAccumulationSteps: 1), subject: "train_dataset")
        assertTrainingError(try TrainingPlan(batchesPerEpoch: 4, gradientAccumulationSteps: 0), subject: "gradient_accumulation_steps")
        assertTrainingError(try TrainingPlan(batchesPerEpoch: 4, gradientAccumulationSteps: 1, numTrainEpochs: 0),
                            subject: "num_train_epochs")
        var arguments = TrainingArguments()
        arguments.perDeviceTrainBatchSize = 0
        assertTrainingError(try TrainingPlan(examples: 4, arguments: arguments), subject: "per_device_train_batch_size")
    }
}
