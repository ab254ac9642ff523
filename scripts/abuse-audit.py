#!/usr/bin/env python3
"""scripts/abuse-audit.py SWITCHBOARD_BIN: the second audit's attacks from one machine, as figures.

Runs each scenario against a node of its own (embedded broker, default limits, started from SWITCHBOARD_BIN) and
prints what the attacker got and what it cost the node, so one build can be compared with another:

  refused frames  one anonymous /ws socket sends junk frames (bad JSON, unknown type, bad room, say unjoined,
                  empty) for 3 s: error answers it got, whether it was closed and with what, the node's CPU-s,
                  and the bytes it could still write in the 3 s after (the node reads nothing after a policy close)
  /chat flood     one /chat socket sends as fast as it can for 3 s to 20 listening /chat sockets: messages the
                  listeners got, and the sender's close
  one client      1,200 /chat sockets from 127.0.0.1: how many the node accepts (the rest get 503)
  rooms           10 sockets from one address each joining 32 new rooms: how many rooms it could create

For measuring only (the tests in Tests/ are what hold the limits); the figures depend on the machine.
"""
import os, socket, struct, subprocess, sys, threading, time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", ".ci"))
from wsclient import WS, HandshakeRefused, free_port, wait_for_port  # noqa: E402


def frame(text):
    data = text.encode(); mask = b"\x11\x22\x33\x44"
    if len(data) < 126: header = bytes([0x81, 0x80 | len(data)])
    else: header = bytes([0x81, 0xFE]) + struct.pack("!H", len(data))
    return header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(data))


def cpu_seconds(pid):
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Node:
    def __init__(self, binary, *flags):
        self.port = free_port()
        self.process = subprocess.Popen([binary, "--port", str(self.port), *flags], stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL)
        wait_for_port(self.port)

    def __enter__(self): return self

    def __exit__(self, *_):
        self.process.terminate(); self.process.wait(10)


def read_frames(ws, counts, stop):
    """Counts text frames into counts["text"]; the close code into counts["close"]."""
    ws.sock.settimeout(0.5)
    while not stop.is_set():
        try:
            opcode, payload = ws.recv_frame()
        except socket.timeout:
            continue
        except (EOFError, OSError):
            counts.setdefault("close", "reset/EOF"); return
        if opcode == 0x1: counts["text"] = counts.get("text", 0) + 1
        elif opcode == 0x8:
            counts["close"] = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None
            counts["closed_at"] = time.monotonic(); return


def blast(sock, data, seconds):
    """Writes `data` repeatedly for `seconds`; the bytes written."""
    written, end = 0, time.monotonic() + seconds
    sock.settimeout(1)
    try:
        while time.monotonic() < end:
            sock.sendall(data); written += len(data)
    except OSError:
        pass
    return written


def refused_frames(binary):
    with Node(binary) as node:
        ws = WS(node.port)
        counts, stop = {}, threading.Event()
        reader = threading.Thread(target=read_frames, args=(ws, counts, stop)); reader.start()
        junk = b"".join(frame(t) for t in ["not json", '{"type":"dance"}', '{"type":"join","room":"a b"}',
                                           '{"type":"say","room":"lobby","text":"x"}', ""]) * 200
        cpu0, start = cpu_seconds(node.process.pid), time.monotonic()
        blast(ws.sock, junk, 3)
        after = blast(ws.sock, junk, 3) if "close" in counts else 0
        cpu = cpu_seconds(node.process.pid) - cpu0
        stop.set(); reader.join()
        closed = counts.get("closed_at")
        print(f"refused frames: {counts.get('text', 0):,} answers; close {counts.get('close', 'none')}"
              + (f" after {closed - start:.2f} s" if closed else "") + f"; node CPU {cpu:.2f} s in 6 s; "
              f"{after:,} B written in the 3 s after the close")


def chat_flood(binary):
    with Node(binary) as node:
        listeners = [WS(node.port, path="/chat", protocol=None) for _ in range(20)]
        stop = threading.Event()
        counts = [{} for _ in listeners]
        readers = [threading.Thread(target=read_frames, args=(ws, c, stop)) for ws, c in zip(listeners, counts)]
        for r in readers: r.start()
        sender = WS(node.port, path="/chat", protocol=None)
        sent_counts = {}
        sender_reader = threading.Thread(target=read_frames, args=(sender, sent_counts, stop)); sender_reader.start()
        message = frame("flood " + "x" * 40)
        batch = message * 100
        written = blast(sender.sock, batch, 3)
        time.sleep(1)
        stop.set()
        for r in readers + [sender_reader]: r.join()
        received = sum(c.get("text", 0) for c in counts)
        print(f"/chat flood: {written // len(message):,} messages written in 3 s, {received:,} delivered to 20 "
              f"listeners; the sender's close: {sent_counts.get('close', 'none')}")


def one_client(binary):
    with Node(binary) as node:
        accepted = refused = failed = 0
        sockets = []
        for _ in range(1200):
            try:
                sockets.append(WS(node.port, path="/chat", protocol=None)); accepted += 1
            except HandshakeRefused:
                refused += 1
            except OSError:
                failed += 1
        for ws in sockets: ws.sock.close()
        print(f"one client: 1,200 /chat sockets from 127.0.0.1: {accepted} accepted, {refused} refused (503), "
              f"{failed} failed")


def rooms(binary):
    with Node(binary) as node:
        joined = refused = 0
        codes = set()
        sockets = []
        for s in range(10):
            ws = WS(node.port); sockets.append(ws)
            ws.recv_json("welcome")
            for r in range(32):
                ws.send({"type": "join", "room": f"r{s}-{r}", "ref": str(r)})
                while True:
                    answer = ws.recv_json()
                    if answer.get("type") == "joined": joined += 1; break
                    if answer.get("type") == "error": refused += 1; codes.add(answer.get("code")); break
        for ws in sockets: ws.sock.close()
        print(f"rooms: 10 sockets × 32 new rooms from one address: {joined} created, {refused} refused "
              f"({', '.join(sorted(c for c in codes if c)) or '-'})")


if __name__ == "__main__":
    binary = sys.argv[1]
    for scenario in (refused_frames, chat_flood, one_client, rooms):
        scenario(binary)
