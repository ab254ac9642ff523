package import Switchboard
package import SwitchboardWebSocket

/// `GET /echo`: a WebSocket that echoes every text and binary message, for conformance runs (Autobahn) and
/// benchmarks. Messages up to 16 MiB, as Autobahn's section 9 sends.
package enum EchoEndpoint {
    /// The limits of `/echo`: 16 MiB frames and messages, 32 MiB queued for a slow reader.
    package static let configuration = WebSocketConfiguration(
        maxFrameSize: 16 * 1024 * 1024,
        maxMessageSize: 16 * 1024 * 1024,
        maxQueuedBytes: 32 * 1024 * 1024
    )

    /// Answers the handshake and echoes.
    package static func upgrade(_ request: Request) -> Response {
        WebSocket.upgrade(request, configuration: configuration) { socket in
            socket.onMessage { socket, message in
                try? socket.send(message)
            }
        }
    }
}
