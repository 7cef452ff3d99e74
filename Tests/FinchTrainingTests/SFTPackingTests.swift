import FinchFormats
import FinchModels
@testable import FinchTraining
import XCTest

/// Packing as TRL 1.16's `pack_dataset`: the worked example of its docstring, 2600 seeded
/// sequences across datasets' 1000-row map batches (fixture), and the padding-free batch a bin
/// becomes.
final class SFTPackingTests: XCTestCase {
    static func sequence(_ ids: [Int], labels: [Int]? = nil, _ location: String = "") -> SFTSequence {
        SFTSequence(inputIDs: ids, labels: labels ?? ids, location: location)
    }

    /// `pack_dataset`'s docstring: [[1,2,3,4,5],[6,7],[8,9,10],[11]] at seq_length 4.
    func testTRLDocstringExample() {
        let sequences = [[1, 2, 3, 4, 5], [6, 7], [8, 9, 10], [11]].map { Self.sequence($0) }
        let bfd = SFTPacking.pack(sequences, maxLength: 4, strategy: .bfd)
        XCTAssertEqual(bfd.map { $0.flatMap(\.inputIDs) }, [[1, 2, 3, 4], [8, 9, 10, 11], [6, 7]])
        XCTAssertEqual(bfd.map { $0.map(\.count) }, [[4], [3, 1], [2]])
        XCTAssertEqual(bfd[0][0].isTruncated, true)
        let split = SFTPacking.pack(sequences, maxLength: 4, strategy: .bfdSplit)
        XCTAssertEqual(split.map { $0.flatMap(\.inputIDs) }, [[1, 2, 3, 4], [8, 9, 10, 5], [6, 7, 11]])
        XCTAssertEqual(split.map { $0.map(\.count) }, [[4], [3, 1], [2, 1]])
        XCTAssertEqual(split[1][1].location, " (part 2/2)")
        let wrapped = SFTPacking.pack(sequences, maxLength: 4, strategy: .wrapped)
        XCTAssertEqual(wrapped.map { $0.flatMap(\.inputIDs) }, [[1, 2, 3, 4], [5, 6, 7, 8], [9, 10, 11]])
        XCTAssertEqual(wrapped.map(\.count), [1, 1, 1])
    }

    /// Empty sequences are left out; ties keep input order; the fullest bin that fits wins, and
    /// among bins with the same room the one that got it first.
    func testBestFitOrderAndTies() {
        let lengths = [3, 0, 5, 3, 2, 5, 1, 4]
        let sequences = lengths.enumerated().map { i, n in Self.sequence([Int](repeating: i, count: n), "s\(i)") }
        let bins = SFTPacking.pack(sequences, maxLength: 8)
        // Longest first: 5(s2) 5(s5) 4(s7) 3(s0) 3(s3) 2(s4) 1(s6).
        // s2 → A(room 3); s5 → B(3); s7 → C(4); s0 → A (room 3, first) → 0; s3 → B → 0; s4 → C(4→2); s6 → C(2→1).
        XCTAssertEqual(bins.map { $0.map(\.location) }, [["s2", "s0"], ["s5", "s3"], ["s7", "s4", "s6"]])
    }

    /// 2600 sequences of seeded lengths 1–80 at max_length 64 (reference/make_sft_data_fixtures.py):
    /// TRL's bins exactly, for the three strategies. The runs of 1000 matter: packing them as one
    /// run gives other bins.
    func testSyntheticPackingMatchesTRL() throws {
        let fixture = try XCTUnwrap(try SFTDataFixtures.expected.get()["synthetic_packing"])
        let lengths = try XCTUnwrap(fixture["lengths"]).ints()
        let maxLength = try XCTUnwrap(fixture["max_length"]?.intValue)
        let sequences = lengths.enumerated().map { i, n in Self.sequence([Int](repeating: i, count: n), "s\(i)") }
        for strategy in SFTPackingStrategy.allCases {
            // Each bin's pieces, flat: index, length, index, length, …
            let expected = try XCTUnwrap(fixture["strategies"]?[strategy.rawValue]?.arrayValue).map { bin in
                let flat = try bin.ints()
                return stride(from: 0, to: flat.count - 1, by: 2).map { [flat[$0], flat[$0 + 1]] }
            }
            let bins = SFTPacking.pack(sequences, maxLength: maxLength, strategy: strategy)
            let pieces: [[[Int]]] = bins.map { bin in
                if strategy == .wrapped {
                    // One sequence: runs of equal ids.
                    var runs: [[Int]] = []
                    for id in bin[0].inputIDs {
                        if let last = runs.last, last[0] == id { runs[runs.count - 1][1] += 1 } else { runs.append([id, 1]) }
                    }
                    return runs
                }
                return bin.map { [$0.inputIDs[0], $0.count] }
            }
            XCTAssertEqual(pieces.count, expected.count, strategy.rawValue)
            let firstDifference = zip(pieces, expected).enumerated().first { $0.element.0 != $0.element.1 }
            XCTAssertNil(firstDifference, "\(strategy.rawValue): first different bin \(firstDifference.map { "\($0.offset): \($0.element.0) ≠ \($0.element.1)" } ?? "")")
            XCTAssertTrue(bins.allSatisfy { $0.reduce(0) { $0 + $1.count } <= maxLength })
            if strategy == .bfd {
                let oneRun = SFTPacking.pack(sequences, maxLength: maxLength, strategy: strategy, batchSize: sequences.count)
                XCTAssertNotEqual(oneRun.map { $0.map(\.location) }, bins.map { $0.map(\.location) })
            }
        }
    }

    /// A bfd bin as a padding-free batch: positions restart per sequence, and no target crosses a
    /// boundary (TRL's collator masks the label at each position 0).
    func testBinBecomesAPackedBatch() throws {
        let a = Self.sequence([10, 11, 12], labels: [-100, 11, 12], "a"), b = Self.sequence([20, 21], "b")
        let batch = try SFTPacking.packedBatch([a, b])
        XCTAssertEqual(batch.tokens, [10, 11, 12, 20, 21])
        XCTAssertEqual(batch.positions, [0, 1, 2, 0, 1])
        XCTAssertEqual(batch.cumulativeLengths, [0, 3, 5])
        XCTAssertEqual(batch.targets, [11, 12, -100, 21, -100])
    }
}
