"""Descriptors run out: a node started with an open-file limit of 256 gets 300 idle connections.

With the default connection cap (the open-file limit less 64) the connections past it are answered 503 and closed,
so descriptors never run out; with --max-connections set beyond the limit, accept fails with EMFILE and the node
backs off instead of spinning. Either way: CPU stays low (under 10 % of a core over 2 s), a log line says what
happened, and once the connections close the node serves again.

    check_fd_exhaustion.py SWITCHBOARD_BINARY
"""
import os, resource, socket, subprocess, sys, tempfile, time, urllib.error, urllib.request
from wsclient import free_port, wait_for_port as wait_port

BIN = sys.argv[1]
LIMIT, CONNECTIONS, CPU_BOUND = 256, 300, 0.10


def cpu_seconds(pid):
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def healthz(port, timeout):
    try:
        return urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=timeout).status
    except urllib.error.HTTPError as error:
        return error.code
    except OSError as error:
        return type(error).__name__


def limit_files():
    resource.setrlimit(resource.RLIMIT_NOFILE, (LIMIT, LIMIT))


def scenario(name, extra, expected_log, status_while_full):
    port = free_port()
    log = tempfile.NamedTemporaryFile(prefix="switchboard-fd-", suffix=".log", delete=False)
    node = subprocess.Popen([BIN, "--port", str(port), *extra], stdout=log, stderr=log, preexec_fn=limit_files)
    held = []
    try:
        wait_port(port)
        for _ in range(CONNECTIONS):
            held.append(socket.create_connection(("127.0.0.1", port), timeout=5))
        time.sleep(0.5)
        before = cpu_seconds(node.pid)
        time.sleep(2)
        used = cpu_seconds(node.pid) - before
        while_full = healthz(port, 2)
        for sock in held:
            sock.close()
        held = []
        deadline = time.monotonic() + 5
        while (after := healthz(port, 1)) != 200 and time.monotonic() < deadline:
            time.sleep(0.2)
        output = open(log.name).read()
        line = next((line for line in output.splitlines() if expected_log in line), None)
        problems = []
        if used > 2 * CPU_BOUND:
            problems.append(f"{used:.2f} CPU-s in 2 s with {CONNECTIONS} idle connections (bound {2 * CPU_BOUND:.2f})")
        if line is None:
            problems.append(f"no log line with {expected_log!r}")
        if while_full != status_while_full:
            problems.append(f"/healthz while full: {while_full}, expected {status_while_full}")
        if after != 200:
            problems.append(f"/healthz after the connections closed: {after}")
        if node.poll() is not None:
            problems.append(f"the node exited with {node.returncode}")
        if problems:
            raise SystemExit(f"FAIL {name}: " + "; ".join(problems) + "\n" + output[-3000:])
        print(f"ok   {name}: {used:.3f} CPU-s in 2 s, /healthz {while_full} while full and 200 after; log: {line[:160]}")
    finally:
        for sock in held:
            sock.close()
        node.terminate()
        node.wait()


# The default cap (256 - 64 = 192): the rest are refused with 503 at once, /healthz included.
scenario("ulimit -n 256, default --max-connections", [], "Connection limit reached", 503)
# No effective cap: accept fails with EMFILE; the node backs off, and /healthz waits in the backlog meanwhile.
scenario("ulimit -n 256, --max-connections 100000", ["--max-connections", "100000"],
         "accept4() failed (24: Too many open files)", "TimeoutError")
