#!/usr/bin/env python3
"""The README's PyJWT example, run as written ("Securing Switchboard"): the token it makes is accepted by the
executable, carries its user and name, and opens the members-only room its rooms claim lists.

Usage: check_pyjwt.py BINARY (with a python that has PyJWT)."""
import base64, json, os, re, socket, struct, subprocess, sys, time

BIN = sys.argv[1]
readme = open(os.path.join(os.path.dirname(__file__), "..", "README.md")).read()
snippet = re.search(r"in Python with PyJWT:\s*```python\n(.*?)```", readme, re.S).group(1)
secret = "pyjwt-check-hmac-secret-0123456789abcdef"
scope = {"secret": secret}
exec(snippet, scope)
token = scope["token"]


def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]; s.close(); return port


class WS:
    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall((f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                           f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
                           "Sec-WebSocket-Protocol: switchboard.chat.v1\r\n\r\n").encode())
        head = b""
        while b"\r\n\r\n" not in head:
            head += self.sock.recv(1)
        assert head.startswith(b"HTTP/1.1 101"), head

    def send(self, obj):
        data = json.dumps(obj).encode(); mask = os.urandom(4)
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
        """The next text frame that is not a presence event, as JSON."""
        while True:
            b0, b1 = self._read(2)
            length = b1 & 0x7F
            if length == 126: length = struct.unpack("!H", self._read(2))[0]
            elif length == 127: length = struct.unpack("!Q", self._read(8))[0]
            payload = self._read(length)
            if b0 & 0x0F == 0x8: raise EOFError(f"closed: {payload[2:].decode(errors='replace')}")
            if b0 & 0x0F == 0x1:
                frame = json.loads(payload)
                if frame.get("type") != "presence": return frame


port = free_port()
server = subprocess.Popen([BIN, "--port", str(port), "--jwt-secret", secret, "--private-room", "team-*"],
                          stdout=open("/tmp/switchboard-pyjwt.log", "w"), stderr=subprocess.STDOUT)
try:
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close(); break
        except OSError:
            time.sleep(0.1)
    ws = WS(port)
    assert ws.recv()["auth"] == "required"
    ws.send({"type": "auth", "token": token})
    reply = ws.recv()
    assert reply["type"] == "authenticated" and reply["you"]["user"] == "42" and reply["you"]["nick"] == "Alice", reply
    ws.send({"type": "join", "room": "team-red"})
    assert ws.recv()["type"] == "joined"
    ws.send({"type": "join", "room": "team-blue"})
    refused = ws.recv()
    assert refused["code"] == "forbidden", refused
    print("ok   the README's PyJWT token is accepted: user 42, Alice, team-red open and team-blue forbidden")
finally:
    server.terminate(); server.wait()
