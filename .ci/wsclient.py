"""A minimal WebSocket client for the .ci checks (standard library only): masked frames out, unmasked in."""
import base64, json, os, socket, struct


def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]; s.close(); return port


def wait_for_port(port, tries=100):
    import time
    for _ in range(tries):
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close(); return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"FAIL nothing listens on {port}")


class HandshakeRefused(Exception):
    def __init__(self, status, head):
        super().__init__(f"handshake answered {status}: {head[:200]}")
        self.status = status


class WS:
    def __init__(self, port, path="/ws", protocol="switchboard.chat.v1", headers=(), source=None):
        """Opens a WebSocket; `headers` are extra header lines, `source` a local address to connect from."""
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10,
                                             source_address=(source, 0) if source else None)
        key = base64.b64encode(os.urandom(16)).decode()
        extra = f"Sec-WebSocket-Protocol: {protocol}\r\n" if protocol else ""
        extra += "".join(f"{line}\r\n" for line in headers)
        self.sock.sendall((f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
                           f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
                           f"{extra}\r\n").encode())
        head = b""
        while b"\r\n\r\n" not in head:
            byte = self.sock.recv(1)
            if not byte: break
            head += byte
        self.status = int(head.split(b" ")[1]) if head.startswith(b"HTTP/1.1 ") else 0
        if self.status != 101:
            raise HandshakeRefused(self.status, head.decode(errors="replace"))

    def send(self, message):
        """Sends a text frame: a string as it is, anything else as JSON."""
        data = (message if isinstance(message, str) else json.dumps(message)).encode(); mask = os.urandom(4)
        header = bytes([0x81, 0x80 | len(data)]) if len(data) < 126 else bytes([0x81, 0xFE]) + struct.pack("!H", len(data))
        self.sock.sendall(header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(data)))

    def send_json(self, obj):
        self.send(obj)

    def _read(self, n):
        data = b""
        while len(data) < n:
            chunk = self.sock.recv(n - len(data))
            if not chunk: raise EOFError("connection closed")
            data += chunk
        return data

    def recv_frame(self):
        """The next frame as (opcode, payload)."""
        b0, b1 = self._read(2)
        length = b1 & 0x7F
        if length == 126: length = struct.unpack("!H", self._read(2))[0]
        elif length == 127: length = struct.unpack("!Q", self._read(8))[0]
        return b0 & 0x0F, self._read(length)

    def recv(self):
        """The next text frame's text; EOFError with the close code and reason at a close frame."""
        while True:
            opcode, payload = self.recv_frame()
            if opcode == 0x1: return payload.decode()
            if opcode == 0x8:
                code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None
                raise EOFError(f"close frame {code} {payload[2:].decode(errors='replace')}")

    def recv_json(self, kind=None):
        """The next JSON frame (of type `kind` if given), skipping presence events."""
        while True:
            frame = json.loads(self.recv())
            if frame.get("type") == "presence" and kind != "presence": continue
            if kind is None or frame.get("type") == kind: return frame

    def close_code(self):
        """Reads until a close frame; its code."""
        while True:
            opcode, payload = self.recv_frame()
            if opcode == 0x8: return struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None
