import FoundationEssentials
import HTTPTypes
import Logging
import NIOCore
import Switchboard
import SwitchboardAuth
import SwitchboardJSON
import SwitchboardLocks
import SwitchboardRooms
import SwitchboardTopics

/// `POST /api/v1/publish` and `POST /api/v1/batch`.
extension ApiEndpoint {
    func publish(_ request: Request) async throws -> Response {
        let key = try self.authorize(request, for: .publish)
        let text = try await self.readJSON(from: request)
        let prepared = try self.prepare(try PublishRequest(text, at: text.root, path: ""), key: key)
        return Self.published(try await self.send(prepared, on: request.eventLoop))
    }

    func batch(_ request: Request) async throws -> Response {
        let key = try self.authorize(request, for: .publish)
        let text = try await self.readJSON(from: request)
        let commands = try JSONFields(text, at: text.root, path: "", known: ["commands"])
        guard let elements = try commands.array("commands") else {
            throw ApiError(.badRequest, "invalid_json", "commands is missing")
        }
        guard elements.count <= Self.maxBatchCommands else {
            throw ApiError(.badRequest, "too_many_commands", "a batch has at most \(Self.maxBatchCommands) commands")
        }
        // A malformed command refuses the whole batch (nothing is published); what depends on the key, the
        // channel's kind or the broker is answered per command below.
        var publishes: [PublishRequest] = []
        publishes.reserveCapacity(elements.count)
        for (index, element) in elements.enumerated() {
            let command = try JSONFields(text, at: element, path: "commands[\(index)]", known: ["publish"])
            guard let publish = try? command.required("publish") else {
                throw ApiError(.badRequest, "invalid_command", "commands[\(index)] is not {\"publish\": {...}}")
            }
            let request = try PublishRequest(text, at: publish, path: "commands[\(index)].publish")
            do {
                try Self.checkShape(request)
            } catch var error as ApiError {
                error.message = "commands[\(index)]: \(error.message)"
                throw error
            }
            publishes.append(request)
        }
        // Each command runs in order; one that fails has its error in its reply and the others still run.
        var replies: [BatchReply.Item] = []
        replies.reserveCapacity(publishes.count)
        for publish in publishes {
            do {
                let published = try await self.send(try self.prepare(publish, key: key), on: request.eventLoop)
                replies.append(.init(published: published))
            } catch let error as ApiError {
                replies.append(.init(error: error.body.error))
            }
        }
        return ApiJSON.response(BatchReply(replies: replies))
    }

    /// `{"published":N}`, written by hand: the publish path's answer, without an encoder.
    private static func published(_ count: Int) -> Response {
        Response(
            status: .ok, headers: [.contentType: "application/json", .cacheControl: "no-store"],
            body: .init(string: "{\"published\":\(count)}\n"))
    }

    /// What the schema says of a publish: one to ``maxChannelsPerPublish`` valid channel names, and a message.
    private static func checkShape(_ body: PublishRequest) throws {
        let channels = body.allChannels
        guard !channels.isEmpty else { throw ApiError.badRequest("name a channel or channels") }
        guard (body.channels?.count ?? 0) <= Self.maxChannelsPerPublish else {
            throw ApiError.badRequest("channels lists at most \(Self.maxChannelsPerPublish)")
        }
        for channel in channels where !ChannelName.isValid(channel) {
            throw ApiError(.badRequest, "invalid_channel", "a channel is 1 to 128 of A-Z a-z 0-9 - _ . :")
        }
        if body.isEmptyText { throw ApiError.badRequest("the message is empty") }
    }

    /// A publish's channels (checked against the key) and its message.
    private func prepare(_ body: PublishRequest, key: ApiKey) throws -> (channels: [String], message: ByteBuffer) {
        try Self.checkShape(body)
        let channels = body.allChannels
        for channel in channels {
            try Self.checkPublishable(channel)
            guard key.covers(channel) else {
                throw ApiError(.forbidden, "forbidden", "the key \(key.name) may not publish to \(channel)")
            }
        }
        let message = body.message
        guard message.readableBytes <= self.configuration.maxPublishSize else {
            throw ApiError(
                .contentTooLarge, "too_large", "a message is at most \(self.configuration.maxPublishSize) bytes")
        }
        return (Array(Set(channels)).sorted(), message)
    }

    /// Publishes to every channel, all at once (pipelined: one write to Redis, not a round trip per channel);
    /// the count of channels.
    private func send(
        _ prepared: (channels: [String], message: ByteBuffer), on eventLoop: (any EventLoop)?
    ) async throws -> Int {
        do {
            if let eventLoop, prepared.channels.count > 1 {
                let published = prepared.channels.map { channel in
                    let promise = eventLoop.makePromise(of: Void.self)
                    self.topics.publish(prepared.message, to: channel, promise: promise)
                    return promise.futureResult
                }
                for future in published { try await future.value() }
            } else {
                for channel in prepared.channels { try await self.topics.publish(prepared.message, to: channel) }
            }
        } catch {
            self.counters.count(.publishFailed)
            self.logger.warning("Publish failed", metadata: ["error": "\(error)"])
            throw ApiError(.serviceUnavailable, "unavailable", "the message broker is unavailable: \(error)")
        }
        return prepared.channels.count
    }

    /// Channel names a publish may use: valid, not a room's (rooms take messages through `/ws`, where they get ids
    /// and history) and not the nodes' own (`switchboard:`).
    static func checkPublishable(_ channel: String) throws {
        guard ChannelName.isValid(channel) else {
            throw ApiError(.badRequest, "invalid_channel", "a channel is 1 to 128 of A-Z a-z 0-9 - _ . :")
        }
        guard !channel.hasPrefix("room:") else {
            throw ApiError(
                .forbidden, "room_channel", "room channels take messages through /ws (they need ids and history)")
        }
        guard !ChannelName.isReserved(channel) else {
            throw ApiError(.forbidden, "reserved_channel", "switchboard: channels are the nodes' own")
        }
    }
}
