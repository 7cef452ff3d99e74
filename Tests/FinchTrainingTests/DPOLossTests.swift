import FinchTraining
import XCTest

/// DPO losses: TRL's values at initialization (policy = reference, reference/trl-dpo.md §4.3,
/// computed with TRL's loss code: β 0.1, ε 1e-3), and every analytic gradient against central
/// finite differences in Double at random log-probabilities. End-to-end parity with TRL's
/// trainer for sigmoid, ipo, hinge, robust, sigmoid_norm and [sigmoid, sft] is in DPOTrainerParityTests.
final class DPOLossTests: XCTestCase {
    func values(_ B: Int, seed: UInt64, spread: Double) -> DPOPairValues {
        var state = seed
        func next() -> Double {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Double(state >> 11) / Double(1 << 53) * 2 - 1
        }
        let nc = (0..<B).map { 3 + $0 % 5 }, nr = (0..<B).map { 2 + (3 * $0) % 7 }
        return DPOPairValues(policyChosen: nc.map { -Double($0) * 2 + spread * next() },
                             policyRejected: nr.map { -Double($0) * 2 + spread * next() },
                             referenceChosen: nc.map { -Double($0) * 2 + spread * next() },
                             referenceRejected: nr.map { -Double($0) * 2 + spread * next() },
                             chosenTokens: nc, rejectedTokens: nr,
                             chosenTokenLogProbabilitySum: -17.25, chosenTokenCount: nc.reduce(0, +))
    }

    func testValuesAtInitializationMatchTRL() throws {
        let expected: [DPOLossType: Double] = [
            .sigmoid: 0.693147, .robust: 0.693147, .sigmoidNorm: 0.693147, .hinge: 1, .ipo: 25, .exoPair: 2.761231,
            .ncaPair: 1.386294, .bcoPair: 1.386294, .sppoHard: 50, .apoZero: 1, .apoDown: 1,
        ]
        var v = values(3, seed: 1, spread: 0)
        v.referenceChosen = v.policyChosen
        v.referenceRejected = v.policyRejected
        for (type, value) in expected {
            // sigmoid is checked without smoothing: TRL 1.16 ignores ε there (Finch's cDPO would not).
            let c = try DPOLossConfiguration(types: [type], beta: 0.1, labelSmoothing: type == .sigmoid ? 0 : 1e-3)
            XCTAssertEqual(DPOLoss.evaluate(v, configuration: c).loss, value, accuracy: 5e-7, type.rawValue)
        }
        // Step 1 of every TRL sigmoid run: exactly ln 2 in Float32, and ∂L/∂π_w = −β/2 (§4.2).
        let r = DPOLoss.evaluate(v, configuration: try DPOLossConfiguration())
        XCTAssertEqual(Float(r.loss), 0.6931471824645996)
        for g in r.chosenGradient { XCTAssertEqual(g, -0.1 / 2 / 3, accuracy: 1e-15) }
    }

    /// Every loss's gradient against central differences, at several spreads (small and large
    /// log-ratios, where hinge is on both sides of its kink and σ saturates).
    func testGradientsMatchFiniteDifferences() throws {
        for type in DPOLossType.allCases {
            for (spread, seed) in [(0.5, UInt64(3)), (8.0, 4), (40.0, 5)] {
                let c = try DPOLossConfiguration(types: [type, .sigmoid], weights: [0.7, 0.3], beta: 0.1,
                                                 labelSmoothing: [.exoPair, .robust, .sigmoid].contains(type) ? 0.1 : 0)
                let v = values(4, seed: seed, spread: spread)
                let r = DPOLoss.evaluate(v, configuration: c)
                XCTAssertTrue(r.loss.isFinite, type.rawValue)
                let h = 1e-5
                for j in 0..<4 {
                    for chosen in [true, false] {
                        var plus = v, minus = v
                        if chosen { plus.policyChosen[j] += h; minus.policyChosen[j] -= h } else { plus.policyRejected[j] += h; minus.policyRejected[j] -= h }
                        let numeric = (DPOLoss.evaluate(plus, configuration: c).loss - DPOLoss.evaluate(minus, configuration: c).loss) / (2 * h)
                        let analytic = chosen ? r.chosenGradient[j] : r.rejectedGradient[j]
                        XCTAssertEqual(analytic, numeric, accuracy: 1e-7 + 1e-5 * abs(numeric),
                                       "\(type.rawValue) spread \(spread) pair \(j) \(chosen ? "chosen" : "rejected")")
                    }
                }
                // The reference gets no gradient, but moving it must change the loss (the loss reads it).
                if type != .sft {
                    var moved = v
                    moved.referenceChosen[0] += 0.5
                    XCTAssertNotEqual(DPOLoss.evaluate(moved, configuration: c).loss, r.loss, type.rawValue)
                }
            }
        }
    }

    /// `sft`: the mean negative log p of the chosen completion tokens over the micro-batch, its
    /// per-token gradient −w/N; combined as TRL does, Σ_k w_k·mean_j(loss_k).
    func testSFTAndWeightedCombination() throws {
        let v = values(2, seed: 9, spread: 1)
        let sigmoid = DPOLoss.evaluate(v, configuration: try DPOLossConfiguration(types: [.sigmoid])).loss
        let both = DPOLoss.evaluate(v, configuration: try DPOLossConfiguration(types: [.sigmoid, .sft], weights: [1, 0.5]))
        let n = Double(v.chosenTokenCount)
        XCTAssertEqual(both.loss, sigmoid + 0.5 * 17.25 / n, accuracy: 1e-12)
        XCTAssertEqual(both.chosenTokenGradient, -0.5 / n, accuracy: 1e-15)
        var rpo = try DPOLossConfiguration()
        rpo.addRPO(alpha: 0.5)
        XCTAssertEqual(DPOLoss.evaluate(v, configuration: rpo).loss, both.loss)
    }

    func testConfigurationErrorsNameTheKey() {
        XCTAssertThrowsError(try DPOLossConfiguration(types: [.exoPair])) { XCTAssertTrue("\($0)".hasPrefix("loss_type:"), "\($0)") }
        XCTAssertThrowsError(try DPOLossConfiguration(types: [.sigmoid, .sft], weights: [1])) { XCTAssertTrue("\($0)".hasPrefix("loss_weights:")) }
        XCTAssertThrowsError(try DPOLossConfiguration(beta: 0)) { XCTAssertTrue("\($0)".hasPrefix("beta:")) }
        XCTAssertThrowsError(try DPOLossConfiguration(labelSmoothing: 0.5)) { XCTAssertTrue("\($0)".hasPrefix("label_smoothing:")) }
        XCTAssertThrowsError(try DPOLossConfiguration(types: [])) { XCTAssertTrue("\($0)".hasPrefix("loss_type:")) }
    }

    func testMetricsFollowTRLDefinitions() {
        let v = DPOPairValues(policyChosen: [-3, -5], policyRejected: [-4, -2], referenceChosen: [-3.5, -5], referenceRejected: [-4, -1],
                              chosenTokens: [2, 3], rejectedTokens: [2, 2])
        let m = DPOMetrics(v, beta: 0.1, chosenLogitSum: 6, chosenLogitCount: 4, rejectedLogitSum: -1, rejectedLogitCount: 0)
        XCTAssertEqual(m.rewardsChosen, (0.05 + 0) / 2, accuracy: 1e-12)
        XCTAssertEqual(m.rewardsRejected, (0 - 0.1) / 2, accuracy: 1e-12)
        XCTAssertEqual(m.rewardsAccuracies, 1) // 0.05 > 0 and 0 > −0.1
        XCTAssertEqual(m.rewardsMargins, (0.05 + 0.1) / 2, accuracy: 1e-12)
        XCTAssertEqual(m.logpsChosen, -4)
        XCTAssertEqual(m.logpsRejected, -3)
        XCTAssertEqual(m.logitsChosen, 1.5)
        XCTAssertEqual(m.logitsRejected, 0, "no tokens: 0, as TRL reports")
        // Ties are not accurate (strict >): accuracy 0 at step 1.
        let tie = DPOMetrics(DPOPairValues(policyChosen: [-1], policyRejected: [-1], referenceChosen: [-1], referenceRejected: [-1],
                                           chosenTokens: [1], rejectedTokens: [1]), beta: 0.1, chosenLogitSum: 0, chosenLogitCount: 0,
                             rejectedLogitSum: 0, rejectedLogitCount: 0)
        XCTAssertEqual(tie.rewardsAccuracies, 0)
    }
}
