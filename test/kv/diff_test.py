#!/usr/bin/env python3
"""Differential test of prevalent-kv against Debian's redis-server 7.0 (issue 8, part 4).

Starts redis-server (loopback, free port, no persistence) and the server under test (KV_SERVER,
see kvlib.py), runs every script of the corpus (test/kv/corpus/*.txt, language in script.py)
against both over raw sockets, and compares the replies byte for byte (exceptions in
compare.py). FLUSHALL on both between scripts, and each script gets fresh connections.
Prints every difference as file:line, the command, Redis's reply and the other one; exit 1 if
there is any, 77 if the server under test is not built.

  KV_SERVER=build/examples/kv/prevalent-kv test/kv/diff_test.py [script.txt ...]
  KV_SERVER=redis-server test/kv/diff_test.py        # the harness validated against itself
  test/kv/diff_test.py --show corpus/strings.txt      # print Redis's replies only
"""

import argparse
import glob
import os
import socket
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kvlib  # noqa: E402
from compare import explain, same, show  # noqa: E402
from script import parse_script  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))


class Side:
    """One server and the connections a script opened on it."""

    def __init__(self, server, password=None):
        self.server, self.conns, self.password = server, {}, password

    def conn(self, n):
        if n not in self.conns:
            self.conns[n] = kvlib.Conn(self.server.port, timeout=10)
        return self.conns[n]

    def reset(self):
        for c in self.conns.values():
            c.close()
        self.conns = {}
        c = kvlib.Conn(self.server.port)
        if self.password:
            c.call("AUTH", self.password)
        r = c.call("FLUSHALL")
        c.close()
        if r != b"+OK\r\n":
            raise RuntimeError(f"FLUSHALL on {self.server.name} answered {r!r}")


CLOSED = b"<connection closed>"
NO_REPLY = b"<no reply within 10 s>"


def read_replies(side, n, count):
    """count replies from connection n; a closed or silent connection ends the list with a
    marker and is dropped (the next step on it reconnects)."""
    c, out = side.conn(n), []
    try:
        for _ in range(count):
            out.append(c.reply())
    except (socket.timeout, TimeoutError):
        out.append(NO_REPLY)
    except (kvlib.ConnectionClosed, ConnectionResetError):
        out.append(c.buf + CLOSED if c.buf else CLOSED)
    if len(out) < count or out[-1].endswith(CLOSED) or out[-1] == NO_REPLY:
        side.conns.pop(n).close()
    return out


def send(side, n, data):
    try:
        side.conn(n).send(data)
        return True
    except (BrokenPipeError, ConnectionResetError):
        side.conns.pop(n).close()
        return False


def run_step(side, step):
    """The step's replies on one side, as a list of bytes (markers for a closed or silent
    connection)."""
    if step.kind == "cmd":
        if not send(side, step.conn, kvlib.encode(step.args)):
            return [CLOSED]
        return read_replies(side, step.conn, 1)
    if step.kind == "pipeline":
        conns = {}
        for s in step.steps:
            conns.setdefault(s.conn, []).append(kvlib.encode(s.args))
        out = {}
        for n, reqs in conns.items():
            if send(side, n, b"".join(reqs)):
                out[n] = read_replies(side, n, len(reqs))
            else:
                out[n] = [CLOSED]
        return [(out[s.conn].pop(0) if out[s.conn] else CLOSED) for s in step.steps]
    if step.kind == "raw":
        if not send(side, 1, step.data):
            return [CLOSED]
        return read_replies(side, 1, step.count) if step.count else []
    if step.kind == "raw-close":
        if not send(side, 1, step.data):
            return [CLOSED]
        data, closed = side.conn(1).read_until_close(timeout=2)
        side.conns.pop(1).close()
        return [data + (CLOSED if closed else b"<connection left open>")]
    if step.kind == "scan-all":
        c, cursor, keys, rounds = side.conn(1), b"0", [], 0
        while True:
            v = kvlib.parse(c.call("SCAN", cursor, *step.args))
            if not isinstance(v, list):
                return [repr(v).encode()]
            cursor, keys = v[0], keys + v[1]
            rounds += 1
            if cursor == b"0" or rounds > 100000:
                break
        return [repr(sorted(set(keys))).encode()]
    raise AssertionError(step.kind)


def step_commands(step):
    if step.kind == "pipeline":
        return [(s.args, s.tol, s.shape, s.line) for s in step.steps]
    if step.kind == "cmd":
        return [(step.args, step.tol, step.shape, step.line)]
    if step.kind == "sleep":
        return []
    return [([step.kind.encode()], None, False, step.line)] * max(step.count, 1)


def run_script(path, ref, sut, out):
    """Runs one script on both sides; returns the number of differences."""
    steps = parse_script(path)
    ref.reset()
    sut.reset()
    diffs = 0
    name = os.path.relpath(path, HERE)
    for step in steps:
        if step.kind == "sleep":
            time.sleep(step.count / 1000)
            continue
        a = run_step(ref, step)
        b = run_step(sut, step)
        cmds = step_commands(step)
        if len(a) != len(b):
            diffs += 1
            print(f"DIFF {name}:{step.line}: {step.text}\n  redis: {a!r}\n  other: {b!r}",
                  file=out)
            continue
        for (args, tol, shape, line), ra, rb in zip(cmds, a, b):
            if not same(args, ra, rb, tol=tol, shape=shape):
                diffs += 1
                why = explain(args, ra, rb)
                if why:
                    ra, rb = ra[:200] + b"...", rb[:200] + b"..."
                print(f"DIFF {name}:{line}: {show(args)}\n  redis: {ra!r}\n  other: {rb!r}"
                      + (f"\n  why: {why}" if why else ""), file=out)
    return diffs


PASSWORD = "secret"  # the servers of corpus/requirepass/ run with --requirepass secret


def group_of(path):
    return PASSWORD if os.path.basename(os.path.dirname(path)) == "requirepass" else None


def show_group(scripts, ref):
    for path in scripts:
        ref.reset()
        for step in parse_script(path):
            if step.kind == "sleep":
                time.sleep(step.count / 1000)
                continue
            for (args, _, _, line), rep in zip(step_commands(step), run_step(ref, step)):
                print(f"{os.path.basename(path)}:{line}: {show(args)}\n  {rep!r}")


def run_group(scripts, password, tmp, opts):
    """Runs scripts on a fresh pair of servers (with --requirepass if password); returns
    (commands, differences)."""
    extra = ["--requirepass", password] if password else []
    tag = "auth" if password else "open"
    os.makedirs(os.path.join(tmp, "redis-" + tag))
    ref_srv = kvlib.start_redis(os.path.join(tmp, "redis-" + tag), extra=extra)
    sut_srv = None
    try:
        ref = Side(ref_srv, password)
        if opts.show:
            show_group(scripts, ref)
            return 0, 0
        argv = kvlib.kv_command()
        sut_srv = kvlib.start_kv(argv, os.path.join(tmp, "sut-" + tag), extra=extra,
                                 redis_extra=extra)
        sut = Side(sut_srv, password)
        total, ncmds = 0, 0
        for path in scripts:
            n = run_script(path, ref, sut, sys.stdout)
            ncmds += sum(len(step_commands(s)) for s in parse_script(path))
            total += n
            print(f"{os.path.relpath(path, HERE)}: {'ok' if n == 0 else f'{n} differences'}")
        if not sut_srv.alive():
            print(f"{sut_srv.name} died (exit status {sut_srv.proc.returncode})")
            total += 1
        return ncmds, total
    finally:
        if sut_srv:
            sut_srv.kill()
        ref_srv.kill()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    ap.add_argument("scripts", nargs="*")
    ap.add_argument("--show", action="store_true", help="print Redis's replies, compare nothing")
    opts = ap.parse_args()
    scripts = opts.scripts or sorted(glob.glob(os.path.join(HERE, "corpus", "*.txt"))
                                     + glob.glob(os.path.join(HERE, "corpus", "*", "*.txt")))
    if not scripts:
        print("no corpus scripts found", file=sys.stderr)
        return 1
    if not opts.show:
        kvlib.kv_command()  # skip early if not built
    total, ncmds = 0, 0
    with tempfile.TemporaryDirectory(prefix="kv-diff-") as tmp:
        for password in (None, PASSWORD):
            group = [p for p in scripts if group_of(p) == password]
            if group:
                n, d = run_group(group, password, tmp, opts)
                ncmds, total = ncmds + n, total + d
    if not opts.show:
        print(f"{len(scripts)} scripts, {ncmds} commands, {total} differences "
              f"({os.path.basename(kvlib.kv_command()[0])} against redis-server)")
    return 1 if total else 0


if __name__ == "__main__":
    sys.exit(main())
