#!/usr/bin/env python3
"""prevalent-kv against redis-server, side by side in one run (issue 8, part 5).

  python3 bench/kv/bench_kv.py [--kv build/examples/kv/prevalent-kv] [--runs 5]
      [--keys 1000000] [--dir DIR] [--configs "-c 50,-c 50 -P 16"] [--skip-throughput]

1. Throughput: `redis-benchmark -t set,get -r 100000 --csv` at -c 1, -c 50 and -c 50 -P 16
   against `prevalent-kv --sync always` and `redis-server --appendonly yes --appendfsync always`
   (every acknowledged write on disk for both), each on a fresh directory under --dir (one disk
   for both), loopback, started and stopped by PID. The servers alternate within each run; the
   median of the runs and the ratio prevalent-kv / redis-server are printed.
2. Restart: --keys SETs of 100-byte values (key:0000000...) are loaded into each server by a
   pipelined generator (8 connections, 1,000 commands per write); RSS is read from /proc; the
   server is stopped with SIGTERM and started again on the same directory, and the time from
   spawn until PING answers +PONG is measured (3 restarts, median), then DBSIZE is checked.
   redis-server keeps a plain AOF of the SETs for this (--aof-use-rdb-preamble no,
   --auto-aof-rewrite-percentage 0: no rewrite into an RDB base), as the issue asks.
The output is a Markdown section for docs/BENCHMARKS.md. --kv redis-server compares Redis with
itself (a check of the script). Python 3 standard library only.
"""

import argparse
import csv
import io
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "test", "kv"))
import kvlib  # noqa: E402

CONFIGS = [("-c 1", ["-c", "1"], 4000), ("-c 50", ["-c", "50"], 50000),
           ("-c 50 -P 16", ["-c", "50", "-P", "16"], 300000)]
TARGETS = {("SET", "-c 50"): 1.5, ("SET", "-c 50 -P 16"): 1.0, ("GET", "-c 50"): 0.8}
REDIS_AOF = ["--aof-use-rdb-preamble", "no", "--auto-aof-rewrite-percentage", "0"]


def start(kind, argv, directory, port=0):
    os.makedirs(directory, exist_ok=True)
    if kind == "redis":
        return kvlib.start_redis(directory, durable=True, extra=REDIS_AOF, port=port or None,
                                 timeout=600)
    return kvlib.start_kv(argv, directory, durable=True, redis_extra=REDIS_AOF, port=port,
                          timeout=600)


def bench(port, args, n):
    cmd = ["redis-benchmark", "-h", "127.0.0.1", "-p", str(port), "-t", "set,get",
           "-r", "100000", "-n", str(n), "--csv"] + args
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
    rows = list(csv.reader(io.StringIO(p.stdout)))
    out = {r[0]: float(r[1]) for r in rows[1:] if len(r) > 1}
    if p.returncode != 0 or set(out) != {"SET", "GET"}:
        raise RuntimeError(f"{' '.join(cmd)} failed ({p.returncode}): {p.stdout} {p.stderr}")
    return out


def load(port, keys, conns=8, batch=1000):
    value = b"v" * 100
    per = (keys + conns - 1) // conns

    def worker(first, last, errors):
        c = kvlib.Conn(port, timeout=600)
        for i in range(first, last, batch):
            j = min(i + batch, last)
            c.send(b"".join(b"*3\r\n$3\r\nSET\r\n$11\r\nkey:%07d\r\n$100\r\n%s\r\n" % (k, value)
                            for k in range(i, j)))
            for _ in range(i, j):
                r = c.reply()
                if r != b"+OK\r\n":
                    errors.append(r)
                    return
        c.close()

    errors, threads = [], []
    for t in range(conns):
        th = threading.Thread(target=worker,
                              args=(t * per, min((t + 1) * per, keys), errors))
        th.start()
        threads.append(th)
    for th in threads:
        th.join()
    if errors:
        raise RuntimeError(f"loading failed: {errors[0]!r}")


def rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def du_mib(path):
    total = 0
    for root, _, files in os.walk(path):
        total += sum(os.path.getsize(os.path.join(root, f)) for f in files)
    return total / (1 << 20)


def restart_timing(kind, argv, directory, keys, restarts):
    srv = start(kind, argv, directory)
    t0 = time.monotonic()
    load(srv.port, keys)
    load_s = time.monotonic() - t0
    rss_loaded = rss_mib(srv.pid)
    port = srv.port
    status = srv.stop(timeout=600)
    times, rss_restarted = [], None
    for _ in range(restarts):
        t0 = time.monotonic()
        srv = start(kind, argv, directory, port=port)
        if not kvlib.wait_ping(srv.port, time.monotonic() + 600):
            raise RuntimeError(f"{kind} did not answer PING after a restart")
        times.append(time.monotonic() - t0)
        c = kvlib.Conn(srv.port, timeout=60)
        n = c.call("DBSIZE")
        c.close()
        if n != b":%d\r\n" % keys:
            raise RuntimeError(f"{kind} restarted with DBSIZE {n!r}, expected {keys}")
        rss_restarted = rss_mib(srv.pid)
        srv.stop(timeout=600)
    return {"load_s": load_s, "rss_loaded": rss_loaded, "rss_restarted": rss_restarted,
            "restart_s": statistics.median(times), "restarts": times, "disk": du_mib(directory),
            "stop_status": status}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--kv", default=os.environ.get("KV_SERVER", "build/examples/kv/prevalent-kv"))
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--keys", type=int, default=1000000)
    ap.add_argument("--restarts", type=int, default=3)
    ap.add_argument("--dir", default=None, help="parent of the servers' directories")
    ap.add_argument("--skip-throughput", action="store_true")
    ap.add_argument("--configs", default=",".join(c[0] for c in CONFIGS),
                    help="which client settings, comma-separated (default: all three)")
    opts = ap.parse_args()
    configs = [c for c in CONFIGS if c[0] in [x.strip() for x in opts.configs.split(",")]]
    argv = shlex.split(opts.kv)
    if not kvlib.is_redis(argv) and not os.access(argv[0], os.X_OK):
        sys.exit(f"{argv[0]} is not built (ninja -C build examples/kv/prevalent-kv)")
    names = {"kv": os.path.basename(argv[0]) + " --sync always",
             "redis": "redis-server --appendfsync always"}
    parent = tempfile.mkdtemp(prefix="kv-bench-", dir=opts.dir)
    command = "python3 bench/kv/bench_kv.py " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    lines = [f"Command: `{command.strip()}` ({time.strftime('%Y-%m-%d', time.gmtime())}, "
             f"{os.cpu_count()} cores, {shutil.disk_usage(parent).total >> 30} GiB disk "
             f"at {parent}; redis-benchmark -r 100000, 3-byte values)", ""]
    try:
        if not opts.skip_throughput:
            results = {}
            for run in range(opts.runs):
                for label, args, n in configs:
                    for kind in (("kv", "redis") if run % 2 == 0 else ("redis", "kv")):
                        d = os.path.join(parent, f"{kind}-{run}-{label.replace(' ', '')}")
                        srv = start(kind, argv, d)
                        try:
                            r = bench(srv.port, args, n)
                        finally:
                            srv.stop()
                        shutil.rmtree(d, ignore_errors=True)
                        for t, rps in r.items():
                            results.setdefault((t, label, kind), []).append(rps)
                        print(f"run {run + 1}/{opts.runs} {label:12} {kind:5} "
                              f"SET {r['SET']:9.0f}/s GET {r['GET']:9.0f}/s", file=sys.stderr)
            lines += [f"| test | clients | {names['kv']} (req/s) | {names['redis']} (req/s) "
                      f"| ratio | target |", "|---|---|---:|---:|---:|---:|"]
            for t in ("SET", "GET"):
                for label, _, _ in configs:
                    a = statistics.median(results[(t, label, "kv")])
                    b = statistics.median(results[(t, label, "redis")])
                    target = TARGETS.get((t, label))
                    mark = "" if target is None else (f">= {target}" + (" met" if a / b >= target
                                                                        else " **missed**"))
                    lines.append(f"| {t} | {label} | {a:,.0f} | {b:,.0f} | {a / b:.2f} | "
                                 f"{mark} |")
            lines += ["", f"Medians of {opts.runs} runs; each run starts each server on a fresh "
                      "directory."]
        if opts.keys:
            r = {}
            for kind in ("kv", "redis"):
                r[kind] = restart_timing(kind, argv, os.path.join(parent, f"{kind}-restart"),
                                         opts.keys, opts.restarts)
                print(f"{kind}: {r[kind]}", file=sys.stderr)
            a, b = r["kv"], r["redis"]
            lines += ["", f"Restart with {opts.keys:,} keys of 100-byte values (loaded by 8 "
                      "pipelined connections; redis-server: plain AOF of the SETs):", "",
                      f"| | {names['kv']} | {names['redis']} | ratio | target |",
                      "|---|---:|---:|---:|---:|",
                      f"| load {opts.keys:,} SETs (s) | {a['load_s']:.1f} | {b['load_s']:.1f} "
                      f"| {a['load_s'] / b['load_s']:.2f} | |",
                      f"| restart until PING answers (s, median of {opts.restarts}) "
                      f"| {a['restart_s']:.2f} | {b['restart_s']:.2f} "
                      f"| {a['restart_s'] / b['restart_s']:.2f} | <= 0.5 "
                      f"{'met' if a['restart_s'] / b['restart_s'] <= 0.5 else '**missed**'} |",
                      f"| RSS after loading (MiB) | {a['rss_loaded']:.0f} | {b['rss_loaded']:.0f}"
                      f" | {a['rss_loaded'] / b['rss_loaded']:.2f} | <= 1.5 "
                      f"{'met' if a['rss_loaded'] / b['rss_loaded'] <= 1.5 else '**missed**'} |",
                      f"| RSS after the restart (MiB) | {a['rss_restarted']:.0f} | "
                      f"{b['rss_restarted']:.0f} | {a['rss_restarted'] / b['rss_restarted']:.2f}"
                      " | |",
                      f"| files on disk (MiB) | {a['disk']:.0f} | {b['disk']:.0f} | "
                      f"{a['disk'] / b['disk']:.2f} | |"]
    finally:
        shutil.rmtree(parent, ignore_errors=True)
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
