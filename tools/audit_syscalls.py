#!/usr/bin/env python3
"""Syscall-order audit of the write protocol (rules R1-R3 of docs/RELIABILITY.md), after ALICE.

Runs the audit workload (test/audit/workload.cpp) under strace, then checks the trace:
  R1  every "ack <seq>" the workload writes to stdout comes after an fdatasync of the journal
      file that holds record <seq>, and that sync started after the record's pwrite returned;
  R2  every journal segment created is synced, and its directory fsynced, after its creation
      and before any record in it is acknowledged;
  R3  a snapshot's temp file is synced after its last write and before its rename; the
      directory is fsynced after the rename and before any unlink that follows it; after the
      unlinks the directory is fsynced again.
It also checks that the trace exercised each rule (acks, segment rolls, snapshots, drops), and
with --self-test it deletes each kind of sync from the real trace in turn and requires the
audit to catch it, so a checker that cannot fail does not pass.

Usage: audit_syscalls.py WORKLOAD_BINARY [--commands N] [--self-test]
"""
import argparse
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile

SYSCALLS = "openat,write,pwrite64,fsync,fdatasync,rename,unlink"
LINE = re.compile(r"^(\d+)\s+(.*)$")
RESUMED = re.compile(r"^<\.\.\. (\w+) resumed>(.*)$")
FD_PATH = re.compile(r"^\d+<([^>]*)>")
STRING = re.compile(r'"((?:[^"\\]|\\.)*)"')
RESULT = re.compile(r"\)\s+= (.*)$")
RECORD_HEADER = 32


class Call:
    def __init__(self, name, text, start, end):
        self.name, self.text, self.start, self.end = name, text, start, end
        m = RESULT.search(text)
        self.args = text[len(name) + 1:m.start()] if m else ""
        self.result = m.group(1) if m else ""
        self.ok = bool(m) and not self.result.startswith("-1")

    def fd_path(self):
        m = FD_PATH.match(self.args)
        return decode_hex(m.group(1)).decode() if m else None

    def result_path(self):
        m = FD_PATH.match(self.result)
        return decode_hex(m.group(1)).decode() if m else None

    def strings(self):
        return [decode_hex(s) for s in STRING.findall(self.args)]


def decode_hex(s):
    """strace -xx prints every byte as \\xNN."""
    return bytes(int(h, 16) for h in re.findall(r"\\x([0-9a-f]{2})", s))


def parse(lines):
    """Calls in trace order, each with the line index where it started and where it returned."""
    calls, pending = [], {}
    for i, line in enumerate(lines):
        m = LINE.match(line.rstrip("\n"))
        if not m:
            continue
        pid, rest = m.groups()
        if rest.startswith("+++") or rest.startswith("---"):
            continue
        r = RESUMED.match(rest)
        if r:
            if pid not in pending:
                continue
            name, text, start = pending.pop(pid)
            calls.append(Call(name, text + r.group(2), start, i))
        elif rest.endswith("<unfinished ...>"):
            pending[pid] = (rest.split("(", 1)[0], rest[: -len("<unfinished ...>")].rstrip(), i)
        else:
            calls.append(Call(rest.split("(", 1)[0], rest, i, i))
    calls.sort(key=lambda c: c.start)
    return calls


def records_in(data):
    """Sequence numbers of the journal records in one pwrite (a batch of framed records)."""
    seqs, pos = [], 0
    if data[:8] == b"PRVLJRNL":
        pos = RECORD_HEADER  # segment header
    while pos + RECORD_HEADER <= len(data):
        length, _crc, seq = struct.unpack_from("<IIQ", data, pos)
        if length == 0:
            break  # zero fill: preallocated space
        seqs.append(seq)
        pos += RECORD_HEADER + (length + 7) // 8 * 8
    return seqs


def audit(calls, directory):
    problems = []
    is_journal = lambda p: p and os.path.basename(p).startswith("journal-")
    syncs = [c for c in calls if c.name in ("fsync", "fdatasync") and c.ok]
    dir_syncs = [c for c in syncs if c.fd_path() == directory]

    def synced_between(path, after, before, pool=syncs):
        return any(c.fd_path() == path and c.start > after and c.end < before for c in pool)

    record_write = {}  # seq -> the pwrite that carried it
    for c in calls:
        if c.name == "pwrite64" and is_journal(c.fd_path()):
            for seq in records_in(c.strings()[0]):
                record_write[seq] = c
    acks = []
    for c in calls:
        if c.name == "write" and c.args.startswith("1<"):
            text = c.strings()[0].decode()
            acks += [(int(t.split()[1]), c) for t in text.splitlines() if t.startswith("ack ")]

    # R1
    for seq, ack in acks:
        w = record_write.get(seq)
        if w is None:
            problems.append(f"R1: ack {seq} (trace line {ack.start + 1}) but no pwrite of record {seq}")
        elif not synced_between(w.fd_path(), w.end, ack.start):
            problems.append(f"R1: ack {seq} (line {ack.start + 1}) without an fdatasync of "
                            f"{w.fd_path()} after the record's pwrite (line {w.end + 1})")

    # R2
    created = [c for c in calls if c.name == "openat" and "O_CREAT" in c.args and c.ok
               and is_journal(c.result_path())]
    for c in created:
        path = c.result_path()
        first_ack = min((a.start for s, a in acks if record_write.get(s) is not None
                         and record_write[s].fd_path() == path), default=None)
        if first_ack is None:
            continue
        if not synced_between(path, c.end, first_ack):
            problems.append(f"R2: {path} created (line {c.start + 1}) and a record in it "
                            f"acknowledged (line {first_ack + 1}) without syncing the file")
        if not synced_between(directory, c.end, first_ack, dir_syncs):
            problems.append(f"R2: {path} created (line {c.start + 1}) and a record in it "
                            f"acknowledged (line {first_ack + 1}) without fsyncing the directory")

    # R3
    renames = [c for c in calls if c.name == "rename" and c.ok]
    unlinks = [c for c in calls if c.name == "unlink" and c.ok]
    for n, r in enumerate(renames):
        tmp = r.strings()[0].decode()
        last_write = max((c.end for c in calls if c.name == "pwrite64" and c.fd_path() == tmp),
                         default=-1)
        if not synced_between(tmp, last_write, r.start):
            problems.append(f"R3: {tmp} renamed (line {r.start + 1}) without a sync after its "
                            f"last write")
        next_rename = renames[n + 1].start if n + 1 < len(renames) else float("inf")
        after = [u for u in unlinks if r.end < u.start < next_rename]
        for u in after:
            if not synced_between(directory, r.end, u.start, dir_syncs):
                problems.append(f"R3: unlink of {u.strings()[0].decode()} (line {u.start + 1}) "
                                f"before the directory was fsynced after the rename (line "
                                f"{r.start + 1})")
        if after and not synced_between(directory, max(u.end for u in after), next_rename,
                                        dir_syncs):
            problems.append(f"R3: unlinks after the rename at line {r.start + 1} never made "
                            f"durable by a directory fsync")

    coverage = {"acks": len(acks), "segments created": len(created),
                "snapshots renamed": len(renames),
                "segments unlinked": sum(1 for u in unlinks
                                         if is_journal(u.strings()[0].decode()))}
    return problems, coverage


def run_workload(binary, commands, directory, trace):
    env = dict(os.environ)
    # LeakSanitizer cannot run under ptrace; the unit tests check leaks without strace.
    env["ASAN_OPTIONS"] = (env.get("ASAN_OPTIONS", "") + ":detect_leaks=0").lstrip(":")
    with open(os.devnull, "w") as devnull:
        done = subprocess.run(["strace", "-f", "-qq", "-y", "-xx", "-s", "65536", "-e",
                               f"trace={SYSCALLS}", "-o", trace, binary, directory,
                               str(commands)], stdout=devnull, env=env)
    if done.returncode != 0:
        sys.exit(f"the workload {binary} failed under strace (exit {done.returncode})")
    with open(trace) as f:
        return f.readlines()


def self_test(calls, directory):
    """Deletes one kind of sync from the real trace; the audit must report the matching rule."""
    name = lambda c: os.path.basename(c.fd_path() or "")
    cases = {
        "R1": lambda c: c.name == "fdatasync" and name(c).startswith("journal-"),
        "R2": lambda c: c.name == "fsync" and c.fd_path() == directory,
        "R3": lambda c: c.name in ("fsync", "fdatasync") and name(c).endswith(".snap.tmp"),
    }
    failures = []
    for rule, deleted in cases.items():
        problems, _ = audit([c for c in calls if not deleted(c)], directory)
        caught = [p for p in problems if p.startswith(rule)]
        if caught:
            print(f"self-test: deleting those syncs is caught: {caught[0]}")
        else:
            failures.append(f"self-test: deleting the syncs that {rule} needs went unnoticed")
    return failures


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("workload")
    ap.add_argument("--commands", type=int, default=300)
    ap.add_argument("--self-test", action="store_true")
    args = ap.parse_args()
    if shutil.which("strace") is None:
        print("strace is not installed (Debian package strace)")
        return 77  # meson: skipped
    with tempfile.TemporaryDirectory() as tmp:
        directory = os.path.realpath(os.path.join(tmp, "store"))
        lines = run_workload(args.workload, args.commands, directory, os.path.join(tmp, "trace"))
        calls = parse(lines)
        problems, coverage = audit(calls, directory)
        print("trace:", ", ".join(f"{v} {k}" for k, v in coverage.items()))
        if coverage["acks"] != args.commands:
            problems.append(f"expected {args.commands} acks in the trace, found {coverage['acks']}")
        for k in ("segments created", "snapshots renamed", "segments unlinked"):
            if coverage[k] < 2:
                problems.append(f"the workload did not exercise the protocol: only {coverage[k]} {k}")
        if args.self_test:
            problems += self_test(calls, directory)
    for p in problems[:20]:
        print(p)
    if len(problems) > 20:
        print(f"... and {len(problems) - 20} more")
    print("audit:", "FAILED" if problems else "R1, R2, R3 hold")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
