import HTTPTypes
import NIOCore
import Switchboard

/// The chat page: plain HTML, CSS and JavaScript, files in `Page/` compiled into the executable as resources (no CDN,
/// no build step).
///
/// It speaks the rooms protocol at `/ws` (docs/PROTOCOL.md): rooms as tabs, history on join, and after a dropped
/// connection it rejoins every room with the id of the last message it showed, so nothing sent meanwhile is lost
/// on screen. Every message is rendered with `textContent`, never parsed as HTML (the seed inserts raw HTML, an XSS
/// hole).
enum ChatPage {
    /// `Page/index.html`, built once: every request gets a copy-on-write copy of the same headers and bytes.
    static let index = Self.response(PackageResources.index_html, type: "text/html; charset=utf-8")
    /// `Page/app.js`.
    static let script = Self.response(PackageResources.app_js, type: "text/javascript; charset=utf-8")
    /// `Page/app.css`.
    static let style = Self.response(PackageResources.app_css, type: "text/css; charset=utf-8")

    private static func response(_ bytes: [UInt8], type: String) -> Response {
        var headers: HTTPFields = [.contentType: type, .cacheControl: "no-cache"]
        for (name, value) in Self.securityHeaders { headers[name] = value }
        // Set here, so that `ContentLength` finds it and never copies the shared fields to add it.
        headers[.contentLength] = String(bytes.count)
        return Response(headers: headers, body: .init(buffer: ByteBuffer(bytes: bytes)))
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
}
