#!/usr/bin/env python3
"""Two switchboard processes on one redis-server: clients on A and B chat together, a publish on A reaches
B's subscribers, rooms share history and presence, and after kill -9 of A B's clients carry on and A's users leave
B's presence list within the presence TTL.

Usage: check_two_nodes.py BINARY REDIS_PORT. Uses only the standard library (a minimal WebSocket client)."""
import subprocess, sys, time, urllib.request
from wsclient import WS, free_port

BIN, REDIS_PORT = sys.argv[1], int(sys.argv[2])
TOKEN = "two-nodes-check-token-0123456789"


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


def publish(port, channel, body):
    request = urllib.request.Request(f"http://127.0.0.1:{port}/publish/{channel}", data=body.encode(),
                                     headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "text/plain"})
    return urllib.request.urlopen(request, timeout=5).status


port_a, port_b = free_port(), free_port()
node_a, node_b = start_node(port_a), start_node(port_b)
try:
    alice, bob = WS(port_a, "/chat", None), WS(port_b, "/chat", None)
    watcher = WS(port_b, "/subscribe/alerts", None)
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
