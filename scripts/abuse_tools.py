"""What scripts/abuse-audit.py's scenarios share: a node to attack, raw frames and requests, tokens, a backend
that never answers, and the node's CPU, descriptors and memory read from /proc."""
import base64, hashlib, hmac, json, os, re, shutil, socket, struct, subprocess, sys, tempfile, threading, time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", ".ci"))
from wsclient import WS, HandshakeRefused, free_port, wait_for_port  # noqa: E402,F401

WORK = tempfile.mkdtemp(prefix="abuse-audit-")
SECRET = "an-audit-secret-of-thirty-two-bytes-or-more"


class Node:
    """A node on a free port, with `env` added to the environment (SWITCHBOARD_* names every build reads) and
    `flags` on the command line; its log in a file, for scenarios that count lines."""

    def __init__(self, binary, redis=None, flags=(), **env):
        self.port = free_port()
        environment = {k: v for k, v in os.environ.items() if not k.startswith("SWITCHBOARD_")}
        if redis is not None and "REDIS" not in env:
            redis.flush()  # each scenario on an empty Redis: no presence or history left by the one before
            environment["SWITCHBOARD_REDIS"] = redis.url
        environment.update({f"SWITCHBOARD_{k}": str(v) for k, v in env.items()})
        self.log_path = os.path.join(WORK, f"node-{self.port}.log")
        self.log = open(self.log_path, "w")
        self.process = subprocess.Popen([binary, "--port", str(self.port), *flags], stdout=self.log,
                                        stderr=subprocess.STDOUT, env=environment)
        wait_for_port(self.port)

    def __enter__(self): return self

    def __exit__(self, *_):
        self.process.terminate()
        try: self.process.wait(10)
        except subprocess.TimeoutExpired: self.process.kill(); self.process.wait()
        self.log.close()

    def cpu(self):
        fields = open(f"/proc/{self.process.pid}/stat").read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def descriptors(self):
        return len(os.listdir(f"/proc/{self.process.pid}/fd"))

    def rss_mib(self):
        return int(re.search(r"VmRSS:\s+(\d+)", open(f"/proc/{self.process.pid}/status").read()).group(1)) / 1024

    def log_lines(self, pattern):
        self.log.flush()
        return sum(1 for line in open(self.log_path, errors="replace") if re.search(pattern, line))


class Redis:
    """A redis-server of the audit's own, on a free port; `durable`: every write in an append-only file, so a
    restart after a kill finds what was there."""

    def __init__(self, durable=False):
        if not shutil.which("redis-server"): raise SystemExit("--redis needs redis-server")
        self.port = free_port()
        self.arguments = ["redis-server", "--port", str(self.port), "--save", ""]
        if durable:
            folder = tempfile.mkdtemp(dir=WORK)
            self.arguments += ["--dir", folder, "--appendonly", "yes", "--appendfsync", "always"]
        else:
            self.arguments += ["--appendonly", "no"]
        self.start()
        self.url = f"redis://127.0.0.1:{self.port}"

    def start(self):
        self.process = subprocess.Popen(self.arguments, stdout=subprocess.DEVNULL)
        wait_for_port(self.port)

    def kill(self):
        self.process.kill(); self.process.wait(10)

    def flush(self):
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as sock:
            sock.sendall(b"FLUSHALL\r\n")
            if sock.recv(64) != b"+OK\r\n": raise RuntimeError("FLUSHALL failed")

    def stop(self):
        self.process.terminate(); self.process.wait(10)


def frame(text, opcode=0x1):
    """A masked frame, built once so a scenario can write many without Python's cost per frame."""
    data = text.encode() if isinstance(text, str) else text
    mask = b"\x11\x22\x33\x44"
    if len(data) < 126: header = bytes([0x80 | opcode, 0x80 | len(data)])
    elif len(data) < 65536: header = bytes([0x80 | opcode, 0xFE]) + struct.pack("!H", len(data))
    else: header = bytes([0x80 | opcode, 0xFF]) + struct.pack("!Q", len(data))
    return header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(data))


def json_frame(obj):
    return frame(json.dumps(obj, ensure_ascii=False))


def blast(sock, data, seconds):
    """Writes `data` again and again for `seconds`; the bytes written (a blocked write ends it at its timeout)."""
    written, end = 0, time.monotonic() + seconds
    sock.settimeout(1)
    try:
        while time.monotonic() < end:
            sock.sendall(data); written += len(data)
    except OSError:
        pass
    return written


class Reader(threading.Thread):
    """Reads a socket's frames until stopped: text frames counted (by JSON type when they are JSON), bytes summed,
    the close code kept. It parses from a buffer of its own, so a timeout (another thread may set one for its
    writes) never loses half a frame."""

    def __init__(self, ws, keep=False):
        super().__init__(daemon=True)
        self.ws, self.keep, self.stopping = ws, keep, threading.Event()
        self.text = self.bytes = 0
        self.types, self.frames, self.close, self.closed_at = {}, [], None, None
        self.start()

    def run(self):
        buffer = bytearray()
        while not self.stopping.is_set():
            try:
                chunk = self.ws.sock.recv(1 << 20)
            except socket.timeout:
                continue
            except OSError:
                chunk = b""
            if not chunk:
                self.close = self.close or "reset/EOF"; return
            buffer += chunk
            while (parsed := self.parse(buffer)) is not None:
                opcode, payload, used = parsed
                del buffer[:used]
                if self.handle(opcode, payload): return

    @staticmethod
    def parse(buffer):
        if len(buffer) < 2: return None
        length, offset = buffer[1] & 0x7F, 2
        if length == 126:
            if len(buffer) < 4: return None
            length, offset = struct.unpack("!H", buffer[2:4])[0], 4
        elif length == 127:
            if len(buffer) < 10: return None
            length, offset = struct.unpack("!Q", buffer[2:10])[0], 10
        if len(buffer) < offset + length: return None
        return buffer[0] & 0x0F, bytes(buffer[offset:offset + length]), offset + length

    def handle(self, opcode, payload):
        """Counts one frame; true at a close frame."""
        self.bytes += len(payload)
        if opcode == 0x8:
            self.close = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else "no code"
            self.closed_at = time.monotonic(); return True
        if opcode == 0x1:
            self.text += 1
            try:
                message = json.loads(payload)
                kind = message.get("type", "?") if isinstance(message, dict) else "?"
                if self.keep: self.frames.append(message)
            except ValueError:
                kind = "raw"
            self.types[kind] = self.types.get(kind, 0) + 1
        return False

    def stop(self):
        """Ends reading (the socket is shut down to wake it) and closes the socket."""
        self.stopping.set()
        try: self.ws.sock.shutdown(socket.SHUT_RDWR)
        except OSError: pass
        self.join()
        self.ws.sock.close()
        return self


def request(port, raw, timeout=5.0, source=None):
    """Sends raw bytes, returns the status code of the answer (0 if the connection closed without one)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout,
                                  source_address=(source, 0) if source else None) as sock:
        sock.sendall(raw if isinstance(raw, bytes) else raw.encode())
        return read_status(sock)


def read_status(sock):
    head = b""
    try:
        while b"\r\n" not in head:
            chunk = sock.recv(4096)
            if not chunk: break
            head += chunk
    except OSError:
        pass
    return int(head.split(b" ")[1]) if head.startswith(b"HTTP/1.1 ") else 0


def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def hs256(claims, kid=None, secret=SECRET):
    header = {"alg": "HS256", "typ": "JWT", **({"kid": kid} if kid else {})}
    signing = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}"
    return signing + "." + b64(hmac.new(secret.encode(), signing.encode(), hashlib.sha256).digest())


def es256_key(kid="k1"):
    """A P-256 key made by openssl: its PEM path and the JWKS document (x and y from openssl's text dump)."""
    pem = os.path.join(WORK, f"{kid}.pem")
    subprocess.run(["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", pem],
                   check=True, capture_output=True)
    text = subprocess.run(["openssl", "pkey", "-in", pem, "-text", "-noout"], check=True, capture_output=True,
                          text=True).stdout
    point = bytes.fromhex(re.sub(r"[^0-9a-f]", "", re.search(r"pub:\s*((?:[0-9a-f]{2}:?\s*)+)", text).group(1)))
    jwks = os.path.join(WORK, f"{kid}.jwks.json")
    with open(jwks, "w") as f:
        json.dump({"keys": [{"kty": "EC", "crv": "P-256", "kid": kid, "alg": "ES256", "use": "sig",
                             "x": b64(point[1:33]), "y": b64(point[33:])}]}, f)
    return pem, jwks


def es256(pem, claims, kid="k1"):
    """A token signed by openssl; its DER signature turned into JOSE's r ‖ s."""
    signing = f"{b64(json.dumps({'alg': 'ES256', 'typ': 'JWT', 'kid': kid}).encode())}.{b64(json.dumps(claims).encode())}"
    der = subprocess.run(["openssl", "dgst", "-sha256", "-sign", pem], input=signing.encode(), check=True,
                         capture_output=True).stdout
    r_length = der[3]
    r = der[4:4 + r_length]
    s = der[4 + r_length + 2:]
    return signing + "." + b64(r[-32:].rjust(32, b"\0") + s[-32:].rjust(32, b"\0"))


class SilentBackend:
    """An HTTP backend that accepts every connection and never answers (a hung hook or webhook receiver): the
    connections it was sent, counted."""

    def __init__(self):
        self.listener = socket.socket(); self.listener.bind(("127.0.0.1", 0)); self.listener.listen(4096)
        self.port = self.listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}/hook"
        self.accepted, self.held = 0, []
        threading.Thread(target=self.accept, daemon=True).start()

    def accept(self):
        while True:
            try: connection, _ = self.listener.accept()
            except OSError: return
            self.accepted += 1; self.held.append(connection)

    def stop(self):
        self.listener.close()
        for connection in self.held: connection.close()


def welcome(ws):
    """Reads the welcome frame a /ws socket starts with."""
    return ws.recv_json("welcome")


def join(ws, room, **extra):
    """Joins `room`; the `joined` frame, or the error's code."""
    ws.send({"type": "join", "room": room, **extra})
    while True:
        answer = ws.recv_json()
        if answer.get("type") == "joined" and answer.get("room") == room: return answer
        if answer.get("type") == "error": return answer.get("code")
