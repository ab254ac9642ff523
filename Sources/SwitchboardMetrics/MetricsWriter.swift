import Prometheus
import SwitchboardRedis
import SwitchboardRooms
import SwitchboardServer
import SwitchboardTopics
import SwitchboardWebSocket
import SwitchboardWebhooks

/// One scrape's pass: sets each gauge, and adds to each counter what grew since the last scrape.
struct Writer {
    let registry: PrometheusCollectorRegistry
    /// What each counter showed, by name and labels.
    var shown: [String: Int]

    // MARK: Layers

    mutating func server(_ statistics: Server.Statistics) {
        self.gauge(
            "connections_http", "HTTP connections open now, WebSocket connections included.", [],
            statistics.openConnections)
        let refusals: [(String, Int)] = [
            ("connection_limit", statistics.refusedForConnectionLimit),
            ("address_limit", statistics.refusedForAddressLimit),
            ("address_rate", statistics.refusedForAddressRate),
            ("oversized_request", statistics.oversizedRequests),
        ]
        for (reason, count) in refusals { self.refusal(reason, count) }
        self.counter(
            "accept_failures", "accept() calls that failed for want of descriptors or memory.", [],
            statistics.acceptFailures)
        let timeouts: [(String, Int)] = [
            ("http_write", statistics.writeTimeouts),
            ("http_head_read", statistics.headReadTimeouts),
            ("http_body_read", statistics.bodyReadTimeouts),
        ]
        for (kind, count) in timeouts { self.timeout(kind, count) }
    }

    mutating func topics(_ topics: Topics) {
        let statistics = topics.statistics
        self.gauge("topics", "Topics with members on this node (rooms, channels, the chat).", [], statistics.topics)
        self.gauge("topic_members", "Memberships of topics on this node.", [], statistics.members)
        self.counter(
            "fanout_deliveries", "Messages handed to topic members by the fan-out.", [],
            statistics.deliveries)
        self.counter("fanout_delivered_bytes", "Wire bytes of the fan-out's deliveries.", [], statistics.deliveredBytes)
        self.gauge(
            "fanout_backlog_bytes", "Message bytes waiting in the event loops' mailboxes.", [],
            statistics.backlogBytes)
        self.counter(
            "fanout_gaps", "Gaps the broker reported (a lost Redis connection), once per topic.", [],
            statistics.gaps)
        self.dropped("backlog", statistics.droppedForBacklog)
        self.dropped("invalid_payload", statistics.droppedInvalid)
        self.dropped("before_attach", statistics.droppedBeforeAttach)
        var rooms = 0
        var roomMembers = 0
        for (topic, members) in topics.memberCounts() where topic.hasPrefix("room:") {
            rooms += 1
            roomMembers += members
        }
        self.gauge("rooms", "Rooms with members on this node.", [], rooms)
        self.gauge("room_members", "Sockets in rooms on this node (presence members, per socket).", [], roomMembers)
    }

    mutating func chat(_ chat: ChatCounters) {
        for endpoint in ChatCounters.Endpoint.allCases {
            self.sockets(chat.sockets(endpoint).snapshot, endpoint: endpoint.rawValue)
        }
        let counts = chat.snapshot
        let refusals: [(String, Int)] = [
            ("origin", counts.originRefusals),
            ("auth", counts.authRefusals),
            ("forbidden", counts.forbiddenJoins),
            ("rate_limit", counts.rateLimitRefusals),
            ("rooms_full", counts.roomsFullRefusals),
            ("invalid_request", counts.invalidRequests),
            ("room_quota", counts.roomQuotaRefusals),
            ("client_sockets", counts.clientSocketRefusals),
        ]
        for (reason, count) in refusals { self.refusal(reason, count) }
        self.counter(
            "refusal_closes", "Sockets dropped for going on after as many refused requests in a row as allowed.", [],
            counts.refusalClosures)
        self.counter(
            "presence_leaves_abandoned", "Presence leaves Redis did not take in time: never announced or reported.",
            [], counts.abandonedLeaves)
        self.timeout("join", counts.joinTimeouts)
        self.timeout("token_expiry", counts.tokenExpiries)
        self.dropped("join_overflow", counts.joinOverflows)
        self.counter(
            "publish_failures", "Messages that could not be published (the sender was told).", [],
            counts.publishFailures)
        self.counter(
            "history_evictions", "Rooms whose embedded history was dropped to stay within the limits.", [],
            counts.historyEvictions)
        for (key, count) in chat.requestCounts {
            self.counter(
                "http_requests", "HTTP requests answered, by route pattern and status.",
                [("route", key.route), ("status", String(key.status))], count)
        }
    }

    /// The command clients (one per shard), summed; connected only when all are.
    mutating func redis(_ clients: [RedisClient], state: (commands: Bool, subscriber: Bool)) {
        let help = "Whether the Redis connections are up (1, all of them) or not (0)."
        self.gauge("redis_connected", help, [("connection", "commands")], state.commands ? 1 : 0)
        self.gauge("redis_connected", help, [("connection", "subscriber")], state.subscriber ? 1 : 0)
        self.gauge(
            "redis_pending_commands", "Commands queued or waiting for Redis's reply.", [],
            clients.reduce(0) { $0 + $1.commandsPending })
        self.gauge(
            "redis_pending_bytes", "Bytes of commands queued or waiting for Redis's reply.", [],
            clients.reduce(0) { $0 + $1.bytesPending })
        let statistics = clients.map(\.statistics)
        self.counter(
            "redis_reconnects", "Command connections made after the first.", [],
            statistics.reduce(0) { $0 + $1.reconnects })
        self.timeout("redis_command", statistics.reduce(0) { $0 + $1.timeouts })
        self.refusal("redis_budget", statistics.reduce(0) { $0 + $1.refusedForBudget })
        self.refusal("redis_disconnected", statistics.reduce(0) { $0 + $1.failedWhileDisconnected })
    }

    mutating func process(_ process: ProcessStatistics) {
        // In whole microseconds, so the growth added at each scrape sums to exactly what the kernel reports.
        let micros = Int((process.cpuSeconds * 1e6).rounded())
        let grown = micros - self.shown["process_cpu_us", default: 0]
        if grown > 0 {
            self.registry.makeCounter(
                descriptor: .init(
                    metricName: "process_cpu_seconds", unitName: "total",
                    helpText: "User and system CPU time, in seconds.")
            ).increment(by: Double(grown) / 1e6)
        }
        self.shown["process_cpu_us"] = micros
        self.plainGauge("process_resident_memory_bytes", "Resident memory size.", Double(process.residentBytes))
        self.plainGauge("process_virtual_memory_bytes", "Virtual memory size.", Double(process.virtualBytes))
        self.plainGauge("process_open_fds", "Open file descriptors.", Double(process.openFileDescriptors))
        self.plainGauge("process_max_fds", "The open-file limit.", Double(process.maxFileDescriptors))
        self.plainGauge("process_start_time_seconds", "Start time, in seconds since the epoch.", process.startTime)
    }

    // MARK: Families with a fixed label set

    private mutating func sockets(_ snapshot: WebSocketCounters.Snapshot, endpoint: String) {
        let labels = [("endpoint", endpoint)]
        self.gauge("connections", "WebSocket connections open now, by endpoint.", labels, snapshot.open)
        let accepted = snapshot.open + snapshot.closesByCode.values.reduce(0, +)
        self.counter("handshakes_accepted", "WebSocket handshakes accepted, by endpoint.", labels, accepted)
        self.counter(
            "messages_received", "WebSocket messages received, by endpoint.", labels,
            snapshot.messagesReceived)
        self.counter(
            "received_bytes", "Payload bytes of the WebSocket messages received.", labels,
            snapshot.bytesReceived)
        self.counter(
            "messages_sent",
            "WebSocket messages sent by the app itself (replies, history; the fan-out's "
                + "deliveries are switchboard_fanout_deliveries_total), by endpoint.", labels, snapshot.messagesSent)
        self.counter("sent_bytes", "Payload bytes of the messages sent by the app itself.", labels, snapshot.bytesSent)
        for (code, count) in snapshot.closesByCode {
            self.counter(
                "websocket_closes", "WebSocket connections closed, by endpoint and close code.",
                labels + [("code", code.map { String($0) } ?? "other")], count)
        }
        self.dropped("slow_consumer", snapshot.messagesDroppedForSlowConsumers, endpoint: endpoint)
        self.counter(
            "slow_consumers_closed", "Sockets dropped for not reading (outbound queue over its cap).",
            labels, snapshot.slowConsumersClosed)
        self.counter(
            "protocol_violations", "Sockets failed for a protocol violation or a size limit.", labels,
            snapshot.protocolViolations)
        self.timeout("keepalive", snapshot.keepaliveTimeouts, endpoint: endpoint)
        self.timeout("idle", snapshot.idleTimeouts, endpoint: endpoint)
    }

    private mutating func refusal(_ reason: String, _ count: Int) {
        self.counter(
            "refusals", "Requests, handshakes and commands refused by a limit or a check, by reason.",
            [("reason", reason)], count)
    }

    private mutating func dropped(_ reason: String, _ count: Int, endpoint: String = "") {
        self.counter(
            "messages_dropped", "Messages dropped, by reason (slow consumer, full backlog …).",
            [("reason", reason), ("endpoint", endpoint)], count)
    }

    private mutating func timeout(_ kind: String, _ count: Int, endpoint: String = "") {
        self.counter("timeouts", "Deadlines that passed, by kind.", [("kind", kind), ("endpoint", endpoint)], count)
    }

    // MARK: Primitives

    /// `switchboard_<name>_total`: adds what `value` grew since the last scrape.
    mutating func webhooks(_ counts: WebhookDispatcher.Counts) {
        let help =
            "Webhook events by outcome: delivered (answered 2xx), overflowed (queue full), abandoned (every try failed, or unsent when the drain at shutdown ended)."
        for (outcome, value) in [
            ("delivered", counts.delivered), ("overflowed", counts.overflowed), ("abandoned", counts.abandoned),
        ] {
            self.counter("webhook_events", help, [("outcome", outcome)], value)
        }
        self.counter(
            "webhook_failed_posts", "Webhook POSTs that failed and were retried or given up.", [], counts.failedAttempts
        )
    }

    private mutating func counter(_ name: String, _ help: String, _ labels: [(String, String)], _ value: Int) {
        let counter = self.registry.makeCounter(
            descriptor: .init(namespace: "switchboard", metricName: name, unitName: "total", helpText: help),
            labels: labels)
        let key = name + labels.map { "|\($0.0)=\($0.1)" }.joined()
        let grown = value - self.shown[key, default: 0]
        if grown > 0 { counter.increment(by: Int64(grown)) }
        self.shown[key] = value
    }

    /// `switchboard_<name>`, set to `value`.
    private mutating func gauge(_ name: String, _ help: String, _ labels: [(String, String)], _ value: Int) {
        self.registry.makeGauge(
            descriptor: .init(namespace: "switchboard", metricName: name, unitName: "", helpText: help),
            labels: labels
        ).set(Int64(value))
    }

    /// A gauge under its own full name (the `process_` conventions).
    private func plainGauge(_ name: String, _ help: String, _ value: Double) {
        self.registry.makeGauge(descriptor: .init(metricName: name, unitName: "", helpText: help)).set(to: value)
    }
}
