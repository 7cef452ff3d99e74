import Foundation

extension RoPE {
    /// Gradient of `apply`, in place: `dx` holds dL/d(rotated x) on entry and dL/dx on return.
    ///
    /// Each rotated pair is `(a, b) ↦ (a·cos θ − b·sin θ, b·cos θ + a·sin θ)`, an orthogonal map,
    /// so its Jacobian transpose is the rotation by −θ (`rotate_half` with `sin` negated); the
    /// dimensions past `rotaryDim` pass through unchanged, as in the forward. Shapes as `apply`:
    /// `dx: (T, heads, headDim)`, `positions: (T)` (the same positions the forward used, e.g.
    /// restarting at 0 for each sequence of a packed batch). Uses the forward's Float32 cos/sin
    /// table, so `backward(apply(x))` returns x up to Float32 rounding.
    public func backward(_ dx: UnsafeMutablePointer<Float>, tokens: Int, heads: Int, positions: UnsafePointer<Int>) {
        rotate(dx, tokens: tokens, heads: heads, positions: positions, sineSign: -1)
    }

    /// `backward` with the cos/sin rows of `fillTable`.
    public func backward(_ dx: UnsafeMutablePointer<Float>, tokens: Int, heads: Int, table: UnsafePointer<Float>) {
        rotate(dx, tokens: tokens, heads: heads, table: table, sineSign: -1)
    }
}
