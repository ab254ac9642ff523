public import NIOCore
package import SwitchboardHTTPClient
package import SwitchboardWebhooks

/// Where the chat's events go, and which of the backend's hooks are asked (docs/WEBHOOKS.md).
public struct WebhookSettings: Sendable {
    package var urls: [OutboundURL] = []
    public var secret: String?
    package var events = WebhookEvent.Name.defaults
    /// Milliseconds `room_vacated` and `member_left` wait for a return.
    public var delay = 3000
    package var hookConnect: OutboundURL?
    package var hookJoin: OutboundURL?
    package var hookSay: OutboundURL?
    /// Milliseconds each hook call may take.
    public var hookTimeout = 1000
    /// Let a socket, join or message through when its hook fails (`open`), or refuse it (`closed`, the default).
    public var hooksFailOpen = false

    public init() {}

    static let urls = Setting(
        "webhook-url", .list(separator: ","), variable: "SWITCHBOARD_WEBHOOK_URLS", defaultNote: "none",
        help: "POST the chat's events (connect, disconnect, room_occupied, room_vacated, member_joined, member_left; "
            + "message if --webhook-events lists it) to this http(s) URL, batched and signed; repeatable. Needs "
            + "--webhook-secret."
    ) { value in
        OutboundURL(value) == nil
            ? "each must be an http:// or https:// URL without user or fragment, not \(value.debugDescription)" : nil
    }
    static let secret = Setting(
        "webhook-secret", .text, secret: true,
        help: "The key of each webhook's Switchboard-Signature (HMAC-SHA256), 16 characters or more."
    ) { value in
        value.utf8.count < 16 ? "must have at least 16 characters" : nil
    }
    static let events = Setting(
        "webhook-events", .list(separator: ","), defaultNote: "all but message, which sends every message said",
        help: "The events sent, comma-separated."
    ) { value in
        WebhookEvent.Name(rawValue: value) == nil
            ? "each must be one of \(WebhookEvent.Name.allCases.map(\.rawValue).joined(separator: ", ")), not "
                + value.debugDescription : nil
    }
    static let delay = Setting(
        "webhook-delay", .integer(0...60_000, unit: " ms"), default: "3000",
        help: "Milliseconds room_vacated and member_left wait; a room or member back by then makes no event at all.")
    static let hookConnect = Setting(
        "hook-connect", .text,
        help: "Ask the app's backend at this URL before a /ws socket opens: it authenticates the socket from its "
            + "cookie and headers and answers a user, a refusal or nothing."
    ) { hookURLProblem($0) }
    static let hookJoin = Setting(
        "hook-join", .text, help: "Ask the backend at this URL before each join; it allows or refuses."
    ) { hookURLProblem($0) }
    static let hookSay = Setting(
        "hook-say", .text,
        help: "Ask the backend at this URL before each message goes out; it may reject or rewrite it."
    ) { hookURLProblem($0) }
    static let hookTimeout = Setting(
        "hook-timeout", .integer(1...60_000, unit: " ms"), default: "1000",
        help: "Milliseconds each hook call may take.")
    static let hookFailure = Setting(
        "hook-failure", .choice(["closed", "open"]), default: "closed",
        help: "When a hook fails or times out: closed refuses the socket, join or message, open lets it through.")

    static let settings = [urls, secret, events, delay, hookConnect, hookJoin, hookSay, hookTimeout, hookFailure]

    private static func hookURLProblem(_ value: String) -> String? {
        OutboundURL(value) == nil
            ? "must be an http:// or https:// URL without user or fragment, not \(value.debugDescription)" : nil
    }

    public init(_ parser: inout SettingsParser) {
        self.urls = parser.list(Self.urls, OutboundURL.init)
        self.secret = parser.text(Self.secret)
        if parser.source(of: Self.events) != nil {
            self.events = Set(parser.list(Self.events) { WebhookEvent.Name(rawValue: $0) })
        }
        self.delay = parser.integer(Self.delay) ?? self.delay
        self.hookConnect = parser.text(Self.hookConnect).flatMap(OutboundURL.init)
        self.hookJoin = parser.text(Self.hookJoin).flatMap(OutboundURL.init)
        self.hookSay = parser.text(Self.hookSay).flatMap(OutboundURL.init)
        self.hookTimeout = parser.integer(Self.hookTimeout) ?? self.hookTimeout
        self.hooksFailOpen = parser.text(Self.hookFailure)?.lowercased() == "open"
        if !self.urls.isEmpty, self.secret == nil {
            parser.report("webhook-url needs webhook-secret (the key that signs each webhook)")
        }
    }

    /// The webhooks' configuration, or `nil` without a URL.
    package var configuration: WebhookConfiguration? {
        guard !self.urls.isEmpty, let secret = self.secret else { return nil }
        return WebhookConfiguration(
            urls: self.urls, secret: secret, events: self.events, leaveDelay: .milliseconds(Int64(self.delay)))
    }

    /// The backend hooks' configuration (empty without a hook URL).
    package var hooks: BackendHookConfiguration {
        BackendHookConfiguration(
            connect: self.hookConnect, join: self.hookJoin, say: self.hookSay,
            timeout: .milliseconds(Int64(self.hookTimeout)), failOpen: self.hooksFailOpen, secret: self.secret)
    }

    /// How long leaves wait for a return before presence reports them.
    public var leaveDelay: TimeAmount { .milliseconds(Int64(self.delay)) }
}
