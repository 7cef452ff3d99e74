import Foundation

/// Axis ticks at "nice" values (1, 2 or 5 times a power of ten) covering a data range, and
/// their labels, for ``SVGLineChart``.
public struct NiceScale: Sendable, Equatable {
    /// The axis range: the first and last tick.
    public var lower: Double
    public var upper: Double
    /// The distance between ticks.
    public var step: Double

    /// About `count` ticks covering `[minimum, maximum]` (both finite). An empty range is
    /// widened first: by 10% of the value each side, or to [-1, 1] around zero. With `integral`
    /// (training steps), the tick step is at least 1.
    /// With `tight`, the range stays the data's (ticks at the nice values inside it), as for
    /// training steps, where an axis running past the last step would suggest missing data.
    public init(minimum: Double, maximum: Double, count: Int = 5, integral: Bool = false, tight: Bool = false) {
        var lo = Swift.min(minimum, maximum), hi = Swift.max(minimum, maximum)
        if hi - lo <= Swift.max(abs(hi), abs(lo)) * 1e-12 {
            let pad = lo == 0 ? 1 : abs(lo) * 0.1
            (lo, hi) = (lo - (integral ? Swift.max(1, pad.rounded(.up)) : pad), hi + (integral ? Swift.max(1, pad.rounded(.up)) : pad))
        }
        var step = Self.nice((hi - lo) / Double(Swift.max(1, count - 1)))
        if integral { step = Swift.max(1, step.rounded()) }
        // Floating error: a tick within a millionth of a step of the data counts as covering it.
        self.step = step
        if tight, hi > lo {
            (lower, upper) = (lo, hi)
            return
        }
        lower = Self.snap((lo / step + 1e-6).rounded(.down) * step)
        upper = Self.snap((hi / step - 1e-6).rounded(.up) * step)
        if upper <= lower { upper = lower + step }
    }

    /// The nearest of 1, 2, 5 × 10ᵏ to `x` (x > 0), as Heckbert's "Nice numbers for graph
    /// labels" (Graphics Gems, 1990) rounds.
    static func nice(_ x: Double) -> Double {
        guard x.isFinite, x > 0 else { return 1 }
        let base = pow(10, log10(x).rounded(.down))
        let m = x / base
        return (m < 1.5 ? 1 : m < 3 ? 2 : m < 7 ? 5 : 10) * base
    }

    /// `x` rounded to 12 significant digits: 3 × 0.1 is 0.3 again.
    static func snap(_ x: Double) -> Double { Double(String(format: "%.12g", x)) ?? x }

    /// The multiples of `step` from `lower` to `upper`.
    public var ticks: [Double] {
        let first = (lower / step - 1e-6).rounded(.up), last = (upper / step + 1e-6).rounded(.down)
        guard last >= first else { return [] }
        return (0...Int(last - first)).map { i in
            let v = Self.snap((first + Double(i)) * step)
            // -0 and rounding noise around zero are 0.
            return abs(v) < step * 1e-9 ? 0 : v
        }
    }

    /// A tick's label: fixed-point with just enough decimals for the step, or scientific
    /// notation for very small or very large values (`5e-6`, `1.2e+07`).
    public func label(_ value: Double) -> String {
        if value == 0 { return "0" }
        let magnitude = Swift.max(abs(lower), abs(upper))
        if step >= 1e-3, magnitude < 1e6 {
            let decimals = Swift.max(0, Int((-log10(step) - 1e-9).rounded(.up)))
            return String(format: "%.\(decimals)f", value)
        }
        return Self.scientific(value, significant: Swift.max(1, Int((log10(abs(value)) - log10(step) + 1e-9).rounded(.down)) + 1))
    }

    /// `1.5e-06` as `1.5e-6`.
    static func scientific(_ value: Double, significant: Int) -> String {
        var s = String(format: "%.\(Swift.min(17, Swift.max(1, significant)))g", value)
        s = s.replacingOccurrences(of: "e-0", with: "e-").replacingOccurrences(of: "e+0", with: "e+")
        return s
    }
}
