#!/usr/bin/env python3
"""Logs: with --log-format json every line is one JSON object (time, level, label, message, source, metadata), and
at trace level, through a token sign-in, a subscription with a bearer token, a publish with a key and an unreachable
Redis with a password, no secret, key, token or password appears in them.

Usage: check_logs.py BINARY."""
import json, subprocess, sys, time, urllib.request
from wsclient import WS, HandshakeRefused, free_port, wait_for_port

BIN = sys.argv[1]
secret = "log-check-jwt-secret-0123456789abcdefghij"
publish_key = "log-check-publish-key-0123456789"
password = "hunter2-log-check-password"
port = free_port()
token = subprocess.run([BIN, "token", "--user", "alice", "--secret", secret], check=True, capture_output=True,
                       text=True).stdout.strip()
log_path = "/tmp/switchboard-logs.json"
server = subprocess.Popen(
    [BIN, "--port", str(port), "--log-level", "trace", "--log-format", "json", "--jwt-secret", secret,
     "--allow-anonymous", "--publish-key", f"ops:{publish_key}:user:*",
     "--redis", f"redis://:{password}@127.0.0.1:{free_port()}"],
    stdout=subprocess.DEVNULL, stderr=open(log_path, "w"))
try:
    wait_for_port(port)
    ws = WS(port)
    ws.recv_json("welcome")
    ws.send({"type": "auth", "token": token})
    assert ws.recv_json()["type"] == "authenticated"
    ws.send({"type": "auth", "token": token + "x"})  # a refused refresh, logged as refused
    ws.recv_json()
    try:
        WS(port, "/subscribe/user:alice", f"switchboard.v1, bearer.{token}")
        raise SystemExit("FAIL /subscribe was accepted while its Redis is unreachable")
    except HandshakeRefused as refused:
        assert refused.status == 503, refused  # no broker, no subscription: refused, and the token in it not logged
    request = urllib.request.Request(f"http://127.0.0.1:{port}/publish/user:alice", data=b"hello",
                                     headers={"Authorization": f"Bearer {publish_key}"})
    try:
        urllib.request.urlopen(request, timeout=5)
    except urllib.error.HTTPError as error:
        assert error.code == 503, error  # Redis is unreachable: the publish fails, and that is logged
    time.sleep(1)
finally:
    server.terminate(); server.wait()
lines = open(log_path).read().splitlines()
assert len(lines) >= 3, lines
for line in lines:
    entry = json.loads(line)
    assert {"time", "level", "label", "message", "source"} <= entry.keys(), entry
for needle in (secret, publish_key, password, token, token.split(".")[2]):
    leaks = [line for line in lines if needle in line]
    assert not leaks, f"a secret reached the log: {leaks[:2]}"
print(f"ok   {len(lines)} log lines at trace level, each one JSON object; no secret, key, token or password in them")
