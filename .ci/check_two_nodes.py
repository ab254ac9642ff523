#!/usr/bin/env python3
"""Two switchboard processes on one redis-server: clients on A and B chat together, a publish on A reaches
B's subscribers, rooms share history and presence, and after kill -9 of A B's clients carry on and A's users leave
B's presence list within the presence TTL.

Usage: check_two_nodes.py BINARY REDIS_PORT. Uses only the standard library (a minimal WebSocket client)."""
import base64, json, os, socket, struct, subprocess, sys, time, urllib.request

BIN, REDIS_PORT = sys.argv[1], int(sys.argv[2])
TOKEN = "two-nodes-check-token-0123456789"


def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]; s.close(); return port


def start_node(port):
    log = open(f"/tmp/switchboard-node-{port}.log", "w")
    proc = subprocess.Popen([BIN, "--port", str(port), "--redis", f"redis://127.0.0.1:{REDIS_PORT}",
                             "--publish-token", TOKEN, "--presence-ttl", "3"], stdout=log, stderr=subprocess.STDOUT)
    for _ in range(100):
        try:  # /readyz answers 200 once a round trip through Redis succeeds (503 before)
            if urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1).status == 200:
                return proc
        except OSError:
            pass
        time.sleep(0.1)
    raise SystemExit(f"node on {port} did not become ready with Redis (/readyz)")


class WS:
    def __init__(self, port, path, protocol=None):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        key = base64.b64encode(os.urandom(16)).decode()
        extra = f"Sec-WebSocket-Protocol: {protocol}\r\n" if protocol else ""
        self.sock.sendall((f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
                           f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
                           f"{extra}\r\n").encode())
        head = b""
        while b"\r\n\r\n" not in head:
            head += self.sock.recv(1)
        assert head.startswith(b"HTTP/1.1 101"), head

    def send_json(self, obj):
        self.send(json.dumps(obj))

    def recv_json(self, kind):
        """The next frame of type `kind`, skipping others."""
        while True:
            frame = json.loads(self.recv())
            if frame["type"] == kind:
                return frame

    def send(self, text):
        data = text.encode(); mask = os.urandom(4)
        header = bytes([0x81, 0x80 | len(data)]) if len(data) < 126 else bytes([0x81, 0xFE]) + struct.pack("!H", len(data))
        self.sock.sendall(header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(data)))

    def _read(self, n):
        data = b""
        while len(data) < n:
            chunk = self.sock.recv(n - len(data))
            if not chunk: raise EOFError("connection closed")
            data += chunk
        return data

    def recv(self):
        while True:
            b0, b1 = self._read(2)
            length = b1 & 0x7F
            if length == 126: length = struct.unpack("!H", self._read(2))[0]
            elif length == 127: length = struct.unpack("!Q", self._read(8))[0]
            payload = self._read(length)
            if b0 & 0x0F == 0x1: return payload.decode()
            if b0 & 0x0F == 0x8: raise EOFError("close frame")


def publish(port, channel, body):
    request = urllib.request.Request(f"http://127.0.0.1:{port}/publish/{channel}", data=body.encode(),
                                     headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "text/plain"})
    return urllib.request.urlopen(request, timeout=5).status


port_a, port_b = free_port(), free_port()
node_a, node_b = start_node(port_a), start_node(port_b)
try:
    alice, bob = WS(port_a, "/chat"), WS(port_b, "/chat")
    watcher = WS(port_b, "/subscribe/alerts")
    alice.send("hello from A")
    assert alice.recv() == "hello from A" and bob.recv() == "hello from A"
    bob.send("hello from B")
    assert bob.recv() == "hello from B" and alice.recv() == "hello from B"
    print("ok   clients on node A and node B see each other's messages")
    assert publish(port_a, "alerts", "published on A") == 204
    assert watcher.recv() == "published on A"
    print("ok   a publish on node A reaches a subscriber on node B")
    # Rooms: history and presence shared through Redis.
    carol, dave = WS(port_a, "/ws", "switchboard.chat.v1"), WS(port_b, "/ws", "switchboard.chat.v1")
    for ws, nick in ((carol, "carol"), (dave, "dave")):
        ws.send_json({"type": "nick", "nick": nick}); ws.recv_json("nick")
    carol.send_json({"type": "join", "room": "ops"}); carol.recv_json("joined")
    carol.send_json({"type": "say", "room": "ops", "text": "said on A"}); carol.recv_json("message")
    dave.send_json({"type": "join", "room": "ops"})
    joined = dave.recv_json("joined")
    assert [m["text"] for m in joined["messages"]] == ["said on A"], joined
    assert sorted(m["nick"] for m in joined["members"]) == ["carol", "dave"], joined
    print("ok   a room's history and presence are the same on both nodes")

    node_a.kill(); node_a.wait()
    killed = time.monotonic()
    while True:
        event = dave.recv_json("presence")
        if event["event"] == "leave" and event["member"]["nick"] == "carol":
            break
    waited = time.monotonic() - killed
    assert waited < 6, waited
    print(f"ok   after kill -9 of node A its user left node B's presence list in {waited:.1f} s (TTL 3 s)")
    bob.send("A is gone")
    assert bob.recv() == "A is gone"
    assert publish(port_b, "alerts", "published on B") == 204
    assert watcher.recv() == "published on B"
    print("ok   kill -9 of node A leaves node B's clients chatting")
finally:
    for node in (node_a, node_b):
        if node.poll() is None: node.terminate(); node.wait()
