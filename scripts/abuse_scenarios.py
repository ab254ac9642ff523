"""Issue 21's findings as scenarios for scripts/abuse-audit.py: each returns (what happened, whether the limit
holds). `redis=True`: the scenario also runs through Redis under --redis (the broker matters to it)."""
import http.server, json, signal, socket, threading, time
from dataclasses import dataclass
from typing import Callable

from abuse_tools import (SECRET, HandshakeRefused, Node, Reader, Redis, SilentBackend, WS, blast, es256, es256_key,
                         free_port, frame, hs256, join, json_frame, request, welcome)


@dataclass
class Scenario:
    name: str
    finding: int
    run: Callable
    redis: bool = False
    background: bool = False
    redis_only: bool = False


CJK_TEXT = "中" * 4000  # 4,000 characters (the message limit), 12,000 bytes: the audit's "12 KB" messages


def refused_frames(binary, redis):
    """One anonymous socket sends frames refused before any bucket was asked, for 3 s."""
    with Node(binary, redis) as node:
        ws = WS(node.port); reader = Reader(ws)
        junk = b"".join(frame(t) for t in ["not json", '{"type":"dance"}', '{"type":"join","room":"a b"}',
                                           '{"type":"say","room":"lobby","text":"x"}', ""]) * 200
        cpu0, start = node.cpu(), time.monotonic()
        blast(ws.sock, junk, 3)
        after = blast(ws.sock, junk, 3) if reader.close else 0
        cpu = node.cpu() - cpu0
        reader.stop()
        when = f" after {reader.closed_at - start:.2f} s" if reader.closed_at else ""
        elapsed = time.monotonic() - start
        written_after = f", {after:,} B more written after the close" if reader.close else ""
        return (f"{reader.types.get('error', 0):,} error answers, close {reader.close or 'none'}{when}, node CPU "
                f"{cpu:.2f} s in {elapsed:.0f} s{written_after}",
                reader.close == 4008 and cpu < 1.0 and after < 8 << 20)


def auth_flood(binary, redis):
    """Three sockets send `auth` with a valid ES256 token again and again for 3 s: each is a signature to check."""
    pem, jwks = es256_key()
    token = es256(pem, {"sub": "mallory", "exp": int(time.time()) + 600})
    with Node(binary, redis, JWKS_FILE=jwks) as node:
        sockets = [WS(node.port) for _ in range(3)]
        readers = [Reader(ws) for ws in sockets]
        batch = json_frame({"type": "auth", "token": token}) * 50
        cpu0 = node.cpu()
        threads = [threading.Thread(target=blast, args=(ws.sock, batch, 3)) for ws in sockets]
        for t in threads: t.start()
        for t in threads: t.join()
        time.sleep(0.5)
        cpu = node.cpu() - cpu0
        for r in readers: r.stop()
        verified = sum(r.types.get("authenticated", 0) for r in readers)
        closes = sorted({str(r.close) for r in readers})
        return (f"{verified:,} tokens accepted ({verified / 3:,.0f}/s), node CPU {cpu:.2f} s in 3 s, closes "
                f"{', '.join(closes)}", verified <= 3 * 10 and cpu < 1.0)


def hung_hook(binary, redis):
    """A say hook whose backend never answers; 200 sockets × 40 says: descriptors the node opens."""
    backend = SilentBackend()
    try:
        with Node(binary, redis, HOOK_SAY=backend.url) as node:
            base = node.descriptors()
            sockets, refused = [], 0
            for _ in range(200):
                try:
                    ws = WS(node.port); welcome(ws); sockets.append(ws)
                except HandshakeRefused:
                    refused += 1
            for ws in sockets: join(ws, "hooked")
            says = b"".join(json_frame({"type": "say", "room": "hooked", "text": f"m{i}"}) for i in range(40))
            for ws in sockets: ws.sock.sendall(says)
            peak, end = 0, time.monotonic() + 3
            while time.monotonic() < end:
                peak = max(peak, node.descriptors()); time.sleep(0.05)
            for ws in sockets: ws.sock.close()
            extra = peak - base - len(sockets)
            return (f"{len(sockets)} sockets ({refused} refused), descriptors {base} → {peak} at the peak: {extra} "
                    f"beyond the sockets; the backend was sent {backend.accepted} connections", extra <= 64)
    finally:
        backend.stop()


def history_eviction(binary, redis):
    """--history-memory 16: 170 sockets, each from an address of its own (as from many machines), each keep a room
    of their own and say 10 × 12 KB (20 MB in all); what is left of 30 messages another client (127.0.0.2) wrote to
    a room now empty and to one still occupied."""
    with Node(binary, redis, flags=("--history-memory", "16")) as node:
        holder = WS(node.port, source="127.0.0.2"); welcome(holder)
        for room in ("quiet", "busy"):
            writer = WS(node.port, source="127.0.0.2"); welcome(writer); join(writer, room)
            for i in range(30):
                writer.send({"type": "say", "room": room, "text": f"{room} {i}"}); writer.recv_json("message")
            writer.sock.close()
        join(holder, "busy")
        attackers, refused = [], 0
        for s in range(170):
            try:
                ws = WS(node.port, source=f"127.0.2.{s + 1}"); welcome(ws)
            except HandshakeRefused:
                refused += 1; continue
            join(ws, f"mine-{s}"); attackers.append((ws, f"mine-{s}"))
        for ws, room in attackers:
            ws.sock.sendall(json_frame({"type": "say", "room": room, "text": CJK_TEXT}) * 10)
        time.sleep(2)
        reader = WS(node.port, source="127.0.0.3"); welcome(reader)
        left = {room: len(join(reader, room)["messages"]) for room in ("quiet", "busy")}
        for ws in [ws for ws, _ in attackers] + [holder, reader]: ws.sock.close()
        return (f"{len(attackers)} attacking sockets ({refused} refused); left of 30: empty room {left['quiet']}, "
                f"occupied room {left['busy']}", left == {"quiet": 30, "busy": 30})


def chat_flood(binary, redis):
    """One /chat socket sends as fast as it can for 3 s to 20 listening /chat sockets."""
    with Node(binary, redis) as node:
        listeners = [Reader(WS(node.port, path="/chat", protocol=None, source="127.0.0.2")) for _ in range(20)]
        sender = WS(node.port, path="/chat", protocol=None); own = Reader(sender)
        message = frame("flood " + "x" * 40)
        written = blast(sender.sock, message * 100, 3)
        time.sleep(1)
        for r in listeners + [own]: r.stop()
        delivered = sum(r.text for r in listeners)
        return (f"{written // len(message):,} messages written, {delivered:,} delivered to 20 listeners; the sender's "
                f"close: {own.close or 'none'}", delivered <= 20 * 200 and own.close == 1008)


def one_client_connections(binary, redis):
    """1,200 /chat sockets from 127.0.0.1: how many the node holds for one client."""
    with Node(binary, redis) as node:
        accepted, refused, failed, sockets = 0, 0, 0, []
        for _ in range(1200):
            try:
                sockets.append(WS(node.port, path="/chat", protocol=None)); accepted += 1
            except HandshakeRefused:
                refused += 1
            except OSError:
                failed += 1
        for ws in sockets: ws.sock.close()
        return f"{accepted} accepted, {refused} refused (503), {failed} failed", accepted <= 256


def one_client_deliveries(binary, redis):
    """200 anonymous sockets from one address say 100 messages each at once into a room 50 others listen to."""
    with Node(binary, redis) as node:
        listeners = []
        for _ in range(50):
            ws = WS(node.port, source="127.0.0.2"); welcome(ws); join(ws, "big"); listeners.append(Reader(ws))
        senders = []
        for _ in range(200):
            try:
                ws = WS(node.port); welcome(ws)
            except HandshakeRefused:
                continue
            join(ws, "big"); senders.append(ws)
        says = b"".join(json_frame({"type": "say", "room": "big", "text": f"m{i}"}) for i in range(100))
        start = time.monotonic()
        for ws in senders:
            try: ws.sock.sendall(says)
            except OSError: pass
        time.sleep(3)
        for r in listeners: r.stop()
        for ws in senders: ws.sock.close()
        delivered = sum(r.types.get("message", 0) for r in listeners)
        seconds = time.monotonic() - start
        return (f"{len(senders)} senders, {delivered:,} deliveries to 50 listeners ({delivered / seconds:,.0f}/s)",
                delivered / 50 <= 200 + 100 * seconds + 50)


def room_table(binary, redis):
    """10 sockets from one address each join 32 new rooms."""
    with Node(binary, redis) as node:
        created, codes, sockets = 0, {}, []
        for s in range(10):
            ws = WS(node.port); welcome(ws); sockets.append(ws)
            for r in range(32):
                answer = join(ws, f"r{s}-{r}")
                if isinstance(answer, dict): created += 1
                else: codes[answer] = codes.get(answer, 0) + 1
        for ws in sockets: ws.sock.close()
        refusals = ", ".join(f"{n} {code}" for code, n in sorted(codes.items())) or "none refused"
        return f"{created} rooms created ({refusals})", created <= 110


def webhook_queue(binary, redis):
    """`message` webhooks to a receiver that never answers; 200 sockets, each from an address of its own and in a
    room of its own, say 12 KB messages for 5 s as fast as their say limits let through. The same attack without
    webhooks is the baseline (its buffers alone grow the node by tens of MiB): the difference is what the
    webhook queue holds. History keeps one message a room. Also: the log lines about dropped events."""
    backend = SilentBackend()
    try:
        plain, _, said = flood_rooms(binary, redis)
        hooked, lines, _ = flood_rooms(binary, redis, WEBHOOK_URLS=backend.url, WEBHOOK_SECRET=SECRET,
                                       WEBHOOK_EVENTS="message")
    finally:
        backend.stop()
    return (f"{said:,} messages of 12 KB said; the node's memory +{hooked:.0f} MiB with the webhook, +{plain:.0f} "
            f"without: the queue held ~{hooked - plain:.0f} MiB; {lines} log lines about dropped events",
            hooked - plain <= 24 and lines <= 20)


def flood_rooms(binary, redis, **env):
    """webhook_queue's attack: the node's growth in MiB, its log lines about dropped webhooks, messages said."""
    with Node(binary, redis, HISTORY_SIZE=1, **env) as node:
        before = node.rss_mib()
        sockets = []
        for i in range(200):
            ws = WS(node.port, source=f"127.0.1.{i + 1}"); welcome(ws); join(ws, f"w{i}"); sockets.append(ws)
        readers = [Reader(ws) for ws in sockets]
        says = [json_frame({"type": "say", "room": f"w{i}", "text": CJK_TEXT}) for i in range(len(sockets))]
        for ws, say in zip(sockets, says): ws.sock.sendall(say * 10)  # the burst of 128 KiB of text
        for _ in range(5):
            time.sleep(1)
            for ws, say in zip(sockets, says):  # then 32 KiB/s
                try: ws.sock.sendall(say * 3)
                except OSError: pass
        time.sleep(1)
        grown = node.rss_mib() - before
        for r in readers: r.stop()
        lines = node.log_lines(r"(?i)webhook.*(drop|overflow|full)|(drop|overflow).*webhook")
        return grown, lines, sum(r.types.get("message", 0) for r in readers)


def slow_body(binary, redis):
    """10 requests whose body comes a byte every 5 s: how many the node still holds after 70 s."""
    with Node(binary, redis, PUBLISH_TOKEN=SECRET) as node:
        sockets = []
        for _ in range(10):
            sock = socket.create_connection(("127.0.0.1", node.port), timeout=5)
            sock.sendall((f"POST /publish/news HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {SECRET}\r\n"
                          "Content-Length: 1000\r\n\r\n").encode())
            sockets.append(sock)
        open_ones, end = list(sockets), time.monotonic() + 70
        while time.monotonic() < end and open_ones:
            time.sleep(5)
            for sock in list(open_ones):
                try: sock.sendall(b"x")
                except OSError: open_ones.remove(sock); continue
                sock.setblocking(False)
                try:
                    if sock.recv(4096) is not None: open_ones.remove(sock)
                except BlockingIOError: pass
                except OSError: open_ones.remove(sock)
                sock.setblocking(True)
        for sock in sockets: sock.close()
        return f"{len(open_ones)} of 10 still held after 70 s", not open_ones


def scoped_api_key(binary, redis):
    """A key scoped to notify:* with every operation asks to disconnect user 42 and for the node's info."""
    key = "notify-key-0123456789abcdef"
    with Node(binary, redis, API_KEYS=f"notify:{key}:*:notify:*") as node:
        auth = f"Authorization: Bearer {key}\r\n"
        body = '{"code":4403,"reason":"banned"}'
        disconnect = request(node.port, f"POST /api/v1/users/42/disconnect HTTP/1.1\r\nHost: x\r\n{auth}"
                                        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n{body}")
        info = request(node.port, f"GET /api/v1/info HTTP/1.1\r\nHost: x\r\n{auth}\r\n")
        return f"disconnect user 42: {disconnect}, info: {info}", disconnect == 403 and info == 403


def revoked_room(binary, redis):
    """A socket in members-only team-a refreshes its token with a `rooms` claim that no longer lists it."""
    with Node(binary, redis, JWT_SECRET=SECRET, PRIVATE_ROOMS="team-*") as node:
        exp = int(time.time()) + 600
        ws = WS(node.port); welcome(ws)
        ws.send({"type": "auth", "token": hs256({"sub": "eve", "rooms": ["team-a"], "exp": exp})})
        ws.recv_json("authenticated")
        join(ws, "team-a")
        ws.send({"type": "auth", "token": hs256({"sub": "eve", "rooms": [], "exp": exp + 1})})
        reader = Reader(ws, keep=True)
        other = WS(node.port); welcome(other)
        other.send({"type": "auth", "token": hs256({"sub": "ann", "rooms": ["team-a"], "exp": exp})})
        other.recv_json("authenticated"); join(other, "team-a")
        time.sleep(0.5)
        other.send({"type": "say", "room": "team-a", "text": "secret plans"})
        time.sleep(1)
        reader.stop(); other.sock.close()
        left = any(f.get("type") == "left" and f.get("reason") == "revoked" for f in reader.frames)
        heard = sum(1 for f in reader.frames if f.get("type") == "message")
        return (f"left with reason revoked: {'yes' if left else 'no'}; team-a messages heard after: {heard}",
                left and heard == 0)


def subscribe_per_user(binary, redis):
    """100 /subscribe/user:bob sockets with bob's token (the per-user cap is 32)."""
    token = hs256({"sub": "bob", "exp": int(time.time()) + 600})
    with Node(binary, redis, JWT_SECRET=SECRET) as node:
        accepted, statuses, sockets = 0, {}, []
        for _ in range(100):
            try:
                sockets.append(WS(node.port, path="/subscribe/user:bob", protocol=None,
                                  headers=[f"Authorization: Bearer {token}"])); accepted += 1
            except HandshakeRefused as refusal:
                statuses[refusal.status] = statuses.get(refusal.status, 0) + 1
        for ws in sockets: ws.sock.close()
        return f"{accepted} of 100 accepted, refused: {statuses or 'none'}", accepted <= 32


def metrics_idle(binary, redis):
    """64 idle connections to the metrics port, then Prometheus scrapes 6 s later."""
    metrics_port = free_port()
    with Node(binary, redis, flags=("--metrics-port", str(metrics_port))):
        idle = [socket.create_connection(("127.0.0.1", metrics_port)) for _ in range(64)]
        time.sleep(6)
        status = request(metrics_port, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        for sock in idle: sock.close()
        return f"GET /metrics after 64 idle connections: {status}", status == 200


def bad_framing(binary, redis):
    """A chunked body with an invalid size, and a transfer coding we do not know."""
    with Node(binary, redis, PUBLISH_TOKEN=SECRET) as node:
        head = f"POST /publish/news HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {SECRET}\r\n"
        bad_size = request(node.port, head + "Transfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n")
        unknown = request(node.port, head + "Transfer-Encoding: xchunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n")
        return f"invalid chunk size: {bad_size}, Transfer-Encoding: xchunked: {unknown}", (bad_size, unknown) == (400, 501)


def unknown_kid(binary, redis):
    """--jwks-file beside --jwt-secret: an HS256 token naming a kid the JWKS does not list."""
    _, jwks = es256_key("listed")
    with Node(binary, redis, JWKS_FILE=jwks, JWT_SECRET=SECRET) as node:
        ws = WS(node.port); welcome(ws)
        ws.send({"type": "auth", "token": hs256({"sub": "eve", "exp": int(time.time()) + 600}, kid="unlisted")})
        answer = ws.recv_json(); ws.sock.close()
        got = answer.get("code") or answer.get("type")
        return f"answered {got}", got == "token_unknown_key"


def echo_origin(binary, redis):
    """/echo (on) from a page of another origin."""
    with Node(binary, redis, ECHO="1", ALLOWED_ORIGINS="https://chat.example") as node:
        try:
            WS(node.port, path="/echo", protocol=None, headers=["Origin: https://evil.example"]).sock.close()
            status = 101
        except HandshakeRefused as refusal:
            status = refusal.status
        return f"handshake from https://evil.example: {status}", status == 403


def catch_up(binary, redis):
    """A room of 1,000 × 12 KB messages (100 writers from addresses of their own, 10 each, within their say limits);
    one socket joins it with `since` its first message, leaves, and again, for 4 s: the history it is sent. Bounded:
    16 MiB, then 1 MiB/s, and the join that finds budget left is sent whole (12 MB): 33 MiB in 5 s at most."""
    with Node(binary, redis) as node:
        first = None
        for w in range(100):
            writer = WS(node.port, source=f"127.0.3.{w + 1}"); welcome(writer); join(writer, "archive")
            writer.sock.sendall(json_frame({"type": "say", "room": "archive", "text": CJK_TEXT}) * 10)
            for _ in range(10):
                message = writer.recv_json()
                if message.get("type") == "error": raise RuntimeError(f"a writer was refused: {message}")
                first = first or message["id"]
            writer.sock.close()
        ws = WS(node.port); welcome(ws)
        reader = Reader(ws)
        again = json_frame({"type": "join", "room": "archive", "since": first}) + json_frame({"type": "leave", "room": "archive"})
        end, joins = time.monotonic() + 4, 0
        ws.sock.settimeout(1)
        while time.monotonic() < end and not reader.close:
            try: ws.sock.sendall(again); joins += 1
            except OSError: break
            time.sleep(0.02)
        time.sleep(1)
        reader.stop()
        return (f"{joins} joins of {len(again) // 2} B each; {reader.bytes / 2**20:,.1f} MiB of history sent in 5 s",
                reader.bytes <= 34 << 20)


def wrong_keys(binary, redis):
    """3,000 requests with wrong API keys from one address, on one connection."""
    with Node(binary, redis, PUBLISH_TOKEN=SECRET) as node:
        statuses = {}
        sock = socket.create_connection(("127.0.0.1", node.port), timeout=5)
        for i in range(3000):
            try:
                sock.sendall(f"GET /api/v1/info HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer wrong-{i:020}\r\n\r\n"
                             .encode())
                status = read_response(sock)
            except OSError:
                sock = socket.create_connection(("127.0.0.1", node.port), timeout=5); continue
            statuses[status] = statuses.get(status, 0) + 1
        sock.close()
        logged = node.log_lines(r"(?i)wrong.*key|key.*(wrong|refused|failed)")
        summary = ", ".join(f"{n} × {s}" for s, n in sorted(statuses.items()))
        return f"{summary}; {logged} log lines", statuses.get(401, 0) <= 25 and statuses.get(429, 0) > 0 and logged > 0


def read_response(sock):
    """The status of one keep-alive answer, its body read by Content-Length."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk: raise OSError("closed")
        data += chunk
    head, body = data.split(b"\r\n\r\n", 1)
    length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")), 0)
    while len(body) < length:
        body += sock.recv(4096)
    return int(head.split(b" ")[1])


def subscribe_not_ready(binary, redis):
    """Redis unreachable: does /subscribe still answer 101?"""
    dead = free_port()
    with Node(binary, None, REDIS=f"redis://127.0.0.1:{dead}") as node:
        time.sleep(0.5)
        try:
            WS(node.port, path="/subscribe/news", protocol=None).sock.close(); status = 101
        except HandshakeRefused as refusal:
            status = refusal.status
        return f"/subscribe with the broker down: {status}", status == 503


def leave_while_redis_down(binary, _):
    """A member leaves while Redis is down (killed; it comes back 2 s later with its data, from an append-only
    file): is its member_left webhook sent once Redis is back, rather than at presence's 30 s sweep or never?"""
    events, lock = [], threading.Lock()

    class Receiver(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            with lock: events.extend(e.get("name") for e in json.loads(body).get("events", []) if e.get("room") == "down")
            self.send_response(204); self.end_headers()

        def log_message(self, *_): pass

    receiver = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{receiver.server_address[1]}/events"
    redis = Redis(durable=True)
    try:
        with Node(binary, redis, WEBHOOK_URLS=url, WEBHOOK_SECRET=SECRET, WEBHOOK_EVENTS="member_joined,member_left") as node:
            ws = WS(node.port); welcome(ws); join(ws, "down")
            deadline = time.monotonic() + 10
            while "member_joined" not in events and time.monotonic() < deadline: time.sleep(0.1)
            redis.kill()
            ws.sock.close(); time.sleep(2)
            redis.start()
            back = time.monotonic()
            while "member_left" not in events and time.monotonic() < back + 40: time.sleep(0.1)
            after = time.monotonic() - back
            time.sleep(1)
            with lock: seen = list(events)
            sent = f"member_left {after:.1f} s after Redis was back" if after < 40 else "no member_left within 40 s"
            # Within 10 s: the leave delay (3 s) and a retry a second; presence's sweep would take its TTL (30 s).
            return f"webhook events: {', '.join(seen) or 'none'}; {sent}", seen.count("member_left") == 1 and after < 10
    finally:
        redis.stop(); receiver.shutdown()


SCENARIOS = [
    Scenario("refused frames", 1, refused_frames, redis=True),
    Scenario("auth flood", 1, auth_flood, redis=True),
    Scenario("hung say hook", 2, hung_hook, redis=True),
    Scenario("history eviction", 3, history_eviction),
    Scenario("/chat flood", 4, chat_flood, redis=True),
    Scenario("one client's connections", 5, one_client_connections, redis=True),
    Scenario("one client's deliveries", 5, one_client_deliveries, redis=True),
    Scenario("room table", 5, room_table, redis=True),
    Scenario("webhook queue", 6, webhook_queue),  # the queue is the same whatever the broker
    Scenario("slow body", 6, slow_body, background=True),
    Scenario("scoped API key", 6, scoped_api_key, redis=True),
    Scenario("revoked room", 6, revoked_room, redis=True),
    Scenario("/subscribe per user", 6, subscribe_per_user, redis=True),
    Scenario("metrics port idle", 6, metrics_idle),
    Scenario("bad framing", 6, bad_framing),
    Scenario("unknown kid", 6, unknown_kid),
    Scenario("/echo Origin", 6, echo_origin),
    Scenario("catch-up bytes", 6, catch_up, redis=True),
    Scenario("wrong API keys", 6, wrong_keys),
    Scenario("/subscribe not ready", 6, subscribe_not_ready),
    Scenario("leave while Redis is down", 6, leave_while_redis_down, redis_only=True),
]
