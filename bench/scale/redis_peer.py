#!/usr/bin/env python3
"""redis-server holding the scale benchmark's sessions: BGSAVE, RDB and AOF loads (issue 9).

  python3 bench/scale/redis_peer.py [--scale build/bench/scale] [--sessions 1000000]
      [--tail 100000] [--runs 3] [--dir DIR]

Starts Debian's redis-server by PID on 127.0.0.1 with a temporary directory (appendonly yes,
appendfsync everysec, a plain AOF of the commands: aof-use-rdb-preamble no, no automatic
rewrite, no RDB saves of its own) and loads the same sessions as bench/scale/scale.cpp (`scale
resp` piped into `redis-cli --pipe`: key = the token hash, value = the session's JSON as the
prevalent snapshot holds it). Then it measures, as medians of --runs:

- BGSAVE of --sessions keys: from the BGSAVE command until INFO shows rdb_bgsave_in_progress:0
  (polled every millisecond; rdb_last_bgsave_time_sec only has whole seconds);
- after --tail more keys and one more BGSAVE: restart-and-load of the RDB (appendonly no) and of
  the AOF written while loading the keys (appendonly yes): from spawning redis-server until PING
  answers +PONG and INFO says loading:0; DBSIZE is checked; used_memory_rss and the process's
  VmRSS after the load.

Every redis-server is stopped with SIGTERM by its PID. Prints one JSON object (the driver,
bench/scale/run.py, reads it). Python 3 standard library only.
"""

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "test", "kv"))
import kvlib  # noqa: E402

COMMON = ["--bind", "127.0.0.1", "--save", "", "--daemonize", "no", "--databases", "1",
          "--dbfilename", "dump.rdb", "--appendfsync", "everysec",
          "--aof-use-rdb-preamble", "no", "--auto-aof-rewrite-percentage", "0"]


def log(msg):
    print(f"redis_peer: {msg}", file=sys.stderr, flush=True)


class Redis:
    """One redis-server process on `directory`, started and stopped by PID."""

    def __init__(self, directory, appendonly, timeout=900):
        self.port = kvlib.free_port()
        self.dir = directory
        argv = ["redis-server", "--port", str(self.port), "--dir", directory,
                "--logfile", os.path.join(directory, "redis.log"),
                "--appendonly", "yes" if appendonly else "no"] + COMMON
        self.t0 = time.monotonic()
        self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
        self.ready_s = self._wait_loaded(timeout)

    def _wait_loaded(self, timeout):
        """Seconds from spawn until PING answers +PONG and INFO says loading:0."""
        deadline = self.t0 + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"redis-server exited with {self.proc.returncode}; see "
                                   f"{self.dir}/redis.log")
            try:
                c = kvlib.Conn(self.port, timeout=5)
                try:
                    if c.call("PING") == b"+PONG\r\n" and \
                            self.info("persistence", c).get("loading") == "0":
                        return time.monotonic() - self.t0
                finally:
                    c.close()
            except (OSError, kvlib.ConnectionClosed):
                pass
            time.sleep(0.002)
        self.stop()
        raise RuntimeError(f"redis-server did not finish loading in {timeout} s")

    def info(self, section, conn=None):
        c = conn or kvlib.Conn(self.port, timeout=60)
        try:
            text = kvlib.parse(c.call("INFO", section)).decode()
        finally:
            if conn is None:
                c.close()
        return dict(line.split(":", 1) for line in text.splitlines() if ":" in line)

    def call(self, *args):
        c = kvlib.Conn(self.port, timeout=600)
        try:
            return kvlib.parse(c.call(*args))
        finally:
            c.close()

    def vm_rss_mb(self):
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024 / 1e6
        return float("nan")

    def memory(self):
        return {"used_memory_rss_mb": int(self.info("memory")["used_memory_rss"]) / 1e6,
                "vm_rss_mb": self.vm_rss_mb()}

    def stop(self):
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(600)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


def load(redis, scale, first, count):
    """Pipes `scale resp` into redis-cli --pipe; returns the seconds it took."""
    t0 = time.monotonic()
    gen = subprocess.Popen([scale, "resp", "--first", str(first), "--count", str(count)],
                           stdout=subprocess.PIPE)
    cli = subprocess.run(["redis-cli", "-h", "127.0.0.1", "-p", str(redis.port), "--pipe"],
                         stdin=gen.stdout, capture_output=True, text=True, timeout=3600)
    gen.stdout.close()
    if gen.wait() != 0 or cli.returncode != 0 or "errors: 0," not in cli.stdout:
        raise RuntimeError(f"loading sessions failed: {cli.stdout} {cli.stderr}")
    return time.monotonic() - t0


def bgsave(redis):
    """Seconds from BGSAVE until the child has written and renamed the RDB."""
    t0 = time.monotonic()
    reply = redis.call("BGSAVE")
    if not isinstance(reply, bytes) or not reply.startswith(b"Background saving started"):
        raise RuntimeError(f"BGSAVE answered {reply!r}")
    c = kvlib.Conn(redis.port, timeout=60)
    try:
        while True:
            info = redis.info("persistence", c)
            if info["rdb_bgsave_in_progress"] == "0":
                break
            time.sleep(0.001)
    finally:
        c.close()
    seconds = time.monotonic() - t0
    if info["rdb_last_bgsave_status"] != "ok":
        raise RuntimeError(f"BGSAVE failed: {info}")
    return seconds, int(info.get("rdb_last_cow_size", 0))


def restart(directory, appendonly, expect):
    r = Redis(directory, appendonly)
    try:
        n = r.call("DBSIZE")
        if n != expect:
            raise RuntimeError(f"redis-server restarted with DBSIZE {n}, expected {expect}")
        return {"seconds": r.ready_s, **r.memory()}
    finally:
        r.stop()


def median_of(rows, key):
    return statistics.median(r[key] for r in rows)


def run(scale, sessions, tail, runs, parent=None):
    directory = tempfile.mkdtemp(prefix="scale-redis-", dir=parent)
    try:
        version = subprocess.run(["redis-server", "--version"], capture_output=True,
                                 text=True).stdout.split()[2]
        r = Redis(directory, appendonly=True)
        try:
            load_s = load(r, scale, 0, sessions)
            log(f"loaded {sessions} sessions in {load_s:.1f} s")
            saves = [bgsave(r) for _ in range(runs)]
            log(f"BGSAVE of {sessions}: {[round(s, 3) for s, _ in saves]} s")
            rdb_bytes = os.path.getsize(os.path.join(directory, "dump.rdb"))
            steady = r.memory()
            tail_s = load(r, scale, sessions, tail)
            bgsave(r)  # the RDB of all sessions, for the restarts
            built = r.memory()
        finally:
            r.stop()
        aof_bytes = sum(os.path.getsize(os.path.join(root, f))
                        for root, _, files in os.walk(os.path.join(directory, "appendonlydir"))
                        for f in files)
        total = sessions + tail
        rdb = [restart(directory, False, total) for _ in range(runs)]
        log(f"RDB restarts: {[round(x['seconds'], 3) for x in rdb]} s")
        aof = [restart(directory, True, total) for _ in range(runs)]
        log(f"AOF restarts: {[round(x['seconds'], 3) for x in aof]} s")
        return {
            "redis_version": version, "sessions": sessions, "tail": tail, "runs": runs,
            "load_s": load_s, "tail_load_s": tail_s,
            "bgsave_s": statistics.median(s for s, _ in saves),
            "bgsave_runs_s": [s for s, _ in saves],
            "bgsave_cow_mb": statistics.median(c for _, c in saves) / 1e6,
            "rdb_mb": rdb_bytes / 1e6, "aof_mb": aof_bytes / 1e6,
            "steady_rss_mb": steady["vm_rss_mb"], "built_rss_mb": built["vm_rss_mb"],
            "built_used_memory_rss_mb": built["used_memory_rss_mb"],
            "rdb_load_s": median_of(rdb, "seconds"), "rdb_runs_s": [x["seconds"] for x in rdb],
            "rdb_rss_mb": median_of(rdb, "vm_rss_mb"),
            "rdb_used_memory_rss_mb": median_of(rdb, "used_memory_rss_mb"),
            "aof_load_s": median_of(aof, "seconds"), "aof_runs_s": [x["seconds"] for x in aof],
            "aof_rss_mb": median_of(aof, "vm_rss_mb"),
            "aof_used_memory_rss_mb": median_of(aof, "used_memory_rss_mb"),
        }
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--scale", default="build/bench/scale", help="the scale program (for resp)")
    ap.add_argument("--sessions", type=int, default=1000000)
    ap.add_argument("--tail", type=int, default=100000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--dir", default=None, help="parent of the temporary directory")
    opts = ap.parse_args()
    if not os.access(opts.scale, os.X_OK):
        sys.exit(f"redis_peer: {opts.scale} is not built (ninja -C build bench/scale)")
    if shutil.which("redis-server") is None or shutil.which("redis-cli") is None:
        sys.exit("redis_peer: needs redis-server and redis-cli (Debian redis-server, redis-tools)")
    if opts.sessions < 1 or opts.tail < 0 or opts.runs < 1:
        sys.exit("redis_peer: --sessions and --runs must be at least 1, --tail at least 0")
    print(json.dumps(run(opts.scale, opts.sessions, opts.tail, opts.runs, opts.dir), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
