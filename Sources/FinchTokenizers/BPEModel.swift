import FinchFormats
import Synchronization

/// Byte-pair encoding with rank-ordered merges, as HF `tokenizers` `models/bpe` applies it:
/// start from a word's characters, repeatedly merge the adjacent pair with the lowest merge rank
/// (leftmost on a tie), stop when no adjacent pair has a merge (Sennrich et al. 2016; GPT-2).
final class BPEModel: Sendable {
    let vocab: Vocabulary
    let tokens: [String]
    /// (left id << 32 | right id) → (rank, merged id).
    let merges: [UInt64: Merge]
    /// Ids of single-character tokens.
    let characterIDs: [Unicode.Scalar: Int32]
    let unknownID: Int32?
    let fuseUnknown: Bool
    let byteFallback: Bool
    /// `<0x00>`…`<0xFF>` ids (byte fallback), -1 where absent.
    let byteTokenIDs: [Int32]
    /// Look the whole word up in the vocabulary before merging (Llama-3 style).
    let ignoreMerges: Bool
    private let cache = Mutex<[TokenKey: [Int32]]>([:])
    static let cacheCapacity = 50_000

    struct Merge: Sendable { var rank: Int32; var id: Int32 }

    init(vocab: Vocabulary, merges: [(String, String)], unknown: String?, fuseUnknown: Bool, byteFallback: Bool,
         ignoreMerges: Bool, path: String) throws {
        self.vocab = vocab
        var tokens = [String](repeating: "", count: (vocab.values.max().map { Int($0) } ?? -1) + 1)
        for (token, id) in vocab where id >= 0 { tokens[Int(id)] = token.string }
        self.tokens = tokens
        var table: [UInt64: Merge] = [:]
        table.reserveCapacity(merges.count)
        for (rank, (left, right)) in merges.enumerated() {
            guard let l = vocab[token: left], let r = vocab[token: right], let m = vocab[token: left + right] else {
                throw TokenizerError(path, "model.merges[\(rank)] \"\(left) \(right)\" uses a token missing from the vocabulary")
            }
            let key = UInt64(UInt32(bitPattern: l)) << 32 | UInt64(UInt32(bitPattern: r))
            if table[key] == nil { table[key] = Merge(rank: Int32(rank), id: m) }
        }
        self.merges = table
        var characters: [Unicode.Scalar: Int32] = [:]
        for (token, id) in vocab {
            var it = token.string.unicodeScalars.makeIterator()
            if let first = it.next(), it.next() == nil { characters[first] = id }
        }
        self.characterIDs = characters
        if let unknown {
            guard let id = vocab[token: unknown] else { throw TokenizerError(path, "model.unk_token '\(unknown)' is not in the vocabulary") }
            unknownID = id
        } else {
            unknownID = nil
        }
        self.fuseUnknown = fuseUnknown
        self.byteFallback = byteFallback
        self.ignoreMerges = ignoreMerges
        byteTokenIDs = (0..<256).map { b in vocab[token: byteTokenName(UInt8(b))] ?? -1 }
    }

    /// The ids of one pre-tokenized word.
    func encode(_ word: [Unicode.Scalar], into out: inout [Int32]) {
        var key = String.UnicodeScalarView()
        key.append(contentsOf: word)
        let keyString = String(key)
        let cacheKey = TokenKey(keyString)
        if let hit = cache.withLock({ $0[cacheKey] }) {
            out.append(contentsOf: hit)
            return
        }
        let ids = merge(word, keyString)
        cache.withLock { cache in
            if cache.count >= Self.cacheCapacity { cache.removeAll(keepingCapacity: true) }
            cache[cacheKey] = ids
        }
        out.append(contentsOf: ids)
    }

    private func merge(_ word: [Unicode.Scalar], _ text: String) -> [Int32] {
        if ignoreMerges, let id = vocab[token: text] { return [id] }
        var symbols: [Int32] = []
        symbols.reserveCapacity(word.count)
        var lastWasUnknown = false
        for scalar in word {
            if let id = characterIDs[scalar] {
                symbols.append(id)
                lastWasUnknown = false
                continue
            }
            if byteFallback {
                let bytes = Array(String(scalar).utf8)
                let ids = bytes.map { byteTokenIDs[Int($0)] }
                if !ids.contains(-1) {
                    symbols.append(contentsOf: ids)
                    lastWasUnknown = false
                    continue
                }
            }
            guard let unknownID else { continue }
            if fuseUnknown && lastWasUnknown { continue }
            symbols.append(unknownID)
            lastWasUnknown = true
        }
        return symbols.count <= 48 ? mergeByScanning(symbols) : mergeWithHeap(symbols)
    }

    @inline(__always)
    private func lookup(_ left: Int32, _ right: Int32) -> Merge? {
        merges[UInt64(UInt32(bitPattern: left)) << 32 | UInt64(UInt32(bitPattern: right))]
    }

    /// Short words: rescan for the lowest-rank pair each round (cheaper than a heap below ~50 symbols).
    private func mergeByScanning(_ input: [Int32]) -> [Int32] {
        var symbols = input
        while symbols.count > 1 {
            var best: Merge?
            var bestIndex = -1
            for i in 0..<(symbols.count - 1) {
                if let m = lookup(symbols[i], symbols[i + 1]), m.rank < (best?.rank ?? .max) {
                    best = m
                    bestIndex = i
                }
            }
            guard let merge = best else { break }
            symbols[bestIndex] = merge.id
            symbols.remove(at: bestIndex + 1)
        }
        return symbols
    }

    /// Long words: a priority queue of candidate pairs keyed by (rank, position) over a linked
    /// list of symbols; stale entries are skipped when popped, as in HF `word.rs`.
    private func mergeWithHeap(_ input: [Int32]) -> [Int32] {
        let n = input.count
        var ids = input
        var next = Array(1...n).map { $0 == n ? -1 : $0 }
        var previous = (0..<n).map { $0 - 1 }
        var alive = [Bool](repeating: true, count: n)
        var heap = PairHeap()
        for i in 0..<(n - 1) {
            if let m = lookup(ids[i], ids[i + 1]) { heap.push(rank: m.rank, position: Int32(i)) }
        }
        while let (rank, p) = heap.pop() {
            let position = Int(p)
            guard alive[position], next[position] >= 0 else { continue }
            let right = next[position]
            guard let m = lookup(ids[position], ids[right]), m.rank == rank else { continue }
            ids[position] = m.id
            alive[right] = false
            next[position] = next[right]
            if next[right] >= 0 { previous[next[right]] = position }
            if previous[position] >= 0, let left = lookup(ids[previous[position]], ids[position]) {
                heap.push(rank: left.rank, position: Int32(previous[position]))
            }
            if next[position] >= 0, let after = lookup(ids[position], ids[next[position]]) {
                heap.push(rank: after.rank, position: p)
            }
        }
        var out: [Int32] = []
        var i = 0
        while i >= 0 && i < n {
            out.append(ids[i])
            i = next[i]
        }
        return out
    }
}

/// A binary min-heap of (rank, position), ordered by rank then position (leftmost first).
struct PairHeap {
    private var items: [UInt64] = []

    mutating func push(rank: Int32, position: Int32) {
        items.append(UInt64(UInt32(bitPattern: rank)) << 32 | UInt64(UInt32(bitPattern: position)))
        var i = items.count - 1
        while i > 0 {
            let parent = (i - 1) / 2
            guard items[i] < items[parent] else { break }
            items.swapAt(i, parent)
            i = parent
        }
    }

    mutating func pop() -> (Int32, Int32)? {
        guard let top = items.first else { return nil }
        let last = items.removeLast()
        if !items.isEmpty {
            items[0] = last
            var i = 0
            while true {
                let l = 2 * i + 1, r = l + 1
                var smallest = i
                if l < items.count, items[l] < items[smallest] { smallest = l }
                if r < items.count, items[r] < items[smallest] { smallest = r }
                if smallest == i { break }
                items.swapAt(i, smallest)
                i = smallest
            }
        }
        return (Int32(bitPattern: UInt32(top >> 32)), Int32(bitPattern: UInt32(truncatingIfNeeded: top)))
    }
}

/// The SentencePiece byte-fallback token for `byte`: `<0x0A>`.
func byteTokenName(_ byte: UInt8) -> String {
    let digits = Array("0123456789ABCDEF")
    return "<0x" + String(digits[Int(byte >> 4)]) + String(digits[Int(byte & 0xF)]) + ">"
}
