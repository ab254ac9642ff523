#!/usr/bin/env python3
"""Keys from a JWKS URL, rotated: the executable fetches an identity provider's JWKS document (served here over
HTTP), accepts tokens signed with its key, refuses a key it does not list yet, and once a second key is published
beside the first accepts tokens of both (old tokens stay valid until their exp).

Usage: check_jwks.py BINARY. Standard library and the openssl command only."""
import base64, functools, http.server, json, os, re, socket, struct, subprocess, sys, tempfile, threading, time

BIN = sys.argv[1]
work = tempfile.mkdtemp()


def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]; s.close(); return port


def ec_key(name):
    """A P-256 key made by openssl, and its JWK (x and y read from openssl's text dump)."""
    pem = os.path.join(work, f"{name}.pem")
    subprocess.run(["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", pem],
                   check=True, capture_output=True)
    text = subprocess.run(["openssl", "pkey", "-in", pem, "-text", "-noout"], check=True, capture_output=True,
                          text=True).stdout
    hexdump = re.search(r"pub:\s*((?:[0-9a-f]{2}:?\s*)+)", text).group(1)
    point = bytes.fromhex(re.sub(r"[^0-9a-f]", "", hexdump))
    assert point[0] == 4 and len(point) == 65, point
    b64 = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode()
    return pem, {"kty": "EC", "crv": "P-256", "kid": name, "alg": "ES256", "use": "sig",
                 "x": b64(point[1:33]), "y": b64(point[33:])}


def publish(*jwks):
    with open(os.path.join(work, "jwks.json"), "w") as f:
        json.dump({"keys": list(jwks)}, f)


def token(pem, kid):
    return subprocess.run([BIN, "token", "--user", "alice", "--private-key", pem, "--kid", kid, "--ttl", "60"],
                          check=True, capture_output=True, text=True).stdout.strip()


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
        """The next text frame as JSON, or ("close", code)."""
        while True:
            b0, b1 = self._read(2)
            length = b1 & 0x7F
            if length == 126: length = struct.unpack("!H", self._read(2))[0]
            elif length == 127: length = struct.unpack("!Q", self._read(8))[0]
            payload = self._read(length)
            if b0 & 0x0F == 0x1: return json.loads(payload)
            if b0 & 0x0F == 0x8: return ("close", struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None)


def auth(port, tok):
    ws = WS(port)
    assert ws.recv()["auth"] == "required"
    ws.send({"type": "auth", "token": tok})
    reply = ws.recv()
    ws.sock.close()
    return reply.get("type") if reply.get("type") != "error" else reply.get("code")


pem1, jwk1 = ec_key("k1")
pem2, jwk2 = ec_key("k2")
publish(jwk1)
web_port, port = free_port(), free_port()
handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=work)
http.server.SimpleHTTPRequestHandler.log_message = lambda *args: None
web = http.server.ThreadingHTTPServer(("127.0.0.1", web_port), handler)
threading.Thread(target=web.serve_forever, daemon=True).start()
log = open("/tmp/switchboard-jwks.log", "w")
server = subprocess.Popen([BIN, "--port", str(port), "--jwks-url", f"http://127.0.0.1:{web_port}/jwks.json",
                           "--jwks-refresh", "1"], stdout=log, stderr=subprocess.STDOUT)
try:
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close(); break
        except OSError:
            time.sleep(0.1)
    old, new = token(pem1, "k1"), token(pem2, "k2")
    assert auth(port, old) == "authenticated", "a token of the published key"
    assert auth(port, new) == "token_unknown_key", "a key not published yet"
    print("ok   JWKS URL: a token of the published key is accepted, one of an unpublished key refused")
    publish(jwk1, jwk2)
    deadline = time.time() + 10
    while auth(port, new) != "authenticated":
        assert time.time() < deadline, "the new key was not picked up"
        time.sleep(0.5)
    assert auth(port, old) == "authenticated", "old tokens stay valid until their exp"
    print("ok   JWKS URL rotated: the new key is picked up on refresh; tokens of the old key still verify")
    with open(os.path.join(work, "jwks.json"), "w") as f:
        f.write('{"keys": "garbage"}')
    time.sleep(2)
    assert auth(port, new) == "authenticated", "a bad document keeps the keys in use"
    print("ok   a broken JWKS document keeps the keys in use (and says so in the log)")
finally:
    server.terminate(); server.wait(); web.shutdown()
