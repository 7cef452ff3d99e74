import FinchCore
import FinchModels

/// How a model ranks the two completions of held-out preference pairs, by **length-normalised
/// log-probability**: each completion's mean log p per completion token (the tokens `finch dpo`
/// trains on: the rows whose target is a completion token, EOS included), so a short answer is
/// not favoured just for having fewer tokens to pay for.
///
/// - accuracy: the share of pairs whose chosen completion has the higher mean (ties count as
///   wrong);
/// - mean margin: the mean over pairs of (chosen mean − rejected mean), in nats per token.
public struct PreferenceAccuracy: Sendable, Equatable, Codable {
    /// Mean log p per completion token of each pair's chosen completion.
    public var chosenMeans: [Double]
    /// The same for the rejected completions.
    public var rejectedMeans: [Double]

    public init(chosenMeans: [Double], rejectedMeans: [Double]) {
        precondition(chosenMeans.count == rejectedMeans.count, "PreferenceAccuracy: unequal counts")
        self.chosenMeans = chosenMeans
        self.rejectedMeans = rejectedMeans
    }

    public var pairCount: Int { chosenMeans.count }

    /// Share of pairs with chosen mean > rejected mean (0 without pairs).
    public var accuracy: Double {
        guard pairCount > 0 else { return 0 }
        return Double(zip(chosenMeans, rejectedMeans).filter { $0 > $1 }.count) / Double(pairCount)
    }

    /// Mean of chosen mean − rejected mean (0 without pairs).
    public var meanMargin: Double {
        guard pairCount > 0 else { return 0 }
        return zip(chosenMeans, rejectedMeans).reduce(0) { $0 + ($1.0 - $1.1) } / Double(pairCount)
    }

    /// Scores `pairs` (tokenized as `finch dpo` tokenizes them) with the model of `pass`, with
    /// `adapter` on (nil: the base), `batchSize` pairs per forward pass (no gradients).
    /// `progress` gets the number of pairs done after each batch.
    public static func measure(_ pairs: [DPOSequencePair], pass: TrainingPass, adapter: LoRAAdapter?, batchSize: Int = 8,
                               pool: ThreadPool, progress: (Int) -> Void = { _ in }) throws -> PreferenceAccuracy {
        var chosen: [Double] = [], rejected: [Double] = []
        let size = max(1, batchSize)
        for start in stride(from: 0, to: pairs.count, by: size) {
            let micro = try DPOMicroBatch(Array(pairs[start..<min(start + size, pairs.count)]))
            let out = try pass.logProbabilities(micro.batch, adapter: adapter, pool: pool)
            let means = sequenceMeans(micro.batch, out.logProbabilities)
            let b = micro.pairCount
            chosen += means[0..<b]
            rejected += means[b..<(2 * b)]
            progress(chosen.count)
        }
        return PreferenceAccuracy(chosenMeans: chosen, rejectedMeans: rejected)
    }

    /// Mean of `values` over each sequence's scored rows (targets ≥ 0), in Double.
    static func sequenceMeans(_ batch: PackedBatch, _ values: [Float]) -> [Double] {
        (0..<batch.sequenceCount).map { s in
            var sum = 0.0, count = 0
            for t in batch.cumulativeLengths[s]..<batch.cumulativeLengths[s + 1] where batch.targets[t] >= 0 {
                sum += Double(values[t])
                count += 1
            }
            return count > 0 ? sum / Double(count) : 0
        }
    }
}
