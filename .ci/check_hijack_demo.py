#!/usr/bin/env python3
"""Checks `switchboard hijack-demo` byte for byte against the results of the seed's hijack.ru on unicorn.

usage: check_hijack_demo.py PORT
"""
import socket
import sys

PORT = int(sys.argv[1])
failures = []


def exchange(data, timeout=5.0):
    """Sends data on a fresh connection, reads until the server closes; returns (bytes, closed)."""
    s = socket.create_connection(("127.0.0.1", PORT), timeout=timeout)
    s.sendall(data)
    out = b""
    try:
        while True:
            chunk = s.recv(65536)
            if not chunk:
                return out, True
            out += chunk
    except socket.timeout:
        return out, False
    finally:
        s.close()


def check(name, condition, detail=""):
    print(("ok   " if condition else "FAIL ") + name + (f": {detail}" if detail and not condition else ""))
    if not condition:
        failures.append(name)


for version in ("1.1", "1.0"):
    out, closed = exchange(f"GET /hijack_req HTTP/{version}\r\nHost: 127.0.0.1\r\n\r\n".encode())
    check(f"GET /hijack_req HTTP/{version}: exact bytes", out == b"HTTP/1.0 200 OK\r\n\r\nrequest.hijacked", repr(out))
    check(f"GET /hijack_req HTTP/{version}: connection closed", closed)

out, closed = exchange(b"GET /hijack_res HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
head, _, body = out.partition(b"\r\n\r\n")
lines = head.split(b"\r\n")
headers = {k.lower(): v for k, _, v in (line.partition(b": ") for line in lines[1:])}
check("GET /hijack_res: status 200", lines[0] == b"HTTP/1.1 200 OK", repr(lines[0]))
check("GET /hijack_res: Content-Length 17", headers.get(b"content-length") == b"17", repr(headers))
check("GET /hijack_res: Content-Type text/plain", headers.get(b"content-type") == b"text/plain", repr(headers))
check("GET /hijack_res: no chunked framing", b"transfer-encoding" not in headers, repr(headers))
check("GET /hijack_res: body", body == b"response.hijacked", repr(body))
check("GET /hijack_res: connection closed", closed)

for i in range(300):
    path = "/hijack_req" if i % 2 == 0 else "/hijack_res"
    out, closed = exchange(f"GET {path} HTTP/1.1\r\nHost: t\r\n\r\n".encode())
    if not closed or not out.endswith(b".hijacked"):
        check(f"request {i} to {path} after {i} hijacks", False, repr(out))
        break
else:
    check("300 hijacks: DieIfUsed never touched, the process serves on", True)

out, closed = exchange(
    b"GET /other HTTP/1.1\r\nHost: t\r\n\r\nGET /hijack_req HTTP/1.1\r\nHost: t\r\n\r\n"
)
first_head, _, rest = out.partition(b"\r\n\r\n")
first_headers = {k.lower(): v for k, _, v in (line.partition(b": ") for line in first_head.split(b"\r\n")[1:])}
length = int(first_headers.get(b"content-length", b"-1"))
check("another path: an ordinary HTTP response", first_head.startswith(b"HTTP/1.1 404 Not Found\r\n") and length >= 0,
      repr(first_head))
check(
    "hijack on the second request of a keep-alive connection",
    rest[length:] == b"HTTP/1.0 200 OK\r\n\r\nrequest.hijacked" and closed,
    repr(rest),
)

print(f"{len(failures)} failed" if failures else "all hijack-demo checks passed")
sys.exit(1 if failures else 0)
