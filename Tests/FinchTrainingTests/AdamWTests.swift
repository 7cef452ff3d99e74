import FinchCore
import FinchTraining
import Foundation
import XCTest

/// AdamW edge cases and its formula against a Double re-derivation from the paper's update (not
/// from the Float32 code): the bit-level agreement with torch is TrainerReplayTests' job.
final class AdamWTests: XCTestCase {
    /// One step of the textbook update in Double (trl-dpo.md §7.2).
    static func referenceStep(theta: inout [Double], m: inout [Double], v: inout [Double], g: [Double], k: Int,
                              lr: Double, wd: Double, beta1: Double, beta2: Double, eps: Double) {
        for i in theta.indices {
            theta[i] *= 1 - lr * wd
            m[i] = beta1 * m[i] + (1 - beta1) * g[i]
            v[i] = beta2 * v[i] + (1 - beta2) * g[i] * g[i]
            let mHat = m[i] / (1 - pow(beta1, Double(k)))
            theta[i] -= lr * mHat / (v[i].squareRoot() / (1 - pow(beta2, Double(k))).squareRoot() + eps)
        }
    }

    func testFollowsTheAdamWUpdateOverSeveralSteps() throws {
        for (beta1, wd) in [(0.9, 0.1), (0.3, 0.0)] {  // β1 < ½ takes torch lerp's other branch
            let n = 37  // 32-element body + 5-element tail
            let arena = try ParameterArena([ParameterSpec(name: "w", shape: [n], appliesWeightDecay: true)])
            var optimizer = AdamW(beta1: beta1, beta2: 0.99, epsilon: 1e-6, weightDecay: wd)
            var theta = (0..<n).map { sin(Double($0)) }, m = [Double](repeating: 0, count: n), v = m
            _ = arena.values.update(fromContentsOf: theta.map(Float.init))
            theta = arena.values.prefix(n).map(Double.init)
            for k in 1...6 {
                let g = (0..<n).map { Float(cos(Double($0 * k)) * pow(10, Double($0 % 5) - 3)) }
                for i in 0..<n { arena.gradients[i] = g[i] }
                let lr = 1e-2 / Double(k)
                optimizer.step(arena, learningRate: lr)
                Self.referenceStep(theta: &theta, m: &m, v: &v, g: g.map(Double.init), k: k, lr: lr, wd: wd,
                                   beta1: beta1, beta2: 0.99, eps: 1e-6)
            }
            for i in 0..<n {
                XCTAssertEqual(Double(arena.values[i]), theta[i], accuracy: 2e-6 * max(1, abs(theta[i])), "β1 \(beta1) θ[\(i)]")
                // m can be a small difference of larger gradients: relative to the gradient scale.
                let gradientScale = pow(10, Double(i % 5) - 3)
                XCTAssertEqual(Double(arena.firstMoments[i]), m[i], accuracy: 1e-6 * gradientScale, "m[\(i)]")
                XCTAssertEqual(Double(arena.secondMoments[i]), v[i], accuracy: 1e-5 * abs(v[i]) + 1e-18, "v[\(i)]")
            }
            XCTAssertEqual(optimizer.stepCount, 6)
        }
    }

    func testZeroGradientsOnlyDecay() throws {
        let arena = try ParameterArena([ParameterSpec(name: "w", shape: [9], appliesWeightDecay: true),
                                        ParameterSpec(name: "b", shape: [3], appliesWeightDecay: false)])
        for i in 0..<arena.floatsPerBuffer { arena.values[i] = Float(i) - 7.5 }
        let before = Array(arena.values)
        var optimizer = AdamW(weightDecay: 0.1)
        optimizer.step(arena, learningRate: 1e-3)
        let factor = Float(1 - 1e-3 * 0.1)
        for slice in arena.slices {
            for i in slice.range {
                XCTAssertEqual(arena.values[i], slice.appliesWeightDecay ? before[i] * factor : before[i], "\(slice.name)[\(i)]")
                XCTAssertEqual(arena.firstMoments[i], 0)
                XCTAssertEqual(arena.secondMoments[i], 0)
            }
        }
        XCTAssertEqual(arena.values[9], before[9], "padding is never touched")
    }

    func testLearningRateZeroLeavesValuesButMovesMoments() throws {
        let arena = try ParameterArena([ParameterSpec(name: "w", shape: [4], appliesWeightDecay: true)])
        for i in 0..<4 { arena.values[i] = Float(i + 1); arena.gradients[i] = 0.5 }
        var optimizer = AdamW(weightDecay: 0.1)
        optimizer.step(arena, learningRate: 0)  // the first step under warmup
        XCTAssertEqual(Array(arena.values.prefix(4)), [1, 2, 3, 4])
        XCTAssertEqual(arena.firstMoments[0], Float(0.1) * 0.5, accuracy: 1e-9)
        XCTAssertGreaterThan(arena.secondMoments[0], 0)
    }

    func testResultDoesNotDependOnTheThreadCount() throws {
        func run(_ pool: ThreadPool) throws -> [Float] {
            let arena = try ParameterArena([ParameterSpec(name: "big", shape: [40_003]), ParameterSpec(name: "small", shape: [5])])
            for i in 0..<arena.floatsPerBuffer { arena.values[i] = Float(i % 97) * 0.01; arena.gradients[i] = Float(i % 13) - 6 }
            var optimizer = AdamW(weightDecay: 0.01)
            for _ in 0..<3 { optimizer.step(arena, learningRate: 1e-3, pool: pool) }
            return Array(arena.values)
        }
        XCTAssertEqual(try run(.serial), try run(ThreadPool(threads: 2)))
    }
}
