import Foundation

/// Token embedding lookup over a Float32 table and its gradient (`torch.nn.Embedding`).
///
/// The inference models read quantized tables through `LinearWeight.row`; this is the Float32
/// form a trainable table (full fine-tuning) uses.
public enum Embedding {
    /// `out[t] = table[tokenIDs[t]]`.
    ///
    /// Shapes: `table: (V, C)` row-major, `tokenIDs: (T)` each in `0..<V`, `out: (T, C)`.
    public static func forward(table: UnsafePointer<Float>, tokenIDs: UnsafePointer<Int>, tokens: Int,
                               vocabularySize: Int, channels: Int, into out: UnsafeMutablePointer<Float>) {
        for t in 0..<tokens {
            let id = tokenIDs[t]
            precondition(id >= 0 && id < vocabularySize, "Embedding: token id \(id) is outside 0..<\(vocabularySize)")
            (out + t * channels).update(from: table + id * channels, count: channels)
        }
    }

    /// Gradient of `forward`, accumulated: `tableGradient[tokenIDs[t]] += dy[t]` for each t.
    ///
    /// A scatter-add (PyTorch's `embedding_backward` without `padding_idx` or frequency scaling):
    /// a token that occurs several times receives the sum of its rows' gradients. Each element of
    /// `tableGradient` is summed in token order, t = 0, 1, …, whatever the pool (the pool splits
    /// the channels), so the result does not depend on the thread count.
    ///
    /// Shapes: `dy: (T, C)`, `tokenIDs: (T)` each in `0..<V`, `tableGradient: (V, C)`.
    public static func backward(_ dy: UnsafePointer<Float>, tokenIDs: UnsafePointer<Int>, tokens: Int,
                                vocabularySize: Int, channels: Int, tableGradient: UnsafeMutablePointer<Float>,
                                pool: ThreadPool = .serial) {
        for t in 0..<tokens {
            precondition(tokenIDs[t] >= 0 && tokenIDs[t] < vocabularySize,
                         "Embedding: token id \(tokenIDs[t]) is outside 0..<\(vocabularySize)")
        }
        pool.parallelFor(channels, grain: max(1, (1 << 15) / max(1, tokens))) { columns in
            for t in 0..<tokens {
                let source = dy + t * channels, target = tableGradient + tokenIDs[t] * channels
                for c in columns { target[c] += source[c] }
            }
        }
    }
}
