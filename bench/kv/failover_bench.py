#!/usr/bin/env python3
"""prevalent-kv failover time against the lease TTL (issue 11; docs/BENCHMARKS.md "Failover
time against the lease TTL").

  bench/kv/failover_bench.py [TRIALS [TTL...]]      (defaults: 10 trials, TTLs 2 5 10)
  KV_SERVER=build/examples/kv/prevalent-kv          (the server to measure; that is the default)

For each TTL: a real etcd (/usr/bin/etcd, or PREVALENT_ETCD) on loopback with a temporary
data directory, three `prevalent-kv --etcd` nodes with `--acks replicated:1:2000 --sync always
--lease-ttl TTL`, and test/kv/cluster.py's Recorder writing to whichever node is primary. Each
trial SIGKILLs the primary at a varying moment after its last acknowledged write and measures
from the kill to the first write acknowledged by another node (it must also have a replica
following it, for replicated:1), then restarts the killed node (it rejoins as a replica).
Prints min, median, p90 and max per TTL, and whether every trial met the TTL + 1 s target.
Everything is started and stopped by PID by the bench.
"""

import os
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "test", "kv"))
import cluster  # noqa: E402
import kvlib  # noqa: E402


def trials_for(server, ttl, trials):
    times = []
    with tempfile.TemporaryDirectory(prefix="kv-failover-bench-") as root:
        etcd = cluster.EtcdProcess(root)
        extra = ["--acks", "replicated:1:2000", "--sync", "always", "--lease-ttl", str(ttl)]
        nodes = []
        recorder = None
        try:
            nodes = [cluster.Node(server, root, n, etcd.endpoint, extra) for n in ("n1", "n2", "n3")]
            recorder = cluster.Recorder(nodes)
            recorder.start()
            recorder.resume()
            for t in range(trials):
                deadline = time.monotonic() + 60
                while True:
                    p = recorder.find_primary()
                    if p and any(a[1] == p.name for a in recorder.acks()):
                        break
                    if time.monotonic() > deadline:
                        raise RuntimeError("no primary acknowledging writes within 60 s")
                    time.sleep(0.1)
                # Spread the kill over the lease's refresh period (TTL/3).
                time.sleep(0.5 + (t * 0.37) % (ttl / 3.0))
                p.kill()
                killed = time.monotonic()
                while True:
                    later = [a for a in recorder.acks() if a[1] != p.name and a[2] > killed]
                    if later:
                        break
                    if time.monotonic() > killed + 60:
                        raise RuntimeError("no failover within 60 s")
                    time.sleep(0.02)
                times.append(later[0][2] - killed)
                print(f"  TTL {ttl} s, trial {t + 1}: {times[-1]:.2f} s", flush=True)
                p.start()
        finally:
            if recorder:
                recorder.stop()
            for n in nodes:
                if n.alive():
                    n.stop()
            etcd.stop()
    return sorted(times)


def main():
    trials = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    ttls = [int(a) for a in sys.argv[2:]] or [2, 5, 10]
    server = os.environ.get("KV_SERVER", os.path.join(ROOT, "build/examples/kv/prevalent-kv"))
    if not os.access(cluster.ETCD, os.X_OK) or not os.access(server, os.X_OK):
        print(f"needs {cluster.ETCD} and {server}", file=sys.stderr)
        return 2
    rows = []
    for ttl in ttls:
        t = trials_for([server], ttl, trials)
        p90 = t[min(len(t) - 1, int(0.9 * len(t)))]
        met = "met by every trial" if t[-1] <= ttl + 1 else f"missed by {sum(x > ttl + 1 for x in t)}"
        rows.append(f"| {ttl} s | {t[0]:.2f} s | {t[len(t) // 2]:.2f} s | {p90:.2f} s | "
                    f"{t[-1]:.2f} s | {met} |")
    print(f"\n{trials} trials per TTL")
    print("| lease TTL | min | median | p90 | max | target TTL + 1 s |")
    print("|---|---|---|---|---|---|")
    print("\n".join(rows))
    return 0


if __name__ == "__main__":
    kvlib.exit_on_sigterm()
    sys.exit(main())
