#!/usr/bin/env python3
"""The scale benchmark of issue 9: prevalent with 1,000,000 sessions beside redis-server and
RocksDB in one run, every target of the issue printed as met or missed.

  python3 bench/scale/run.py [--build build] [--scale scale|scale-std-map]
      [--sessions 1000000] [--tail 100000] [--runs 3]
      [--codecs json,cbor] [--dir DIR] [--csv FILE] [--markdown FILE] [--json FILE]
      [--traces DIR] [--skip-redis] [--skip-writers] [--quick]

The prevalent side is build/bench/scale, one phase per process (bench/scale/scale.cpp); for each
snapshot codec, on a fresh directory:
 1. --sessions CreateSession commands (journal in the same codec, policy none);
 2. replay: open that store (journal only) in a fresh process, --runs times: records/s;
 3. snapshot: --runs snapshots while a writer touches random sessions (longest execute, p99
    against the same writer without a snapshot, RSS sampled every ms: peak against steady);
 4. --tail more sessions by commands (the journal tail after the newest snapshot);
 5. restart: open in a fresh process, --runs times: time from spawn until the store is open
    (the program prints "ready"), RSS after it.
Once: the same --sessions + --tail sessions built by commands in a fresh process (its RSS is the
baseline of "RSS after a restart"). The peers: bench/scale/redis_peer.py (BGSAVE, RDB and AOF
restart-and-load, RSS, same keys and values) and `bench --only writers --threads 1,64` (64
durable writers against RocksDB with sync writes).

Prints one line per target: figure, prevalent, peer or baseline, ratio, target, met/missed; and
writes them as CSV (--csv), as a Markdown section for docs/BENCHMARKS.md (--markdown), and every
measured phase as JSON (--json). Exits 1 if a phase fails or a figure is missing (not when a
target is missed). --quick: 100,000 sessions, 10,000 tail, 1 run (a check of the harness, in
the meson suite `bench`). Python 3 standard library only.
"""

import argparse
import csv
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import redis_peer  # noqa: E402


def log(msg):
    print(f"run: {msg}", file=sys.stderr, flush=True)


def phase(scale, *args):
    """Runs one scale phase; returns its JSON object."""
    p = subprocess.run([scale] + [str(a) for a in args], capture_output=True, text=True,
                       timeout=3600)
    if p.returncode != 0:
        raise RuntimeError(f"scale {' '.join(map(str, args))} failed ({p.returncode}): "
                           f"{p.stderr.strip()}")
    return json.loads(p.stdout.strip().splitlines()[-1])


def timed_open(scale, directory, codec, expect):
    """Opens the store in a fresh process: seconds from spawn until it prints "ready"."""
    t0 = time.monotonic()
    p = subprocess.Popen([scale, "open", "--dir", directory, "--codec", codec, "--expect",
                          str(expect)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = p.stdout.readline()
    ready = time.monotonic() - t0
    rest, err = p.communicate(timeout=3600)
    if line.strip() != "ready" or p.returncode != 0:
        raise RuntimeError(f"scale open {directory} failed ({p.returncode}): {line} {err}")
    r = json.loads(rest.strip().splitlines()[-1])
    r["spawn_to_ready_s"] = ready
    return r


def prevalent_side(scale, parent, codec, sessions, tail, runs, baseline_ms, traces=None):
    d = os.path.join(parent, f"prevalent-{codec}")
    shutil.rmtree(d, ignore_errors=True)
    out = {"codec": codec}
    out["build"] = phase(scale, "build", "--dir", d, "--first", 0, "--count", sessions,
                         "--codec", codec)
    log(f"{codec}: built {sessions} sessions in {out['build']['seconds']:.1f} s")
    out["replay"] = [timed_open(scale, d, codec, sessions) for _ in range(runs)]
    out["replay_s"] = statistics.median(r["seconds"] for r in out["replay"])
    log(f"{codec}: replayed {sessions} records in {out['replay_s']:.2f} s")
    trace = []
    if traces:
        trace = ["--trace", os.path.join(traces, f"rss-{os.path.basename(scale)}-{codec}.csv")]
    out["snapshot"] = phase(scale, "snapshot", "--dir", d, "--codec", codec, "--runs", runs,
                            "--baseline-ms", baseline_ms, *trace)
    s = out["snapshot"]
    log(f"{codec}: snapshots {s['write_s']} s, stalls {s['stall_ms']} ms, "
        f"peak {s['peak_rss_mb']} MB over {s['run_steady_rss_mb']} MB")
    out["tail"] = phase(scale, "build", "--dir", d, "--first", sessions, "--count", tail,
                        "--codec", codec)
    out["restart"] = [timed_open(scale, d, codec, sessions + tail) for _ in range(runs)]
    out["restart_s"] = statistics.median(r["spawn_to_ready_s"] for r in out["restart"])
    out["restart_open_s"] = statistics.median(r["seconds"] for r in out["restart"])
    out["restart_rss_mb"] = statistics.median(r["rss_mb"] for r in out["restart"])
    out["restart_rss_after_trim_mb"] = statistics.median(r.get("rss_after_trim_mb", math.nan)
                                                         for r in out["restart"])
    log(f"{codec}: restarts {[round(r['spawn_to_ready_s'], 3) for r in out['restart']]} s, "
        f"RSS {out['restart_rss_mb']:.0f} MB")
    shutil.rmtree(d, ignore_errors=True)
    return out


def writers_side(bench, parent, runs, quick):
    """bench --only writers --threads 1,64: {(group, threads): ops/s}."""
    csv_path = os.path.join(parent, "writers.csv")
    argv = [bench, "--only", "writers", "--threads", "1,64", "--runs", str(runs), "--dir",
            os.path.join(parent, "writers"), "--csv", csv_path] + (["--quick"] if quick else [])
    p = subprocess.run(argv, capture_output=True, text=True, timeout=3600)
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({p.returncode}): {p.stderr}")
    out = {}
    with open(csv_path) as f:
        for row in csv.DictReader(f):
            if row["group"] in ("writers", "rocksdb", "sqlite") and "threads" in row["name"]:
                threads = int(row["name"].rsplit(",", 1)[1].split()[0])
                out[f"{row['group']}-{threads}"] = float(row["value"])
    return out


class Table:
    def __init__(self):
        self.rows = []

    def add(self, figure, prevalent, unit, peer_name, peer, target, kind):
        """kind: 'max' (ratio prevalent/peer at most target), 'min' (at least target),
        'abs-max' / 'abs-min' (prevalent itself against the target, no peer)."""
        ok = None
        ratio = None
        if prevalent is not None and peer not in (None, 0):
            ratio = prevalent / peer
        value = prevalent if kind.startswith("abs") else ratio
        if value is not None and not math.isnan(value):
            ok = value <= target if kind.endswith("max") else value >= target
        sign = "<=" if kind.endswith("max") else ">="
        target_text = (f"{sign} {target:,} {unit}" if kind.startswith("abs")
                       else f"{sign} {target:g} x")
        self.rows.append({"figure": figure, "prevalent": prevalent, "unit": unit,
                          "peer_name": peer_name, "peer": peer, "ratio": ratio,
                          "target": target_text,
                          "result": "n/a" if ok is None else ("met" if ok else "missed")})

    @staticmethod
    def num(v):
        if v is None:
            return "n/a"
        return f"{v:,.0f}" if abs(v) >= 100 else f"{v:,.3g}" if abs(v) < 10 else f"{v:,.1f}"

    def print(self):
        for r in self.rows:
            ratio = "" if r["ratio"] is None else f"{r['ratio']:.2f}x"
            peer = f"{r['peer_name']} {self.num(r['peer'])}" if r["peer_name"] else ""
            print(f"{r['figure']:58} {self.num(r['prevalent']):>12} {r['unit']:10} "
                  f"{peer:>34} {ratio:>8} {r['target']:>22} {r['result']}")

    def write_csv(self, path):
        with open(path, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["figure", "prevalent", "unit", "peer_or_baseline", "peer", "ratio",
                        "target", "result"])
            for r in self.rows:
                w.writerow([r["figure"], r["prevalent"], r["unit"], r["peer_name"], r["peer"],
                            "" if r["ratio"] is None else f"{r['ratio']:.3f}", r["target"],
                            r["result"]])

    def markdown(self):
        lines = ["| figure | prevalent | peer or baseline | ratio | target | |",
                 "|---|---:|---|---:|---|---|"]
        for r in self.rows:
            ratio = "" if r["ratio"] is None else f"{r['ratio']:.2f}"
            result = "**missed**" if r["result"] == "missed" else r["result"]
            peer = f"{r['peer_name']} {self.num(r['peer'])}" if r["peer_name"] else ""
            lines.append(f"| {r['figure']} | {self.num(r['prevalent'])} {r['unit']} | "
                         f"{peer} | {ratio} | {r['target']} | "
                         f"{result} |")
        return "\n".join(lines)


def targets(results, sessions, tail):
    t = Table()
    redis = results.get("redis")
    w = results.get("writers") or {}
    by_commands = results["by_commands"]["rss_mb"]
    n = f"{sessions // 1000:,}k"
    for p in results["prevalent"]:
        c, s = p["codec"], p["snapshot"]
        if redis:
            t.add(f"restart until ready, {n} + {tail // 1000:,}k tail, {c}", p["restart_s"],
                  "s", "redis AOF load", redis["aof_load_s"], 0.5, "max")
            t.add(f"restart until ready, {n} + {tail // 1000:,}k tail, {c}", p["restart_s"],
                  "s", "redis RDB load", redis["rdb_load_s"], 1.0, "max")
            t.add(f"snapshot write, {n} sessions, {c}", statistics.median(s["write_s"]),
                  "s", "redis BGSAVE", redis["bgsave_s"], 1.0, "max")
        t.add(f"longest execute stall during a snapshot, {c}", max(s["stall_ms"]), "ms",
              "", None, 5, "abs-max")
        t.add(f"writer p99 during a snapshot, {c}", s["during_p99_us"], "us",
              "p99 without", s["base_p99_us"], 2.0, "max")
        # Against the RSS before any snapshot: after the first one, the process keeps the
        # heap the snapshot freed, which would hide the peak of the next ones.
        t.add(f"peak RSS during a snapshot, {c}", max(s["peak_rss_mb"]), "MB",
              "steady RSS", s["steady_rss_mb"], 1.3, "max")
        t.add(f"RSS after a restart, {c}", p["restart_rss_mb"], "MB",
              "built by commands", by_commands, 1.2, "max")
        if redis:
            t.add(f"RSS after a restart, {c}", p["restart_rss_mb"], "MB",
                  "redis after RDB load", redis["rdb_rss_mb"], 1.5, "max")
        t.add(f"replay from a {c} journal", sessions / p["replay_s"], "records/s",
              "", None, 1_000_000 if c == "cbor" else 700_000, "abs-min")
    if "writers-64" in w:
        t.add("64 durable writers", w["writers-64"], "ops/s", "RocksDB sync, 64",
              w.get("rocksdb-64"), 10, "min")
    return t


def details(results):
    """The figures behind the targets, as Markdown lines."""
    def runs(v, unit=""):
        return ", ".join(f"{x:,.2f}" if x < 100 else f"{x:,.0f}" for x in v) + unit

    lines = []
    for p in results["prevalent"]:
        c, s = p["codec"], p["snapshot"]
        lines += [
            f"- {c}: {results['sessions']:,} sessions built by commands in "
            f"{p['build']['seconds']:.1f} s; replayed (journal only) in {p['replay_s']:.2f} s "
            f"(runs {runs([r['seconds'] for r in p['replay']], ' s')}).",
            f"- {c} snapshots under a touching writer: {runs(s['write_s'], ' s')} "
            f"({s['snapshot_bytes'] / 1e6:,.0f} MB; {s['quiet_write_s']:.2f} s with the writer "
            f"stopped); longest execute per snapshot {runs(s['stall_ms'], ' ms')}"
            + (f" (starting {runs(s['stall_at_s'], ' s')} after snapshot() was called)"
               if "stall_at_s" in s else "") + "; writer p99 "
            f"{s['during_p99_us']:.0f} us during ({s['during_commands']:,} commands), "
            f"{s['base_p99_us']:.0f} us without ({s['base_commands']:,}); RSS before any "
            f"snapshot {s['steady_rss_mb']:,.0f} MB, peak per snapshot "
            f"{runs(s['peak_rss_mb'], ' MB')}, RSS before each snapshot "
            f"{runs(s['run_steady_rss_mb'], ' MB')} (the heap freed by a snapshot stays with "
            f"the process).",
            f"- {c} restarts (snapshot + {results['tail']:,} tail): spawn until open "
            f"{runs([r['spawn_to_ready_s'] for r in p['restart']], ' s')} (in the process: "
            f"{p['restart_open_s']:.2f} s); RSS {p['restart_rss_mb']:,.0f} MB, "
            f"{p.get('restart_rss_after_trim_mb', math.nan):,.0f} MB after malloc_trim(0).",
        ]
    lines.append(f"- {results['sessions'] + results['tail']:,} sessions built by commands in a "
                 f"fresh process: RSS {results['by_commands']['rss_mb']:,.0f} MB.")
    r = results.get("redis")
    if r:
        lines += [
            f"- redis-server {r['redis_version'].split('=')[-1]}: loaded {r['sessions']:,} "
            f"sessions in {r['load_s']:.1f} s (redis-cli --pipe, appendfsync everysec); BGSAVE "
            f"{runs(r['bgsave_runs_s'], ' s')} (RDB {r['rdb_mb']:,.0f} MB, copy-on-write "
            f"{r['bgsave_cow_mb']:,.0f} MB); RSS {r['steady_rss_mb']:,.0f} MB with "
            f"{r['sessions']:,}, {r['built_rss_mb']:,.0f} MB with {r['sessions'] + r['tail']:,}.",
            f"- redis-server restarts with {r['sessions'] + r['tail']:,} keys, spawn until PONG "
            f"and loading:0: RDB {runs(r['rdb_runs_s'], ' s')} (RSS {r['rdb_rss_mb']:,.0f} "
            f"MB), AOF written by the SETs ({r['aof_mb']:,.0f} MB, no rewrite) "
            f"{runs(r['aof_runs_s'], ' s')} (RSS {r['aof_rss_mb']:,.0f} MB).",
        ]
    w = results.get("writers")
    if w:
        lines.append("- durable writers (`bench --only writers`), commands/s at 1 and 64 threads: "
                     "prevalent " + " / ".join(f"{w.get(f'writers-{t}', math.nan):,.0f}"
                                               for t in (1, 64)) +
                     ", RocksDB sync " + " / ".join(f"{w.get(f'rocksdb-{t}', math.nan):,.0f}"
                                                    for t in (1, 64)) +
                     ", SQLite " + " / ".join(f"{w.get(f'sqlite-{t}', math.nan):,.0f}"
                                              for t in (1, 64)) + ".")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default="build", help="the meson build directory")
    ap.add_argument("--scale", default="scale",
                    help="the prevalent program in BUILD/bench: scale (cow_map where the library "
                    "has it) or scale-std-map")
    ap.add_argument("--sessions", type=int, default=1_000_000)
    ap.add_argument("--tail", type=int, default=100_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--codecs", default="json,cbor")
    ap.add_argument("--dir", default=None, help="parent of the stores' directories")
    ap.add_argument("--csv", default=None)
    ap.add_argument("--markdown", default=None)
    ap.add_argument("--json", default=None)
    ap.add_argument("--traces", default=None,
                    help="write the RSS during the first snapshot of each codec here, as "
                    "rss-PROGRAM-CODEC.csv (plot: bench/scale/rss.gp)")
    ap.add_argument("--skip-redis", action="store_true")
    ap.add_argument("--skip-writers", action="store_true")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--from-json", default=None,
                    help="print the targets of an earlier run's --json file, measure nothing")
    opts = ap.parse_args()
    if opts.from_json:
        with open(opts.from_json) as f:
            results = json.load(f)
        return report(results, opts)
    if opts.quick:
        opts.sessions, opts.tail, opts.runs = 100_000, 10_000, 1
    codecs = [c.strip() for c in opts.codecs.split(",") if c.strip()]
    if not codecs or any(c not in ("json", "cbor") for c in codecs):
        sys.exit(f"run: --codecs takes json and/or cbor, got '{opts.codecs}'")
    if opts.sessions < 1 or opts.tail < 1 or opts.runs < 1:
        sys.exit("run: --sessions, --tail and --runs must be at least 1")
    scale = os.path.join(opts.build, "bench", opts.scale)
    bench = os.path.join(opts.build, "bench", "bench")
    for exe in [scale] + ([] if opts.skip_writers else [bench]):
        if not os.access(exe, os.X_OK):
            sys.exit(f"run: {exe} is not built (ninja -C {opts.build} bench/scale bench/bench)")
    if not opts.skip_redis and (shutil.which("redis-server") is None or
                                shutil.which("redis-cli") is None):
        log("redis-server or redis-cli missing (Debian redis-server, redis-tools): no Redis peer")
        opts.skip_redis = True

    if opts.dir:
        os.makedirs(opts.dir, exist_ok=True)
    parent = tempfile.mkdtemp(prefix="scale-", dir=opts.dir)
    started = time.monotonic()
    results = {"sessions": opts.sessions, "tail": opts.tail, "runs": opts.runs,
               "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
               "cores": os.cpu_count()}
    try:
        baseline_ms = 500 if opts.quick else 2000
        if opts.traces:
            os.makedirs(opts.traces, exist_ok=True)
        results["prevalent"] = [prevalent_side(scale, parent, c, opts.sessions, opts.tail,
                                               opts.runs, baseline_ms, opts.traces)
                                for c in codecs]
        d = os.path.join(parent, "by-commands")
        results["by_commands"] = phase(scale, "build", "--dir", d, "--first", 0, "--count",
                                       opts.sessions + opts.tail)
        shutil.rmtree(d, ignore_errors=True)
        log(f"{opts.sessions + opts.tail} sessions built by commands: "
            f"RSS {results['by_commands']['rss_mb']:.0f} MB")
        if not opts.skip_redis:
            results["redis"] = redis_peer.run(scale, opts.sessions, opts.tail, opts.runs, parent)
        if not opts.skip_writers:
            results["writers"] = writers_side(bench, parent, opts.runs, opts.quick)
            log(f"writers: {results['writers']}")
    finally:
        shutil.rmtree(parent, ignore_errors=True)
    results["minutes"] = (time.monotonic() - started) / 60
    results["map"] = results["prevalent"][0]["build"]["map"]
    if opts.json:
        with open(opts.json, "w") as f:
            json.dump(results, f, indent=1)
    return report(results, opts)


def report(results, opts):
    table = targets(results, results["sessions"], results["tail"])
    print(f"== issue 9 targets: {results['sessions']:,} sessions + {results['tail']:,} tail, "
          f"medians of {results['runs']}, state map {results['map']}")
    table.print()
    bad = [r["figure"] for r in table.rows
           if r["prevalent"] is None or not r["prevalent"] > 0 or
           (r["peer_name"] and not (r["peer"] or 0) > 0)]
    if opts.csv:
        table.write_csv(opts.csv)
    if opts.markdown:
        with open(opts.markdown, "w") as f:
            f.write(table.markdown() + "\n\n" + details(results) + "\n")
    if bad:
        print(f"run: figures missing or not positive: {bad}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
