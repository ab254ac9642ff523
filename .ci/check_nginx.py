#!/usr/bin/env python3
"""deploy/nginx.conf, as shipped, with a real nginx in front of two switchboard nodes on one redis-server: the chat
across nodes through nginx, the Origin check behind it, the publish API, a node restart (its clients reconnect
through nginx to the other node, and chat goes on), and X-Forwarded-For believed from nginx only (the per-IP rate
limit sees each client: one client past its rate is refused while another is served).

Usage: check_nginx.py BINARY REDIS_PORT. Only the listen port and the two upstream ports of the file are changed."""
import concurrent.futures, os, re, subprocess, sys, tempfile, time, urllib.error, urllib.request
from wsclient import WS, HandshakeRefused, free_port, wait_for_port

BIN, REDIS_PORT = sys.argv[1], int(sys.argv[2])
KEY_SECRET = "nginx-check-publish-key-0123456789"
nginx_port, port_a, port_b = free_port(), free_port(), free_port()
PUBLIC = f"http://127.0.0.1:{nginx_port}"

conf = open(os.path.join(os.path.dirname(__file__), "..", "deploy", "nginx.conf")).read()
conf, listens = re.subn(r"listen 80;", f"listen 127.0.0.1:{nginx_port};", conf)
conf, a = re.subn(r"server 127\.0\.0\.1:8081 ", f"server 127.0.0.1:{port_a} ", conf)
conf, b = re.subn(r"server 127\.0\.0\.1:8082 ", f"server 127.0.0.1:{port_b} ", conf)
assert (listens, a, b) == (1, 1, 1), "deploy/nginx.conf no longer has the lines this check adapts"
work = tempfile.mkdtemp(prefix="switchboard-nginx-")
for sub in ("logs", "tmp"): os.makedirs(os.path.join(work, sub))
open(os.path.join(work, "nginx.conf"), "w").write(f"""
worker_processes 1;
pid {work}/nginx.pid;
error_log {work}/logs/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log {work}/logs/access.log;
    client_body_temp_path {work}/tmp/body;
    proxy_temp_path {work}/tmp/proxy;
    fastcgi_temp_path {work}/tmp/fastcgi;
    uwsgi_temp_path {work}/tmp/uwsgi;
    scgi_temp_path {work}/tmp/scgi;
{conf}
}}
""")
subprocess.run(["nginx", "-t", "-p", work, "-c", f"{work}/nginx.conf"], check=True, capture_output=True)


def start_node(port):
    log = open(f"/tmp/switchboard-nginx-node-{port}.log", "a")
    proc = subprocess.Popen(
        [BIN, "--port", str(port), "--redis", f"redis://127.0.0.1:{REDIS_PORT}", "--trusted-proxy", "127.0.0.1",
         "--public-url", PUBLIC, "--publish-key", f"ci:{KEY_SECRET}:news", "--connection-rate-per-ip", "10"],
        stdout=log, stderr=subprocess.STDOUT)
    for _ in range(100):
        try:
            if urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1).status == 200: return proc
        except OSError:
            pass
        time.sleep(0.1)
    raise SystemExit(f"FAIL node on {port} did not become ready")


def request(path, data=None, headers=None):
    req = urllib.request.Request(PUBLIC + path, data=data, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def chat(source="127.0.0.1"):
    return WS(nginx_port, "/chat", None, headers=[f"Origin: {PUBLIC}"], source=source)


node_a, node_b = start_node(port_a), start_node(port_b)
nginx = subprocess.Popen(["nginx", "-p", work, "-c", f"{work}/nginx.conf", "-g", "daemon off;"])
try:
    wait_for_port(nginx_port)
    status, body = request("/")
    assert status == 200 and "<h1>Switchboard chat</h1>" in body, (status, body[:200])
    print("ok   the page through nginx")

    # Round robin puts consecutive sockets on alternate nodes: among four, both nodes have some.
    sockets = [chat() for _ in range(4)]
    sockets[0].send("hello through nginx")
    for ws in sockets: assert ws.recv() == "hello through nginx"
    print("ok   /chat through nginx: four sockets over both nodes all get a message (across nodes via Redis)")

    try:
        WS(nginx_port, "/chat", None, headers=["Origin: http://evil.example"])
        raise SystemExit("FAIL a foreign origin was accepted behind nginx")
    except HandshakeRefused as refused:
        assert refused.status == 403, refused
    print("ok   Origin check behind nginx: the public origin is accepted, a foreign one gets 403")

    watcher = WS(nginx_port, "/subscribe/news", None, headers=[f"Origin: {PUBLIC}"])
    status, _ = request("/publish/news", b"published through nginx",
                        {"Authorization": f"Bearer {KEY_SECRET}", "Content-Type": "text/plain"})
    assert status == 204, status
    assert watcher.recv() == "published through nginx"
    print("ok   POST /publish through nginx reaches a /subscribe socket")

    # Node A restarts: its sockets are closed (going away); reconnecting through nginx lands on B meanwhile.
    node_a.terminate(); node_a.wait()
    survivors, closed = [], 0
    for ws in sockets:
        ws.sock.settimeout(0.5)
        try:
            ws.recv(); survivors.append(ws)
        except EOFError:
            closed += 1
        except OSError:  # a timeout: the socket is on node B, which stays
            ws.sock.settimeout(10); survivors.append(ws)
    assert closed >= 1, "no socket was on node A"
    reconnected = [chat() for _ in range(closed)]
    everyone = survivors + reconnected
    everyone[-1].send("after node A went away")
    for ws in everyone: assert ws.recv() == "after node A went away"
    node_a = start_node(port_a)
    fresh = [chat() for _ in range(2)]
    fresh[0].send("node A is back")
    for ws in everyone + fresh: assert ws.recv() == "node A is back"
    print(f"ok   node restart: {closed} socket(s) closed with node A reconnected through nginx; chat went on, "
          "and after A is back sockets on both nodes chat")

    # X-Forwarded-For: the nodes see each client behind nginx. 127.0.0.2 goes past --connection-rate-per-ip
    # (a burst of 20 per node); 127.0.0.3, through the same nginx, is still served. First nginx must have node A
    # back: it sends nothing to a failed server for fail_timeout (5 s), and a node it took back in the middle of this
    # check would bring a full bucket of its own.
    time.sleep(5.5)
    for _ in range(4):
        chat().sock.close()  # round robin: node A is tried, and is up
    refused = 0
    for _ in range(60):
        try:
            WS(nginx_port, "/chat", None, headers=[f"Origin: {PUBLIC}"], source="127.0.0.2").sock.close()
        except HandshakeRefused as error:
            assert error.status == 503, error
            refused += 1
    assert refused > 0, "client 127.0.0.2 was never limited"
    WS(nginx_port, "/chat", None, headers=[f"Origin: {PUBLIC}"], source="127.0.0.3").sock.close()
    print(f"ok   X-Forwarded-For from nginx: client 127.0.0.2 refused {refused} of 60 handshakes past its rate, "
          "client 127.0.0.3 served")
    # Spoofing: a client that sends its own X-Forwarded-For cannot pass as another address (nginx appends the real
    # one). Twenty spoofed handshakes at once: as the address it claims (a fresh bucket of 20 on each node) all
    # twenty would pass; as itself, on buckets just emptied, only what they refill meanwhile (10 a second each).
    def spoofed():
        try:
            WS(nginx_port, "/chat", None, headers=[f"Origin: {PUBLIC}", "X-Forwarded-For: 127.0.0.9"],
               source="127.0.0.2").sock.close()
            return True
        except HandshakeRefused as error:
            assert error.status == 503, error
            return False
    with concurrent.futures.ThreadPoolExecutor(20) as pool:
        spoofed_served = sum(pool.map(lambda _: spoofed(), range(20)))
    if spoofed_served >= 15:
        raise SystemExit(f"FAIL a spoofed X-Forwarded-For got around the rate limit: {spoofed_served} of 20 served")
    print(f"ok   a client's own X-Forwarded-For does not get it around the limit ({spoofed_served} of 20 served, "
          "all at once)")
finally:
    nginx.terminate(); nginx.wait()
    for node in (node_a, node_b):
        node.terminate(); node.wait()
