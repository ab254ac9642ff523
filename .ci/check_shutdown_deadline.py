"""SIGTERM finishes within the shutdown deadline whatever clients do: with a client that pipelines requests and never
reads its responses, and a WebSocket client that never answers the server's close frame, a node started with
SWITCHBOARD_SHUTDOWN_TIMEOUT=2 exits 0 within 2 s (plus 1.5 s of slack) of SIGTERM and logs that it cut connections.

    check_shutdown_deadline.py SWITCHBOARD_BINARY
"""
import base64, os, signal, socket, subprocess, sys, tempfile, time
from wsclient import free_port, wait_for_port as wait_port

BIN = sys.argv[1]
DEADLINE = 2
SLACK = 1.5


port = free_port()
log = tempfile.NamedTemporaryFile(prefix="switchboard-shutdown-", suffix=".log", delete=False)
env = dict(os.environ, SWITCHBOARD_SHUTDOWN_TIMEOUT=str(DEADLINE))
node = subprocess.Popen([BIN, "--port", str(port), "--log-level", "info"], stdout=log, stderr=log, env=env)
try:
    wait_port(port)
    # A client that asks for the page 20,000 times in one go and reads nothing: the node's writes park. (2,000 were
    # too few: about 3 MB of responses, which the kernel's send buffer, up to 4 MB here, could take whole; the
    # connection was then idle at SIGTERM and closed at once, and the WebSocket alone could close by itself as the
    # deadline came, leaving no line to check.)
    reader = socket.create_connection(("127.0.0.1", port))
    reader.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    reader.sendall(f"GET / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode() * 20000)
    # A WebSocket client that completes the handshake, then never reads again (so never answers a close).
    ws = socket.create_connection(("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    ws.sendall((f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nOrigin: http://127.0.0.1:{port}\r\n"
                f"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                "Sec-WebSocket-Protocol: switchboard.chat.v1\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
    head = b""
    while b"\r\n\r\n" not in head:
        head += ws.recv(1)
    assert head.startswith(b"HTTP/1.1 101"), head
    time.sleep(0.5)

    start = time.monotonic()
    node.send_signal(signal.SIGTERM)
    try:
        code = node.wait(timeout=DEADLINE + SLACK)
    except subprocess.TimeoutExpired:
        raise SystemExit(f"FAIL still running {DEADLINE + SLACK} s after SIGTERM (deadline {DEADLINE} s)")
    took = time.monotonic() - start
    output = open(log.name).read()
    if code != 0:
        raise SystemExit(f"FAIL exit code {code} after SIGTERM:\n{output}")
    if "shutdown deadline" not in output:
        raise SystemExit(f"FAIL no log line says the deadline cut connections:\n{output}")
    print(next(line for line in output.splitlines() if "shutdown deadline" in line))
    print(f"ok   SIGTERM with a non-reading HTTP client and a silent WebSocket: exit 0 after {took:.2f} s "
          f"(deadline {DEADLINE} s)")
finally:
    if node.poll() is None:
        node.kill()
        node.wait()
