import Foundation

/// A line chart of metrics over training steps as a self-contained inline SVG: axes with nice
/// ticks, one polyline per series (training solid, evaluation dashed with markers), a legend,
/// and a hover title on every point. Non-finite values leave a gap; a lone point is drawn as a
/// marker; a constant series gets a range around its value; a chart with no finite point says
/// "no data".
public struct SVGLineChart: Sendable {
    /// One line of the chart.
    public struct Series: Sendable {
        public var name: String
        public var points: [(x: Double, y: Double)]
        /// A CSS colour.
        public var color: String
        /// Dashed line with markers (evaluation points are few and far between).
        public var dashed: Bool

        public init(name: String, points: [(x: Double, y: Double)], color: String, dashed: Bool = false) {
            self.name = name
            self.points = points
            self.color = color
            self.dashed = dashed
        }
    }

    /// The heading drawn above the plot.
    public var title: String
    /// The lines, drawn in order (later ones on top).
    public var series: [Series]
    public var xLabel = "step"
    public var width = 560.0
    public var height = 300.0
    /// Hover text of a value.
    public var format: @Sendable (Double) -> String = { String(format: "%.6g", $0) }

    public init(title: String, series: [Series]) {
        self.title = title
        self.series = series
    }

    /// Plot-area margins: left (y labels), right, top (title, legend), bottom (x labels, caption).
    static let margin = (left: 64.0, right: 18.0, top: 44.0, bottom: 42.0)
    /// At most this many hover targets per series (every k-th point, and the last).
    static let maximumHoverPoints = 400

    /// The SVG element.
    public func render() -> String {
        let m = Self.margin
        let plot = (x: m.left, y: m.top, w: width - m.left - m.right, h: height - m.top - m.bottom)
        var svg = "<svg class=\"chart\" viewBox=\"0 0 \(n(width)) \(n(height))\" role=\"img\" "
            + "aria-label=\"\(HTML.escape(title))\">"
        svg += "<title>\(HTML.escape(title))</title>"
        svg += "<rect x=\"0\" y=\"0\" width=\"\(n(width))\" height=\"\(n(height))\" fill=\"#fff\"/>"
        svg += "<text x=\"\(n(m.left))\" y=\"18\" class=\"chart-title\">\(HTML.escape(title))</text>"
        svg += legend()

        let finite = series.flatMap { $0.points.filter { $0.x.isFinite && $0.y.isFinite } }
        guard let first = finite.first else {
            svg += "<rect x=\"\(n(plot.x))\" y=\"\(n(plot.y))\" width=\"\(n(plot.w))\" height=\"\(n(plot.h))\" class=\"frame\"/>"
            svg += "<text x=\"\(n(plot.x + plot.w / 2))\" y=\"\(n(plot.y + plot.h / 2))\" text-anchor=\"middle\" class=\"nodata\">no data</text>"
            return svg + "</svg>"
        }
        let (xMin, xMax, yMin, yMax) = finite.reduce((first.x, first.x, first.y, first.y)) {
            (min($0.0, $1.x), max($0.1, $1.x), min($0.2, $1.y), max($0.3, $1.y))
        }
        // Steps: from 0 (unless the run's records start late, as a resumed run's may) to the last one.
        let xScale = NiceScale(minimum: xMin >= 0 && xMin <= xMax / 2 ? 0 : xMin, maximum: xMax, count: 6,
                               integral: finite.allSatisfy { $0.x == $0.x.rounded() }, tight: true)
        let yScale = NiceScale(minimum: yMin, maximum: yMax, count: 5)
        func px(_ x: Double) -> Double { plot.x + (x - xScale.lower) / (xScale.upper - xScale.lower) * plot.w }
        func py(_ y: Double) -> Double { plot.y + plot.h - (y - yScale.lower) / (yScale.upper - yScale.lower) * plot.h }

        // Grid and tick labels.
        for t in yScale.ticks {
            let y = py(t)
            svg += "<line x1=\"\(n(plot.x))\" y1=\"\(n(y))\" x2=\"\(n(plot.x + plot.w))\" y2=\"\(n(y))\" class=\"grid\"/>"
            svg += "<text x=\"\(n(plot.x - 6))\" y=\"\(n(y + 4))\" text-anchor=\"end\" class=\"tick\">\(HTML.escape(yScale.label(t)))</text>"
        }
        for t in xScale.ticks {
            let x = px(t)
            svg += "<line x1=\"\(n(x))\" y1=\"\(n(plot.y + plot.h))\" x2=\"\(n(x))\" y2=\"\(n(plot.y + plot.h + 4))\" class=\"axis\"/>"
            svg += "<text x=\"\(n(x))\" y=\"\(n(plot.y + plot.h + 17))\" text-anchor=\"middle\" class=\"tick\">\(HTML.escape(xScale.label(t)))</text>"
        }
        svg += "<rect x=\"\(n(plot.x))\" y=\"\(n(plot.y))\" width=\"\(n(plot.w))\" height=\"\(n(plot.h))\" class=\"frame\"/>"
        svg += "<text x=\"\(n(plot.x + plot.w / 2))\" y=\"\(n(height - 6))\" text-anchor=\"middle\" class=\"caption\">\(HTML.escape(xLabel))</text>"

        // Lines: one polyline per run of finite points.
        for s in series {
            let dash = s.dashed ? " stroke-dasharray=\"5 3\"" : ""
            var segment: [(Double, Double)] = []
            func flush() {
                if segment.count > 1 {
                    svg += "<polyline fill=\"none\" stroke=\"\(HTML.escape(s.color))\" stroke-width=\"1.8\"\(dash) points=\""
                        + segment.map { "\(n(px($0.0))),\(n(py($0.1)))" }.joined(separator: " ") + "\"/>"
                } else if let p = segment.first {
                    // A point with no neighbour: a marker, or nothing would show.
                    svg += "<circle cx=\"\(n(px(p.0)))\" cy=\"\(n(py(p.1)))\" r=\"3\" fill=\"\(HTML.escape(s.color))\"/>"
                }
                segment = []
            }
            for p in s.points {
                if p.x.isFinite && p.y.isFinite { segment.append((p.x, p.y)) } else { flush() }
            }
            flush()
        }
        // Markers and hover targets.
        for s in series {
            let points = s.points.filter { $0.x.isFinite && $0.y.isFinite }
            let stride = max(1, (points.count + Self.maximumHoverPoints - 1) / Self.maximumHoverPoints)
            for (i, p) in points.enumerated() where i % stride == 0 || i == points.count - 1 {
                let marker = s.dashed || points.count <= 40
                let tip = "\(s.name) · \(xLabel) \(p.x == p.x.rounded() && abs(p.x) < 1e15 ? String(Int(p.x)) : format(p.x)): \(format(p.y))"
                svg += "<circle cx=\"\(n(px(p.x)))\" cy=\"\(n(py(p.y)))\" r=\"\(marker ? "2.6" : "5")\" "
                    + (marker ? "fill=\"\(HTML.escape(s.color))\"" : "fill=\"transparent\"")
                    + " class=\"pt\"><title>\(HTML.escape(tip))</title></circle>"
            }
        }
        return svg + "</svg>"
    }

    private func legend() -> String {
        var out = ""
        var x = width - Self.margin.right
        // Right-aligned, last series rightmost.
        for s in series.reversed() {
            let label = HTML.escape(s.name)
            let textWidth = Double(s.name.count) * 6.6
            x -= textWidth
            out += "<text x=\"\(n(x))\" y=\"34\" class=\"legend\">\(label)</text>"
            x -= 22
            out += "<line x1=\"\(n(x))\" y1=\"30\" x2=\"\(n(x + 16))\" y2=\"30\" stroke=\"\(HTML.escape(s.color))\" stroke-width=\"2\""
                + (s.dashed ? " stroke-dasharray=\"4 2\"" : "") + "/>"
            x -= 14
        }
        return out
    }

    /// A coordinate with two decimals at most.
    private func n(_ x: Double) -> String {
        let r = (x * 100).rounded() / 100
        return r == r.rounded() ? String(Int(r)) : String(r)
    }
}
