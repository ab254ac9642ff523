import FoundationEssentials
import HTTPTypes
package import Logging
import NIOCore
package import Switchboard
import SwitchboardAuth
import SwitchboardJSON
import SwitchboardLocks
package import SwitchboardRooms
package import SwitchboardTopics

/// The server API under `/api/v1` (docs/openapi.json): what an app's backend asks of the cluster.
///
/// Every request but `GET /api/v1/openapi.json` names a key (`Authorization: Bearer <secret>`): an `--api-key`,
/// scoped to operations and channel patterns, or a publish key or token (`publish` only). Every answer is JSON;
/// every error is `{"error":{"code","message"}}` with a stable code. Any node answers for the whole cluster:
/// history and presence live in Redis; `info`, `channels`, `disconnect` and `unsubscribe` ask every node through
/// every node's ``ClusterSurvey`` and say `partial` when some node did not answer in time.
///
/// `POST /publish/{channel}` (``publishRoute(_:)``) is a route of it too, on the same ``KeyRing``: a key has one
/// bucket, whichever endpoint it uses.
package struct ApiEndpoint: Application {
    /// The largest request body (a batch): 1 MiB.
    static let maxBodyBytes = 1024 * 1024
    /// The most commands in one batch.
    static let maxBatchCommands = 1000
    /// The most channels in a publish's `channels` (its `channel` may add one).
    static let maxChannelsPerPublish = 100

    let topics: Topics
    let log: any RoomLog
    let presence: any PresenceStore
    /// How the cluster questions reach every node; `nil` answers them 503.
    let survey: ClusterSurvey?
    let configuration: ApiConfiguration
    let counters: ChatCounters
    let logger: Logger
    let keys: KeyRing
    private var router: Router

    /// - Parameters:
    ///   - topics: The fan-out engine publishes go to.
    ///   - log: Room history, for `history`.
    ///   - presence: Room members, for `presence`.
    ///   - survey: How `info`, `channels`, `disconnect` and `unsubscribe` reach every node.
    package init(
        configuration: ApiConfiguration, topics: Topics, log: any RoomLog, presence: any PresenceStore,
        survey: ClusterSurvey?, counters: ChatCounters, logger: Logger
    ) {
        self.topics = topics
        self.log = log
        self.presence = presence
        self.survey = survey
        self.configuration = configuration
        self.counters = counters
        self.logger = logger
        self.keys = KeyRing(configuration, logger: logger)
        self.router = Router()
        self.router = self.makeRoutes()
    }

    /// The routes, with the server's full paths.
    private func makeRoutes() -> Router {
        var router = Router()
        router.get("/api/v1/openapi.json") { _ in
            Response(
                headers: [.contentType: "application/json"],
                body: .init(string: String(decoding: PackageResources.openapi_json, as: UTF8.self)))
        }
        router.post("/api/v1/publish") { request in try await self.publish(request) }
        router.post("/api/v1/batch") { request in try await self.batch(request) }
        router.get("/api/v1/rooms/:room/history") { request in try await self.history(request) }
        router.get("/api/v1/rooms/:room/presence") { request in try await self.presence(request) }
        router.get("/api/v1/channels") { request in try await self.channels(request) }
        router.get("/api/v1/info") { request in try await self.info(request) }
        router.post("/api/v1/users/:user/disconnect") { request in try await self.disconnect(request) }
        router.post("/api/v1/users/:user/unsubscribe") { request in try await self.unsubscribe(request) }
        return router
    }

    /// The API's route for `request`, found once: its pattern is the metrics' label.
    package func match(_ request: Request) -> Router.Match { self.router.match(request) }

    package func respond(to request: Request) async throws -> Response {
        try await self.respond(self.match(request))
    }

    /// Answers a request the API's router matched: every answer JSON, the router's own 404 and 405 too.
    package func respond(_ match: Router.Match) async throws -> Response {
        do {
            let response = try await match.respond()
            // The router's own 404 and 405 come as text: the API answers JSON.
            guard response.status.kind != .successful, response.headers[.contentType] != "application/json" else {
                return response
            }
            var error = ApiError(HTTPError(response.status))
            if let allow = response.headers[.allow] { error.headers[.allow] = allow }
            return error.response
        } catch let error as ApiError {
            return error.response
        } catch let error as HTTPError {
            return ApiError(error).response
        } catch let error as any HTTPResponseConvertible {
            // A body too large or too slow, say: the framework's status, the API's JSON.
            let status = error.response.status
            return ApiError(HTTPError(status, "\(error)")).response
        }
    }

    // MARK: Keys

    /// The key `request` names, checked for `operation` and its rate.
    func authorize(_ request: Request, for operation: ApiOperation) throws -> ApiKey {
        guard !self.keys.keys.isEmpty else {
            throw ApiError(
                .notFound, "api_off", "the server API is off: start the server with --api-key (or a publish key)")
        }
        switch self.keys.check(request.bearerToken, from: request.remoteAddress?.ipAddress) {
        case .unknown:
            throw ApiError(
                .unauthorized, "unauthorized", "a valid Authorization: Bearer <key> is required",
                headers: [.wwwAuthenticate: "Bearer"])
        case .throttled(let seconds):
            self.counters.count(.rateLimited)
            throw ApiError(
                .tooManyRequests, "rate_limited", "too many wrong keys from your address; try again later",
                headers: [.retryAfter: String(seconds)])
        case .overRate(let key, let seconds):
            self.counters.count(.rateLimited)
            throw ApiError(
                .tooManyRequests, "rate_limited", "the key \(key.name) is over its rate (\(key.rate))",
                headers: [.retryAfter: String(seconds)])
        case .accepted(let key):
            guard key.operations.contains(operation) else {
                throw ApiError(.forbidden, "forbidden", "the key \(key.name) may not \(operation.rawValue)")
            }
            return key
        }
    }

    // MARK: Bodies

    /// The request's JSON body as `Body`; a clear 400 when it is not.
    func decode<Body: Decodable>(_ type: Body.Type, from request: Request, emptyAs empty: Body? = nil) async throws
        -> Body
    {
        let bytes = try await request.body.collect(upTo: Self.maxBodyBytes)
        if bytes.readableBytes == 0, let empty { return empty }
        do {
            return try JSONDecoder().decode(Body.self, from: Data(bytes.readableBytesView))
        } catch let error as DecodingError {
            throw ApiError(.badRequest, "invalid_json", Self.describe(error))
        } catch {
            throw ApiError(.badRequest, "invalid_json", "the body is not JSON")
        }
    }

    /// The request's body as one checked JSON text; a clear 400 when it is not.
    func readJSON(from request: Request) async throws -> JSONText {
        let bytes = try await request.body.collect(upTo: Self.maxBodyBytes)
        do {
            return try JSONText(Array(bytes.readableBytesView))
        } catch {
            throw ApiError(.badRequest, "invalid_json", "the body is not JSON: \(error)")
        }
    }

    /// A decoding error in a sentence that names the field.
    private static func describe(_ error: DecodingError) -> String {
        func path(_ context: DecodingError.Context) -> String {
            let names = context.codingPath.map { $0.intValue.map { "[\($0)]" } ?? ".\($0.stringValue)" }.joined()
            return names.isEmpty ? "the body" : String(names.drop { $0 == "." })
        }
        switch error {
        case .keyNotFound(let key, let context):
            let parent = path(context)
            return "\(parent == "the body" ? "" : parent + ".")\(key.stringValue) is missing"
        case .typeMismatch(_, let context), .valueNotFound(_, let context):
            return "\(path(context)) has the wrong type"
        case .dataCorrupted(let context):
            return context.codingPath.isEmpty ? "the body is not JSON" : "\(path(context)) is not valid"
        @unknown default:
            return "the body does not match the schema"
        }
    }
}
