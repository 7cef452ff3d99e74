/// A dictionary key that compares strings by their exact Unicode scalars. Swift's `String`
/// equality is canonical equivalence, under which a vocabulary's distinct tokens `"έ"` (U+1F73)
/// and `"έ"` (U+03AD) would be the same key; tokenizers compare bytes, so Finch must too.
struct TokenKey: Hashable, Sendable {
    let string: String

    init(_ string: String) { self.string = string }

    static func == (a: TokenKey, b: TokenKey) -> Bool { a.string.utf8.elementsEqual(b.string.utf8) }

    func hash(into hasher: inout Hasher) {
        var copy = string
        copy.withUTF8 { hasher.combine(bytes: UnsafeRawBufferPointer($0)) }
    }
}

/// Token string → id, with exact (byte-wise) string matching.
typealias Vocabulary = [TokenKey: Int32]

extension Dictionary where Key == TokenKey {
    subscript(token token: String) -> Value? {
        get { self[TokenKey(token)] }
        set { self[TokenKey(token)] = newValue }
    }
}
