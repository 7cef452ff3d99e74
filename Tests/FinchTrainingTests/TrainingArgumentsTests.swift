import FinchTraining
import Foundation
import XCTest

final class TrainingArgumentsTests: XCTestCase {
    /// transformers 5.24 `TrainingArguments` defaults, and TRL 1.16 `DPOConfig`'s overrides.
    func testDefaults() throws {
        let d = TrainingArguments()
        XCTAssertEqual(d.learningRate, 5e-5)
        XCTAssertEqual(d.lrSchedulerType, .linear)
        XCTAssertEqual(d.warmupSteps, 0)
        XCTAssertEqual(d.weightDecay, 0)
        XCTAssertEqual([d.adamBeta1, d.adamBeta2, d.adamEpsilon], [0.9, 0.999, 1e-8])
        XCTAssertEqual(d.maxGradNorm, 1)
        XCTAssertEqual([d.gradientAccumulationSteps, d.perDeviceTrainBatchSize, d.maxSteps, d.seed], [1, 8, -1, 42])
        XCTAssertEqual(d.numTrainEpochs, 3)
        XCTAssertEqual(d.loggingSteps, 500)
        XCTAssertEqual(d.problems, [])
        let dpo = TrainingArguments.trlDPO
        XCTAssertEqual([dpo.learningRate, dpo.loggingSteps], [1e-6, 10])
    }

    func testDecodesTRLNamesAndKeepsDefaults() throws {
        let json = #"""
        {"learning_rate": 5e-6, "lr_scheduler_type": "cosine_with_min_lr", "lr_scheduler_kwargs": {"min_lr_rate": 0.1},
         "warmup_steps": 0.05, "gradient_accumulation_steps": 4, "per_device_train_batch_size": 2, "max_steps": 50}
        """#
        let a = try JSONDecoder().decode(TrainingArguments.self, from: Data(json.utf8))
        XCTAssertEqual(a.learningRate, 5e-6)
        XCTAssertEqual(a.lrSchedulerType, .cosineWithMinLR)
        XCTAssertEqual(a.lrSchedulerKwargs, .init(minLRRate: 0.1))
        XCTAssertEqual(a.warmupSteps, 0.05)
        XCTAssertEqual(a.maxGradNorm, 1, "missing keys keep transformers' defaults")
        XCTAssertEqual(a.problems, [])
        let schedule = try LearningRateSchedule(a, trainingSteps: 50)
        XCTAssertEqual(schedule.warmupSteps, 3, "ceil(50 · 0.05)")
        // Round trip through the same keys.
        let again = try JSONDecoder().decode(TrainingArguments.self, from: JSONEncoder().encode(a))
        XCTAssertEqual(again, a)
    }

    func testUnknownKeysAndBadSchedulerNamesAreErrors() {
        assertTrainingError(try JSONDecoder().decode(TrainingArguments.self, from: Data(#"{"learning_rat": 1}"#.utf8)),
                            subject: "learning_rat", contains: "learning_rate")
        assertTrainingError(try JSONDecoder().decode(TrainingArguments.self, from: Data(#"{"lr_scheduler_kwargs": {"min": 1}}"#.utf8)),
                            subject: "lr_scheduler_kwargs.min", contains: "min_lr")
        assertTrainingError(try JSONDecoder().decode(TrainingArguments.self, from: Data(#"{"lr_scheduler_type": "polynomial"}"#.utf8)),
                            subject: "lr_scheduler_type", contains: "cosine_with_min_lr")
    }

    /// `optim`: transformers' names, default `adamw_torch_fused`; a name Finch does not implement
    /// (even one transformers knows) is an error that lists the accepted ones.
    func testOptimNames() throws {
        XCTAssertEqual(TrainingArguments().optim, .adamwTorchFused)
        for name in ["adamw_torch", "adamw_torch_fused", "adamw_bnb_8bit", "adamw_8bit", "paged_adamw_8bit", "paged_adamw_32bit"] {
            let a = try JSONDecoder().decode(TrainingArguments.self, from: Data(#"{"optim": "\#(name)"}"#.utf8))
            XCTAssertEqual(a.optim.rawValue, name)
            XCTAssertEqual(try JSONDecoder().decode(TrainingArguments.self, from: JSONEncoder().encode(a)), a)
        }
        for name in ["adafactor", "paged_lion_8bit", "adamw_torch_8bit", "AdamW8bit", ""] {
            assertTrainingError(try JSONDecoder().decode(TrainingArguments.self, from: Data(#"{"optim": "\#(name)"}"#.utf8)),
                                subject: "optim", contains: "\"\(name)\"")
        }
        assertTrainingError(try JSONDecoder().decode(TrainingArguments.self, from: Data(#"{"optim": "sgd"}"#.utf8)),
                            subject: "optim", contains: OptimizerName.allCases.map(\.rawValue).joined(separator: ", "))
        XCTAssertEqual(OptimizerName.allCases.filter { $0.notice != nil }, [.pagedAdamw8bit, .pagedAdamw32bit])
        XCTAssertEqual(OptimizerName.allCases.map(\.bitsAndBytesStateBits), [nil, nil, 8, 8, 8, 32])
    }

    func testEveryProblemNamesItsField() {
        var a = TrainingArguments()
        a.learningRate = -1
        a.lrSchedulerType = .cosineWithMinLR
        a.warmupSteps = -2
        a.weightDecay = .nan
        a.adamBeta1 = 1
        a.adamBeta2 = -0.1
        a.adamEpsilon = -1
        a.maxGradNorm = .nan
        a.gradientAccumulationSteps = 0
        a.perDeviceTrainBatchSize = 0
        a.numTrainEpochs = 0
        a.loggingSteps = 2.5
        XCTAssertEqual(a.problems.map(\.subject), [
            "learning_rate", "lr_scheduler_kwargs", "warmup_steps", "weight_decay", "adam_beta1", "adam_beta2",
            "adam_epsilon", "max_grad_norm", "gradient_accumulation_steps", "per_device_train_batch_size",
            "num_train_epochs", "logging_steps",
        ])
        assertTrainingError(try a.validate(), subject: "learning_rate", contains: "-1")
        var b = TrainingArguments()
        b.maxSteps = 0
        b.lrSchedulerKwargs.numCycles = 1
        XCTAssertEqual(b.problems.map(\.subject), ["lr_scheduler_kwargs", "max_steps"])
    }

    func testLoggingInterval() {
        var a = TrainingArguments()
        a.loggingSteps = 0.25
        XCTAssertEqual(a.loggingInterval(totalSteps: 10), 3, "ceil(10 · 0.25)")
        a.loggingSteps = 1
        XCTAssertEqual(a.loggingInterval(totalSteps: 10), 1)
    }
}
