import Dispatch
import FinchCore
import Foundation
import XCTest

final class ThreadPoolTests: XCTestCase {
    /// Every index is visited exactly once, chunks are fixed by (count, grain, threads).
    func testParallelForCoversEveryIndexOnce() {
        for threads in [1, 2, 3] {
            let pool = ThreadPool(threads: threads)
            for count in [1, 2, 7, 100, 1001] {
                for grain in [1, 5, 64] {
                    let hits = UnsafeMutableBufferPointer<Int>.allocate(capacity: count)
                    hits.initialize(repeating: 0)
                    defer { hits.deallocate() }
                    let shared = SharedInts(hits.baseAddress!)
                    pool.parallelFor(count, grain: grain) { range in
                        for i in range { shared.pointer[i] += 1 }
                    }
                    XCTAssertEqual(Array(hits), [Int](repeating: 1, count: count), "threads \(threads) count \(count) grain \(grain)")
                }
            }
        }
    }

    /// Regression test for a lost wake-up: the workers go to sleep after ≈200 µs idle, and a job
    /// submitted while a worker is falling asleep must still reach it. Gaps around the sleep
    /// threshold make the race likely; a watchdog turns a hang into a failure. (The hang this guards
    /// against — x86 letting the worker's "asleep" store pass its load of the job counter — was seen
    /// once in a decode run; on these cores its window is a few nanoseconds and 30,000 rounds of
    /// this test did not hit it with the old code, so the fix rests on the memory-model argument in
    /// `WorkerGroup.loop`; this test still catches any lost wake-up the handshake logic allows.)
    func testWakeUpsAreNeverLostAroundTheSleepThreshold() {
        let finished = DispatchSemaphore(value: 0)
        let failures = SharedInts(UnsafeMutablePointer<Int>.allocate(capacity: 1))
        failures.pointer.pointee = 0
        Thread.detachNewThread {
            let pool = ThreadPool(threads: 2)
            var rng = SystemRandomNumberGenerator()
            for _ in 0..<3000 {
                let sums = UnsafeMutablePointer<Int>.allocate(capacity: 2)
                sums.initialize(repeating: 0, count: 2)
                let shared = SharedInts(sums)
                pool.parallelFor(2) { range in for i in range { shared.pointer[i] = i + 1 } }
                if sums[0] != 1 || sums[1] != 2 { failures.pointer.pointee += 1 }
                sums.deallocate()
                usleep(UInt32.random(in: 150...260, using: &rng))
            }
            finished.signal()
        }
        XCTAssertEqual(finished.wait(timeout: .now() + 120), .success, "ThreadPool hung: a wake-up was lost")
        XCTAssertEqual(failures.pointer.pointee, 0)
    }
}

private struct SharedInts: @unchecked Sendable {
    let pointer: UnsafeMutablePointer<Int>
    init(_ pointer: UnsafeMutablePointer<Int>) { self.pointer = pointer }
}
