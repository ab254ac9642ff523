#!/usr/bin/env python3
"""scripts/abuse-audit.py SWITCHBOARD_BIN [--redis] [--only NAME,...]: the second audit's attacks, as verdicts.

Issue 21's findings, each tried from this machine against a node of its own started from SWITCHBOARD_BIN (default
limits unless the scenario names a setting, set through the environment so that an older build reads it too). Each
prints what the attacker got and what it cost the node, and whether the limit holds; the exit status is the number
that do not. Run it against two builds to compare them (docs/LIMITS.md has the limits; the tests in Tests/ hold each
one in CI). `--redis` starts a redis-server of its own and runs the scenarios where the broker matters through it.

Standard library, the openssl command (an ES256 key) and, for --redis, redis-server. The figures depend on the
machine; the verdicts should not.
"""
import os, sys, time
from concurrent.futures import ThreadPoolExecutor

sys.path.insert(0, os.path.dirname(__file__))
from abuse_scenarios import SCENARIOS, Redis  # noqa: E402


def main():
    args = sys.argv[1:]
    if not args or args[0].startswith("-"):
        raise SystemExit(__doc__)
    binary, with_redis = os.path.abspath(args[0]), "--redis" in args
    only = args[args.index("--only") + 1].split(",") if "--only" in args else None
    chosen = [s for s in SCENARIOS if (only is None or s.name in only)
              and ((s.redis or s.redis_only) if with_redis else not s.redis_only)]
    redis = Redis() if with_redis else None
    rows = []
    try:
        # The slow-body scenario waits a minute for a deadline; it runs beside the others, on a node of its own.
        slow = [s for s in chosen if s.background]
        with ThreadPoolExecutor(max_workers=max(1, len(slow))) as pool:
            pending = [(s, pool.submit(timed, s, binary, redis)) for s in slow]
            for scenario in (s for s in chosen if not s.background):
                rows.append(report(scenario, *timed(scenario, binary, redis)))
            for scenario, future in pending:
                rows.append(report(scenario, *future.result()))
    finally:
        if redis: redis.stop()
    failing = [name for name, holds in rows if not holds]
    print(f"\n{len(rows) - len(failing)} of {len(rows)} hold" + (f"; not: {', '.join(failing)}" if failing else ""))
    sys.exit(len(failing))


def timed(scenario, binary, redis):
    try:
        return scenario.run(binary, redis)
    except Exception as error:  # an attack the node did not survive, or a build without the endpoint
        return f"{type(error).__name__}: {error}", False


def report(scenario, figure, holds):
    print(f"{'holds' if holds else 'FAILS'}  #{scenario.finding} {scenario.name}: {figure}", flush=True)
    return scenario.name, holds


if __name__ == "__main__":
    started = time.monotonic()
    try:
        main()
    finally:
        print(f"({time.monotonic() - started:.0f} s)", file=sys.stderr)
