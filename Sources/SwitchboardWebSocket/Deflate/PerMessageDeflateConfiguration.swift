import Switchboard

/// How the server negotiates permessage-deflate (RFC 7692).
public struct PerMessageDeflateConfiguration: Sendable, Hashable {
    /// Reset the server's compressor after every message, even when the client did not ask. Costs some ratio, but
    /// lets a fan-out compress a message once for every socket (see ``PreparedMessage``).
    public var serverNoContextTakeover: Bool
    /// The largest window (8–15 bits) the server compresses with.
    public var serverMaxWindowBits: Int
    /// Messages smaller than this are sent uncompressed (RSV1 clear), which RFC 7692 allows per message.
    public var minimumSizeToCompress: Int
    /// The zlib compression level, 1 (fast) to 9 (small).
    public var compressionLevel: Int

    /// Creates a configuration.
    public init(
        serverNoContextTakeover: Bool = true,
        serverMaxWindowBits: Int = 15,
        minimumSizeToCompress: Int = 64,
        compressionLevel: Int = 6
    ) {
        self.serverNoContextTakeover = serverNoContextTakeover
        self.serverMaxWindowBits = min(max(serverMaxWindowBits, 9), 15)
        self.minimumSizeToCompress = minimumSizeToCompress
        self.compressionLevel = min(max(compressionLevel, 1), 9)
    }
}

/// The permessage-deflate parameters agreed for one connection.
struct NegotiatedDeflate: Sendable, Hashable {
    /// The server resets its compressor after each message.
    var serverNoContextTakeover: Bool
    /// The client resets its compressor after each message, so the server may reset its decompressor too.
    var clientNoContextTakeover: Bool
    /// The server's compression window in bits, or `nil` when the client asked for 8, which zlib cannot produce
    /// for raw deflate: then the server sends messages uncompressed.
    var serverWindowBits: Int?
    var minimumSizeToCompress: Int
    var compressionLevel: Int
    /// The `Sec-WebSocket-Extensions` response value.
    var responseHeader: String
}

/// Picks the first acceptable permessage-deflate offer of a `Sec-WebSocket-Extensions` header list.
enum PerMessageDeflateNegotiation {
    static func negotiate(offers headerValues: [String], configuration: PerMessageDeflateConfiguration)
        -> NegotiatedDeflate?
    {
        for offer in self.parse(headerValues) where offer.name == "permessage-deflate" {
            if let agreed = self.accept(offer.parameters, configuration: configuration) { return agreed }
        }
        return nil
    }

    /// One offered extension: a token and its parameters in order.
    struct Offer: Equatable {
        var name: String
        var parameters: [(name: String, value: String?)]

        static func == (lhs: Offer, rhs: Offer) -> Bool {
            lhs.name == rhs.name && lhs.parameters.elementsEqual(rhs.parameters) { $0 == $1 }
        }
    }

    /// Splits header values into offers: offers separated by commas, parameters by semicolons (RFC 6455 §9.1).
    static func parse(_ headerValues: [String]) -> [Offer] {
        var offers: [Offer] = []
        for value in headerValues {
            for element in value.split(separator: ",") {
                let parts = element.split(separator: ";").map { $0.trimmingHTTPWhitespace() }
                guard let name = parts.first, !name.isEmpty else { continue }
                let parameters = parts.dropFirst().map { part -> (String, String?) in
                    guard let equals = part.firstIndex(of: "=") else { return (part.lowercased(), nil) }
                    var value = part[part.index(after: equals)...].trimmingHTTPWhitespace()
                    if value.count >= 2, value.hasPrefix("\""), value.hasSuffix("\"") {
                        value = value.dropFirst().dropLast()
                    }
                    return (part[..<equals].trimmingHTTPWhitespace().lowercased(), String(value))
                }
                offers.append(Offer(name: name.lowercased(), parameters: parameters))
            }
        }
        return offers
    }

    private static func accept(
        _ parameters: [(name: String, value: String?)],
        configuration: PerMessageDeflateConfiguration
    ) -> NegotiatedDeflate? {
        var seen = Set<String>()
        var serverNoContextTakeover = configuration.serverNoContextTakeover
        var clientNoContextTakeover = false
        var requestedServerBits: Int?
        for (name, value) in parameters {
            guard seen.insert(name).inserted else { return nil }  // a parameter twice: decline the offer
            switch name {
            case "server_no_context_takeover":
                guard value == nil else { return nil }
                serverNoContextTakeover = true
            case "client_no_context_takeover":
                guard value == nil else { return nil }
                clientNoContextTakeover = true
            case "server_max_window_bits":
                guard let value, let bits = Int(value), (8...15).contains(bits), value.allSatisfy(\.isNumber) else {
                    return nil
                }
                requestedServerBits = bits
            case "client_max_window_bits":
                // We inflate with the largest window, so any client window works; only check the value.
                if let value {
                    guard let bits = Int(value), (8...15).contains(bits), value.allSatisfy(\.isNumber) else {
                        return nil
                    }
                }
            default:
                return nil
            }
        }
        var response = ["permessage-deflate"]
        if serverNoContextTakeover { response.append("server_no_context_takeover") }
        if clientNoContextTakeover { response.append("client_no_context_takeover") }
        var serverBits: Int? = configuration.serverMaxWindowBits
        if let requested = requestedServerBits {
            response.append("server_max_window_bits=\(requested)")
            serverBits = requested == 8 ? nil : min(requested, configuration.serverMaxWindowBits)
        } else if configuration.serverMaxWindowBits < 15 {
            response.append("server_max_window_bits=\(configuration.serverMaxWindowBits)")
        }
        return NegotiatedDeflate(
            serverNoContextTakeover: serverNoContextTakeover,
            clientNoContextTakeover: clientNoContextTakeover,
            serverWindowBits: serverBits,
            minimumSizeToCompress: configuration.minimumSizeToCompress,
            compressionLevel: configuration.compressionLevel,
            responseHeader: response.joined(separator: "; ")
        )
    }
}
