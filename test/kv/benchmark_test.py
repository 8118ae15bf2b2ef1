#!/usr/bin/env python3
"""redis-benchmark against the server under test runs without errors (issue 8, part 4).

Runs `redis-benchmark -t set,get,incr,mset -n 100000 -c 50 -P 16 -q` against KV_SERVER
(kvlib.py) started with --sync always, and checks: exit status 0, a "requests per second"
line for each of SET, GET, INCR and MSET, no error line; afterwards, without -r the benchmark
uses two keys only, so DBSIZE must be exactly 2, the INCR counter exactly 100000 (every
acknowledged INCR applied once) and key:__rand_int__ a 3-byte value. Then the server is
stopped with SIGTERM (exit status 0 expected) and restarted on the same directory, and the
same checks must hold (persistence). Between the two, redis-benchmark runs 20,000 INCRs
over the server's unix socket (--unixsocket), and the counter must then be 120000.
"""

import os
import re
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kvlib  # noqa: E402

N = 100000


def check_state(port, what, counter=N):
    c = kvlib.Conn(port)
    errors = []
    got = {"DBSIZE": c.call("DBSIZE"), "counter": c.call("GET", "counter:__rand_int__"),
           "key": c.call("GET", "key:__rand_int__")}
    c.close()
    want = {"DBSIZE": b":2\r\n", "counter": b"$%d\r\n%d\r\n" % (len(str(counter)), counter),
            "key": b"$3\r\n"}
    for k in want:
        if got[k][:len(want[k])] != want[k] or (k == "key" and len(got[k]) != 9):
            errors.append(f"{what}: {k} is {got[k]!r}, expected {want[k]!r}"
                          + ("..." if k == "key" else ""))
    return errors


def main():
    argv = kvlib.kv_command()
    with tempfile.TemporaryDirectory(prefix="kv-bench-test-") as tmp:
        d = os.path.join(tmp, "sut")
        sock = os.path.join(tmp, "kv.sock")
        unix = (["--unixsocket", sock], ["--unixsocket", sock, "--unixsocketperm", "700"])
        srv = kvlib.start_kv(argv, d, durable=True, extra=unix[0], redis_extra=unix[1])
        try:
            cmd = ["redis-benchmark", "-h", "127.0.0.1", "-p", str(srv.port),
                   "-t", "set,get,incr,mset", "-n", str(N), "-c", "50", "-P", "16", "-q"]
            print("$", " ".join(cmd))
            p = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
            out = p.stdout + p.stderr
            # -q prints progress with \r; keep the final lines
            lines = [ln.split("\r")[-1].strip() for ln in out.split("\n") if ln.strip()]
            print("\n".join(ln for ln in lines if "rps=" not in ln))
            errors = []
            if p.returncode != 0:
                errors.append(f"redis-benchmark exited with {p.returncode}")
            for t in ("SET", "GET", "INCR", "MSET (10 keys)"):
                if not any(re.match(re.escape(t) + r": [0-9.]+ requests per second", ln)
                           for ln in lines):
                    errors.append(f"no result line for {t}")
            bad = [ln for ln in lines if re.search(r"error|ERR|WRONG|closed", ln, re.I)]
            errors += [f"error output: {ln}" for ln in bad]
            errors += check_state(srv.port, "after the benchmark")
            # the same server over its unix socket: 20,000 more INCRs
            cmd = ["redis-benchmark", "-s", sock, "-t", "incr", "-n", str(N // 5), "-c", "20",
                   "-P", "4", "-q"]
            print("$", " ".join(cmd))
            p = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
            last = [ln.split("\r")[-1].strip() for ln in p.stdout.split("\n") if ln.strip()]
            print("\n".join(last[-1:]))
            if p.returncode != 0 or not last or "requests per second" not in last[-1]:
                errors.append(f"redis-benchmark over the unix socket failed: {p.stdout[-300:]} "
                              f"{p.stderr[-300:]}")
            errors += check_state(srv.port, "after the unix-socket run", N + N // 5)
            status = srv.stop()
            if status != 0:
                errors.append(f"{srv.name} exited with {status} on SIGTERM, expected 0")
            srv = kvlib.start_kv(argv, d, durable=True)
            errors += check_state(srv.port, "after a restart", N + N // 5)
        finally:
            srv.kill()
        for e in errors:
            print("FAIL:", e)
        print("ok" if not errors else f"{len(errors)} failures")
        return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
