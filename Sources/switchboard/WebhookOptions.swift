import ArgumentParser
import NIOCore
import SwitchboardConfig
import SwitchboardWebhooks

/// Where the chat's events go, and which of the backend's hooks are asked (docs/WEBHOOKS.md).
struct WebhookOptions: ParsableArguments {
    @Option(
        name: .customLong("webhook-url"),
        help: """
            POST the chat's events (connect, disconnect, room_occupied, room_vacated, member_joined, member_left; \
            message if --webhook-events lists it) \
            to this http(s) URL, batched and signed; repeatable (env SWITCHBOARD_WEBHOOK_URLS, comma-separated). \
            Needs --webhook-secret.
            """
    )
    var webhookURLs: [String] = []

    @Option(
        help: """
            The key of each webhook's Switchboard-Signature (HMAC-SHA256), 16 characters or more \
            (env SWITCHBOARD_WEBHOOK_SECRET).
            """
    )
    var webhookSecret: String?

    @Option(
        help: """
            The events sent, comma-separated (env SWITCHBOARD_WEBHOOK_EVENTS; default all but message, which \
            sends every message said in a room).
            """
    )
    var webhookEvents: String?

    @Option(
        help: """
            Milliseconds room_vacated and member_left wait; a room or member back by then makes no event at all \
            (env SWITCHBOARD_WEBHOOK_DELAY; default 3000).
            """
    )
    var webhookDelay: Int?

    static let delaySetting = IntegerSetting("webhook-delay", defaultValue: 3000)

    @Option(
        help: """
            Ask the app's backend at this URL before a /ws socket opens: it authenticates the socket from its \
            cookie and headers and answers a user, a refusal or nothing (env SWITCHBOARD_HOOK_CONNECT).
            """
    )
    var hookConnect: String?

    @Option(help: "Ask the backend at this URL before each join; it allows or refuses (env SWITCHBOARD_HOOK_JOIN).")
    var hookJoin: String?

    @Option(
        help: """
            Ask the backend at this URL before each message goes out; it may reject or rewrite it (env \
            SWITCHBOARD_HOOK_SAY).
            """
    )
    var hookSay: String?

    @Option(help: "Milliseconds each hook call may take (env SWITCHBOARD_HOOK_TIMEOUT; default 1000).")
    var hookTimeout: Int?

    @Option(
        help: """
            When a hook fails or times out: closed refuses the socket, join or message, open lets it through \
            (env SWITCHBOARD_HOOK_FAILURE; default closed).
            """
    )
    var hookFailure: String?

    static let hookTimeoutSetting = IntegerSetting("hook-timeout", defaultValue: 1000)

    func validate() throws {
        for url in self.webhookURLs { try checkFlag("webhook-url", url) }
        try checkFlag("webhook-secret", self.webhookSecret)
        for name in (self.webhookEvents ?? "").split(separator: ",") { try checkFlag("webhook-events", name) }
        try Self.delaySetting.validate(self.webhookDelay)
        try checkFlag("hook-connect", self.hookConnect)
        try checkFlag("hook-join", self.hookJoin)
        try checkFlag("hook-say", self.hookSay)
        try Self.hookTimeoutSetting.validate(self.hookTimeout)
        try checkFlag("hook-failure", self.hookFailure)
    }

    /// The backend hooks' configuration (empty without a hook URL); a bad value from the environment or the file
    /// ends the process with a usage error.
    func hookConfiguration() -> BackendHookConfiguration {
        Self.hookTimeoutSetting.checkEnvironment(self.hookTimeout)
        func url(_ flag: String?, _ variable: String) -> WebhookURL? {
            guard let text = flag ?? configured(variable) else { return nil }
            guard let url = WebhookURL(text) else {
                exitWithUsageError("\(variable) must be an http:// or https:// URL, not \(text.debugDescription)")
            }
            return url
        }
        let failure = (self.hookFailure ?? configured("SWITCHBOARD_HOOK_FAILURE") ?? "closed").lowercased()
        guard ["closed", "open"].contains(failure) else {
            exitWithUsageError("SWITCHBOARD_HOOK_FAILURE must be closed or open, not \(failure.debugDescription)")
        }
        return BackendHookConfiguration(
            connect: url(self.hookConnect, "SWITCHBOARD_HOOK_CONNECT"),
            join: url(self.hookJoin, "SWITCHBOARD_HOOK_JOIN"),
            say: url(self.hookSay, "SWITCHBOARD_HOOK_SAY"),
            timeout: .milliseconds(Int64(Self.hookTimeoutSetting.resolve(self.hookTimeout))),
            failOpen: failure == "open",
            secret: self.webhookSecret ?? configured("SWITCHBOARD_WEBHOOK_SECRET"))
    }

    /// The webhooks' configuration, or `nil` without a URL; a bad value from the environment or the file ends the
    /// process with a usage error.
    func configuration() -> WebhookConfiguration? {
        Self.delaySetting.checkEnvironment(self.webhookDelay)
        let texts =
            self.webhookURLs.isEmpty
            ? (configured("SWITCHBOARD_WEBHOOK_URLS") ?? "").split(separator: ",").map(String.init) : self.webhookURLs
        guard !texts.isEmpty else { return nil }
        let urls = texts.map { text in
            guard let url = WebhookURL(text) else {
                exitWithUsageError("webhook URL must be http:// or https:// without user or fragment, not \(text)")
            }
            return url
        }
        guard let secret = self.webhookSecret ?? configured("SWITCHBOARD_WEBHOOK_SECRET"), secret.utf8.count >= 16
        else {
            exitWithUsageError("--webhook-url needs --webhook-secret (16 characters or more) to sign the webhooks")
        }
        var events = WebhookEvent.Name.defaults
        if let list = self.webhookEvents ?? configured("SWITCHBOARD_WEBHOOK_EVENTS") {
            events = Set(
                list.split(separator: ",").map { name in
                    guard let event = WebhookEvent.Name(rawValue: String(name)) else {
                        exitWithUsageError("SWITCHBOARD_WEBHOOK_EVENTS: unknown event \(name)")
                    }
                    return event
                })
        }
        return WebhookConfiguration(
            urls: urls, secret: secret, events: events,
            leaveDelay: .milliseconds(Int64(Self.delaySetting.resolve(self.webhookDelay))))
    }
}
