#!/usr/bin/env python3
"""Keys from a JWKS URL, rotated: the executable fetches an identity provider's JWKS document (served here over
HTTP), accepts tokens signed with its key, refuses a key it does not list yet, and once a second key is published
beside the first accepts tokens of both (old tokens stay valid until their exp).

Usage: check_jwks.py BINARY. Standard library and the openssl command only."""
import base64, functools, http.server, json, os, re, subprocess, sys, tempfile, threading, time
from wsclient import WS, free_port, wait_for_port

BIN = sys.argv[1]
work = tempfile.mkdtemp()


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


def auth(port, tok):
    ws = WS(port)
    assert ws.recv_json()["auth"] == "required"
    ws.send({"type": "auth", "token": tok})
    reply = ws.recv_json()
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
    wait_for_port(port)
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
