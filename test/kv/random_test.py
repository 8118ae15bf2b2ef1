#!/usr/bin/env python3
"""Randomized differential test of prevalent-kv against redis-server 7.0 (issue 8, part 4).

Thousands of random commands from a seed over a small key space (6 keys, 4 fields, so strings
and hashes collide and WRONGTYPE is common), with wrong arities, bad numbers, overflow, binary
and empty values, MULTI/EXEC/DISCARD with queueing errors, and WATCH across two connections.
Each command goes to redis-server and to the server under test (KV_SERVER, see kvlib.py) and
the replies are compared as compare.py says. The first difference of a seed stops that seed and
prints the seed, the command's index, the command, both replies and the commands before it.

Expiry without flakiness: relative expiries are far in the future (1,000 to 9,000 s) or zero or
negative (deleted at once); absolute ones are in 2100 or in 1970. GT/LT are only used with
absolute deadlines (two relative deadlines set milliseconds apart would compare differently on
the two servers). TTL and EXPIRETIME may differ by 1, PTTL and PEXPIRETIME by 1,500 ms
(rounding, and the commands run a few ms apart on the two servers).

After each seed the server under test (durable: --sync always; a redis-server stand-in gets
appendfsync always) is SIGKILLed and restarted on its directory, and its whole keyspace (keys,
types, values, PEXPIRETIME) must be exactly what it was: replay reproduces the same keys and
deadlines.

  KV_SERVER=build/examples/kv/prevalent-kv test/kv/random_test.py [--seed S] [--seeds N]
      [--commands N] [--without CMD,CMD]
"""

import argparse
import os
import random
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kvlib  # noqa: E402
from compare import kind_of, same, show  # noqa: E402

KEYS = [b"k0", b"k1", b"k2", b"k3", b"k4", b"\x00k\xff"]
FIELDS = [b"f0", b"f1", b"f2", b""]
TOLERANCE = {b"TTL": 1, b"EXPIRETIME": 1, b"PTTL": 1500, b"PEXPIRETIME": 1500}
FUTURE = 4102444800  # 2100-01-01, in seconds


class Gen:
    def __init__(self, rng, without=()):
        self.r, self.without = rng, set(without)

    def key(self):
        return self.r.choice(KEYS)

    def field(self):
        return self.r.choice(FIELDS)

    def integer(self):
        r = self.r
        return r.choice([
            lambda: str(r.randint(-20, 20)),
            lambda: str(r.randint(-10**6, 10**6)),
            lambda: r.choice(["9223372036854775807", "-9223372036854775808",
                              "9223372036854775806", "-9223372036854775807"]),
            lambda: r.choice(["9223372036854775808", "1.5", "abc", "", " 1", "0x1", "+1",
                              "01", "-0", "1e3"]),
        ])().encode()

    def floaty(self):
        r = self.r
        return r.choice([
            lambda: repr(round(r.uniform(-100, 100), r.randint(0, 5))),
            lambda: str(r.randint(-100, 100)),
            lambda: r.choice(["1e10", "-1e10", "0.1", "5.0e3", "inf", "nan", "abc", "1.",
                              ".5", "1e308", "-0"]),
        ])().encode()

    def value(self):
        r = self.r
        return r.choice([
            lambda: str(r.randint(-100, 100)).encode(),
            lambda: repr(round(r.uniform(-10, 10), 3)).encode(),
            lambda: b"",
            lambda: bytes(r.randrange(256) for _ in range(r.randint(1, 12))),
            lambda: r.choice([b"hello", b"world", b"a b", b"9223372036854775807"]),
            lambda: b"x" * r.randint(1, 300),
        ])()

    def rel_seconds(self):
        return str(self.r.choice([self.r.randint(1000, 9000), 0, -1, -100])).encode()

    def abs_seconds(self):
        return str(self.r.choice([FUTURE + self.r.randint(0, 3) * 1000, 1, 0])).encode()

    def expiry_opts(self):
        r = self.r
        c = r.randrange(8)
        if c == 0:
            return [b"EX", str(r.randint(1000, 9000)).encode()]
        if c == 1:
            return [b"PX", str(r.randint(1000, 9000) * 1000).encode()]
        if c == 2:
            return [b"EXAT", str(FUTURE + r.randint(0, 3)).encode()]
        if c == 3:
            return [b"PXAT", str(FUTURE * 1000 + r.randint(0, 3000)).encode()]
        if c == 4:
            return [b"KEEPTTL"]
        if c == 5:
            return [r.choice([b"EX", b"PX"]), r.choice([b"0", b"-5", b"abc", b""])]
        return []

    def command(self, in_multi=False):
        r, k = self.r, self.key
        choices = [
            (8, lambda: [b"GET", k()]),
            (8, lambda: [b"SET", k(), self.value()] + self.expiry_opts()
             + r.choice([[], [], [b"NX"], [b"XX"], [b"GET"], [b"NX", b"GET"]])),
            (2, lambda: [b"SETNX", k(), self.value()]),
            (2, lambda: [b"SETEX", k(), self.rel_seconds(), self.value()]),
            (1, lambda: [b"PSETEX", k(), str(r.choice([10**6, 0, -1])).encode(), self.value()]),
            (2, lambda: [b"GETSET", k(), self.value()]),
            (2, lambda: [b"GETDEL", k()]),
            (2, lambda: [b"GETEX", k()] + r.choice([[], [b"PERSIST"], self.expiry_opts()])),
            (3, lambda: [b"MGET"] + [k() for _ in range(r.randint(1, 4))]),
            (3, lambda: [b"MSET"] + sum(([k(), self.value()] for _ in range(r.randint(1, 3))),
                                        [])),
            (1, lambda: [b"MSETNX"] + sum(([k(), self.value()]
                                           for _ in range(r.randint(1, 3))), [])),
            (3, lambda: [b"APPEND", k(), self.value()]),
            (2, lambda: [b"STRLEN", k()]),
            (2, lambda: [b"GETRANGE", k(), self.integer(), self.integer()]),
            (2, lambda: [b"SETRANGE", k(), str(r.randint(-1, 40)).encode(), self.value()]),
            (4, lambda: [b"INCR", k()]),
            (2, lambda: [b"DECR", k()]),
            (3, lambda: [r.choice([b"INCRBY", b"DECRBY"]), k(), self.integer()]),
            (3, lambda: [b"INCRBYFLOAT", k(), self.floaty()]),
            (3, lambda: [r.choice([b"DEL", b"UNLINK", b"EXISTS"])]
             + [k() for _ in range(r.randint(1, 3))]),
            (1, lambda: [b"KEYS", r.choice([b"*", b"k*", b"k[0-2]", b"?1", b"\x00*"])]),
            (1, lambda: [b"SCAN", b"0", b"COUNT", b"100"]
             + r.choice([[], [b"MATCH", b"k*"], [b"TYPE", b"hash"], [b"TYPE", b"string"]])),
            (1, lambda: [b"RANDOMKEY"]),
            (2, lambda: [r.choice([b"RENAME", b"RENAMENX"]), k(), k()]),
            (3, lambda: [r.choice([b"EXPIRE", b"PEXPIRE"]), k(), self.rel_seconds()]
             + r.choice([[], [b"NX"], [b"XX"]])),
            (2, lambda: [b"EXPIREAT", k(), self.abs_seconds()]
             + r.choice([[], [b"NX"], [b"XX"], [b"GT"], [b"LT"]])),
            (1, lambda: [b"PEXPIREAT", k(), str(int(self.abs_seconds()) * 1000 + 7).encode()]
             + r.choice([[], [b"GT"], [b"LT"]])),
            (2, lambda: [r.choice([b"TTL", b"PTTL", b"EXPIRETIME", b"PEXPIRETIME"]), k()]),
            (1, lambda: [b"PERSIST", k()]),
            (2, lambda: [b"TYPE", k()]),
            (1, lambda: [b"DBSIZE"]),
            (6, lambda: [b"HSET", k()] + sum(([self.field(), self.value()]
                                              for _ in range(r.randint(1, 3))), [])),
            (2, lambda: [b"HSETNX", k(), self.field(), self.value()]),
            (4, lambda: [b"HGET", k(), self.field()]),
            (2, lambda: [b"HMGET", k()] + [self.field() for _ in range(r.randint(1, 3))]),
            (2, lambda: [b"HGETALL", k()]),
            (2, lambda: [b"HDEL", k()] + [self.field() for _ in range(r.randint(1, 3))]),
            (2, lambda: [r.choice([b"HEXISTS", b"HSTRLEN"]), k(), self.field()]),
            (2, lambda: [r.choice([b"HLEN", b"HKEYS", b"HVALS"]), k()]),
            (3, lambda: [b"HINCRBY", k(), self.field(), self.integer()]),
            (2, lambda: [b"HINCRBYFLOAT", k(), self.field(), self.floaty()]),
            (1, lambda: [b"PING"] + r.choice([[], [self.value()]])),
            (1, lambda: [b"ECHO", self.value()]),
            (1, lambda: [b"NOSUCH", k()]),
        ]
        total = sum(w for w, _ in choices)
        while True:
            x = r.uniform(0, total)
            for w, f in choices:
                x -= w
                if x <= 0:
                    cmd = f()
                    break
            else:
                cmd = choices[0][1]()
            if cmd[0] not in self.without:
                break
        if r.random() < 0.03:  # wrong arity: drop or add an argument
            cmd = cmd[:-1] if len(cmd) > 1 and r.random() < 0.5 else cmd + [b"extra"]
        if in_multi and (cmd[0] in TOLERANCE or kind_of(cmd) != "exact"):
            cmd = [b"EXISTS", cmd[1]] if len(cmd) > 1 else [b"EXISTS"]
        return cmd


def program(rng, n, without=()):
    """A list of (connection, command) steps."""
    g, out = Gen(rng, without), []
    while len(out) < n:
        x = rng.random()
        if x < 0.04:
            watch = rng.random() < 0.5
            if watch:
                out.append((1, [b"WATCH", g.key()]))
                if rng.random() < 0.5:
                    out.append((2, g.command()))
            out.append((1, [b"MULTI"]))
            for _ in range(rng.randint(0, 4)):
                out.append((1, g.command(in_multi=True)))
            out.append((1, [b"EXEC"] if rng.random() < 0.85 else [b"DISCARD"]))
        elif x < 0.06:
            out.append((2, g.command()))
        elif x < 0.062:
            out.append((1, [rng.choice([b"FLUSHDB", b"FLUSHALL"])]))
        else:
            out.append((1, g.command()))
    return out


STATS = {"WRONGTYPE": 0, "other -ERR": 0, "EXECABORT": 0, "nil": 0, "EXEC nil (WATCH)": 0}


def count(cmd, reply):
    if reply.startswith(b"-WRONGTYPE"):
        STATS["WRONGTYPE"] += 1
    elif reply.startswith(b"-EXECABORT"):
        STATS["EXECABORT"] += 1
    elif reply.startswith(b"-"):
        STATS["other -ERR"] += 1
    elif reply in (b"$-1\r\n", b"*-1\r\n"):
        STATS["EXEC nil (WATCH)" if cmd[0] == b"EXEC" else "nil"] += 1


def run_seed(seed, n, ref_port, sut_port, without=()):
    prog = program(random.Random(seed), n, without)
    conns = []
    for port in (ref_port, sut_port):
        c = {1: kvlib.Conn(port), 2: kvlib.Conn(port)}
        c[1].call("FLUSHALL")
        conns.append(c)
    try:
        for i, (cn, cmd) in enumerate(prog):
            a = conns[0][cn].call(*cmd)
            count(cmd, a)
            try:
                b = conns[1][cn].call(*cmd)
            except (OSError, kvlib.ConnectionClosed) as e:
                b = f"<{e}>".encode()
            if not same(cmd, a, b, tol=TOLERANCE.get(cmd[0])):
                print(f"FAIL seed {seed} command {i}: {'@2 ' if cn == 2 else ''}{show(cmd)}")
                print(f"  redis: {a!r}\n  other: {b!r}")
                print("  commands before it (replay: --seed {} --commands {}):".format(seed, i + 1))
                for j in range(max(0, i - 12), i):
                    print(f"    {j}: {'@2 ' if prog[j][0] == 2 else ''}{show(prog[j][1])}")
                return False
        return True
    finally:
        for c in conns:
            for x in c.values():
                x.close()


def dump(port):
    """The whole keyspace: (key, type, value, PEXPIRETIME) sorted, hash fields sorted."""
    c, out = kvlib.Conn(port, timeout=30), []
    try:
        for k in sorted(kvlib.parse(c.call("KEYS", "*"))):
            t = kvlib.parse(c.call("TYPE", k))
            v = kvlib.parse(c.call("GET", k) if t == b"string" else c.call("HGETALL", k))
            if isinstance(v, list):
                v = sorted(zip(v[0::2], v[1::2]))
            out.append((k, t, v, kvlib.parse(c.call("PEXPIRETIME", k))))
    finally:
        c.close()
    return out


def restart_check(argv, sut, seed):
    """SIGKILL the server under test and restart it on its directory: every key, value and
    deadline must be back (every write was acknowledged, --sync always). Returns the new
    server and the number of keys compared, or a failure message."""
    before = dump(sut.port)
    sut.kill()
    sut = kvlib.start_kv(argv, sut.dir, durable=True)
    after = dump(sut.port)
    if before == after:
        return sut, len(before)
    diff = [(b, a) for b, a in zip(before, after) if b != a][:3]
    return sut, (f"seed {seed}: the keyspace after SIGKILL and restart differs: {len(before)} "
                 f"keys before, {len(after)} after; first differences (before, after): {diff}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    ap.add_argument("--seed", type=int, help="first seed (default: from the clock, printed)")
    ap.add_argument("--seeds", type=int, default=int(os.environ.get("KV_RANDOM_SEEDS", 5)))
    ap.add_argument("--commands", type=int, default=2000, help="commands per seed")
    ap.add_argument("--without", default="", help="commands not to generate, comma-separated "
                    "(to look past a known difference, e.g. --without INCRBYFLOAT)")
    opts = ap.parse_args()
    argv = kvlib.kv_command()
    first = opts.seed if opts.seed is not None else int(time.time()) % 1000000
    with tempfile.TemporaryDirectory(prefix="kv-random-") as tmp:
        os.makedirs(os.path.join(tmp, "redis"))
        ref = kvlib.start_redis(os.path.join(tmp, "redis"))
        sut = None
        try:
            sut = kvlib.start_kv(argv, os.path.join(tmp, "sut"), durable=True)
            failed, restarts, compared = [], 0, 0
            for seed in range(first, first + opts.seeds):
                ok = run_seed(seed, opts.commands, ref.port, sut.port,
                              [w.upper().encode() for w in opts.without.split(",") if w])
                print(f"seed {seed}: {opts.commands} commands {'ok' if ok else 'FAILED'}")
                if not ok:
                    failed.append(seed)
                if not sut.alive():
                    print(f"{sut.name} died (exit status {sut.proc.returncode})")
                    return 1
                sut, why = restart_check(argv, sut, seed)
                restarts += 1
                if isinstance(why, str):
                    print("FAIL", why)
                    failed.append(seed)
                else:
                    compared += why
            print("Redis's replies included: "
                  + ", ".join(f"{v} {k}" for k, v in STATS.items()))
            print(f"{opts.seeds} seeds from {first}, {opts.seeds * opts.commands} commands, "
                  f"{restarts} SIGKILL restarts with the keyspace compared ({compared} keys), "
                  f"failing seeds: {failed or 'none'} ({sut.name} against redis-server)")
            return 1 if failed else 0
        finally:
            if sut:
                sut.kill()
            ref.kill()


if __name__ == "__main__":
    sys.exit(main())
