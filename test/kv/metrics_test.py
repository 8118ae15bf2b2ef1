#!/usr/bin/env python3
"""prevalent-kv's metrics (issue 10, part 6): GET /metrics over HTTP and INFO's prevalent_ fields.

  metrics_test.py        (KV_SERVER: see kvlib.py; skipped for redis-server, which has neither)

Starts the server under test with `--sync always --metrics-port P` on loopback (by PID, as the
other kv tests do), sends 50 SETs one at a time and one HSET on a string key (a WRONGTYPE error),
then fetches http://127.0.0.1:P/metrics and checks it: the body parses as the Prometheus text
format (with prometheus_client's parser where python3-prometheus-client is installed, and
always with the strict line check below), the Content-Type is the exposition format's,
prevalent_commands_total{outcome="applied"} is at least 50 and equals each execute phase
histogram's _count and its +Inf bucket, syncs were counted (sync always), the journal has a
segment, and INFO stats reports the same applied count. /other answers 404 and POST 405. The
server exits 0 on SIGTERM with the metrics port open.
"""

import os
import re
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kvlib  # noqa: E402

NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
LABEL = r'[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*"'
SAMPLE = re.compile(rf"({NAME})(?:\{{((?:{LABEL})(?:,{LABEL})*)?\}})? (\S+)")
TYPE = re.compile(rf"# TYPE ({NAME}) (counter|gauge|histogram|summary|untyped)")
HELP = re.compile(rf"# HELP ({NAME}) [^\n]*")


def parse_strictly(text):
    """{(name, frozenset(labels)): value}, failing on any line the 0.0.4 format does not allow."""
    assert text.endswith("\n"), "the exposition must end with a newline"
    types, samples, family = {}, {}, None
    for line in text.split("\n")[:-1]:
        if HELP.fullmatch(line):
            continue
        m = TYPE.fullmatch(line)
        if m:
            assert m[1] not in types, f"TYPE of {m[1]} twice"
            types[m[1]] = m[2]
            family = m[1]
            continue
        m = SAMPLE.fullmatch(line)
        assert m, f"not a sample line: {line!r}"
        name = m[1]
        assert family, f"sample before any TYPE: {line!r}"
        if types[family] == "histogram":
            assert name in (family + "_bucket", family + "_sum", family + "_count"), line
        else:
            assert name == family, f"{name} outside its family {family}"
        labels = frozenset(re.findall(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"', m[2] or ""))
        value = float(m[3])  # accepts +Inf, NaN
        key = (name, labels)
        assert key not in samples, f"series twice: {line!r}"
        samples[key] = value
    return samples


PARSE_WITH_CLIENT = """
import sys
from prometheus_client.parser import text_string_to_metric_families
families = {f.name: f for f in text_string_to_metric_families(sys.stdin.read())}
# prometheus_client names counters without _total and histograms by their base name.
assert families["prevalent_commands"].type == "counter", families["prevalent_commands"].type
assert families["prevalent_execute_seconds"].type == "histogram"
applied = [s.value for s in families["prevalent_commands"].samples
           if s.labels.get("outcome") == "applied"]
assert len(applied) == 1 and applied[0] >= 50, applied
print(len(families))
"""


def check_with_prometheus_client(text):
    """Parses `text` with prometheus_client, in this Python or Debian's (python3-prometheus-client
    installs it for /usr/bin/python3, which may not be the python3 first on PATH)."""
    for python in (sys.executable, "/usr/bin/python3"):
        if not os.access(python, os.X_OK):
            continue
        probe = subprocess.run([python, "-c", "import prometheus_client"], capture_output=True)
        if probe.returncode != 0:
            continue
        r = subprocess.run([python, "-c", PARSE_WITH_CLIENT], input=text, text=True,
                           capture_output=True)
        assert r.returncode == 0, f"prometheus_client ({python}) rejects the exposition:\n{r.stderr}"
        print(f"prometheus_client ({python}) parsed {r.stdout.strip()} families", file=sys.stderr)
        return
    print("prometheus_client not installed: the strict check alone", file=sys.stderr)


def get(url, method="GET"):
    req = urllib.request.Request(url, method=method)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.headers.get("Content-Type"), r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Content-Type"), e.read().decode()


def main():
    argv = kvlib.kv_command()
    if kvlib.is_redis(argv):
        print("redis-server has no /metrics: skipping", file=sys.stderr)
        return kvlib.SKIP
    with tempfile.TemporaryDirectory() as tmp:
        mport = kvlib.free_port()
        server = kvlib.start_kv(argv, os.path.join(tmp, "kv"), durable=True,
                                extra=["--metrics-port", str(mport)])
        try:
            c = kvlib.Conn(server.port)
            for i in range(50):
                assert c.call("SET", f"k{i}", f"v{i}") == b"+OK\r\n"
            assert c.call("HSET", "k0", "f", "v").startswith(b"-WRONGTYPE")
            base = f"http://127.0.0.1:{mport}"
            status, ctype, body = get(base + "/metrics")
            assert status == 200, status
            assert ctype.startswith("text/plain; version=0.0.4"), ctype
            samples = parse_strictly(body)
            check_with_prometheus_client(body)

            def value(name, **labels):
                return samples[(name, frozenset(labels.items()))]

            applied = value("prevalent_commands_total", outcome="applied")
            assert applied >= 50, applied
            for phase in ("queue", "apply", "durable"):
                assert value("prevalent_execute_seconds_count", phase=phase) == applied, phase
                assert value("prevalent_execute_seconds_bucket", phase=phase, le="+Inf") == applied
            assert value("prevalent_journal_syncs_total") > 0
            assert value("prevalent_journal_sync_records_sum") >= 50
            assert value("prevalent_journal_segments") >= 1
            assert value("prevalent_journal_bytes") > value("prevalent_journal_written_bytes_total") > 0
            assert value("prevalent_failed") == 0
            assert value("prevalent_kv_commands_processed_total") >= 51
            assert value("prevalent_kv_connected_clients") == 1

            info = kvlib.parse(c.call("INFO", "stats")).decode()
            fields = dict(line.split(":", 1) for line in info.split("\r\n") if ":" in line)
            assert int(fields["prevalent_commands_applied"]) == applied, fields
            assert int(fields["prevalent_journal_syncs"]) > 0

            assert get(base + "/other")[0] == 404
            assert get(base + "/metrics", method="POST")[0] == 405
            c.close()
            print(f"/metrics: {len(samples)} samples, {int(applied)} commands applied",
                  file=sys.stderr)
        finally:
            status = server.stop()
        assert status == 0, f"exit status {status} on SIGTERM"
    return 0


if __name__ == "__main__":
    sys.exit(main())
