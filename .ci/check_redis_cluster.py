#!/usr/bin/env python3
"""Redis Cluster failures under traffic: no message lost silently, and how long clients wait.

A 3-primary + 3-replica Redis Cluster (Debian's redis-server 7, on free ports, node timeout 1 s) and two Switchboard
nodes (--redis-cluster). A sender on node A says a numbered message in each of 12 rooms (spread over all three
primaries) every 50 ms; a receiver on node B is in all of them and, on each `gap` frame, re-syncs the room
(`join` with `since` its last id). Per fault: kill -9 of a primary (its replica is promoted), SIGSTOP of a primary
for longer than the command timeout, a slot range migrated (redis-cli --cluster reshard), a primary added (and
slots moved to it), a seed node down when a node starts, and a primary's clients paused (CLIENT PAUSE: the
subscriber connection goes silent, the probe notices).

For each fault: every message Redis stored (each room's stream, read at the end) must have reached the receiver,
live or by its re-sync: one that did not, with no gap to tell, is lost silently (must be 0). Printed as a table:
messages stored, lost silently, gap frames, and the time from the fault being over (the replica promoted, the
process resumed, the migration done) to a message's delivery, p50 and p99, over the messages sent meanwhile, and
how long /readyz said not ready (it must, while a primary is unreachable, and must say ready again after).

Usage: check_redis_cluster.py SWITCHBOARD_BINARY [--quick]"""
import json, os, signal, socket, struct, subprocess, sys, tempfile, threading, time, urllib.request
from wsclient import WS, free_port, wait_for_port

BIN = sys.argv[1]
ROOMS = [f"room{n}" for n in range(12)]
SEND_EVERY = 0.05
STARTED = [0.0]
FAILURES = []
REDIS_TIMEOUT = 1000  # cluster-node-timeout, ms


def low_port():
    """A free port whose cluster bus port (+10000) is below the ephemeral range too."""
    import random
    for _ in range(200):
        port = random.randint(20000, 22000)
        if all(can_bind(p) for p in (port, port + 10000)):
            return port
    raise SystemExit("no free port pair")


def can_bind(port):
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", port)); return True
    except OSError:
        return False
    finally:
        s.close()


def cli(port, *args, check=True):
    out = subprocess.run(["redis-cli", "-p", str(port), *args], capture_output=True, text=True, timeout=60)
    if check and out.returncode != 0:
        raise SystemExit(f"redis-cli {args}: {out.stderr}")
    return out.stdout


class Cluster:
    def __init__(self, count=6):
        self.dir = tempfile.mkdtemp(prefix="switchboard-cluster-")
        self.procs = {}
        self.ports = []
        for _ in range(count):
            self.start(low_port())
        cli(self.ports[0], "--cluster", "create", *[f"127.0.0.1:{p}" for p in self.ports],
            "--cluster-replicas", "1", "--cluster-yes")
        self.wait_ok()

    def start(self, port):
        d = os.path.join(self.dir, str(port)); os.makedirs(d, exist_ok=True)
        self.procs[port] = subprocess.Popen(
            ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--cluster-enabled", "yes",
             "--cluster-config-file", "nodes.conf", "--cluster-node-timeout", str(REDIS_TIMEOUT), "--save", "",
             # A replica of an idle primary may fail over however long ago it last heard from it (the default
             # factor refuses when the primary was quiet for a while, as in a test).
             "--cluster-replica-validity-factor", "0",
             "--appendonly", "no", "--dir", d, "--logfile", "redis.log"], stdout=subprocess.DEVNULL)
        if port not in self.ports: self.ports.append(port)
        for _ in range(100):
            try:
                if cli(port, "ping", check=False).strip() == "PONG": return
            except Exception:
                pass
            time.sleep(0.05)
        raise SystemExit(f"redis-server on {port} did not start")

    def alive(self):
        return [p for p, proc in self.procs.items() if proc.poll() is None]

    def nodes(self):
        """(port, id, role, slots) of every node the cluster knows, asked of an alive node."""
        for port in self.alive():
            out = cli(port, "cluster", "nodes", check=False)
            if out.strip():
                rows = []
                for line in out.strip().splitlines():
                    f = line.split()
                    rows.append((int(f[1].split(":")[1].split("@")[0]), f[0], f[2], f[8:]))
                return rows
        return []

    def primaries(self):
        return [port for port, _, role, slots in self.nodes() if "master" in role and "fail" not in role and slots]

    def wait_ok(self, timeout=30):
        deadline = time.time() + timeout
        while time.time() < deadline:
            states = [cli(p, "cluster", "info", check=False) for p in self.alive()]
            if states and all("cluster_state:ok" in s for s in states) and len(self.primaries()) >= 3:
                return
            time.sleep(0.1)
        raise SystemExit("FAIL the cluster did not become ok")

    def owner(self, key):
        slot = int(cli(self.alive()[0], "cluster", "keyslot", key).strip())
        for port, _, role, slots in self.nodes():
            if "master" not in role or "fail" in role: continue
            for r in slots:
                if r.startswith("["): continue
                lo, _, hi = r.partition("-")
                if int(lo) <= slot <= int(hi or lo): return port
        return None

    def pid(self, port):
        return self.procs[port].pid

    def stop(self):
        for proc in self.procs.values():
            if proc.poll() is None: proc.kill()
        for proc in self.procs.values():
            try: proc.wait(5)
            except Exception: pass


def start_node(cluster, seeds, port=None, log="node"):
    port = port or free_port()
    args = [BIN, "--port", str(port), "--redis-cluster", ",".join(f"redis://127.0.0.1:{s}" for s in seeds),
            "--say-rate", "1000", "--exempt-loopback", "--max-rooms", "1000", "--log-level", "info"]
    proc = subprocess.Popen(args, stdout=open(f"/tmp/switchboard-cluster-{log}.log", "a"), stderr=subprocess.STDOUT)
    wait_for_port(port)
    deadline = time.time() + 20
    while time.time() < deadline:
        try:
            if urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2).status == 200: return proc, port
        except Exception:
            pass
        time.sleep(0.1)
    raise SystemExit(f"FAIL node on {port} did not become ready; see /tmp/switchboard-cluster-{log}.log")


class Peer:
    """A rooms socket read by a thread of its own (pings answered), joined to every room."""

    def __init__(self, port, on_frame):
        self.ws = WS(port, "/ws", "switchboard.chat.v1")
        self.on_frame = on_frame
        self.lock = threading.Lock()
        self.closed = None
        self.thread = threading.Thread(target=self.read, daemon=True); self.thread.start()

    def send(self, obj):
        data = json.dumps(obj).encode(); mask = os.urandom(4)
        header = bytes([0x81, 0x80 | len(data)]) if len(data) < 126 else bytes([0x81, 0xFE]) + struct.pack("!H", len(data))
        with self.lock:
            self.ws.sock.sendall(header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(data)))

    def read(self):
        try:
            while True:
                opcode, payload = self.ws.recv_frame()
                if opcode == 0x9:
                    mask = os.urandom(4)
                    with self.lock:
                        self.ws.sock.sendall(bytes([0x8A, 0x80 | len(payload)]) + mask
                                             + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))
                elif opcode == 0x1:
                    self.on_frame(json.loads(payload), time.time())
                elif opcode == 0x8:
                    self.closed = payload[:2]; return
        except Exception as error:
            self.closed = str(error)

    def close(self):
        try: self.ws.sock.close()
        except Exception: pass


class Receiver:
    def __init__(self, port):
        self.lock = threading.Lock()
        self.got = {r: {} for r in ROOMS}  # room -> text -> receive time
        self.last = {}
        self.gaps = 0
        self.gap_times = {}
        self.joined = set()
        self.peer = Peer(port, self.frame)
        for room in ROOMS: self.peer.send({"type": "join", "room": room})
        deadline = time.time() + 10
        while len(self.joined) < len(ROOMS) and time.time() < deadline: time.sleep(0.01)
        if len(self.joined) < len(ROOMS): raise SystemExit(f"FAIL the receiver joined {len(self.joined)} rooms")

    def take(self, room, messages, at):
        for m in messages:
            self.got[room].setdefault(m["text"], at)
            self.last[room] = m["id"]

    def frame(self, f, at):
        kind = f.get("type"); room = f.get("room")
        with self.lock:
            if kind == "message": self.take(room, [f], at)
            elif kind in ("joined", "history"):
                self.joined.add(room); self.take(room, f.get("messages", []), at)
            elif kind == "gap":
                self.gaps += 1
                self.gap_times.setdefault(room, []).append(round(at - STARTED[0], 2))
                self.resync(room, after=0)
            elif kind == "error" and f.get("code") == "unavailable" and room:
                # The re-sync could not read the history (Redis failing over): join again, as the protocol says.
                self.resync(room, after=0.2)

    def resync(self, room, after):
        request = {"type": "join", "room": room}
        if room in self.last: request["since"] = self.last[room]

        def send():
            time.sleep(after)
            self.peer.send(request)
        threading.Thread(target=send, daemon=True).start()


class Sender:
    def __init__(self, port):
        self.sent = []  # (room, text, time)
        self.errors = 0
        self.peer = Peer(port, self.frame)
        for room in ROOMS: self.peer.send({"type": "join", "room": room})
        time.sleep(1)
        self.running = False
        self.seq = 0

    def frame(self, f, at):
        if f.get("type") == "error": self.errors += 1

    def run(self):
        self.running = True
        while self.running:
            now = time.time()
            for room in ROOMS:
                self.seq += 1
                text = f"{room}|{self.seq}|{now:.6f}"
                try:
                    self.peer.send({"type": "say", "room": room, "text": text})
                except OSError:
                    return
            time.sleep(SEND_EVERY)


def stored(cluster):
    """Every message Redis holds, per room: the texts in each room's stream."""
    out = {}
    for room in ROOMS:
        port = cluster.owner(f"room:{room}")
        lines = cli(port, "-c", "xrange", f"switchboard:{{room:{room}}}:stream", "-", "+").splitlines()
        texts = []
        for line in lines:
            if line.startswith("{"):
                try: texts.append(json.loads(line)["text"])
                except (ValueError, KeyError): pass
        out[room] = texts
    return out


class Readiness:
    """Polls both nodes' /readyz every 50 ms: how long either said not ready, and whether both ended ready."""
    def __init__(self, ports):
        self.ports, self.running, self.not_ready, self.last = ports, True, 0.0, {}

    def ready(self, port):
        try:
            return urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1).status == 200
        except Exception:
            return False

    def run(self):
        while self.running:
            began = time.time()
            self.last = {port: self.ready(port) for port in self.ports}
            if not all(self.last.values()): self.not_ready += max(0.05, time.time() - began)
            time.sleep(0.05)


def percentile(values, p):
    if not values: return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def scenario(name, cluster, seeds, fault, quick, must_be_unready=False):
    """Runs traffic, the fault (which returns when it is over), traffic again; returns the table row."""
    # Streams of earlier scenarios stay: only this scenario's messages are counted.
    node_a, port_a = start_node(cluster, seeds, log=f"{name}-a")
    node_b, port_b = start_node(cluster, seeds, log=f"{name}-b")
    receiver = Receiver(port_b)
    sender = Sender(port_a)
    begun = time.time()
    readiness = Readiness([port_a, port_b])
    threading.Thread(target=readiness.run, daemon=True).start()
    threading.Thread(target=sender.run, daemon=True).start()
    time.sleep(1.5)
    started = time.time()
    STARTED[0] = started
    recovered = fault()
    time.sleep(3 if quick else 5)
    sender.running = False
    time.sleep(4)
    readiness.running = False
    ready_at_end = all(readiness.ready(port) for port in (port_a, port_b))
    texts = stored(cluster)
    ours = {room: [t for t in texts[room] if float(t.split("|")[2]) >= begun] for room in ROOMS}
    with receiver.lock:
        lost = [(room, t) for room in ROOMS for t in ours[room] if t not in receiver.got[room]]
        delays, waits = [], []
        for room in ROOMS:
            for t in ours[room]:
                sent_at = float(t.split("|")[2])
                if sent_at < started or t not in receiver.got[room]: continue
                # From when the fault was over (or the message sent, if later): 0 if it came before.
                delays.append(max(0.0, receiver.got[room][t] - max(sent_at, recovered)))
                waits.append(receiver.got[room][t] - sent_at)
        gaps = receiver.gaps
    receiver.peer.close(); sender.peer.close()
    for proc in (node_a, node_b):
        proc.terminate(); proc.wait(10)
    total = sum(len(v) for v in ours.values())
    row = (name, total, len(lost), gaps, percentile(delays, 50), percentile(delays, 99), sender.errors,
           recovered - started, percentile(waits, 99), readiness.not_ready)
    print(f"ok   {name}: {total} stored, {len(lost)} lost silently, {gaps} gap frames; the fault lasted "
          f"{row[7]:.2f} s; delivery after it p50 {row[4]:.3f} s p99 {row[5]:.3f} s; a message's wait p99 "
          f"{row[8]:.3f} s; {sender.errors} says refused meanwhile; /readyz not ready for {row[9]:.2f} s", flush=True)
    if not ready_at_end:
        FAILURES.append(f"{name}: a node's /readyz still says not ready after the fault")
    if must_be_unready and readiness.not_ready == 0:
        FAILURES.append(f"{name}: /readyz said ready all along while a primary was unreachable")
    if lost:
        FAILURES.append(f"{name}: {len(lost)} lost silently")
        print(f"FAIL {name}: lost silently, e.g. {lost[:5]}")
        by_room = {}
        for room, t in lost: by_room.setdefault(room, []).append(float(t.split("|")[2]) - started)
        for room, times in sorted(by_room.items()):
            print(f"     {room}: {len(times)} lost, sent {min(times):.2f}..{max(times):.2f} s after the fault; "
                  f"received {len(receiver.got[room])}; gaps at {receiver.gap_times.get(room, [])}")
    return row


def main():
    quick = "--quick" in sys.argv
    cluster = Cluster()
    rows = []
    try:
        seeds = cluster.ports[:2]

        def primary_of_most_rooms():
            owners = [cluster.owner(f"room:{r}") for r in ROOMS]
            return max(set(owners), key=owners.count)

        def kill_primary():
            victim = primary_of_most_rooms()
            cluster.procs[victim].kill()
            deadline = time.time() + 20
            while time.time() < deadline:
                if victim not in cluster.primaries() and len(cluster.primaries()) >= 3:
                    break
                time.sleep(0.05)
            over = time.time()
            cluster.start(victim)  # back as a replica of its successor, for the next scenarios
            return over

        def stop_primary():
            victim = primary_of_most_rooms()
            os.kill(cluster.pid(victim), signal.SIGSTOP)
            time.sleep(4)  # past the 3 s command timeout and the 1 s node timeout: the replica takes over
            os.kill(cluster.pid(victim), signal.SIGCONT)
            over = time.time()
            cluster.wait_ok()
            return over

        def reshard():
            source = primary_of_most_rooms()
            target = next(p for p in cluster.primaries() if p != source)
            ids = {port: node_id for port, node_id, _, _ in cluster.nodes()}
            cli(source, "--cluster", "reshard", f"127.0.0.1:{source}", "--cluster-from", ids[source],
                "--cluster-to", ids[target], "--cluster-slots", "2000", "--cluster-yes")
            return time.time()

        def add_primary():
            port = low_port()
            cluster.start(port)
            cli(port, "--cluster", "add-node", f"127.0.0.1:{port}", f"127.0.0.1:{cluster.primaries()[0]}")
            time.sleep(2)
            ids = {p: node_id for p, node_id, _, _ in cluster.nodes()}
            # Most slots of the primary with most rooms: rooms certainly move to the new one.
            source = primary_of_most_rooms()
            cli(port, "--cluster", "reshard", f"127.0.0.1:{port}", "--cluster-from", ids[source],
                "--cluster-to", ids[port], "--cluster-slots", "4000", "--cluster-yes")
            return time.time()

        def pause_primary():
            victim = primary_of_most_rooms()
            cli(victim, "client", "pause", "3000", "write")
            time.sleep(3)
            return time.time()

        rows.append(scenario("kill -9 of a primary", cluster, seeds, kill_primary, quick, must_be_unready=True))
        rows.append(scenario("SIGSTOP of a primary, 4 s", cluster, seeds, stop_primary, quick, must_be_unready=True))
        rows.append(scenario("2,000 slots resharded", cluster, seeds, reshard, quick))
        rows.append(scenario("a primary added, 4,000 slots moved to it", cluster, seeds, add_primary, quick))
        rows.append(scenario("CLIENT PAUSE 3 s on a primary", cluster, seeds, pause_primary, quick))
        # A seed down at start: the node reads the topology from the next seed.
        dead = low_port()
        rows.append(scenario("a seed node down at start", cluster, [dead] + seeds[:1], lambda: time.time(), quick))
    finally:
        cluster.stop()
    print("\n| fault | lasted | messages stored | lost silently | gap frames | delivery after the fault p50 | p99 "
          "| a message's wait p99 | says refused | /readyz not ready |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name, total, lost, gaps, p50, p99, refused, lasted, wait, unready in rows:
        print(f"| {name} | {lasted:.2f} s | {total} | {lost} | {gaps} | {p50:.3f} s | {p99:.3f} s | {wait:.3f} s "
              f"| {refused} | {unready:.2f} s |")
    if FAILURES:
        raise SystemExit("FAIL " + "; ".join(FAILURES))


if __name__ == "__main__":
    main()
