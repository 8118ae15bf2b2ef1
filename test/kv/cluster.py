"""A prevalent-kv cluster on loopback for the failover test (issue 11, test/kv/failover_test.py).

Everything is started by this harness and stopped by PID: a single-node etcd-server with a
temporary data directory and free ports (EtcdProcess), prevalent-kv nodes with --etcd on fixed
ports (Node), and a client that writes unique keys to whichever node is primary and records
every write it saw acknowledged, with the node that acknowledged it (Recorder). The checks read
the nodes' journals with the `prevalent` tool (`prevalent dump`: every record's sequence
number, epoch and command) and their data over RESP. Python 3 standard library only.
"""

import hashlib
import json
import os
import signal
import subprocess
import tempfile
import threading
import time
import urllib.request

import kvlib

ETCD = os.environ.get("PREVALENT_ETCD", "/usr/bin/etcd")


class EtcdProcess:
    """etcd-server on 127.0.0.1 (free client and peer ports), its data in a temporary
    directory; healthy once GET /health says so. restart() keeps the data and the ports."""

    def __init__(self, root):
        self.dir = tempfile.mkdtemp(prefix="etcd-", dir=root)
        self.proc = None
        self.args = None
        for _ in range(3):  # a port taken meanwhile: try others
            client, peer = kvlib.free_port(), kvlib.free_port()
            if client == peer:
                continue
            self.endpoint = f"http://127.0.0.1:{client}"
            peer_url = f"http://127.0.0.1:{peer}"
            self.args = [ETCD, "--name=test", f"--data-dir={self.dir}/data",
                         f"--listen-client-urls={self.endpoint}",
                         f"--advertise-client-urls={self.endpoint}",
                         f"--listen-peer-urls={peer_url}",
                         f"--initial-advertise-peer-urls={peer_url}",
                         f"--initial-cluster=test={peer_url}", "--initial-cluster-state=new"]
            if self._launch():
                return
            self.kill()
        raise RuntimeError(f"etcd did not become healthy; see {self.dir}/etcd.log")

    def _launch(self, timeout=20):
        with open(os.path.join(self.dir, "etcd.log"), "ab") as log:
            self.proc = subprocess.Popen(self.args, stdout=log, stderr=log,
                                         stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.proc.poll() is None:
            if self.healthy():
                return True
            time.sleep(0.05)
        return False

    def restart(self):
        """The same data directory and ports (a restart after a crash, not a new cluster)."""
        if not self._launch():
            raise RuntimeError(f"etcd did not come back; see {self.dir}/etcd.log")

    def healthy(self):
        try:
            with urllib.request.urlopen(self.endpoint + "/health", timeout=0.5) as r:
                return json.loads(r.read()).get("health") == "true"
        except (OSError, ValueError):
            return False

    def kill(self):
        if self.proc and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        if self.proc:
            self.proc.wait()

    def stop(self):
        if self.proc and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()


def info_replication(port, timeout=2.0):
    """INFO replication of the node on `port` as a dict of field -> str (None if it does not
    answer)."""
    try:
        c = kvlib.Conn(port, timeout=timeout)
        try:
            reply = kvlib.parse(c.call("INFO", "replication"))
        finally:
            c.close()
    except (OSError, kvlib.ConnectionClosed):
        return None
    if not isinstance(reply, bytes):
        return None
    out = {}
    for line in reply.decode().splitlines():
        if ":" in line and not line.startswith("#"):
            k, v = line.split(":", 1)
            out[k] = v
    return out


def dataset(port, pattern="*"):
    """Every key matching `pattern` and its string value, read with SCAN and GET."""
    c = kvlib.Conn(port, timeout=10)
    try:
        keys, cursor = [], b"0"
        while True:
            cursor, batch = kvlib.parse(c.call("SCAN", cursor, "MATCH", pattern, "COUNT", "1000"))
            keys += batch
            if cursor == b"0":
                break
        return {k: kvlib.parse(c.call("GET", k)) for k in keys}
    finally:
        c.close()


def digest(data):
    h = hashlib.sha256()
    for k in sorted(data):
        h.update(k + b"\0" + (data[k] or b"") + b"\n")
    return h.hexdigest()


def journal(tool, directory):
    """The records of the store in `directory` ({seq: record}) from `prevalent dump`."""
    out = subprocess.run([tool, "dump", directory], capture_output=True, timeout=120)
    if out.returncode not in (0, 1):  # 1: damage after the last good record (a torn tail)
        raise RuntimeError(f"prevalent dump {directory}: {out.stderr.decode()}")
    records = {}
    for line in out.stdout.splitlines():
        if not line.startswith(b"{"):
            continue
        r = json.loads(line)
        records[r["seq"]] = r
    return records


class Node:
    """One prevalent-kv --etcd node on fixed ports (its client port and replication port stay
    the same across restarts, as they are published in etcd)."""

    def __init__(self, server, root, name, etcd, extra, cluster="t", start=True):
        self.server, self.name, self.etcd, self.extra = server, name, etcd, list(extra)
        self.cluster = cluster
        self.dir = os.path.join(root, name)
        self.port = kvlib.free_port()
        self.repl_port = kvlib.free_port()
        self.proc = None
        if start:
            self.start()

    def start(self):
        argv = list(self.server) + ["--etcd", self.etcd, "--cluster", self.cluster, "--node", self.name,
                                    "--repl-port", str(self.repl_port)] + self.extra
        self.proc = kvlib.start_kv(argv, self.dir, port=self.port, timeout=60)

    @property
    def stderr_path(self):
        return os.path.join(os.path.dirname(self.dir), self.name + ".stderr")

    def alive(self):
        return self.proc is not None and self.proc.alive()

    def kill(self):
        self.proc.kill()

    def stop(self):
        return self.proc.stop()

    def signal(self, sig):
        os.kill(self.proc.pid, sig)

    def info(self, timeout=2.0):
        return info_replication(self.port, timeout) if self.alive() else None

    def is_primary(self):
        i = self.info(timeout=1.0)
        return bool(i) and i.get("role") == "master"


class Recorder(threading.Thread):
    """Writes `SET <prefix>:<n> <n>` to the node it believes primary, one write at a time, and
    records each write the server acknowledged with +OK as (key, node name, monotonic time).
    A write answered otherwise (an error, a timeout, a closed connection) is 'unknown' (it may
    or may not have happened) and is not checked; after one, the recorder looks for the primary
    again. pause()/resume() hold the writes (between rounds)."""

    def __init__(self, nodes, prefix="w", timeout=3.0):
        super().__init__(daemon=True)
        self.nodes, self.prefix, self.timeout = nodes, prefix, timeout
        self.acked = []  # (key, node name, monotonic time)
        self.unknown = 0
        self.replies = {}  # first word of each reply other than +OK ("-READONLY", "timeout") -> count
        self.n = 0
        self.stopping = threading.Event()
        self.running = threading.Event()
        self.idle = threading.Event()
        self.lock = threading.Lock()

    def find_primary(self):
        for node in list(self.nodes):
            if node.alive() and node.is_primary():
                return node
        return None

    def acks(self):
        with self.lock:
            return list(self.acked)

    def pause(self):
        self.running.clear()
        self.idle.wait(30)

    def resume(self):
        self.idle.clear()
        self.running.set()

    def run(self):
        node, conn = None, None
        while not self.stopping.is_set():
            if not self.running.is_set():
                if conn:
                    conn.close()
                    conn = None
                self.idle.set()
                self.running.wait(0.1)
                continue
            if conn is None:
                node = self.find_primary()
                if node is None:
                    time.sleep(0.05)
                    continue
                try:
                    conn = kvlib.Conn(node.port, timeout=self.timeout)
                except OSError:
                    conn = None
                    time.sleep(0.05)
                    continue
            self.n += 1
            key = f"{self.prefix}:{self.n}"
            try:
                reply = conn.call("SET", key, str(self.n))
            except (OSError, kvlib.ConnectionClosed):
                reply = None
            if reply == b"+OK\r\n":
                with self.lock:
                    self.acked.append((key, node.name, time.monotonic()))
            else:
                self.unknown += 1
                kind = reply.split(b" ", 1)[0].strip().decode() if reply else "no reply"
                with self.lock:
                    self.replies[kind] = self.replies.get(kind, 0) + 1
                conn.close()
                conn = None
                time.sleep(0.02)
        if conn:
            conn.close()
        self.idle.set()

    def stop(self):
        self.stopping.set()
        self.running.set()
        self.join(30)


class ReadChecker(threading.Thread):
    """Reads from every node, primary or replica, over one connection per node at a time, and
    checks that a connection's reads never go backwards: a key `recorder` wrote that a read on
    a connection once found stays found on that connection (the recorder's keys are written
    once and never deleted). Each pass GETs the newest key the recorder wrote plus up to 8 keys
    already seen on the connection. A node that cuts its journal back or installs a snapshot
    re-executes itself (its clients are disconnected), so a new connection starts afresh.
    violations: (node, key, reads on that connection before) of each key found, then missing."""

    def __init__(self, nodes, recorder, interval=0.02):
        super().__init__(daemon=True)
        self.nodes, self.recorder, self.interval = nodes, recorder, interval
        self.reads = 0
        self.violations = []
        self.stopping = threading.Event()

    def run(self):
        conns = {}  # node name -> (Conn, keys seen on it, reads on it)
        while not self.stopping.is_set():
            for node in list(self.nodes):
                try:
                    self.read_once(node, conns)
                except (OSError, kvlib.ConnectionClosed, ValueError):
                    c = conns.pop(node.name, None)
                    if c:
                        c[0].close()
            self.stopping.wait(self.interval)
        for c in conns.values():
            c[0].close()

    def read_once(self, node, conns):
        if node.name not in conns:
            if not node.alive():
                return
            conns[node.name] = (kvlib.Conn(node.port, timeout=1.0), [], [0])
        conn, seen, count = conns[node.name]
        newest = f"{self.recorder.prefix}:{self.recorder.n}".encode()
        for key in seen[-8:] + ([newest] if newest not in seen else []):
            reply = conn.call("GET", key)
            if reply.startswith(b"-"):  # e.g. LOADING while the node opens: not a read
                return
            count[0] += 1
            self.reads += 1
            if reply.startswith(b"$-1"):
                if key in seen:
                    self.violations.append((node.name, key.decode(), count[0]))
                    seen.remove(key)
            elif key not in seen:
                seen.append(key)
                del seen[:-64]

    def stop(self):
        self.stopping.set()
        self.join(30)
