"""With Redis unreachable: /healthz (liveness) answers 200, /readyz (a round trip to the broker) 503 with a reason."""
import sys
import urllib.error
import urllib.request

base = sys.argv[1]
assert urllib.request.urlopen(base + "/healthz").status == 200, "liveness"
try:
    urllib.request.urlopen(base + "/readyz")
    raise SystemExit("FAIL /readyz said ready without Redis")
except urllib.error.HTTPError as error:
    assert error.code == 503, error.code
    print("ok   /readyz without Redis: 503 " + error.read().decode().strip())
