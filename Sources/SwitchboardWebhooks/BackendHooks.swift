import FoundationEssentials
package import Logging
public import NIOCore
import NIOHTTP1
import SwitchboardAuth
public import SwitchboardHTTPClient
package import SwitchboardRooms

/// The backend's hook URLs and what happens when a hook cannot be asked.
public struct BackendHookConfiguration: Sendable {
    public var connect: OutboundURL?
    public var join: OutboundURL?
    public var say: OutboundURL?
    /// The deadline of each hook call.
    public var timeout: TimeAmount
    /// When the backend does not answer in time or answers nonsense: let the socket, join or message through
    /// (`true`), or refuse it (`false`, the default: a moderation or login backend that is down does not wave
    /// everything through).
    public var failOpen: Bool
    /// Signs each call like a webhook (`Switchboard-Signature`), if set.
    public var secret: String?

    public init(
        connect: OutboundURL? = nil, join: OutboundURL? = nil, say: OutboundURL? = nil,
        timeout: TimeAmount = .seconds(1), failOpen: Bool = false, secret: String? = nil
    ) {
        self.connect = connect
        self.join = join
        self.say = say
        self.timeout = timeout
        self.failOpen = failOpen
        self.secret = secret
    }

    public var isEmpty: Bool { self.connect == nil && self.join == nil && self.say == nil }
}

/// The chat's hooks, answered by the app's backend over HTTP (docs/WEBHOOKS.md, "Backend hooks").
package struct BackendHooks: Sendable {
    private struct ConnectAnswer: Decodable {
        var user: String?
        var name: String?
        var rooms: [String]?
        var refuse: String?
    }

    private struct JoinAnswer: Decodable {
        var allow: Bool?
        var reason: String?
    }

    private struct SayAnswer: Decodable {
        var text: String?
        var reject: String?
    }

    let configuration: BackendHookConfiguration
    let client: HTTPClient
    let logger: Logger

    /// - Parameter client: The node's HTTP client: a keep-alive pool per backend host, its calls in flight capped.
    package init(configuration: BackendHookConfiguration, client: HTTPClient, logger: Logger) {
        self.configuration = configuration
        self.client = client
        self.logger = logger
    }

    /// The hooks for ``ChatConfiguration/hooks``.
    package var chatHooks: ChatHooks {
        var hooks = ChatHooks()
        if let url = self.configuration.connect {
            hooks.connect = { request in await self.connect(request, url: url) }
        }
        if let url = self.configuration.join {
            hooks.join = { member, room in await self.join(member, room: room, url: url) }
        }
        if let url = self.configuration.say {
            hooks.say = { member, room, text in await self.say(member, room: room, text: text, url: url) }
        }
        return hooks
    }

    private func connect(_ request: ChatHooks.ConnectRequest, url: OutboundURL) async -> ChatHooks.ConnectDecision {
        var body: [String: JSONField] = ["event": .string("connect"), "headers": .object(request.headers)]
        if let client = request.client { body["client"] = .string(client) }
        guard let answer = await self.ask(url, body, as: ConnectAnswer.self) else {
            return self.configuration.failOpen ? .accept(nil) : .refuse("the login service is unavailable")
        }
        if let reason = answer.refuse { return .refuse(reason) }
        guard let user = answer.user else { return .accept(nil) }
        guard IdentityNames.isValidUserID(user), let name = DisplayName.normalized(answer.name ?? user) else {
            self.logger.warning("The connect hook answered an invalid user or name", metadata: ["url": "\(url)"])
            return self.configuration.failOpen ? .accept(nil) : .refuse("the login service answered nonsense")
        }
        let rooms = (answer.rooms ?? []).compactMap(ChannelPattern.init)
        return .accept(Identity(userID: user, name: name, rooms: rooms))
    }

    private func join(_ member: ChatHooks.Member, room: String, url: OutboundURL) async -> ChatHooks.JoinDecision {
        var body = Self.fields(of: member)
        body["event"] = .string("join")
        body["room"] = .string(room)
        guard let answer = await self.ask(url, body, as: JoinAnswer.self), let allow = answer.allow else {
            return self.configuration.failOpen ? .allow : .refuse("the room's gatekeeper is unavailable; try again")
        }
        return allow ? .allow : .refuse(answer.reason ?? "the app does not let you into \(room)")
    }

    private func say(
        _ member: ChatHooks.Member, room: String, text: String, url: OutboundURL
    ) async -> ChatHooks.SayDecision {
        var body = Self.fields(of: member)
        body["event"] = .string("say")
        body["room"] = .string(room)
        body["text"] = .string(text)
        guard let answer = await self.ask(url, body, as: SayAnswer.self) else {
            return self.configuration.failOpen ? .send(text) : .reject("moderation is unavailable; try again")
        }
        if let reason = answer.reject { return .reject(reason) }
        return .send(answer.text ?? text)
    }

    private static func fields(of member: ChatHooks.Member) -> [String: JSONField] {
        var fields: [String: JSONField] = ["socket": .string(member.socket), "nick": .string(member.nick)]
        if let user = member.user { fields["user"] = .string(user) }
        return fields
    }

    /// POSTs `body` and decodes a 200's JSON; `nil` (logged) for anything else.
    private func ask<Answer: Decodable>(
        _ url: OutboundURL, _ body: [String: JSONField], as type: Answer.Type
    ) async -> Answer? {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let data = (try? encoder.encode(body)) ?? Data()
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: "application/json")
        headers.add(name: "User-Agent", value: "Switchboard-Hooks")
        if let secret = self.configuration.secret {
            headers.add(
                name: "Switchboard-Signature",
                value: WebhookDispatcher.signature(data, time: WebhookEvent.now(), secret: secret))
        }
        do {
            let response = try await self.client.send(
                .POST, url, headers: headers, body: ByteBuffer(bytes: data), deadline: self.configuration.timeout)
            guard response.status == 200 else { throw HTTPClientError("HTTP status \(response.status)") }
            return try JSONDecoder().decode(Answer.self, from: Data(response.body.readableBytesView))
        } catch {
            self.logger.warning(
                "A backend hook failed",
                metadata: [
                    "url": "\(url)", "error": "\(error)", "then": "\(self.configuration.failOpen ? "open" : "closed")",
                ])
            return nil
        }
    }
}

/// A hook request's JSON fields: strings and a string map.
enum JSONField: Encodable {
    case string(String)
    case object([String: String])

    func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .string(let value): try container.encode(value)
        case .object(let value): try container.encode(value)
        }
    }
}
