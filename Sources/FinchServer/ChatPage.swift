/// The web chat page served at `/` (placeholder: the page's real HTML lives on the `page` branch).
public enum ChatPage {
    /// The whole page, with its styles and scripts inline (no external resource).
    public static let html: String = "<!doctype html><html><head><meta charset=\"utf-8\"><title>Finch</title></head><body><p>Finch chat page placeholder.</p></body></html>"
}
