#!/usr/bin/env python3
"""Crash test of prevalent-kv: SIGKILL under load, restart, nothing acknowledged is lost, and a
MULTI/EXEC transaction is all there or not at all (issue 8, part 4).

  crash_test.py CRASH_CLIENT [--kills N] [--seed S]      (KV_SERVER: see kvlib.py)

The server under test runs with --sync always on one directory and one port. Two hiredis
clients (crash_client.c) write for the whole test, reconnecting across restarts: one SETs unique
keys to unique values and logs each acknowledged SET; the other runs MULTI + 3 SETs + EXEC and
logs each attempt and each acknowledged transaction. In each round redis-benchmark adds load
(SET, 20 connections, 100-byte values on 10,000 other keys), the server is SIGKILLed at a random
moment 50-600 ms after it became ready, restarted on the same directory, and then:
- every SET acknowledged so far has its key with exactly its value;
- every acknowledged transaction has its three keys with its value;
- every attempted transaction has all three keys (with one value) or none.
At the end the server is stopped with SIGTERM (exit status 0 expected), started again, and
everything is checked once more. Kills: 50 (KV_CRASH_KILLS or --kills for the long mode).
"""

import argparse
import os
import random
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kvlib  # noqa: E402


def read_log(path):
    with open(path, "rb") as f:
        data = f.read()
    return [ln.split(b" ") for ln in data.split(b"\n")[:-1]]  # only complete lines


def mget(port, keys):
    """Values of keys (None if absent), pipelined 1,000 at a time."""
    c, out = kvlib.Conn(port, timeout=30), []
    try:
        for i in range(0, len(keys), 1000):
            batch = keys[i:i + 1000]
            c.send(b"".join(kvlib.encode([b"GET", k]) for k in batch))
            for _ in batch:
                out.append(kvlib.parse(c.reply()))
    finally:
        c.close()
    return out


class Checker:
    def __init__(self, set_log, multi_log, prefix):
        self.set_log, self.multi_log, self.prefix = set_log, multi_log, prefix
        self.sets_done = 0       # log lines already verified
        self.tx_checked = set()  # acknowledged transactions verified
        self.applied_unacked = 0

    def check(self, port, everything=False):
        """Returns a list of failures; verifies what was logged since the last call (all of it
        if everything)."""
        errors = []
        sets = read_log(self.set_log)
        todo = sets if everything else sets[self.sets_done:]
        values = mget(port, [s[1] for s in todo])
        for (_, key, want), got in zip(todo, values):
            if got != want:
                errors.append(f"acknowledged SET {key!r} = {want!r} lost: found {got!r}")
        self.sets_done = len(sets)
        entries = read_log(self.multi_log)
        acked = {int(e[1]): e[2] for e in entries if e[0] == b"T"}
        attempted = [int(e[1]) for e in entries if e[0] == b"A"]
        todo = attempted if everything else [n for n in attempted if n not in self.tx_checked]
        keys = [b"%s:%d:%d" % (self.prefix, n, i) for n in todo for i in range(3)]
        values = mget(port, keys)
        self.applied_unacked = 0
        for j, n in enumerate(todo):
            got = values[3 * j:3 * j + 3]
            if n in acked:
                if got != [acked[n]] * 3:
                    errors.append(f"acknowledged transaction {n} = {acked[n]!r}: found {got}")
                self.tx_checked.add(n)
            elif got != [None] * 3 and not (got[0] is not None and got == [got[0]] * 3):
                errors.append(f"transaction {n} is partly applied: {got}")
            elif got[0] is not None:
                self.applied_unacked += 1
        return errors, len(sets), len(acked), len(attempted)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("client")
    ap.add_argument("--kills", type=int, default=int(os.environ.get("KV_CRASH_KILLS", 50)))
    ap.add_argument("--seed", type=int, default=int(time.time()) % 1000000)
    opts = ap.parse_args()
    argv = kvlib.kv_command()
    if not os.access(opts.client, os.X_OK):
        print(f"crash client {opts.client} is not built (libhiredis-dev): skipping")
        return kvlib.SKIP
    rng = random.Random(opts.seed)
    print(f"seed {opts.seed}, {opts.kills} kills of {os.path.basename(argv[0])}")
    with tempfile.TemporaryDirectory(prefix="kv-crash-") as tmp:
        d, port = os.path.join(tmp, "sut"), kvlib.free_port()
        set_log, multi_log = os.path.join(tmp, "set.log"), os.path.join(tmp, "multi.log")
        prefix = b"crash%d" % opts.seed
        srv = kvlib.start_kv(argv, d, durable=True, port=port)
        clients = [subprocess.Popen([opts.client, "127.0.0.1", str(port), log, mode,
                                     prefix.decode() + suffix, str(opts.seed)])
                   for log, mode, suffix in ((set_log, "set", ""), (multi_log, "multi", ""))]
        checker = Checker(set_log, multi_log, prefix)
        errors, bench = [], None
        start = time.monotonic()
        try:
            for i in range(opts.kills):
                bench = subprocess.Popen(
                    ["redis-benchmark", "-h", "127.0.0.1", "-p", str(port), "-t", "set",
                     "-n", "100000000", "-c", "20", "-r", "10000", "-d", "100", "-q"],
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                time.sleep(rng.uniform(0.05, 0.6))
                srv.kill()
                bench.kill()
                bench.wait()
                bench = None
                srv = kvlib.start_kv(argv, d, durable=True, port=port)
                errs, nsets, ntx, nattempts = checker.check(srv.port)
                errors += [f"after kill {i + 1}: {e}" for e in errs]
                if errs:
                    break
            for c in clients:
                c.terminate()
                c.wait()
            status = srv.stop()
            if status != 0:
                errors.append(f"{srv.name} exited with {status} on SIGTERM, expected 0")
            srv = kvlib.start_kv(argv, d, durable=True, port=port)
            errs, nsets, ntx, nattempts = checker.check(srv.port, everything=True)
            errors += [f"after the final restart: {e}" for e in errs]
        finally:
            if bench:
                bench.kill()
                bench.wait()
            for c in clients:
                if c.poll() is None:
                    c.kill()
                    c.wait()
            srv.kill()
        print(f"{opts.kills} kills in {time.monotonic() - start:.1f} s; verified "
              f"{nsets} acknowledged SETs, {ntx} acknowledged transactions of {nattempts} "
              f"attempted ({checker.applied_unacked} applied without an acknowledgement, "
              f"the rest absent)")
        if nsets < opts.kills or ntx < opts.kills:
            errors.append(f"too few acknowledged writes ({nsets} SETs, {ntx} transactions) "
                          f"for the test to mean anything")
        for e in errors[:50]:
            print("FAIL:", e)
        if errors:
            print(f"{len(errors)} failures (seed {opts.seed})")
            if os.path.exists(d + ".stderr"):
                with open(d + ".stderr", errors="replace") as f:
                    print("server stderr, last lines:\n" + "".join(f.readlines()[-20:]))
        return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
