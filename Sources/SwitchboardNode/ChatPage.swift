import HTTPTypes
import Switchboard

/// The chat page: plain HTML, CSS and JavaScript, files in `Page/` compiled into the executable as resources (no CDN,
/// no build step).
///
/// It speaks the rooms protocol at `/ws` (docs/PROTOCOL.md): rooms as tabs, history on join, and after a dropped
/// connection it rejoins every room with the id of the last message it showed, so nothing sent meanwhile is lost
/// on screen. Every message is rendered with `textContent`, never parsed as HTML (the seed inserts raw HTML, an XSS
/// hole).
enum ChatPage {
    static func response(_ text: String, type: String) -> Response {
        var headers: HTTPFields = [.contentType: type, .cacheControl: "no-cache"]
        for (name, value) in Self.securityHeaders { headers[name] = value }
        return Response(headers: headers, body: .init(string: text))
    }

    /// No inline script or style, nothing from elsewhere, no framing (clickjacking), no MIME sniffing, no referrer.
    /// `connect-src 'self'` covers the page's own `ws:`/`wss:` origin (CSP level 3).
    static let securityHeaders: [(HTTPField.Name, String)] = [
        (
            HTTPField.Name("Content-Security-Policy")!,
            "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; "
                + "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
        ),
        (HTTPField.Name("X-Content-Type-Options")!, "nosniff"),
        (HTTPField.Name("X-Frame-Options")!, "DENY"),
        (HTTPField.Name("Referrer-Policy")!, "no-referrer"),
    ]

    /// `Page/index.html`.
    static let html = String(decoding: PackageResources.index_html, as: UTF8.self)
    /// `Page/app.css`.
    static let style = String(decoding: PackageResources.app_css, as: UTF8.self)
    /// `Page/app.js`.
    static let script = String(decoding: PackageResources.app_js, as: UTF8.self)
}
