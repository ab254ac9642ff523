"""A hung Redis (SIGSTOP: its connections stay open, nothing is answered) under 4 /chat senders flooding 60 KB
messages for 3 s: the node's memory grows by at most 64 MiB (pending Redis work is bounded in bytes), the senders are
told (their sockets close with 1013 and they reconnect), and once Redis runs again the node is ready and chats.

    check_hung_redis.py SWITCHBOARD_BINARY
"""
import base64, os, signal, socket, subprocess, sys, tempfile, threading, time, urllib.error, urllib.request
from wsclient import free_port, wait_for_port as wait_port

BIN = sys.argv[1]
BOUND_MIB = 64


def rss_mib(pid):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024


def open_chat(port):
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall((f"GET /chat HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                  f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(1)
        if not chunk: raise OSError("closed during the handshake")
        head += chunk
    if not head.startswith(b"HTTP/1.1 101"): raise OSError(head.split(b"\r\n")[0].decode())
    return sock


def frame(payload):
    mask = os.urandom(4)
    header = bytes([0x81, 0x80 | 127]) + len(payload).to_bytes(8, "big") if len(payload) > 0xFFFF \
        else bytes([0x81, 0x80 | 126]) + len(payload).to_bytes(2, "big")
    return header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


redis_port, port = free_port(), free_port()
redis_dir = tempfile.mkdtemp()
redis = subprocess.Popen(["redis-server", "--port", str(redis_port), "--bind", "127.0.0.1", "--dir", redis_dir,
                          "--save", "", "--appendonly", "no"], stdout=subprocess.DEVNULL)
# --say-rate: the senders flood on purpose, and it is the Redis budget under test here, not the /chat limits.
node = subprocess.Popen([BIN, "--port", str(port), "--redis", f"redis://127.0.0.1:{redis_port}", "--log-level", "error",
                         "--say-rate", "100000"],
                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
try:
    wait_port(redis_port); wait_port(port); time.sleep(1)
    message = frame(os.urandom(30 * 1024).hex().encode())  # 60 KB of text
    # Warm up: the same traffic while Redis answers, so the baseline includes allocator caches and buffers.
    # A reader stays in the chat throughout, as in a real one (the channel stays subscribed), and drains what it gets.
    warm = open_chat(port)

    def drain():
        try:
            while warm.recv(1 << 16): pass
        except OSError:
            pass

    threading.Thread(target=drain, daemon=True).start()
    for _ in range(50): warm.sendall(message)
    time.sleep(1.5)
    baseline = rss_mib(node.pid)

    os.kill(redis.pid, signal.SIGSTOP)
    peak, told, sent, stop = baseline, [0], [0], time.time() + 3

    def flood():
        import select
        while time.time() < stop:
            try:
                sock = open_chat(port)
                sock.settimeout(0.5)
                while time.time() < stop:
                    sock.sendall(message)
                    sent[0] += 1
                    if select.select([sock], [], [], 0)[0]:
                        data = sock.recv(4)
                        # A close frame (0x88) with 1013: the message was not published; reconnect, as a client would.
                        if data[:1] == b"\x88" and (len(data) < 4 or int.from_bytes(data[2:4], "big") == 1013):
                            told[0] += 1
                            sock.close()
                            break
            except OSError:
                told[0] += 1  # closed under us: reconnect

    senders = [threading.Thread(target=flood) for _ in range(4)]
    for sender in senders: sender.start()
    while any(sender.is_alive() for sender in senders):
        peak = max(peak, rss_mib(node.pid)); time.sleep(0.05)
    growth = peak - baseline
    print(f"ok   hung Redis, 4 senders of 60 KB for 3 s: RSS {baseline:.0f} MiB -> peak {peak:.0f} MiB "
          f"(+{growth:.0f}, bound +{BOUND_MIB}); {sent[0]} messages sent; senders told {told[0]} times")
    assert growth <= BOUND_MIB, f"FAIL memory grew by {growth:.0f} MiB"
    assert told[0] > 0, "FAIL the senders were never told"

    os.kill(redis.pid, signal.SIGCONT)
    deadline = time.time() + 15
    while time.time() < deadline:
        try:
            if urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2).status == 200: break
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.2)
    else:
        raise SystemExit("FAIL not ready again after Redis came back")
    chat = open_chat(port)
    chat.sendall(frame(b"back"))
    chat.settimeout(5)
    data = b""
    while b"back" not in data:
        chunk = chat.recv(4096)
        if not chunk: raise SystemExit("FAIL the chat socket closed")
        data += chunk
    print(f"ok   Redis back: ready and chatting; RSS {rss_mib(node.pid):.0f} MiB")
finally:
    for process in (node, redis):
        try: os.kill(process.pid, signal.SIGCONT)
        except OSError: pass
        process.terminate(); process.wait()
