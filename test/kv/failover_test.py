#!/usr/bin/env python3
"""prevalent-kv automatic failover through etcd (issue 11, part 4; docs/REPLICATION.md
"In the kv server").

  failover_test.py TOOL     (TOOL: the `prevalent` command-line tool; KV_SERVER: kvlib.py)
  ROUNDS=N failover_test.py TOOL    long mode: N passes over the five rounds (not in CI)
  SEED=S                    the random timing of a run to repeat (printed at the start)

Skipped (exit 77) without /usr/bin/etcd (Debian etcd-server; PREVALENT_ETCD names another),
without the kv server, or for KV_SERVER=redis-server. Everything runs on loopback, started and
stopped by PID: one etcd with a temporary data directory, three prevalent-kv nodes with
`--acks replicated:1:2000 --sync always --lease-ttl 2` on fixed ports, and a Recorder client
that writes unique keys to whichever node says it is the primary (INFO replication
role:master) and records each +OK with the node that sent it. Rounds, with random timing:

1. kill-primary: SIGKILL of the primary under load; it is restarted once another node is
   primary and acknowledges writes (it rejoins as a replica, cutting back what it alone had).
2. stop-primary: SIGSTOP of the primary past its lease; meanwhile a second client pipelines
   writes to it; after another node is primary, SIGCONT. Verified: every one of those writes
   is refused (-READONLY or -TRYAGAIN), none acknowledged (the node's lease had run out).
3. replica-behind: SIGKILL of a replica; writes go on; the primary takes snapshots (SAVE, one
   kept, 4 KiB segments) until its journal starts after the replica's last record; the
   replica restarted catches up from the snapshot (its log says it installed one).
4. restart-all: every node stopped (SIGTERM, exit 0), started again; the new primary expires
   a key set with PX 100 (an expire_due record in its journal).
5. etcd-down: SIGKILL of etcd under load: no write is acknowledged from TTL + 1 s after the
   kill until etcd is restarted (same data, same ports), then a primary is elected again.
7. callback-failure (once, a one-node cluster): becoming the primary fails (its replication
   port is held by another socket): the node fences, gives its lease up and restarts itself,
   never acting as primary; once the port is free it becomes the primary.
0. Bad --etcd command lines are refused (exit 2, the option named) before anything opens.
6. lease-lost (once, on a second two-node cluster): a write waiting for its SIGSTOPped replica
   when the primary loses its lease (etcd SIGSTOPped) is answered -TRYAGAIN, not +OK; so is
   a completed write whose reply waited behind a pipelined WAIT until the lease was lost.

After each round, with the writes paused: a primary is elected; every acknowledged write is
present with its value on it (GET); from `prevalent dump` of every node's directory, the
record of each acknowledged write on the node that acknowledged it has an epoch > 0, and no
two nodes acknowledged writes in the same epoch; records with the same (seq, epoch) on two
nodes are the same command; all nodes reach the same offset and the same dataset digest; every
node's INFO replication names the primary's client address (prevalent_primary); reads never
went backwards: a ReadChecker GETs the recorder's keys on every node (replicas included) every
20 ms, and no key once found on a connection was missing from a later read on it.
Snapshots are taken explicitly (SAVE, in round 3) rather than every N commands so that the
journal still holds the record of every acknowledged write when it is checked.
"""

import json
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cluster  # noqa: E402
import kvlib  # noqa: E402

TTL = 2
BOUND = 40.0  # seconds any one wait may take
KEY = re.compile(r'"(w:\d+)"')


def wait_for(what, check, bound=BOUND):
    deadline = time.monotonic() + bound
    while time.monotonic() < deadline:
        v = check()
        if v:
            return v
        time.sleep(0.05)
    raise AssertionError(f"timed out after {bound} s waiting for {what}")


class Failover:
    def __init__(self, server, tool, root, rng):
        self.tool, self.rng, self.root = tool, rng, root
        self.etcd = cluster.EtcdProcess(root)
        extra = ["--acks", "replicated:1:2000", "--sync", "always", "--lease-ttl", str(TTL),
                 "--snapshot-every-commands", "0", "--snapshot-every-bytes", "0",
                 "--keep-snapshots", "1", "--segment-bytes", "4096"]
        self.nodes = []
        try:
            for name in ("n1", "n2", "n3"):
                self.nodes.append(cluster.Node(server, root, name, self.etcd.endpoint, extra))
        except BaseException:
            for n in self.nodes:
                n.kill()
            self.etcd.kill()
            raise
        self.recorder = cluster.Recorder(self.nodes)
        self.recorder.start()
        self.reader = cluster.ReadChecker(self.nodes, self.recorder)
        self.reader.start()
        self.verified = set()  # acknowledged keys whose journal records were checked
        self.epoch_nodes = {}  # epoch -> nodes that acknowledged writes in it
        self.checked = 0
        self.failover_times = []  # kill-primary: from the SIGKILL to the successor's first +OK

    def close(self):
        self.recorder.stop()
        self.reader.stop()
        for n in self.nodes:
            if n.alive():
                n.signal(signal.SIGCONT)
                if n.stop() != 0:
                    print(f"{n.name} exited with {n.proc.proc.returncode}", file=sys.stderr)
        self.etcd.stop()

    def primary(self, exclude=None):
        for n in self.nodes:
            if n is not exclude and n.alive() and n.is_primary():
                return n
        return None

    def acks_by(self, node, since):
        return [a for a in self.recorder.acks() if a[1] == node.name and a[2] > since]

    def write_until(self, count, exclude=None):
        """Lets the recorder run until `count` more writes are acknowledged by a primary other
        than `exclude`; returns that primary."""
        start = time.monotonic()
        self.recorder.resume()
        p = wait_for("a primary acknowledging writes",
                     lambda: next((n for n in self.nodes if n is not exclude and
                                   len(self.acks_by(n, start)) >= count), None))
        return p

    def check_journals(self, name, acks):
        """The journal checks of every acknowledged write not checked yet (before snapshots
        drop the records): returns (writes newly checked, records compared across nodes)."""
        journals = {n.name: cluster.journal(self.tool, n.dir) for n in self.nodes}
        where = {}  # node -> key -> record
        for node, records in journals.items():
            index = where.setdefault(node, {})
            for r in records.values():
                for key in KEY.findall(json.dumps(r.get("args"))):
                    index[key] = r
        new = 0
        for key, node, _ in acks:
            if key in self.verified:
                continue
            r = where[node].get(key)
            assert r is not None, f"{name}: no record of {key} in {node}'s journal (it acked it)"
            assert r["epoch"] > 0, f"{name}: {key} acknowledged by {node} in record {r} of epoch 0"
            self.epoch_nodes.setdefault(r["epoch"], set()).add(node)
            self.verified.add(key)
            new += 1
        for epoch, nodes in self.epoch_nodes.items():
            assert len(nodes) == 1, f"{name}: nodes {sorted(nodes)} acknowledged writes in epoch {epoch}"
        pairs = 0
        names = sorted(journals)
        for i, a in enumerate(names):
            for b in names[i + 1:]:
                for seq, ra in journals[a].items():
                    rb = journals[b].get(seq)
                    if rb is not None and rb["epoch"] == ra["epoch"]:
                        pairs += 1
                        assert (ra["cmd"], ra["args"]) == (rb["cmd"], rb["args"]), (
                            f"{name}: seq {seq} epoch {ra['epoch']} differs on {a} and {b}: "
                            f"{ra} vs {rb}")
        self.checked += new
        return new, pairs

    # -- the checks after a round ---------------------------------------------------------
    def check(self, name):
        self.recorder.pause()
        p = wait_for("a primary", self.primary)
        acks = self.recorder.acks()

        def same():
            infos = [n.info() for n in self.nodes]
            if any(i is None for i in infos):
                return None
            offsets = {i.get("master_repl_offset") for i in infos}
            if len(offsets) != 1:
                return None
            sets = [cluster.dataset(n.port) for n in self.nodes]
            digests = {cluster.digest(d) for d in sets}
            return (offsets.pop(), sets[0]) if len(digests) == 1 else None

        offset, data = wait_for("all nodes at the same offset and digest", same)
        # Every acknowledged write is on the primary, with its value.
        missing = [k for k, _, _ in acks if data.get(k.encode()) != k.split(":")[1].encode()]
        assert not missing, f"{name}: acknowledged writes missing on {p.name}: {missing[:10]}"
        assert cluster.dataset(p.port).keys() == data.keys()
        # Any node names the primary's client address (published in etcd).
        wait_for("every node naming the primary",
                 lambda: all((n.info() or {}).get("prevalent_primary") == f"127.0.0.1:{p.port}"
                             for n in self.nodes))

        new, pairs = self.check_journals(name, acks)
        # No connection's reads went backwards (on any node, primary or replica).
        assert not self.reader.violations, \
            f"{name}: reads went backwards (node, key, reads on that connection before): " \
            f"{self.reader.violations[:5]}"
        print(f"{name}: ok: primary {p.name} (epoch {p.info().get('prevalent_epoch')}), offset "
              f"{offset}, {len(data)} keys, {len(acks)} acknowledged ({new} newly checked in "
              f"journals), {self.recorder.unknown} unknown, epochs "
              f"{ {e: sorted(n) for e, n in sorted(self.epoch_nodes.items())} }, "
              f"{pairs} records compared across nodes, {self.reader.reads} reads checked "
              f"monotonic", flush=True)

    # -- the rounds -------------------------------------------------------------------------
    def kill_primary(self):
        old = self.write_until(20)
        time.sleep(self.rng.uniform(0.1, 1.0))
        old.kill()
        killed = time.monotonic()
        self.write_until(1, exclude=old)
        first = min(a[2] for a in self.recorder.acks() if a[1] != old.name and a[2] > killed)
        self.failover_times.append(first - killed)
        print(f"kill-primary: {old.name} killed; the first write acknowledged by its successor "
              f"came {first - killed:.2f} s later (lease TTL {TTL} s)", flush=True)
        self.write_until(20, exclude=old)
        old.start()
        self.write_until(5)
        self.check("kill-primary")

    def stop_primary(self):
        old = self.write_until(20)
        conn = kvlib.Conn(old.port, timeout=30)
        time.sleep(self.rng.uniform(0.1, 1.0))
        old.signal(signal.SIGSTOP)
        stopped = time.monotonic()
        probes = 20
        conn.send(b"".join(kvlib.encode(["SET", f"late:{i}", "x"]) for i in range(probes)))
        self.write_until(20, exclude=old)
        # Past its lease for sure (the successor was elected after it ran out), and a little
        # longer at random.
        time.sleep(self.rng.uniform(0.0, 1.0))
        old.signal(signal.SIGCONT)
        replies = []
        try:
            for _ in range(probes):
                replies.append(conn.reply())
        except (OSError, kvlib.ConnectionClosed):
            # The node restarted itself (a cut-back) before answering them all: no +OK either.
            replies.append(b"-(connection closed)")
        conn.close()
        acked = [r for r in replies if r.startswith(b"+")]
        assert not acked, f"stop-primary: {old.name} acknowledged {len(acked)} writes after " \
                          f"losing its lease: {replies}"
        assert all(r.startswith((b"-READONLY", b"-TRYAGAIN", b"-(connection closed)"))
                   for r in replies), replies
        print(f"stop-primary: {old.name} stopped {time.monotonic() - stopped:.1f} s; all "
              f"{probes} writes sent meanwhile refused ({replies[0][:40]!r}...)", flush=True)
        self.write_until(5)
        self.check("stop-primary")

    def replica_behind(self):
        p = self.write_until(10)
        replica = self.rng.choice([n for n in self.nodes if n is not p])
        replica.kill()
        last = max(cluster.journal(self.tool, replica.dir) or {0: None})
        self.write_until(self.rng.randint(150, 300))
        self.recorder.pause()
        p = wait_for("a primary", self.primary)
        # Snapshots until the primary's journal starts after the replica's last record.
        for _ in range(10):
            c = kvlib.Conn(p.port)
            self.check_journals("replica-behind", self.recorder.acks())
            assert c.call("SAVE") == b"+OK\r\n"
            c.close()
            first = min(cluster.journal(self.tool, p.dir) or {0: None})
            if first > last + 1:
                break
            self.write_until(50)
            self.recorder.pause()
        assert first > last + 1, f"the primary's journal still starts at {first} (replica at {last})"
        with open(replica.stderr_path, "rb") as f:
            before = f.read().count(b"too far behind the primary")
        replica.start()
        self.write_until(20)
        wait_for("the replica's snapshot catch-up",
                 lambda: open(replica.stderr_path, "rb").read().count(
                     b"too far behind the primary") > before)
        print(f"replica-behind: {replica.name} at {last}, primary's journal from {first}: "
              f"caught up from the snapshot", flush=True)
        self.check("replica-behind")

    def restart_all(self):
        self.write_until(20)
        time.sleep(self.rng.uniform(0.0, 0.5))
        self.recorder.pause()
        for n in self.nodes:
            status = n.stop()
            assert status == 0, f"{n.name} exited with {status} after SIGTERM"
        for n in self.nodes:
            n.start()
        p = self.write_until(20)
        # A node that opened read-only and was then elected expires keys itself (its expiry
        # timer keeps looking while it is not primary): an expire_due record follows a key
        # set to expire in 100 ms.
        def expiries():
            return sum(r["cmd"] == "expire_due"
                       for r in cluster.journal(self.tool, p.dir).values())
        before = expiries()
        c = kvlib.Conn(p.port)
        reply = c.call("SET", f"x:{before}", "v", "PX", "100")
        c.close()
        if reply == b"+OK\r\n":  # else it lost its lease meanwhile: nothing to expire
            wait_for(f"an expire_due record on {p.name}", lambda: expiries() > before)
        self.check("restart-all")

    def etcd_down(self):
        self.write_until(20)
        time.sleep(self.rng.uniform(0.0, 0.5))
        self.etcd.kill()
        killed = time.monotonic()
        time.sleep(TTL + 2.5)
        late = [a for a in self.recorder.acks() if a[2] > killed + TTL + 1.0]
        assert not late, f"etcd-down: writes acknowledged {TTL + 1} s after etcd died: {late[:5]}"
        assert self.primary() is None, "etcd-down: a node still says it is the primary"
        print(f"etcd-down: no write acknowledged from {TTL + 1} s after the kill, no primary",
              flush=True)
        self.etcd.restart()
        self.write_until(20)
        self.check("etcd-down")

    def lease_lost_in_flight(self, server):
        """A write waiting for its replica when the primary loses its lease: -TRYAGAIN.

        A second cluster (m1, m2) on the same etcd, --acks replicated:1:60000: m2 SIGSTOPped,
        a SET to the primary m1 waits for it; etcd SIGSTOPped: m1 cannot refresh its lease
        and fences within the TTL, long before the 60 s timeout. Verified: the reply is
        -TRYAGAIN (outcome unknown), not +OK; the write is in m1's journal (applied and
        durable there, as the error says).

        Also, a reply held back by pipelining: a second client pipelines `WAIT 5 8000` (there
        is one replica: it waits the whole 8 s) and `SET m:held 1` before the replica stops;
        the SET completes (replicated, lease valid) at once, but its reply must wait for the
        WAIT's, and the lease is lost meanwhile. Verified: the WAIT answers, and the SET's
        reply, handed to the socket after the lease ran out, is -TRYAGAIN, not +OK."""
        extra = ["--acks", "replicated:1:60000", "--sync", "always", "--lease-ttl", str(TTL)]
        m = [cluster.Node(server, self.root, name, self.etcd.endpoint, extra, cluster="m")
             for name in ("m1", "m2")]
        try:
            p = wait_for("a primary of the second cluster",
                         lambda: next((n for n in m if n.is_primary()), None))
            r = next(n for n in m if n is not p)
            wait_for("its replica", lambda: (p.info() or {}).get("connected_slaves") == "1")
            c = kvlib.Conn(p.port, timeout=30)
            assert c.call("SET", "m:before", "1") == b"+OK\r\n"
            held = kvlib.Conn(p.port, timeout=30)
            held.send(kvlib.encode(["WAIT", "5", "8000"]) + kvlib.encode(["SET", "m:held", "1"]))
            time.sleep(0.3)  # m:held is replicated and completes; its reply waits for WAIT's
            r.signal(signal.SIGSTOP)
            c.send(kvlib.encode(["SET", "m:inflight", "1"]))
            time.sleep(0.3)
            self.etcd.proc.send_signal(signal.SIGSTOP)
            try:
                reply = c.reply()
                waited, held_reply = held.reply(), held.reply()
            finally:
                self.etcd.proc.send_signal(signal.SIGCONT)
                r.signal(signal.SIGCONT)
            c.close()
            held.close()
            assert reply.startswith(b"-TRYAGAIN"), f"lease-lost: {reply!r}"
            assert waited.startswith(b":"), f"lease-lost: WAIT answered {waited!r}"
            assert held_reply.startswith(b"-TRYAGAIN"), \
                f"lease-lost: a reply held behind WAIT left after the lease ran out: {held_reply!r}"
            records = cluster.journal(self.tool, p.dir)
            assert any("m:inflight" in json.dumps(x.get("args")) for x in records.values())
            print(f"lease-lost: a write waiting for its replica when {p.name} lost its lease: "
                  f"{reply[:60]!r}...; in {p.name}'s journal; a completed write's reply held "
                  f"behind WAIT until after the lease ran out: -TRYAGAIN too", flush=True)
        finally:
            for n in m:
                n.signal(signal.SIGCONT)
                n.stop()

    def callback_failure(self, server):
        """A coordinator callback that throws: the node fences, gives its lease up and
        restarts itself; it does not act as primary meanwhile.

        Injected: the replication port of a one-node cluster (f1) is held by another socket, so
        becoming the primary fails (bind). Verified: its log says so, more than once (each
        restart campaigns again, at once since the lease was revoked), INFO never says
        role:master meanwhile and a write is refused; once the port is free it becomes the
        primary and acknowledges a write."""
        import socket
        f1 = cluster.Node(server, self.root, "f1", self.etcd.endpoint,
                          ["--sync", "always", "--lease-ttl", str(TTL)], cluster="f",
                          start=False)
        blocker = socket.socket()
        blocker.bind(("127.0.0.1", f1.repl_port))
        blocker.listen(1)
        try:
            f1.start()
            failure = b"cluster: becoming the primary of epoch"
            wait_for("two failed promotions in f1's log",
                     lambda: open(f1.stderr_path, "rb").read().count(failure) >= 2)
            roles = [(f1.info(timeout=1.0) or {}).get("role") for _ in range(5)]
            assert "master" not in roles, roles
            try:
                c = kvlib.Conn(f1.port, timeout=5)
                refused = c.call("SET", "f:1", "1")
                c.close()
            except (OSError, kvlib.ConnectionClosed):
                refused = b"-(restarting)"
            assert not refused.startswith(b"+"), refused
            blocker.close()
            wait_for("f1 primary once its port is free", f1.is_primary)
            c = kvlib.Conn(f1.port, timeout=5)
            assert c.call("SET", "f:2", "2") == b"+OK\r\n"
            c.close()
            with open(f1.stderr_path, "rb") as log:
                n = log.read().count(failure)
            print(f"callback-failure: becoming primary failed {n} times (port held), the node "
                  f"restarted itself each time and refused writes; primary once the port was "
                  f"free", flush=True)
        finally:
            blocker.close()
            if f1.proc is not None and f1.alive():
                f1.stop()


def refusals(server, root):
    """--etcd without what it needs is refused before the store opens: exit 2, a message
    naming the missing or wrong option, no directory created."""
    d = os.path.join(root, "refused")
    base = ["--dir", d, "--etcd", "http://127.0.0.1:1", "--node", "n"]
    cases = [
        (["--cluster", "c", "--port", "7000"], "--etcd needs a fixed --repl-port N with N > 0"),
        (["--cluster", "c", "--port", "0", "--repl-port", "7001"],
         "--etcd needs a fixed --port N with N > 0"),
        (["--cluster", "c", "--port", "7000", "--repl-port", "7001", "--replica-of",
          "127.0.0.1:5"], "--etcd cannot be combined with --replica-of"),
        (["--cluster", "a/b", "--port", "7000", "--repl-port", "7001"], "must not contain '/'"),
        (["--port", "7000", "--repl-port", "7001"], "--etcd needs --cluster NAME and --node"),
    ]
    for extra, message in cases:
        out = subprocess.run(list(server) + base + extra, capture_output=True, timeout=30)
        assert out.returncode == 2 and message in out.stderr.decode(), (extra, out)
    out = subprocess.run(list(server) + ["--dir", d, "--cluster", "c", "--port", "7000"],
                         capture_output=True, timeout=30)
    assert out.returncode == 2 and "--cluster and --node need --etcd" in out.stderr.decode()
    out = subprocess.run(list(server) + ["--dir", d, "--etcd", "127.0.0.1:2379", "--cluster", "c",
                                         "--node", "n", "--port", "7000", "--repl-port", "7001"],
                         capture_output=True, timeout=30)
    assert out.returncode == 2 and "must be an http:// URL" in out.stderr.decode(), out
    assert not os.path.exists(d), "a refused start created its directory"
    print(f"refusals: {len(cases) + 2} bad --etcd command lines refused (exit 2, named)",
          flush=True)


def main():
    server = kvlib.kv_command()
    if kvlib.is_redis(server):
        print("failover needs prevalent-kv --etcd: skipping for redis-server", file=sys.stderr)
        return kvlib.SKIP
    if not os.access(cluster.ETCD, os.X_OK):
        print(f"{cluster.ETCD} not found (Debian etcd-server): skipping", file=sys.stderr)
        return kvlib.SKIP
    if len(sys.argv) < 2 or not os.access(sys.argv[1], os.X_OK):
        print("the prevalent tool is not built: skipping", file=sys.stderr)
        return kvlib.SKIP
    seed = int(os.environ.get("SEED", random.randrange(1 << 30)))
    rounds = int(os.environ.get("ROUNDS", "1"))
    print(f"seed {seed} (SEED={seed} repeats this timing), {rounds} pass(es)", flush=True)
    rng = random.Random(seed)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="kv-failover-") as root:
        refusals(server, root)
        f = Failover(server, sys.argv[1], root, rng)
        try:
            for i in range(rounds):
                for step in (f.kill_primary, f.stop_primary, f.replica_behind, f.restart_all,
                             f.etcd_down):
                    step()
            f.lease_lost_in_flight(server)
            f.callback_failure(server)
        except BaseException:
            for n in f.nodes:
                try:
                    with open(n.stderr_path, "rb") as log:
                        tail = log.read()[-3000:].decode(errors="replace")
                    print(f"--- {n.name} stderr (end) ---\n{tail}", file=sys.stderr)
                except OSError:
                    pass
            raise
        finally:
            f.close()
    times = sorted(f.failover_times)
    print(f"ok: {rounds} pass(es), {len(f.verified)} acknowledged writes checked in journals, "
          f"{f.recorder.unknown} unknown outcomes {f.recorder.replies}, failover after SIGKILL "
          f"(s, TTL {TTL}): min {times[0]:.2f} median {times[len(times) // 2]:.2f} max "
          f"{times[-1]:.2f}, {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    kvlib.exit_on_sigterm()
    sys.exit(main())
