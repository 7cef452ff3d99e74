/// One tokenized SFT example, ready for packing: the token ids and, aligned with them, the labels
/// in transformers' convention (`labels[t]` is the id at t, or −100 where no loss is taken; the
/// model shifts them: row t is trained to predict `labels[t + 1]`).
///
/// ``PackedBatch``'s `init(sequences:labels:)` takes them as they are.
public struct SFTSequence: Sendable, Equatable {
    /// PyTorch's `ignore_index`: a label that takes no loss.
    public static let ignoreIndex = -100

    public var inputIDs: [Int]
    /// One label per id: the id itself, or ``ignoreIndex`` (prompt, non-assistant text, …).
    public var labels: [Int]
    /// Where the example comes from: `file.jsonl:17`.
    public var location: String
    /// True when `max_length` (or packing) cut tokens off.
    public var isTruncated: Bool

    public init(inputIDs: [Int], labels: [Int], location: String, isTruncated: Bool = false) {
        precondition(inputIDs.count == labels.count, "SFTSequence: \(inputIDs.count) ids but \(labels.count) labels")
        self.inputIDs = inputIDs
        self.labels = labels
        self.location = location
        self.isTruncated = isTruncated
    }

    public var count: Int { inputIDs.count }

    /// Tokens whose label takes loss. The model scores one fewer when the first token's label
    /// is not ignored (nothing predicts the first token).
    public var labeledTokenCount: Int { labels.reduce(0) { $0 + ($1 == Self.ignoreIndex ? 0 : 1) } }

    /// The first `length` tokens (keep_start) or the last (keep_end), marked truncated when
    /// anything is cut.
    func truncated(to length: Int, keepEnd: Bool = false) -> SFTSequence {
        guard count > length else { return self }
        let ids = keepEnd ? Array(inputIDs.suffix(length)) : Array(inputIDs.prefix(length))
        let kept = keepEnd ? Array(labels.suffix(length)) : Array(labels.prefix(length))
        return SFTSequence(inputIDs: ids, labels: kept, location: location, isTruncated: true)
    }
}
