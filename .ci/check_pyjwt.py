#!/usr/bin/env python3
"""docs/SECURITY.md's PyJWT example, run as written: the token it makes is accepted by the
executable, carries its user and name, and opens the members-only room its rooms claim lists.

Usage: check_pyjwt.py BINARY (with a python that has PyJWT)."""
import os, re, subprocess, sys
from wsclient import WS, free_port, wait_for_port

BIN = sys.argv[1]
readme = open(os.path.join(os.path.dirname(__file__), "..", "docs", "SECURITY.md")).read()
snippet = re.search(r"in Python with PyJWT:\s*```python\n(.*?)```", readme, re.S).group(1)
secret = "pyjwt-check-hmac-secret-0123456789abcdef"
scope = {"secret": secret}
exec(snippet, scope)
token = scope["token"]


port = free_port()
server = subprocess.Popen([BIN, "--port", str(port), "--jwt-secret", secret, "--private-room", "team-*"],
                          stdout=open("/tmp/switchboard-pyjwt.log", "w"), stderr=subprocess.STDOUT)
try:
    wait_for_port(port)
    ws = WS(port)
    assert ws.recv_json()["auth"] == "required"
    ws.send({"type": "auth", "token": token})
    reply = ws.recv_json()
    assert reply["type"] == "authenticated" and reply["you"]["user"] == "42" and reply["you"]["nick"] == "Alice", reply
    ws.send({"type": "join", "room": "team-red"})
    assert ws.recv_json()["type"] == "joined"
    ws.send({"type": "join", "room": "team-blue"})
    refused = ws.recv_json()
    assert refused["code"] == "forbidden", refused
    print("ok   docs/SECURITY.md's PyJWT token is accepted: user 42, Alice, team-red open and team-blue forbidden")
finally:
    server.terminate(); server.wait()
