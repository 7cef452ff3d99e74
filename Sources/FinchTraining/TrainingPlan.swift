/// The optimizer steps of a run and the micro-batches each accumulates, counted as the transformers
/// 5.24 Trainer counts them (`Trainer.set_initial_training_values` and `_run_epoch`,
/// trl-dpo.md §7.5).
///
/// - `len(dataloader)` = ⌈examples / per_device_train_batch_size⌉ micro-batches per epoch (the
///   last, smaller batch is kept).
/// - Optimizer steps per epoch U = max(⌈len(dataloader) / GA⌉, 1). Every epoch is cut into
///   windows of GA micro-batches except its last, which takes the remainder
///   (`len(dataloader) % GA`, or GA when that is 0): a partial window still makes a step.
/// - Total steps N = `max_steps` when it is > 0, else ⌈num_train_epochs · U⌉; epochs repeat until
///   N steps are done, and the last epoch may stop part-way.
/// - Each micro-batch loss is divided by the size of *its own window* before backward (the
///   Trainer's `current_gradient_accumulation_steps`), so a 1-batch remainder window is not
///   scaled down by GA (older transformers divided by GA always).
///   This is what DPO gets: `DPOTrainer` sets `model_accepts_loss_kwargs = False`.
public struct TrainingPlan: Sendable, Equatable {
    /// Micro-batches per epoch, `len(dataloader)`.
    public let batchesPerEpoch: Int
    /// GA, `gradient_accumulation_steps`.
    public let gradientAccumulationSteps: Int
    /// U, optimizer steps per epoch.
    public let stepsPerEpoch: Int
    /// N, optimizer steps of the run (the Trainer's `max_steps`, also the schedule's length).
    public let totalSteps: Int
    /// Epochs started (`num_train_epochs` as the Trainer computes it).
    public let epochs: Int

    /// - Throws: ``TrainingError`` naming the field when a count is < 1, or when neither
    ///   `max_steps` nor `num_train_epochs` gives at least one step.
    public init(batchesPerEpoch: Int, gradientAccumulationSteps: Int, numTrainEpochs: Double = 3, maxSteps: Int = -1) throws {
        guard batchesPerEpoch >= 1 else { throw TrainingError("train_dataset", "has no batches; it needs at least one example") }
        guard gradientAccumulationSteps >= 1 else {
            throw TrainingError("gradient_accumulation_steps", "must be ≥ 1, got \(gradientAccumulationSteps)")
        }
        let perEpoch = max((batchesPerEpoch + gradientAccumulationSteps - 1) / gradientAccumulationSteps, 1)
        let total: Int
        let epochs: Int
        if maxSteps > 0 {
            total = maxSteps
            epochs = maxSteps / perEpoch + (maxSteps % perEpoch > 0 ? 1 : 0)
        } else {
            guard numTrainEpochs.isFinite, numTrainEpochs > 0 else {
                throw TrainingError("num_train_epochs", "must be > 0 when max_steps is not set, got \(numTrainEpochs)")
            }
            total = Int((numTrainEpochs * Double(perEpoch)).rounded(.up))
            epochs = Int(numTrainEpochs.rounded(.up))
        }
        self.batchesPerEpoch = batchesPerEpoch
        self.gradientAccumulationSteps = gradientAccumulationSteps
        stepsPerEpoch = perEpoch
        totalSteps = total
        self.epochs = epochs
    }

    /// The plan for `examples` training examples under `arguments`.
    public init(examples: Int, arguments: TrainingArguments) throws {
        guard arguments.perDeviceTrainBatchSize >= 1 else {
            throw TrainingError("per_device_train_batch_size", "must be ≥ 1, got \(arguments.perDeviceTrainBatchSize)")
        }
        let batches = (examples + arguments.perDeviceTrainBatchSize - 1) / arguments.perDeviceTrainBatchSize
        try self.init(batchesPerEpoch: batches, gradientAccumulationSteps: arguments.gradientAccumulationSteps,
                      numTrainEpochs: arguments.numTrainEpochs, maxSteps: arguments.maxSteps)
    }

    /// The micro-batches of optimizer step `step` (1 ... ``totalSteps``).
    public func window(forStep step: Int) -> AccumulationWindow {
        precondition(step >= 1 && step <= totalSteps, "step \(step) outside 1...\(totalSteps)")
        let epoch = (step - 1) / stepsPerEpoch
        let indexInEpoch = (step - 1) % stepsPerEpoch
        let start = indexInEpoch * gradientAccumulationSteps
        let remainder = batchesPerEpoch % gradientAccumulationSteps == 0
            ? gradientAccumulationSteps : batchesPerEpoch % gradientAccumulationSteps
        let size = indexInEpoch == stepsPerEpoch - 1 ? remainder : gradientAccumulationSteps
        return AccumulationWindow(step: step, epoch: epoch, batches: start..<(start + size),
                                  epochProgress: Double(epoch) + Double(start + size) / Double(batchesPerEpoch))
    }

    /// Every window of the run, in order.
    public var windows: [AccumulationWindow] { (0..<totalSteps).map { window(forStep: $0 + 1) } }
}

/// The micro-batches that one optimizer step accumulates.
public struct AccumulationWindow: Sendable, Equatable {
    /// The optimizer step (transformers' `global_step` after it), 1-based.
    public let step: Int
    /// The epoch, 0-based.
    public let epoch: Int
    /// Micro-batch indices within the epoch, in dataloader order.
    public let batches: Range<Int>
    /// transformers' `state.epoch` after this step (the logged `epoch`):
    /// `epoch + batches.upperBound / len(dataloader)`.
    public let epochProgress: Double

    /// Micro-batches in the window.
    public var size: Int { batches.count }

    /// What each micro-batch loss is multiplied by before backward: 1 / ``size`` (torch's autograd
    /// of `loss / n` seeds backward with the Float32 `1 / n`). Pass it as the `scale` of
    /// ``ParameterArena/accumulateGradient(_:into:scale:)`` or as the upstream gradient of the loss.
    public var lossScale: Float { 1 / Float(size) }
}
