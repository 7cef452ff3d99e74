import FinchFormats
import FinchModels
import FinchTraining
import XCTest

/// `finch dpo`'s settings: TRL's names and defaults, overrides, and errors naming key and origin.
final class DPORunConfigurationTests: XCTestCase {
    func configuration(_ entries: [(String, JSONValue)], origin: String = "recipe.yaml") throws -> DPORunConfiguration {
        var c = DPORunConfiguration()
        for (i, (key, value)) in entries.enumerated() { try c.set(key, value, origin: "\(origin):\(i + 1)") }
        try c.resolve()
        return c
    }

    func testDefaultsAreTRLs() throws {
        let c = try configuration([])
        XCTAssertEqual(c.arguments.learningRate, 1e-6)
        XCTAssertEqual(c.arguments.loggingSteps, 10)
        XCTAssertEqual(c.arguments.perDeviceTrainBatchSize, 8)
        XCTAssertEqual(c.arguments.lrSchedulerType, .linear)
        XCTAssertEqual(c.loss.types, [.sigmoid])
        XCTAssertEqual(c.loss.beta, 0.1)
        XCTAssertEqual(c.maxLength, 1024)
        XCTAssertEqual(c.truncationMode, "keep_start")
        XCTAssertTrue(c.gradientCheckpointing)
        XCTAssertEqual(c.quantization, .nf4)
        XCTAssertTrue(c.doubleQuantization)
        XCTAssertEqual(c.lora.r, 16)
        XCTAssertEqual(c.lora.loraAlpha, 32)
    }

    /// The article's recipe, as `examples/phi2-dpo-qlora.yaml` writes it.
    func testArticleRecipe() throws {
        let c = try configuration([
            ("model_name_or_path", .string("microsoft/phi-2")), ("load_in_4bit", .bool(true)), ("bnb_4bit_quant_type", .string("nf4")),
            ("bnb_4bit_use_double_quant", .bool(true)), ("lora_r", .number("16")), ("lora_alpha", .number("16")),
            ("lora_dropout", .number("0.05")), ("lora_target_modules", .array(["q_proj", "k_proj", "v_proj", "dense"].map { .string($0) })),
            ("per_device_train_batch_size", .number("2")), ("gradient_accumulation_steps", .number("4")),
            ("learning_rate", .number("5e-5")), ("lr_scheduler_type", .string("cosine")), ("warmup_steps", .number("5")),
            ("max_steps", .number("100")), ("beta", .number("0.1")), ("max_prompt_length", .number("512")),
            ("max_length", .number("1024")), ("gradient_checkpointing", .bool(true)), ("optim", .string("paged_adamw_32bit")),
        ])
        XCTAssertEqual(c.quantization, .nf4)
        XCTAssertEqual(c.lora.targetModules, .names(["q_proj", "k_proj", "v_proj", "dense"]))
        XCTAssertEqual(c.arguments.learningRate, 5e-5)
        XCTAssertEqual(c.arguments.lrSchedulerType, .cosine)
        XCTAssertEqual(c.arguments.optim, .pagedAdamw32bit)
        XCTAssertEqual(c.maxPromptLength, 512)
        XCTAssertEqual(c.resolvedJSON["optim"]?.stringValue, "paged_adamw_32bit")
    }

    /// Flags arrive as strings; later entries override earlier ones.
    func testFlagsAsStringsAndOverrides() throws {
        let c = try configuration([("learning_rate", .number("1e-4")), ("learning_rate", .string("2e-5")), ("loss_type", .string("sigmoid,sft")),
                                   ("loss_weights", .string("[1, 0.5]")), ("gradient_checkpointing", .string("false")),
                                   ("max_length", .string("null")), ("lora_target_modules", .string("all-linear"))])
        XCTAssertEqual(c.arguments.learningRate, 2e-5)
        XCTAssertEqual(c.loss.types, [.sigmoid, .sft])
        XCTAssertEqual(c.loss.weights, [1, 0.5])
        XCTAssertFalse(c.gradientCheckpointing)
        XCTAssertNil(c.maxLength)
        XCTAssertEqual(c.lora.targetModules, .allLinear)
        let rpo = try configuration([("rpo_alpha", .number("0.5"))])
        XCTAssertEqual(rpo.loss.types, [.sigmoid, .sft])
        XCTAssertEqual(rpo.loss.weights, [1, 0.5])
    }

    func testErrorsNameKeyAndOrigin() throws {
        func expect(_ entries: [(String, JSONValue)], _ key: String, _ fragment: String, line: UInt = #line) {
            XCTAssertThrowsError(try configuration(entries), line: line) { error in
                let text = "\(error)"
                XCTAssertTrue(text.hasPrefix(key + ":"), text, line: line)
                XCTAssertTrue(text.contains(fragment), text, line: line)
            }
        }
        expect([("learnin_rate", .number("1"))], "learnin_rate", "unknown key (recipe.yaml:1)")
        expect([("beta", .string("high"))], "beta", "expected a number")
        expect([("beta", .number("1")), ("lora_r", .string("x"))], "lora_r", "recipe.yaml:2")
        expect([("loss_type", .string("dpo"))], "loss_type", "'dpo' is not one of")
        expect([("quantization", .string("nf3"))], "quantization", "nf4, fp4, int8")
        expect([("truncation_mode", .string("middle"))], "truncation_mode", "keep_start or keep_end")
        expect([("optim", .string("lion"))], "optim", "adamw_torch_fused")
        expect([("per_device_train_batch_size", .number("0"))], "per_device_train_batch_size", "≥ 1")
        expect([("bf16", .bool(true))], "bf16", "Float32")
        expect([("gradient_checkpointing", .string("maybe"))], "gradient_checkpointing", "true or false")
        expect([("save_total_limit", .string("two"))], "save_total_limit", "expected an integer")
    }
}

extension DPORunConfigurationTests {
    /// `finch sft` takes SFTConfig's keys and defaults, and refuses DPO-only ones (and vice versa).
    func testSFTKeysAndDefaults() throws {
        var c = DPORunConfiguration(command: .sft)
        try c.set("packing", .bool(true), origin: "sft.yaml:1")
        try c.set("completion_only_loss", .string("false"), origin: "--completion_only_loss")
        try c.resolve()
        XCTAssertEqual(c.arguments.learningRate, 2e-5, "SFTConfig's default")
        XCTAssertTrue(c.packing)
        XCTAssertEqual(c.completionOnlyLoss, false)
        XCTAssertEqual(c.resolvedJSON["packing"]?.boolValue, true)
        XCTAssertNil(c.resolvedJSON["beta"])
        var sft = DPORunConfiguration(command: .sft)
        XCTAssertThrowsError(try sft.set("beta", .number("0.1"), origin: "--beta")) { XCTAssertTrue("\($0)".contains("applies to finch dpo"), "\($0)") }
        var dpo = DPORunConfiguration()
        XCTAssertThrowsError(try dpo.set("packing", .bool(true), origin: "--packing")) { XCTAssertTrue("\($0)".contains("applies to finch sft"), "\($0)") }
    }
}
