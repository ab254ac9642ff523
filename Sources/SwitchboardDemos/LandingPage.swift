import HTTPTypes
public import Switchboard

/// The default server's app until the chat lands: a small landing page at `/` and the WebSocket echo at `/echo`.
public enum LandingPage {
    /// The landing-page application: `GET /` answers HTML, anything else `404`.
    public static func makeApplication() -> some Application {
        var router = Router()
        router.get("/") { _ in
            Response(headers: [.contentType: "text/html; charset=utf-8"], body: .init(string: html))
        }
        router.get("/echo") { request in EchoEndpoint.upgrade(request) }
        let room = ChatRoom()
        router.get("/chat") { request in ChatEndpoint.upgrade(request, room: room) }
        return Builder {
            ContentLength()
            router
        }
    }

    static let html = """
        <!doctype html>
        <html lang="en">
        <head>
        <meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <title>Switchboard</title>
        <style>
          body { font: 16px/1.5 system-ui, sans-serif; max-width: 40rem; margin: 3rem auto; padding: 0 1rem; color: #222; }
          code { background: #f3f3f3; padding: 0 .25rem; border-radius: 3px; }
        </style>
        </head>
        <body>
        <h1>Switchboard</h1>
        <p>Real-time messaging for Swift servers. This server speaks HTTP/1.1 with Rack-style connection hijack.</p>
        <p>Try the seed's hijack demo: <code>swift run switchboard hijack-demo</code>, then
        <code>curl -i http://127.0.0.1:8080/hijack_res</code>.</p>
        </body>
        </html>

        """
}
