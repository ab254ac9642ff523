import ArgumentParser
import NIOCore
import SwitchboardConfig
import SwitchboardWebhooks

/// Where the chat's events go (docs/WEBHOOKS.md).
struct WebhookOptions: ParsableArguments {
    @Option(
        name: .customLong("webhook-url"),
        help: """
            POST the chat's events (connect, disconnect, room_occupied, room_vacated, member_joined, member_left) \
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
            The events sent, comma-separated (env SWITCHBOARD_WEBHOOK_EVENTS; default all of them).
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

    func validate() throws {
        for url in self.webhookURLs { try checkFlag("webhook-url", url) }
        try checkFlag("webhook-secret", self.webhookSecret)
        for name in (self.webhookEvents ?? "").split(separator: ",") { try checkFlag("webhook-events", name) }
        try Self.delaySetting.validate(self.webhookDelay)
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
        var events = Set(WebhookEvent.Name.allCases)
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
