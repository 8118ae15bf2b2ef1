#!/usr/bin/env python3
"""Garbage and connection storms against prevalent-kv (issue 8, parts 3 and 4).

  garbage_test.py [--seed S] [--connections N]       (KV_SERVER: see kvlib.py)

Injects, in order, on the server under test:
1. 300 connections sending random bytes (1-4,096 each, half of them starting like a RESP array);
2. 300 valid requests with random bytes flipped, and 300 cut at a random byte then dropped;
3. oversized frames: a multibulk count of 2^31, a bulk length of 2^40, a negative bulk length,
   an inline request of 1 MiB without a newline; Redis answers each with "-ERR Protocol
   error: ..." and closes the connection: the server under test must do the same;
4. 10,000 connections opened and dropped (bursts of 250 held open at once, half closed with a
   reset, a third with half a request sent first).
Then it verifies: the process is alive; 100 keys set before the garbage are intact; a
well-behaved client gets correct answers (SET/GET, 1,000 pipelined INCRs give 1000, MSET/MGET,
a 64 MiB value round trips); the server's RSS grew by less than 256 MiB over the garbage
(Linux /proc). Finally 1,000 connections are open at once and each gets its own answers
(PING, SET c:i, GET c:i) while all are open (RLIMIT_NOFILE raised if needed). A slow
reader (256 pipelined GETs of a 1 MiB value, nothing read) must not grow the server's RSS by
more than 128 MiB, and others are still served meanwhile (not checked on redis-server, which
buffers replies of normal clients without limit).
"""

import argparse
import os
import random
import resource
import socket
import struct
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kvlib  # noqa: E402


def rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def fire(port, data, read=True, reset=False, timeout=0.3):
    """Open a connection, send data, read a little, drop it."""
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    try:
        if data:
            s.sendall(data)
        if read:
            s.settimeout(timeout)
            try:
                s.recv(65536)
            except (socket.timeout, ConnectionResetError):
                pass
    except (BrokenPipeError, ConnectionResetError):
        pass
    finally:
        if reset:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        s.close()


def expect_error_and_close(port, data, what):
    c = kvlib.Conn(port, timeout=10)
    try:
        c.send(data)
    except (BrokenPipeError, ConnectionResetError):
        pass
    got, closed = c.read_until_close(timeout=10)
    c.close()
    if not got.startswith(b"-ERR Protocol error") or not closed:
        return [f"{what}: expected '-ERR Protocol error...' and a closed connection, got "
                f"{got[:120]!r}{'' if closed else ' and the connection left open'}"]
    return []


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seed", type=int, default=int(time.time()) % 1000000)
    ap.add_argument("--connections", type=int, default=10000)
    opts = ap.parse_args()
    argv = kvlib.kv_command()
    rng = random.Random(opts.seed)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 4096:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(4096, hard), hard))
    print(f"seed {opts.seed}")
    errors = []
    with tempfile.TemporaryDirectory(prefix="kv-garbage-") as tmp:
        srv = kvlib.start_kv(argv, os.path.join(tmp, "sut"))
        try:
            port = srv.port
            c = kvlib.Conn(port)
            c.send(b"".join(kvlib.encode([b"SET", b"sentinel:%d" % i, b"v%d" % i])
                            for i in range(100)))
            for _ in range(100):
                c.reply()
            c.close()
            rss0 = rss_mib(srv.pid)

            # 1. random bytes
            for i in range(300):
                data = bytes(rng.randrange(256) for _ in range(rng.randint(1, 4096)))
                if i % 2:
                    data = b"*%d\r\n" % rng.randint(1, 5) + data
                fire(port, data, read=rng.random() < 0.5, reset=rng.random() < 0.3,
                     timeout=0.05)
            # 2. flipped and truncated valid requests
            valid = [kvlib.encode(a) for a in (
                [b"SET", b"g:k", b"v" * 50], [b"GET", b"g:k"], [b"HSET", b"g:h", b"f", b"v"],
                [b"MSET", b"g:a", b"1", b"g:b", b"2"], [b"INCR", b"g:n"], [b"PING"])]
            for i in range(300):
                data = bytearray(rng.choice(valid) * rng.randint(1, 5))
                for _ in range(rng.randint(1, 4)):
                    data[rng.randrange(len(data))] = rng.randrange(256)
                fire(port, bytes(data), read=True, timeout=0.05)
            for i in range(300):
                data = rng.choice(valid) * rng.randint(1, 3)
                fire(port, data[:rng.randrange(1, len(data))], read=False,
                     reset=rng.random() < 0.5)
            # 3. oversized frames
            errors += expect_error_and_close(port, b"*2147483648\r\n", "multibulk count 2^31")
            errors += expect_error_and_close(port, b"*1\r\n$1099511627776\r\n",
                                             "bulk length 2^40")
            errors += expect_error_and_close(port, b"*1\r\n$-7\r\n", "bulk length -7")
            errors += expect_error_and_close(port, b"A" * (1 << 20), "1 MiB inline request")
            # a huge announced bulk, partly sent, then dropped
            fire(port, b"*2\r\n$3\r\nSET\r\n$60000000\r\n" + b"x" * 100000, read=False)
            # 4. connection storm
            done = 0
            while done < opts.connections:
                burst = []
                for _ in range(min(250, opts.connections - done)):
                    try:
                        burst.append(socket.create_connection(("127.0.0.1", port), timeout=10))
                    except OSError as e:
                        errors.append(f"connection {done + len(burst)} of the storm "
                                      f"refused: {e}")
                        break
                for j, s in enumerate(burst):
                    try:
                        if j % 3 == 0:
                            s.sendall(b"*3\r\n$3\r\nSET\r\n$1")
                        if j % 2 == 0:
                            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                         struct.pack("ii", 1, 0))
                    except OSError:
                        pass
                    s.close()
                done += len(burst)
                if errors:
                    break
            print(f"garbage sent: 900 bad connections, 4 oversized frames, {done} connections "
                  f"opened and dropped")

            # the server is alive and correct
            if not srv.alive():
                errors.append(f"server died during the garbage (status {srv.proc.returncode})")
                raise SystemExit
            time.sleep(0.5)
            rss1 = rss_mib(srv.pid)
            c = kvlib.Conn(port, timeout=60)
            c.send(b"".join(kvlib.encode([b"GET", b"sentinel:%d" % i]) for i in range(100)))
            bad = [i for i in range(100) if c.reply() != b"$%d\r\nv%d\r\n" % (len(b"v%d" % i), i)]
            if bad:
                errors.append(f"sentinel keys changed by the garbage: {bad[:10]}")
            checks = [
                (["SET", "ok:k", "hello"], b"+OK\r\n"), (["GET", "ok:k"], b"$5\r\nhello\r\n"),
                (["DEL", "ok:n"], b":0\r\n"),
                (["MSET", "ok:a", "1", "ok:b", b"\x00\xff"], b"+OK\r\n"),
                (["MGET", "ok:a", "ok:b", "ok:none"],
                 b"*3\r\n$1\r\n1\r\n$2\r\n\x00\xff\r\n$-1\r\n"),
                (["PING"], b"+PONG\r\n")]
            for args, want in checks:
                got = c.call(*args)
                if got != want:
                    errors.append(f"{args}: got {got!r}, expected {want!r}")
            c.send(kvlib.encode(["INCR", "ok:n"]) * 1000)
            last = [c.reply() for _ in range(1000)][-1]
            if last != b":1000\r\n":
                errors.append(f"1,000 pipelined INCRs ended with {last!r}, expected :1000")
            big = bytes(rng.randrange(256) for _ in range(4096)) * (16384)  # 64 MiB
            got = c.call("SET", "ok:big", big)
            if got != b"+OK\r\n":
                errors.append(f"SET of a 64 MiB value answered {got[:100]!r}")
            else:
                got = c.call("GET", "ok:big")
                if got != b"$%d\r\n%s\r\n" % (len(big), big):
                    errors.append(f"GET of the 64 MiB value returned {len(got)} bytes, "
                                  f"not the value")
            c.call("DEL", "ok:big")
            c.close()
            print(f"RSS {rss0:.0f} MiB before the garbage, {rss1:.0f} MiB after")
            if rss1 - rss0 > 256:
                errors.append(f"RSS grew by {rss1 - rss0:.0f} MiB over the garbage")

            # a slow reader: 256 GETs of a 1 MiB value pipelined, nothing read for 2 s
            c = kvlib.Conn(port, timeout=60)
            c.call("SET", "ok:mib", b"m" * (1 << 20))
            rss2 = rss_mib(srv.pid)
            slow = socket.create_connection(("127.0.0.1", port), timeout=10)
            slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            slow.sendall(kvlib.encode(["GET", "ok:mib"]) * 256)
            time.sleep(2)
            rss3 = rss_mib(srv.pid)
            if c.call("PING") != b"+PONG\r\n":
                errors.append("another client got no PONG while a slow reader was pending")
            slow.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            slow.close()
            c.call("DEL", "ok:mib")
            c.close()
            print(f"a slow reader of 256 MiB of replies: RSS {rss2:.0f} -> {rss3:.0f} MiB")
            if kvlib.is_redis(argv):
                print("  (redis-server: normal clients have no output buffer limit, so it "
                      "buffers them; not checked)")
            elif rss3 - rss2 > 128:
                errors.append(f"a slow reader made the server buffer {rss3 - rss2:.0f} MiB")

            # 1,000 connections served at once
            conns = []
            try:
                for i in range(1000):
                    conns.append(kvlib.Conn(port, timeout=30))
            except OSError as e:
                errors.append(f"only {len(conns)} of 1,000 concurrent connections opened: {e}")
            for i, s in enumerate(conns):
                s.send(kvlib.encode(["PING"]) + kvlib.encode(["SET", f"c:{i}", f"v{i}"])
                       + kvlib.encode(["GET", f"c:{i}"]))
            wrong = 0
            for i, s in enumerate(conns):
                try:
                    got = [s.reply() for _ in range(3)]
                except (OSError, kvlib.ConnectionClosed) as e:
                    got = [str(e)]
                v = f"v{i}".encode()
                if got != [b"+PONG\r\n", b"+OK\r\n", b"$%d\r\n%s\r\n" % (len(v), v)]:
                    wrong += 1
                    if wrong <= 5:
                        errors.append(f"concurrent connection {i} got {got!r}")
            probe = kvlib.Conn(port)
            n = probe.call("DBSIZE")
            probe.close()
            for s in conns:
                s.close()
            print(f"{len(conns)} connections open at once, {len(conns) - wrong} answered "
                  f"correctly; DBSIZE {n!r}")
            if wrong:
                errors.append(f"{wrong} of {len(conns)} concurrent connections got wrong answers")
            if not srv.alive():
                errors.append(f"server died (status {srv.proc.returncode})")
        except SystemExit:
            pass
        finally:
            srv.kill()
    for e in errors:
        print("FAIL:", e)
    print("ok" if not errors else f"{len(errors)} failures (seed {opts.seed})")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
