#!/usr/bin/env python3
"""prevalent-kv replication (issue 11, part 3): a primary and fixed replicas on loopback.

  replication_test.py    (KV_SERVER: see kvlib.py; skipped for redis-server)

Every process is started and stopped by its PID; every wait is bounded (30 s).

1. A primary (--repl-port, 4 KiB segments, a snapshot every 50 writes, one kept) and two
   replicas (--replica-of). Writes go to the primary with redis-cli (a real client) and with
   kvlib (pipelined SETs, HSET, INCR); both replicas converge: same DBSIZE and the same digest
   of every key's type and value, and their INFO replication offsets equal the primary's
   master_repl_offset; the primary lists both (connected_slaves:2, slaveN offset = that seq).
2. A write to a replica gets Redis's exact -READONLY error (also inside MULTI: EXECABORT),
   WAIT on a replica Redis's error, ROLE the shapes Redis has.
3. INFO replication's field names on both roles are checked against a real redis-server
   primary + replica pair (compare.info_same: only field names Redis 7.0 has there, besides
   prevalent_*).
4. WAIT 2 1000 after a write returns 2; with one replica SIGSTOPped it returns 1 (then SIGCONT
   and it converges again).
5. A replica restarted (SIGTERM) resumes from its own journal and catches up with the writes
   made while it was down.
6. A replica SIGKILLed; the primary writes until its oldest segment starts after the replica's
   last record (dropped by retention); the replica restarted catches up from the primary's
   snapshot (re-executing itself: same PID) and converges.
7. --acks replicated:1:500 on a second primary with one replica: writes are acknowledged;
   with the replica SIGKILLed a write gets -NOREPLICAS after the timeout naming "0 of the 1",
   and is applied on the primary all the same; the replica restarted has it.
"""

import hashlib
import os
import re
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import compare  # noqa: E402
import kvlib  # noqa: E402

READONLY = b"-READONLY You can't write against a read only replica.\r\n"
WAIT_ON_REPLICA = (b"-ERR WAIT cannot be used with replica instances. Please also note that "
                   b"since Redis 4.0 if a replica is configured to be writable (which is not "
                   b"the default) writes to replicas are just local and are not propagated.\r\n")
BOUND = 30.0


def info(port, section="replication"):
    c = kvlib.Conn(port)
    try:
        text = kvlib.parse(c.call("INFO", section)).decode()
    finally:
        c.close()
    fields = {}
    for line in text.split("\r\n"):
        if ":" in line and not line.startswith("#"):
            k, v = line.split(":", 1)
            fields[k] = v
    return fields


def digest(port):
    """(DBSIZE, sha256 of every key's type and value, sorted by key)."""
    c = kvlib.Conn(port)
    try:
        keys = sorted(kvlib.parse(c.call("KEYS", "*")))
        h = hashlib.sha256()
        for k in keys:
            t = kvlib.parse(c.call("TYPE", k))
            h.update(k + b"\0" + t + b"\0")
            if t == b"string":
                h.update(kvlib.parse(c.call("GET", k)))
            elif t == b"hash":
                flat = kvlib.parse(c.call("HGETALL", k))
                for f, v in sorted(zip(flat[0::2], flat[1::2])):
                    h.update(f + b"=" + v + b";")
            h.update(b"\n")
        size = kvlib.parse(c.call("DBSIZE"))
        return size, h.hexdigest()
    finally:
        c.close()


def wait_for(what, check, bound=BOUND):
    deadline = time.monotonic() + bound
    while time.monotonic() < deadline:
        r = check()
        if r:
            return r
        time.sleep(0.05)
    raise AssertionError(f"not within {bound} s: {what}")


def converged(primary, *replicas):
    """Waits until each replica's offsets equal the primary's, then compares digests."""
    def same_offset():
        want = info(primary.port)["master_repl_offset"]
        for r in replicas:
            try:
                f = info(r.port)
            except (OSError, kvlib.ConnectionClosed):  # a replica re-executing itself
                return False
            if f.get("slave_repl_offset") != want or f.get("master_link_status") != "up":
                return False
        return want
    seq = wait_for("replicas at the primary's offset", same_offset)
    want = digest(primary.port)
    for r in replicas:
        got = digest(r.port)
        assert got == want, f"replica on {r.port}: {got}, primary {want}"
    return int(seq), want


def redis_cli(port, *args):
    out = subprocess.run(["redis-cli", "-p", str(port)] + list(args), capture_output=True,
                         timeout=BOUND, check=True)
    return out.stdout.decode().strip()


def pipeline_sets(port, prefix, n):
    c = kvlib.Conn(port)
    try:
        c.send(b"".join(kvlib.encode(["SET", f"{prefix}{i}", f"v{i}-" + "x" * (i % 40)])
                        for i in range(n)))
        for _ in range(n):
            assert c.reply() == b"+OK\r\n"
    finally:
        c.close()


def field_names_like_redis(tmp):
    """Our INFO replication field names on both roles against a real Redis pair's."""
    rp, rr = kvlib.free_port(), kvlib.free_port()
    os.makedirs(os.path.join(tmp, "redis-p"))
    os.makedirs(os.path.join(tmp, "redis-r"))
    p = kvlib.start_redis(os.path.join(tmp, "redis-p"), port=rp)
    r = kvlib.start_redis(os.path.join(tmp, "redis-r"), port=rr,
                          extra=["--replicaof", "127.0.0.1", str(rp)])
    try:
        wait_for("the redis replica to show on its primary", lambda: "slave0" in info(rp))
        c = kvlib.Conn(rp)
        ref_master = c.call("INFO", "replication")
        c.close()
        c = kvlib.Conn(rr)
        ref_replica = c.call("INFO", "replication")
        c.close()
    finally:
        r.stop()
        p.stop()
    return ref_master, ref_replica


def main():
    argv = kvlib.kv_command()
    if kvlib.is_redis(argv):
        print("replication_test: the stand-in redis-server has no --repl-port: skipping",
              file=sys.stderr)
        return kvlib.SKIP
    tmp = tempfile.mkdtemp(prefix="kv-repl-")
    servers = []

    def start(name, extra, port=0):
        s = kvlib.start_kv(argv, os.path.join(tmp, name), extra=extra, port=port)
        servers.append(s)
        return s

    try:
        repl_port = kvlib.free_port()
        primary_extra = ["--sync", "always", "--repl-port", str(repl_port), "--segment-bytes",
                         "4096", "--snapshot-every-commands", "50", "--keep-snapshots", "1",
                         "--snapshot-every-bytes", "0"]
        primary = start("primary", primary_extra)
        of = ["--replica-of", f"127.0.0.1:{repl_port}"]
        r1_port, r2_port = kvlib.free_port(), kvlib.free_port()
        r1 = start("r1", of, port=r1_port)
        r2 = start("r2", of, port=r2_port)

        # 1. Writes to the primary, replicas converge.
        assert redis_cli(primary.port, "SET", "cli", "hello") == "OK"
        assert redis_cli(primary.port, "HSET", "h", "a", "1", "b", "2") == "2"
        pipeline_sets(primary.port, "k", 300)
        c = kvlib.Conn(primary.port)
        for _ in range(20):
            c.call("INCR", "counter")
        c.close()
        seq, (size, _) = converged(primary, r1, r2)
        assert size == 303, size
        assert redis_cli(r1.port, "GET", "cli") == "hello"
        pf = info(primary.port)
        assert pf["role"] == "master" and pf["connected_slaves"] == "2", pf
        offsets = sorted(re.search(r"offset=(\d+)", pf[k])[1] for k in ("slave0", "slave1"))
        assert offsets == [str(seq), str(seq)], (offsets, seq)
        assert all("state=online" in pf[k] for k in ("slave0", "slave1")), pf
        rf = info(r1.port)
        assert rf["role"] == "slave" and rf["master_port"] == str(repl_port), rf
        assert rf["master_host"] == "127.0.0.1" and rf["slave_read_only"] == "1", rf
        assert rf["master_repl_offset"] == str(seq) and rf["prevalent_lag_records"] == "0", rf
        print(f"1. two replicas converged at seq {seq}: {size} keys, same digest")

        # 2. Writes to a replica are refused as Redis refuses them.
        c = kvlib.Conn(r1.port)
        assert c.call("SET", "cli", "changed") == READONLY
        assert c.call("HSET", "h", "a", "9") == READONLY
        assert c.call("MULTI") == b"+OK\r\n"
        assert c.call("SET", "x", "1") == READONLY
        assert c.call("EXEC").startswith(b"-EXECABORT"), "EXEC after a refused write"
        assert c.call("WAIT", "1", "10") == WAIT_ON_REPLICA
        role = kvlib.parse(c.call("ROLE"))
        assert role[0] == b"slave" and role[2] == repl_port and role[3] == b"connected", role
        c.close()
        role = kvlib.parse(kvlib.Conn(primary.port).call("ROLE"))
        assert role[0] == b"master" and len(role[2]) == 2, role
        assert redis_cli(r1.port, "GET", "cli") == "hello"
        print("2. -READONLY on a replica, also in MULTI; WAIT refused there; ROLE")

        # 3. Field names against a real Redis primary + replica pair.
        ref_master, ref_replica = field_names_like_redis(tmp)
        c = kvlib.Conn(primary.port)
        ours = kvlib.parse(c.call("INFO", "replication"))
        c.close()
        # The Redis pair has one replica (slave0); ours has two: slave1 is named like slave0.
        ours = re.sub(rb"\r\nslave[1-9][0-9]*:[^\r]*", b"", ours)
        why = compare.info_same(ref_master, b"$%d\r\n%s\r\n" % (len(ours), ours))
        assert why is None, f"primary: {why}"
        c = kvlib.Conn(r1.port)
        why = compare.info_same(ref_replica, c.call("INFO", "replication"))
        c.close()
        assert why is None, f"replica: {why}"
        print("3. INFO replication field names are Redis 7.0's on both roles")

        # 4. WAIT counts the replicas that acknowledged this connection's writes.
        c = kvlib.Conn(primary.port)
        # Redis 7.0's errors for bad arguments (checked against redis-server by hand).
        assert c.call("WAIT", "1", "-1") == b"-ERR timeout is negative\r\n"
        assert c.call("WAIT", "x", "1") == b"-ERR value is not an integer or out of range\r\n"
        assert c.call("WAIT", "1", "x") == b"-ERR timeout is not an integer or out of range\r\n"
        assert c.call("SET", "w", "1") == b"+OK\r\n"
        assert c.call("WAIT", "2", "1000") == b":2\r\n"
        os.kill(r2.pid, signal.SIGSTOP)
        try:
            assert c.call("SET", "w", "2") == b"+OK\r\n"
            started = time.monotonic()
            got = c.call("WAIT", "2", "1000")
            waited = time.monotonic() - started
            assert got == b":1\r\n", got
            assert waited >= 0.9, f"WAIT returned after {waited:.2f} s, before its timeout"
        finally:
            os.kill(r2.pid, signal.SIGCONT)
        c.close()
        converged(primary, r1, r2)
        print("4. WAIT 2 1000: 2, then 1 with a replica stopped")

        # 5. A replica restarted resumes from its own journal.
        assert r2.stop() == 0
        pipeline_sets(primary.port, "while-down-", 50)
        r2 = start("r2", of, port=r2_port)
        converged(primary, r1, r2)
        opened = open(os.path.join(tmp, "r2.stderr")).read()
        last = [int(m) for m in re.findall(r"last sequence (\d+)", opened)]
        assert len(last) == 2 and last[1] > 0, f"the restarted replica opened empty: {last}"
        print(f"5. a restarted replica resumed from seq {last[1]} and caught up")

        # 6. A replica killed, the primary drops the segments it would need: snapshot catch-up.
        r1.kill()
        killed_at = int(info(r2.port)["slave_repl_offset"])
        pdir = os.path.join(tmp, "primary")

        def first_segment_seq():
            names = sorted(n for n in os.listdir(pdir) if n.startswith("journal-"))
            return int(re.search(r"(\d+)", names[0])[1]) if names else 0

        c = kvlib.Conn(primary.port)
        i = 0
        while first_segment_seq() <= killed_at + 1:
            for _ in range(50):
                assert c.call("SET", f"far{i}", "y" * 200) == b"+OK\r\n"
                i += 1
            assert i < 20000, "the primary kept the replica's records"
        c.close()
        r1_pid_before = None
        r1 = start("r1", of, port=r1_port)
        r1_pid_before = r1.pid
        converged(primary, r1, r2)
        log = open(os.path.join(tmp, "r1.stderr")).read()
        assert "installing its snapshot" in log, "no snapshot catch-up in the replica's log"
        assert r1.pid == r1_pid_before and r1.alive()
        print(f"6. a replica behind by {i} writes (dropped segments) caught up from a snapshot")

        # 7. --acks replicated:1 acknowledges only what a replica has.
        repl2 = kvlib.free_port()
        p2 = start("acks-primary", ["--sync", "always", "--repl-port", str(repl2), "--acks",
                                    "replicated:1:500"])
        r3_port = kvlib.free_port()
        r3 = start("acks-replica", ["--replica-of", f"127.0.0.1:{repl2}"], port=r3_port)
        wait_for("the replica connected", lambda: info(p2.port)["connected_slaves"] == "1")
        c = kvlib.Conn(p2.port)
        assert c.call("SET", "a", "1") == b"+OK\r\n"
        assert redis_cli(r3.port, "GET", "a") == "1"  # acknowledged: the replica has it
        r3.kill()
        wait_for("the replica gone", lambda: info(p2.port)["connected_slaves"] == "0")
        started = time.monotonic()
        got = c.call("SET", "b", "2")
        assert got.startswith(b"-NOREPLICAS ") and b"0 of the 1" in got, got
        assert time.monotonic() - started >= 0.45
        assert c.call("GET", "b") == b"$1\r\n2\r\n"  # applied on the primary all the same
        c.close()
        r3 = start("acks-replica", ["--replica-of", f"127.0.0.1:{repl2}"], port=r3_port)
        converged(p2, r3)
        assert redis_cli(r3.port, "GET", "b") == "2"
        print("7. --acks replicated:1: NOREPLICAS after 500 ms without the replica")

        for s in servers:
            if s.alive():
                assert s.stop() == 0, f"{s.dir} did not exit 0 on SIGTERM"
        print("replication_test: all checks passed")
        return 0
    finally:
        for s in servers:
            if s.alive():
                try:
                    os.kill(s.pid, signal.SIGCONT)
                except OSError:
                    pass
                s.kill()


if __name__ == "__main__":
    kvlib.exit_on_sigterm()
    sys.exit(main())
