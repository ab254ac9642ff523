#!/usr/bin/env python3
"""The chat page in headless Chromium: two windows chat both ways, HTML in a message shows as text, after a server
restart the pages reconnect by themselves and chat works again, a third window joining late sees the history, and
a window whose connection is cut shows every message sent meanwhile once it is back. Saves a screenshot. Then two
users with tokens chat, one cannot post as the other, and an anonymous look-alike nickname is refused.

With a Redis port as third argument it also runs two nodes on that Redis: a window on node B whose server is
restarted shows, once reconnected, every message sent meanwhile on node A (caught up from the Redis stream).

Usage: browser_test.py BINARY SCREENSHOT_PATH [REDIS_PORT] (run with a venv's python that has selenium)."""
import socket, subprocess, sys, threading, time
from selenium import webdriver
from selenium.common.exceptions import NoAlertPresentException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

BIN, SCREENSHOT = sys.argv[1], sys.argv[2]
REDIS_PORT = int(sys.argv[3]) if len(sys.argv) > 3 else None
XSS = "<img src=x onerror=alert(1)>"


def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]; s.close(); return port


def start_server(port, *extra):
    proc = subprocess.Popen([BIN, "--port", str(port), *extra], stdout=open("/tmp/switchboard-browser.log", "a"),
                            stderr=subprocess.STDOUT)
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close(); return proc
        except OSError:
            time.sleep(0.1)
    raise SystemExit("the server did not start")


def browser(width, height, home=None):
    """A headless Chromium; with `home`, one whose HOME (and so its NSS certificate store) is that directory."""
    import os
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for argument in ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", f"--window-size={width},{height}"]:
        options.add_argument(argument)
    env = dict(os.environ, HOME=home) if home else None
    return webdriver.Chrome(service=Service("/usr/bin/chromedriver", env=env), options=options)


def wait(driver, condition, what, timeout=15):
    WebDriverWait(driver, timeout).until(lambda d: condition(d), message=what)


def connected(driver):
    return driver.find_element(By.ID, "status").text == "connected"


class RoomsClient:
    """A minimal client of the rooms protocol (masked frames out, unmasked in), for sending many messages fast."""

    def __init__(self, port):
        import base64, os
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall((f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
                           f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
                           "Sec-WebSocket-Protocol: switchboard.chat.v1\r\n\r\n").encode())
        head = b""
        while b"\r\n\r\n" not in head:
            head += self.sock.recv(1)
        assert head.startswith(b"HTTP/1.1 101"), head
        # The client never reads after this: the server drops what it sends us once its queue is full; we only send.
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)

    def send(self, obj):
        import json, os
        payload = json.dumps(obj).encode()
        header = bytes([0x81])
        header += bytes([0x80 | len(payload)]) if len(payload) < 126 else bytes([0x80 | 126]) + len(payload).to_bytes(2, "big")
        mask = os.urandom(4)
        self.sock.sendall(header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))

    def auth(self, token):
        self.send({"type": "auth", "token": token})
        time.sleep(0.3)  # verified off the loop; requests meanwhile would wait for it anyway

    def close(self):
        self.sock.close()


def redis_command(port, *args):
    """One command to Redis over RESP; returns the raw reply line."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as redis:
        redis.sendall(("*%d\r\n" % len(args) + "".join("$%d\r\n%s\r\n" % (len(a), a) for a in args)).encode())
        return redis.recv(4096)


def messages(driver):
    """The messages of the current room as "nick: text"."""
    return driver.execute_script(
        "return [...document.querySelectorAll('#messages li:not(.system)')]"
        ".map(li => li.querySelector('.nick').textContent + ': ' + li.lastChild.textContent)")


class Proxy:
    """A TCP proxy the test can cut: cut() drops every connection and refuses new ones until resume()."""

    def __init__(self, target_port, port=0):
        self.target_port, self.open, self.pairs = target_port, True, []
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", port)); self.listener.listen(16)
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self.accept, daemon=True).start()

    def accept(self):
        while True:
            client, _ = self.listener.accept()
            if not self.open:
                client.close(); continue
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            self.pairs.append((client, upstream))
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self.pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def pipe(source, sink):
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        for s in (source, sink):
            try: s.shutdown(socket.SHUT_RDWR)
            except OSError: pass

    def cut(self):
        self.open = False
        for client, upstream in self.pairs:
            for s in (client, upstream):
                try: s.shutdown(socket.SHUT_RDWR)
                except OSError: pass
        self.pairs.clear()

    def resume(self):
        self.open = True


def say(driver, text):
    box = driver.find_element(By.ID, "message")
    box.send_keys(text)
    driver.find_element(By.ID, "send").click()


def set_nickname(driver, name):
    field = driver.find_element(By.ID, "nickname")
    field.clear(); field.send_keys(name)
    driver.find_element(By.ID, "message").click()  # leaving the field sends the new nickname


def check_metrics(metrics_port):
    """What the restarted server did since, in /metrics: three pages in the room, their messages, carol's cut."""
    import urllib.request
    text = urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).read().decode()
    samples = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            samples[name] = float(value)
    expected_at_least = {
        'switchboard_connections{endpoint="ws"}': 3,  # alice, bob and carol, all in the room now
        'switchboard_room_members': 3,
        'switchboard_handshakes_accepted_total{endpoint="ws"}': 4,  # carol twice
        'switchboard_messages_received_total{endpoint="ws"}': 8,  # auth/nick/join/say commands
        'switchboard_fanout_deliveries_total': 7 * 3,  # at least 7 messages to three pages
        'switchboard_fanout_lag_seconds_count': 7,
        'switchboard_http_requests_total{route="/",status="200"}': 1,  # carol's page, through the proxy
        'switchboard_http_requests_total{route="/ws",status="101"}': 4,
        'process_cpu_seconds_total': 0.001,
    }
    wrong = {name: samples.get(name) for name, least in expected_at_least.items() if samples.get(name, 0) < least}
    assert not wrong, f"/metrics after the browser test: {wrong}"
    closes = sum(v for k, v in samples.items() if k.startswith('switchboard_websocket_closes_total{endpoint="ws"'))
    assert closes >= 1, "carol's cut connection is not counted as a close"
    shown = ", ".join(f"{name} {samples[name]:g}" for name in expected_at_least)
    print(f"ok   /metrics after the browser test: {shown}, ws closes {closes:g}")


port, proxy_port, metrics_port = free_port(), free_port(), free_port()
# The pages come from the server's own address and from the cuttable proxy's: both are allowed origins.
origins = ("--allowed-origin", f"http://127.0.0.1:{port}", "--allowed-origin", f"http://127.0.0.1:{proxy_port}",
           "--metrics-port", str(metrics_port))
server = start_server(port, *origins)
alice, bob = browser(1000, 700), browser(390, 760)  # bob's window is phone-sized
carol = None
try:
    for driver, name in ((alice, "alice"), (bob, "bob")):
        driver.get(f"http://127.0.0.1:{port}/")
        wait(driver, connected, f"{name}'s page did not connect")
        set_nickname(driver, name)

    say(alice, "hi bob")
    wait(bob, lambda d: "alice: hi bob" in messages(d), "bob did not get alice's message")
    say(bob, "hi alice, on my phone")
    wait(alice, lambda d: "bob: hi alice, on my phone" in messages(d), "alice did not get bob's message")
    print("ok   two windows exchange messages both ways")

    say(alice, XSS)
    wait(bob, lambda d: f"alice: {XSS}" in messages(d), "the HTML message did not arrive as text")
    for driver in (alice, bob):
        assert not driver.find_elements(By.CSS_SELECTOR, "#messages img"), "a message was rendered as HTML"
        try:
            driver.switch_to.alert; raise SystemExit("an alert ran: XSS")
        except NoAlertPresentException:
            pass
    print("ok   a message with <img onerror> shows as text; no script ran")

    server.terminate(); server.wait()
    wait(alice, lambda d: not connected(d), "alice did not notice the server going away")
    server = start_server(port, *origins)
    for driver, name in ((alice, "alice"), (bob, "bob")):
        wait(driver, connected, f"{name}'s page did not reconnect", timeout=30)
    say(bob, "back after the restart")
    wait(alice, lambda d: "bob: back after the restart" in messages(d), "chat did not work after reconnecting")
    print("ok   after a server restart both pages reconnect and chat works again")

    # A third window joins late (through a proxy the test can cut) and sees the history.
    proxy = Proxy(port, proxy_port)
    carol = browser(1000, 700)
    carol.get(f"http://127.0.0.1:{proxy.port}/")
    wait(carol, connected, "carol's page did not connect")
    set_nickname(carol, "carol")
    wait(carol, lambda d: "bob: back after the restart" in messages(d), "carol did not get the history")
    print("ok   a window joining late sees the room's history")
    online = lambda d: sorted(item.text for item in d.find_elements(By.CSS_SELECTOR, "#online li"))
    wait(alice, lambda d: online(d) == ["alice", "bob", "carol"], "alice's online list does not show all three")
    print("ok   the online list shows who is in the room")

    # Carol's connection is cut; messages sent meanwhile all show once she is back, none twice.
    proxy.cut()
    wait(carol, lambda d: not connected(d), "carol did not notice the cut")
    wait(alice, lambda d: online(d) == ["alice", "bob"], "carol did not leave alice's online list")
    missed = [f"while carol was away {n}" for n in range(5)]
    for text in missed:
        say(alice, text)
    wait(bob, lambda d: f"alice: {missed[-1]}" in messages(d), "bob did not get alice's messages")
    proxy.resume()
    wait(carol, connected, "carol's page did not reconnect", timeout=30)
    wait(carol, lambda d: f"alice: {missed[-1]}" in messages(d), "carol did not catch up")
    shown = messages(carol)
    assert all(shown.count(f"alice: {text}") == 1 for text in missed), shown
    assert [m for m in shown if "while carol was away" in m] == [f"alice: {text}" for text in missed], shown
    print("ok   after a cut connection the page shows every message sent meanwhile, once, in order")

    say(alice, "see you!")
    wait(bob, lambda d: "alice: see you!" in messages(d), "last message")
    bob.save_screenshot(SCREENSHOT)
    print(f"ok   screenshot saved to {SCREENSHOT}")
    check_metrics(metrics_port)
finally:
    for driver in (alice, bob, carol):
        if driver: driver.quit()
    server.terminate(); server.wait()

# Tokens: two users sign in with tokens (the page reads #token=… as an app's token-fetch callback would get one),
# chat under the names their tokens carry; a raw client with Eve's token that claims to be Dave still posts as Eve;
# an anonymous window's look-alike nickname (Cyrillic "а" in "аlice") is refused.
SECRET = "browser-test-hmac-secret-of-32-bytes-or-more"


def token(user, name):
    return subprocess.run([BIN, "token", "--user", user, "--name", name, "--secret", SECRET],
                          capture_output=True, text=True, check=True).stdout.strip()


port = free_port()
server = start_server(port, "--jwt-secret", SECRET, "--allow-anonymous")
dave, eve, anon = browser(1000, 700), browser(1000, 700), browser(1000, 700)
try:
    for driver, user, name in ((dave, "dave", "Dave"), (eve, "eve", "Eve")):
        driver.get(f"http://127.0.0.1:{port}/#token={token(user, name)}")
        wait(driver, connected, f"{user}'s page did not connect with a token")
        field = driver.find_element(By.ID, "nickname")
        assert field.get_attribute("value") == name and not field.is_enabled(), "the name is the token's, fixed"
    say(dave, "hi eve")
    wait(eve, lambda d: "Dave @dave: hi eve" in messages(d), "eve did not get dave's message under his token's name")
    say(eve, "hi dave")
    wait(dave, lambda d: "Eve @eve: hi dave" in messages(d), "dave did not get eve's message")
    print("ok   two users with tokens chat under the names and ids their tokens carry")
    forger = RoomsClient(port)
    forger.auth(token("eve", "Eve"))
    forger.send({"type": "join", "room": "lobby"})
    forger.send({"type": "nick", "nick": "Dave"})
    forger.send({"type": "say", "room": "lobby", "text": "I am dave", "nick": "Dave", "user": "dave"})
    wait(dave, lambda d: "Eve @eve: I am dave" in messages(d), "the forger's message did not arrive as eve's")
    assert not any(m.startswith("Dave @dave: I am dave") for m in messages(dave)), messages(dave)
    forger.close()
    print("ok   a socket with eve's token cannot post as dave (nick and user fields are ignored)")
    anon.get(f"http://127.0.0.1:{port}/")
    wait(anon, connected, "the anonymous page did not connect")
    set_nickname(anon, "\u0430lice")
    notices = lambda d: d.execute_script(
        "return [...document.querySelectorAll('#messages li.system')].map(li => li.textContent)")
    wait(anon, lambda d: any("nickname" in n for n in notices(d)), "the look-alike nickname was not refused")
    say(anon, "who am I")
    wait(dave, lambda d: any(m.endswith(": who am I") for m in messages(d)), "the anonymous message did not arrive")
    assert not any(m.startswith("\u0430lice") for m in messages(dave)), messages(dave)
    print("ok   anonymous: a look-alike nickname (Cyrillic a in alice) is refused")
finally:
    for driver in (dave, eve, anon):
        driver.quit()
    server.terminate(); server.wait()

# TLS: the chat over https:// and wss:// in Chromium, which trusts a test CA made here (in its NSS store under a
# HOME of its own, as an operator's CA would be trusted system-wide) and nothing else: no certificate-error flags.
import os, tempfile
tls_dir = tempfile.mkdtemp(prefix="switchboard-tls-")
def run(*command):
    subprocess.run(command, cwd=tls_dir, check=True, capture_output=True)
run("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "2",
    "-subj", "/CN=Switchboard browser-test CA", "-keyout", "ca.key", "-out", "ca.pem")
run("openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-subj", "/CN=localhost",
    "-keyout", "server.key", "-out", "server.csr")
open(os.path.join(tls_dir, "san.ext"), "w").write("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
run("openssl", "x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
    "-days", "2", "-extfile", "san.ext", "-out", "server.pem")
nssdb = os.path.join(tls_dir, ".pki", "nssdb")
os.makedirs(nssdb)
run("certutil", "-d", f"sql:{nssdb}", "-N", "--empty-password")
run("certutil", "-d", f"sql:{nssdb}", "-A", "-t", "C,,", "-n", "switchboard-test-ca", "-i", "ca.pem")
port = free_port()
server = start_server(port, "--tls-cert", os.path.join(tls_dir, "server.pem"),
                      "--tls-key", os.path.join(tls_dir, "server.key"))
grace, heidi = browser(1000, 700, home=tls_dir), browser(1000, 700, home=tls_dir)
try:
    for driver, name in ((grace, "grace"), (heidi, "heidi")):
        driver.get(f"https://localhost:{port}/")
        wait(driver, connected, f"{name}'s page did not connect over wss://")
        set_nickname(driver, name)
    assert grace.execute_script("return location.protocol") == "https:"
    say(grace, "hello over TLS")
    wait(heidi, lambda d: "grace: hello over TLS" in messages(d), "heidi did not get grace's message over wss://")
    say(heidi, "and back")
    wait(grace, lambda d: "heidi: and back" in messages(d), "grace did not get heidi's message over wss://")
    print("ok   the chat over https:// and wss:// in Chromium, trusting only the test CA")
    # A renewed certificate, read on SIGHUP: the open pages stay connected, a new page gets the new certificate.
    run("openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-subj", "/CN=localhost",
        "-keyout", "server.key", "-out", "server.csr")
    run("openssl", "x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
        "-days", "2", "-extfile", "san.ext", "-out", "server.pem")
    server.send_signal(__import__("signal").SIGHUP)
    renewed = subprocess.run(["openssl", "x509", "-in", os.path.join(tls_dir, "server.pem"), "-noout", "-serial"],
                             capture_output=True, text=True, check=True).stdout.strip()
    for _ in range(50):
        shown = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-servername", "localhost"],
                               input="", capture_output=True, text=True).stdout
        served = subprocess.run(["openssl", "x509", "-noout", "-serial"], input=shown, capture_output=True,
                                text=True).stdout.strip()
        if served == renewed: break
        time.sleep(0.1)
    assert served == renewed, f"after SIGHUP the server shows {served}, not the renewed {renewed}"
    say(grace, "still here after the reload")
    wait(heidi, lambda d: "grace: still here after the reload" in messages(d), "the open pages lost their sockets")
    print("ok   SIGHUP: the renewed certificate is served to new connections; open pages keep chatting")
finally:
    for driver in (grace, heidi):
        driver.quit()
    server.terminate(); server.wait()

if REDIS_PORT:
    # 5,000 messages of history: the page's re-sync after each drop then has ~15 s at the pace below before what it
    # missed is trimmed (with the default 1,000, ~3 s: enough on an idle machine, not on a starved one).
    # The bulk sender below says 300 messages a second from one socket: above the default rate limit (20/s).
    redis = ("--redis", f"redis://127.0.0.1:{REDIS_PORT}", "--history-size", "5000", "--say-rate", "1000")
    port_a, port_b = free_port(), free_port()
    node_a, node_b = start_server(port_a, *redis), start_server(port_b, *redis)
    erin, frank = browser(1000, 700), browser(1000, 700)
    try:
        for driver, port, name in ((erin, port_a, "erin"), (frank, port_b, "frank")):
            driver.get(f"http://127.0.0.1:{port}/")
            wait(driver, connected, f"{name}'s page did not connect")
            set_nickname(driver, name)
        say(erin, "hello from node A")
        wait(frank, lambda d: "erin: hello from node A" in messages(d), "frank (node B) did not get erin's message")
        node_b.terminate(); node_b.wait()
        wait(frank, lambda d: not connected(d), "frank did not notice node B going away")
        meanwhile = [f"sent while node B restarts {n}" for n in range(3)]
        for text in meanwhile:
            say(erin, text)
        node_b = start_server(port_b, *redis)
        wait(frank, connected, "frank's page did not reconnect to node B", timeout=30)
        wait(frank, lambda d: f"erin: {meanwhile[-1]}" in messages(d), "frank did not catch up from Redis")
        shown = [m for m in messages(frank) if "while node B restarts" in m]
        assert shown == [f"erin: {text}" for text in meanwhile], shown
        print("ok   with Redis: a window whose server restarted shows every message sent meanwhile on another node")

        # Three drops of every node's Redis subscriber connection while 3,000 messages are sent on node B: erin's
        # page (node A) is told of each gap, re-syncs from its last message, and shows every message once, in order.
        sender = RoomsClient(port_b)
        sender.send({"type": "nick", "nick": "bulk"})
        sender.send({"type": "join", "room": "lobby"})
        time.sleep(0.5)
        # About 300 messages a second: the room's history (1,000 messages) then spans a few seconds, the time a
        # page has to re-sync after a gap before what it missed is trimmed (it would be told, not silently lose).
        for n in range(3000):
            sender.send({"type": "say", "room": "lobby", "text": f"bulk {n}"})
            if n % 750 == 375:
                reply = redis_command(REDIS_PORT, "CLIENT", "KILL", "TYPE", "pubsub")
                assert reply.startswith(b":"), reply  # the number of connections killed
            time.sleep(0.003)
        wait(erin, lambda d: "bulk: bulk 2999" in messages(d), "erin did not get the last message", timeout=60)
        shown = [m for m in messages(erin) if m.startswith("bulk: ")]
        notices = erin.execute_script(
            "return [...document.querySelectorAll('#messages li.system')].map(li => li.textContent)")
        assert shown == [f"bulk: bulk {n}" for n in range(3000)], (len(shown), shown[:3], shown[-3:], notices)
        sender.close()
        print("ok   with Redis: three subscriber-connection drops during 3,000 messages: the page shows all, once, in order")
    finally:
        erin.quit(); frank.quit()
        for node in (node_a, node_b):
            node.terminate(); node.wait()
