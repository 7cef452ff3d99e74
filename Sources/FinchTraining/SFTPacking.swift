import FinchModels

/// TRL 1.16's `packing_strategy`.
public enum SFTPackingStrategy: String, Sendable, Equatable, Codable, CaseIterable {
    /// Best-fit decreasing (TRL's default): sequences keep their boundaries; a sequence longer
    /// than `max_length` loses its tail.
    case bfd
    /// Best-fit decreasing after splitting each sequence longer than `max_length` into pieces of
    /// `max_length` tokens (the last one shorter); no token is lost, but a conversation may be cut.
    case bfdSplit = "bfd_split"
    /// All sequences end to end, cut every `max_length` tokens: a packed row is one sequence
    /// whose tokens attend across the examples it holds (TRL's "wrapped" has no boundaries).
    case wrapped
}

/// Packing tokenized SFT sequences into rows of at most `max_length` tokens, as TRL 1.16's
/// `pack_dataset` does (trl/data_utils.py `_pack_bfd`, `_pack_wrapped`).
public enum SFTPacking {
    /// Rows per packing call: `pack_dataset` runs `Dataset.map(batched=True)` with datasets'
    /// default `batch_size`, so bins never mix sequences from different runs of 1000.
    public static let defaultBatchSize = 1000

    /// Packs `sequences` into bins (packed rows), in TRL's order and with TRL's contents.
    ///
    /// The input is taken in runs of `batchSize` sequences (TRL's map batches); each run is
    /// packed on its own and the bins of the runs follow each other. Within a run:
    /// - `bfd`: empty sequences are left out; each sequence is cut to its first `maxLength`
    ///   tokens; the sequences are taken longest first (a stable sort: equal lengths keep their
    ///   order) and each goes into the open bin with the least room that still fits it — among
    ///   bins with equally little room, the one that got that room first — or into a new bin.
    ///   Bins come out in the order they were opened, their sequences in the order they went in.
    /// - `bfdSplit`: the same after cutting each longer sequence into pieces of `maxLength`
    ///   tokens and a last shorter one; every piece is a sequence of its own (location
    ///   suffixed "(part k/n)").
    /// - `wrapped`: all tokens and labels end to end, cut every `maxLength`; each bin holds one
    ///   sequence (its location names the first and last examples it draws from).
    ///
    /// In `bfd` bins each sequence keeps its own positions and attends only to itself, as TRL's
    /// padding-free collator arranges with `seq_lengths` (``packedBatch(_:)``).
    ///
    /// - Precondition: `maxLength > 0`, `batchSize > 0`.
    public static func pack(_ sequences: [SFTSequence], maxLength: Int, strategy: SFTPackingStrategy = .bfd,
                            batchSize: Int = defaultBatchSize) -> [[SFTSequence]] {
        precondition(maxLength > 0 && batchSize > 0, "SFTPacking: max_length and batch size must be positive")
        var bins: [[SFTSequence]] = []
        var start = 0
        while start < sequences.count {
            let run = Array(sequences[start..<min(start + batchSize, sequences.count)])
            switch strategy {
            case .bfd:
                bins += bestFitDecreasing(run.filter { $0.count > 0 }.map { $0.truncated(to: maxLength) }, maxLength: maxLength)
            case .bfdSplit:
                bins += bestFitDecreasing(run.flatMap { split($0, maxLength: maxLength) }, maxLength: maxLength)
            case .wrapped:
                bins += wrapped(run, maxLength: maxLength)
            }
            start += batchSize
        }
        return bins
    }

    /// A bin as the model's padding-free batch: one sequence per packed example, positions
    /// restarting at each, labels shifted (the last token of each sequence predicts nothing,
    /// as TRL's collator masks the label at each `position_ids == 0`).
    public static func packedBatch(_ bin: [SFTSequence]) throws -> PackedBatch {
        try PackedBatch(sequences: bin.map(\.inputIDs), labels: bin.map(\.labels))
    }

    /// `_pack_bfd` on one run (sequences already non-empty and at most `maxLength` long).
    static func bestFitDecreasing(_ items: [SFTSequence], maxLength: Int) -> [[SFTSequence]] {
        // pyarrow's sort of (length, index) by length, descending, is stable.
        let order = items.indices.sorted { items[$0].count != items[$1].count ? items[$0].count > items[$1].count : $0 < $1 }
        var tree = SegmentTree(maxValue: maxLength)
        tree.add(maxLength) // a fresh bin always has room for anything
        var bins: [[Int]] = []
        // Bins by remaining room, first come first served (Python's deque, popleft).
        var binsWithRoom: [Int: [Int]] = [:]
        for index in order {
            let length = items[index].count
            let room = tree.search(length)
            let bin: Int
            if room < maxLength {
                bin = binsWithRoom[room, default: []].removeFirst()
                if binsWithRoom[room, default: []].isEmpty { tree.remove(room) }
            } else {
                bin = bins.count
                bins.append([])
            }
            bins[bin].append(index)
            let left = room - length
            binsWithRoom[left, default: []].append(bin)
            if left > 0 { tree.add(left) }
        }
        return bins.map { $0.map { items[$0] } }
    }

    /// `on_seq_length_overflow="split"`: pieces of `maxLength` tokens, the last one shorter.
    static func split(_ sequence: SFTSequence, maxLength: Int) -> [SFTSequence] {
        guard sequence.count > maxLength else { return sequence.count > 0 ? [sequence] : [] }
        let pieces = (sequence.count + maxLength - 1) / maxLength
        return (0..<pieces).map { k in
            let range = (k * maxLength)..<min((k + 1) * maxLength, sequence.count)
            return SFTSequence(inputIDs: Array(sequence.inputIDs[range]), labels: Array(sequence.labels[range]),
                               location: "\(sequence.location) (part \(k + 1)/\(pieces))", isTruncated: sequence.isTruncated)
        }
    }

    /// `_pack_wrapped` on one run.
    static func wrapped(_ run: [SFTSequence], maxLength: Int) -> [[SFTSequence]] {
        let ids = run.flatMap(\.inputIDs), labels = run.flatMap(\.labels)
        // Which example each token comes from, to name the examples a chunk draws from.
        var owners: [Int] = []
        owners.reserveCapacity(ids.count)
        for (i, sequence) in run.enumerated() { owners += repeatElement(i, count: sequence.count) }
        return stride(from: 0, to: ids.count, by: maxLength).map { start in
            let range = start..<min(start + maxLength, ids.count)
            let first = run[owners[range.lowerBound]].location, last = run[owners[range.upperBound - 1]].location
            return [SFTSequence(inputIDs: Array(ids[range]), labels: Array(labels[range]),
                                location: first == last ? first : "\(first)…\(last)")]
        }
    }
}

/// TRL's `_SegmentTree`: the largest value in each subtree over the leaves 1…maxValue, so that
/// `search(v)` finds the smallest stored value ≥ v (the best-fitting room).
struct SegmentTree {
    let size: Int
    var tree: [Int]

    init(maxValue: Int) {
        let bits = maxValue - 1 == 0 ? 0 : Int.bitWidth - (maxValue - 1).leadingZeroBitCount
        size = 1 << bits
        tree = [Int](repeating: 0, count: 2 * size)
    }

    mutating func add(_ value: Int) { set(value, value) }
    mutating func remove(_ value: Int) { set(value, 0) }

    private mutating func set(_ value: Int, _ stored: Int) {
        var i = size + value - 1
        tree[i] = stored
        while i > 1 {
            i >>= 1
            tree[i] = max(tree[2 * i], tree[2 * i + 1])
        }
    }

    /// The leftmost leaf whose value is at least `value` (0 when none).
    func search(_ value: Int) -> Int {
        var i = 1
        while i < size { i = tree[2 * i] >= value ? 2 * i : 2 * i + 1 }
        return tree[i]
    }
}
