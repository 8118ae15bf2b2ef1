#!/usr/bin/env python3
"""Runs the installed-style `prevalent` tool on real stores made by make_store (test/tool/),
healthy and damaged, and checks exit codes, JSON output and what repair leaves behind.

    tool_test.py PREVALENT MAKE_STORE [SESSIONS SESSIONS_TOOL]

With the sessions example and its typed tool (examples/sessions/sessions_tool.cpp), also the
typed `compact`.

Damage is injected with make_store's flip/truncate (test/support.hpp's byte surgery); record
offsets come from the framing in docs/FORMAT.md (32-byte headers, 8-byte alignment). Each check
says what it injected and what it verified; the first failure stops the run (exit 1)."""
import datetime
import json
import os
import pty
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import time

PREVALENT, MAKE_STORE = sys.argv[1], sys.argv[2]
SESSIONS, SESSIONS_TOOL = (sys.argv[3], sys.argv[4]) if len(sys.argv) > 4 else (None, None)
failures = 0


def run(*args, stdin=None):
    p = subprocess.run([PREVALENT, *args], capture_output=True, text=True, input=stdin,
                       timeout=120)
    return p.returncode, p.stdout, p.stderr


def make(*args):
    subprocess.run([MAKE_STORE, *args], check=True, timeout=300)


def check_store(d, key=None):
    out = subprocess.run([MAKE_STORE, "check", d] + ([key] if key else []), check=True,
                         capture_output=True, text=True, timeout=120).stdout
    return json.loads(out)


def expect(cond, what):
    global failures
    if not cond:
        failures += 1
        print("FAILED:", what)
        raise SystemExit(1)
    print("ok:", what)


def segments(d):
    return sorted(f for f in os.listdir(d) if f.startswith("journal-"))


def records(path):
    """(offset, length) of every framed record of a segment, by its length fields."""
    data = open(path, "rb").read()
    out, pos = [], 32
    while pos + 32 <= len(data):
        (length,) = struct.unpack_from("<I", data, pos)
        if length == 0:
            break
        out.append((pos, length))
        pos += 32 + (length + 7) // 8 * 8
    return out


def lines(text):
    return [json.loads(line) for line in text.splitlines() if line.strip()]


work = tempfile.mkdtemp(prefix="prevalent-tool-test-")
try:
    # ---- arguments, missing and foreign directories -------------------------------------
    code, out, _ = run("--help")
    expect(code == 0 and "verify" in out and "repair" in out, "--help lists the subcommands")
    expect("share/doc/prevalent/TOOL.md" in out, "--help names the installed manual")
    for sub in ["info", "verify", "dump", "snapshot-dump", "at", "repair", "stats", "compact"]:
        code, out, _ = run(sub, "--help")
        expect(code == 0 and "DIR" in out, f"{sub} --help")
    code, _, err = run("dump")
    expect(code == 2 and "DIR" in err, "dump without DIR: exit 2 naming DIR")
    code, _, _ = run("frobnicate", work)
    expect(code == 2, "an unknown subcommand: exit 2")
    code, _, err = run("info", os.path.join(work, "nope"))
    expect(code == 3 and "no such directory" in err, "a missing directory: exit 3")
    foreign = os.path.join(work, "foreign")
    os.mkdir(foreign)
    open(os.path.join(foreign, "notes.txt"), "w").write("hello")
    code, _, err = run("verify", foreign)
    expect(code == 3 and "not a prevalent store" in err and "notes.txt" in err and
           "1 other file," in err, "a directory of other files: exit 3, naming one")
    empty = os.path.join(work, "empty")
    os.mkdir(empty)
    code, _, err = run("dump", empty)
    expect(code == 3 and "not a prevalent store" in err, "an empty directory: exit 3")
    code, _, err = run("compact", foreign)
    expect(code == 2 and "tool_main" in err, "types-free compact says how to build a typed tool")

    # ---- a healthy store with snapshots and several segments -----------------------------
    s = os.path.join(work, "basic")
    make("journal", s, "250", "--snapshot-at", "120", "--snapshot-at", "200")
    code, out, _ = run("info", s, "--json")
    info = json.loads(out)
    expect(code == 0 and info["journal"]["last_seq"] == 250, "info: last record 250")
    expect([x["last_seq"] for x in info["snapshots"]] == [120, 200], "info: snapshots 120, 200")
    expect([x["state_version"] for x in info["snapshots"]] == [1, 1],
           "info: each snapshot's state version (State::version of its writer)")
    segs = info["journal"]["segments"]
    expect(len(segs) > 1 and all(b["first_seq"] == a["last_seq"] + 1
                                 for a, b in zip(segs, segs[1:])),
           "info: several segments, contiguous")
    expect(all(x["codec"] == "json" and x["version"] == 1 and x["epoch"] == 0 and
               not x["encrypted"] for x in segs),
           "info: segment codec, version, encryption")
    first = info["journal"]["first_seq"]
    expect(info["reachable"] == {"from": 0 if first == 1 else 120, "to": 250},
           f"info: reachable range {info['reachable']}")
    expect(info["lock"] == {"held": False} and info["problem"] is None, "info: no lock, no problem")
    code, out, _ = run("info", s)
    expect(code == 0 and "snapshot-00000000000000000200.snap" in out, "info: text output")

    code, out, _ = run("verify", s, "--json")
    expect(code == 0 and json.loads(out)["healthy"], "verify: healthy store, exit 0")

    code, out, _ = run("dump", s)
    recs = lines(out)
    expect(code == 0 and [r["seq"] for r in recs] == list(range(first, 251)),
           "dump: every record, in order")
    expect(all(set(r) == {"seq", "time", "epoch", "cmd", "v", "args"} and r["epoch"] == 0
               for r in recs), "dump: seq, time, epoch (0: not replicated), cmd, v, args")
    expect(all(r["cmd"] == ("transfer" if r["seq"] % 3 == 0 else "deposit") for r in recs),
           "dump: command names match what was executed")
    code, out, _ = run("dump", s, "--from", "130", "--to", "140")
    expect([r["seq"] for r in lines(out)] == list(range(130, 141)), "dump --from 130 --to 140")
    code, out, _ = run("dump", s, "--command", "transfer", "--from", "200")
    expect([r["seq"] for r in lines(out)] == list(range(201, 251, 3)) and
           all(r["args"]["amount"] == 1 for r in lines(out)), "dump --command transfer")
    t150 = next(r["time"] for r in recs if r["seq"] == 150)
    code, out, _ = run("dump", s, "--from", t150, "--to", t150)
    got = lines(out)
    expect(150 in [r["seq"] for r in got] and all(r["time"] == t150 for r in got),
           "dump --from/--to an ISO 8601 time")
    # The same instant written in another zone: 08:xx+01:00 is 07:xx Z.
    base = datetime.datetime.strptime(t150[:19], "%Y-%m-%dT%H:%M:%S")
    zoned = (base + datetime.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S") + t150[19:-1]
    code, out, _ = run("dump", s, "--from", zoned + "+01:00", "--to", t150)
    expect(lines(out) == got, "dump --from with a +01:00 zone means the same instant")
    # A date alone: --to means the end of that day, --from its start (both inclusive).
    day = t150[:10]
    prev_day = (datetime.date.fromisoformat(day) - datetime.timedelta(days=1)).isoformat()
    code, out, _ = run("dump", s, "--to", day)
    expect(code == 0 and [r["seq"] for r in lines(out)] ==
           [r["seq"] for r in recs if r["time"][:10] <= day] and 150 in [r["seq"] for r in
                                                                         lines(out)],
           f"dump --to {day}: a date alone means the end of that day")
    code, out, _ = run("dump", s, "--from", day, "--to", day)
    expect(code == 0 and [r["seq"] for r in lines(out)] ==
           [r["seq"] for r in recs if r["time"][:10] == day], f"dump --from {day} --to {day}")
    # Empty ranges: a usage error when --from is after --to, a message when outside the journal.
    code, out, err = run("dump", s, "--from", "140", "--to", "130")
    expect(code == 2 and out == "" and "after --to 130" in err,
           "dump --from 140 --to 130: exit 2, the range is empty")
    code, out, err = run("dump", s, "--from", day, "--to", prev_day)
    expect(code == 2 and "after --to" in err, "dump --from a day after --to: exit 2")
    code, out, err = run("dump", s, "--from", "999")
    expect(code == 0 and out == "" and f"journal holds records {first}..250" in err,
           f"dump --from beyond the journal: exit 0, says the journal's range: {err}")
    code, out, err = run("dump", s, "--to", prev_day)
    expect(code == 0 and out == "" and "no record matches --to " + prev_day in err and
           f"{first}..250" in err, "dump --to before the first record: says so, exit 0")
    code, _, err = run("dump", s, "--from", "yesterday")
    expect(code == 2 and "ISO 8601" in err, "dump --from with a bad time: exit 2")
    p = subprocess.Popen([PREVALENT, "dump", s], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    one = p.stdout.readline()
    p.stdout.close()
    err = p.stderr.read()
    rc = p.wait(timeout=60)
    expect(json.loads(one)["seq"] == first and rc == 0 and err == b"",
           "dump into a pipe closed after one line: exit 0, quiet")

    code, out, _ = run("snapshot-dump", s)
    expect(code == 0 and len(json.loads(out)["applied"]) == 200, "snapshot-dump: newest state")
    code, out, _ = run("snapshot-dump", s, "--seq", "120")
    expect(json.loads(out)["applied"] == list(range(1, 121)), "snapshot-dump --seq 120")
    code, _, err = run("snapshot-dump", s, "--seq", "121")
    expect(code == 2 and "120, 200" in err, "snapshot-dump --seq of no snapshot: exit 2")

    code, out, _ = run("at", s, "--seq", "210")
    at = json.loads(out)
    expect(code == 0 and at["snapshot"]["last_seq"] == 200 and
           [r["seq"] for r in at["records"]] == list(range(201, 211)),
           "at --seq 210: snapshot 200 and records 201..210")
    code, out, _ = run("at", s, "--seq", "130")
    at = json.loads(out)
    expect(at["snapshot"]["last_seq"] == 120 and len(at["snapshot"]["state"]["applied"]) == 120
           and [r["seq"] for r in at["records"]] == list(range(121, 131)),
           "at --seq 130: the older snapshot and its records")
    if first > 1:
        code, _, err = run("at", s, "--seq", "5")
        expect(code == 2 and "reachable are sequence numbers 120..250" in err,
               "at before the oldest snapshot: exit 2 naming the range")
    code, _, err = run("at", s, "--seq", "999")
    expect(code == 2 and "not reachable" in err, "at after the last record: exit 2")
    t210 = next(r["time"] for r in recs if r["seq"] == 210)
    code, out, _ = run("at", s, "--time", t210)
    at = json.loads(out)
    expect(code == 0 and at["seq"] >= 210 and at["records"][-1]["seq"] == at["seq"] and
           all(r["time"] <= t210 for r in at["records"]), "at --time")

    code, out, _ = run("stats", s, "--json", "--per", "minute")
    st = json.loads(out)
    counts = {c["name"]: c["count"] for c in st["commands"]}
    in_journal = list(range(first, 251))
    expect(code == 0 and counts == {"deposit": sum(1 for i in in_journal if i % 3),
                                    "transfer": sum(1 for i in in_journal if i % 3 == 0)},
           f"stats: commands by name {counts}")
    expect(sum(b["records"] for b in st["rate"]) == st["records"] == len(in_journal),
           "stats: the rate buckets add up")
    code, out, _ = run("stats", s)
    expect(code == 0 and "deposit" in out, "stats: text output")

    # ---- a store whose journal starts at 1, no snapshot ---------------------------------
    f = os.path.join(work, "fresh")
    make("journal", f, "40", "--segment", "1048576")
    code, out, _ = run("info", f, "--json")
    expect(json.loads(out)["reachable"] == {"from": 0, "to": 40}, "info: reachable 0..40")
    code, out, _ = run("info", f)
    expect(code == 0 and "40 records, sequence 1..40, 1 segment," in out and
           "1 segments" not in out, f"info text: singular for one segment: {out.splitlines()[3]}")
    code, out, _ = run("verify", f)
    expect(code == 0 and "ok: 40 records (sequence 1..40) in 1 segment, 0 snapshots" in out,
           f"verify text: singular for one segment: {out}")
    code, out, _ = run("at", f, "--seq", "10")
    at = json.loads(out)
    expect(at["snapshot"] is None and [r["seq"] for r in at["records"]] == list(range(1, 11)),
           "at without a snapshot: records from 1")
    code, out, err = run("at", f, "--time", "2000-01-01T00:00:00Z")
    expect(code == 0 and json.loads(out) == {"seq": 0, "snapshot": None, "records": []},
           f"at --time before the first record: the empty state, seq 0 {err}")

    # ---- info: bytes in use apart from the active segment's preallocated zero fill -------
    pre = os.path.join(work, "preallocated")
    make("journal", pre, "40", "--segment", "1048576", "--preallocate", "65536")
    code, out, _ = run("info", pre, "--json")
    i = json.loads(out)["journal"]
    last = os.path.join(pre, segments(pre)[-1])
    roff, rlen = records(last)[-1]
    end = roff + 32 + (rlen + 7) // 8 * 8
    seg = i["segments"][-1]
    expect(code == 0 and seg["used_bytes"] == end and
           seg["preallocated_bytes"] == os.path.getsize(last) - end > 0 and
           i["used_bytes"] + i["preallocated_bytes"] == i["bytes"],
           f"info: bytes in use ({end}, to the end of the last record) apart from the zero fill")
    code, out, _ = run("info", pre)
    expect(code == 0 and f"{end} bytes in use + {os.path.getsize(last) - end} preallocated" in out,
           "info text: bytes in use + preallocated")

    # ---- torn tail: the last record cut inside its payload ------------------------------
    t = os.path.join(work, "torn")
    shutil.copytree(f, t)
    seg = os.path.join(t, segments(t)[-1])
    off, length = records(seg)[-1]
    size = os.path.getsize(seg)
    make("truncate", seg, str(off + 32 + length // 2))
    torn_size = os.path.getsize(seg)
    code, out, _ = run("verify", t, "--json")
    v = json.loads(out)
    expect(code == 0 and v["healthy"] and v["torn_tail"]["offset"] == off and
           v["torn_tail"]["bytes"] == torn_size - off and
           v["torn_tail"]["file"] == os.path.basename(seg),
           "verify: torn tail reported with what recovery would cut, exit 0")
    code, out, _ = run("repair", t, "--dry-run")
    expect(code == 0 and "would cut" in out and os.path.getsize(seg) == torn_size,
           "repair --dry-run changes nothing")
    before = open(seg, "rb").read()
    backup = os.path.join(work, "torn-backup")
    code, out, _ = run("repair", t, "--backup", backup, "--json")
    rep = json.loads(out)
    expect(code == 0 and rep["actions"][0]["action"] == "truncate", "repair cuts the torn tail")
    saved = open(os.path.join(backup, rep["actions"][0]["backup_file"]), "rb").read()
    expect(saved == before[off:] and os.path.getsize(seg) == off,
           "repair: the backup holds exactly the removed bytes")
    expect(json.loads(open(os.path.join(backup, "repair.json")).read())["actions"],
           "repair: a manifest in the backup")
    expect(check_store(t)["last_seq"] == 39, "the repaired store opens with records 1..39")
    code, out, _ = run("verify", t, "--json")
    expect(code == 0 and json.loads(out)["torn_tail"] is None, "verify after repair: clean")
    code, out, _ = run("repair", t)
    expect(code == 0 and "nothing to repair" in out, "repair of a clean store does nothing")

    # ---- corruption: a flipped byte in a middle record of a middle segment ---------------
    c = os.path.join(work, "corrupt")
    make("journal", c, "120")
    names = segments(c)
    middle = os.path.join(c, names[1])
    first_seq = int(names[1][len("journal-"):-len(".log")])
    roff, _ = records(middle)[2]
    make("flip", middle, str(roff + 32 + 3))
    bad_seq = first_seq + 2
    code, out, err = run("verify", c, "--json")
    v = json.loads(out)
    expect(code == 1 and not v["healthy"] and v["problems"][0]["offset"] == roff and
           v["problems"][0]["file"] == names[1],
           "verify: flipped payload byte is damage, exit 1, file (relative to DIR) and offset")
    what = v["problems"][0]["what"]
    expect(names[1] not in what and "offset" not in what and f"record {bad_seq}" in what,
           f"verify --json: what is the description only, not file and offset again: {what}")
    code, out, err = run("verify", c)
    expect(code == 1 and f"offset {roff}" in out and "damaged" in err, "verify: text report")
    code, out, err = run("dump", c)
    expect(code == 1 and [r["seq"] for r in lines(out)] == list(range(1, bad_seq)),
           "dump: records before the damage, then exit 1")
    listing = {n: open(os.path.join(c, n), "rb").read() for n in segments(c)}
    code, _, err = run("repair", c)
    expect(code == 1 and "--salvage" in err and
           {n: open(os.path.join(c, n), "rb").read() for n in segments(c)} == listing,
           "repair without --salvage refuses damage and changes nothing")
    backup = os.path.join(work, "salvage-backup")
    code, out, _ = run("repair", c, "--salvage", "--backup", backup, "--json")
    rep = json.loads(out)
    expect(code == 0 and rep["last_seq_after"] == bad_seq - 1, "repair --salvage")
    for a in rep["actions"]:
        saved = open(os.path.join(backup, a["backup_file"]), "rb").read()
        expect(saved == listing[a["file"]][a["offset"]:],
               f"salvage backup of {a['file']} holds exactly what was removed")
    expect(set(segments(c)) == set(names[:2]) and len(rep["actions"]) == len(names) - 1,
           "salvage removed the segments after the damage")
    st = check_store(c)
    expect(st["last_seq"] == bad_seq - 1 and st["applied"] == bad_seq - 1,
           "the salvaged store opens with every record before the damage")

    # ---- salvage of a damaged segment header, with a snapshot after the damage -----------
    g = os.path.join(work, "badheader")
    make("journal", g, "200", "--snapshot-at", "50", "--snapshot-at", "150")
    names = segments(g)
    k = next(j for j, n in enumerate(names) if int(n[8:-4]) > 80)  # between the snapshots
    make("flip", os.path.join(g, names[k]), "13")  # inside the codec field of the header
    cut_at = int(names[k][len("journal-"):-len(".log")]) - 1
    code, out, _ = run("verify", g, "--json")
    v = json.loads(out)
    expect(code == 1 and v["problems"][0]["offset"] == 0 and names[k] in v["problems"][0]["file"],
           "verify: a damaged segment header, offset 0")
    code, out, _ = run("repair", g, "--salvage", "--dry-run", "--json")
    plan = json.loads(out)
    # Snapshot 150 is after the cut but verifies, and the segments after the damaged one reach
    # back to it: salvage keeps them and it, and moves out the journal before the damage.
    expect(code == 0 and {a["file"] for a in plan["actions"]} == set(names[:k + 1]) and
           all(a["action"] == "remove" for a in plan["actions"]) and plan["last_seq_after"] == 200,
           "salvage plan: keep the intact later snapshot 150 and the segments after the damage")
    code, out, _ = run("repair", g, "--salvage")
    st = check_store(g)
    expect(code == 0 and st["last_seq"] == 200 and st["applied"] == 200 and
           "snapshot-00000000000000000150.snap" in os.listdir(g),
           f"the salvaged store opens from snapshot 150 with records 1..200 ({st}), not {cut_at}")
    backups = [x for x in os.listdir(g) if x.startswith("repair-backup-")]
    expect(len(backups) == 1 and set(names[:k + 1]) <= set(os.listdir(os.path.join(g, backups[0]))),
           "default backup directory inside DIR holds the removed segments")

    # ---- salvage with a later good snapshot the journal after the damage does not reach ----
    # Record 145 flipped: snapshot 150 verifies, but its segment (141..160) is the damaged one,
    # so no intact segment holds 151 on: salvage keeps the snapshot and no journal.
    g2 = os.path.join(work, "salvage-snapshot-only")
    make("journal", g2, "200", "--snapshot-at", "50", "--snapshot-at", "150")
    names = segments(g2)
    k = next(j for j, n in enumerate(names) if int(n[8:-4]) <= 150 < int(names[j + 1][8:-4]) - 1)
    seg = os.path.join(g2, names[k])
    first_k = int(names[k][8:-4])
    bad = max(first_k, 145)
    make("flip", seg, str(records(seg)[bad - first_k][0] + 32 + 3))
    code, out, _ = run("repair", g2, "--salvage", "--json")
    r = json.loads(out)
    st = check_store(g2)
    expect(code == 0 and r["last_seq_after"] == 150 and st["last_seq"] == 150 and
           st["applied"] == 150 and {a["file"] for a in r["actions"]} == set(names) and
           "snapshot-00000000000000000150.snap" in os.listdir(g2),
           f"salvage keeps snapshot 150 (state 150, not {bad - 1}) when no later segment "
           f"reaches it ({st})")

    # ---- an unfinished last segment (its creation never finished) ------------------------
    u = os.path.join(work, "unfinished")
    shutil.copytree(f, u)
    open(os.path.join(u, "journal-00000000000000000041.log"), "wb").write(b"PRVLJRNL\x01")
    code, out, _ = run("verify", u, "--json")
    v = json.loads(out)
    expect(code == 0 and v["torn_tail"]["bytes"] == 9, "verify: an unfinished last segment")
    code, out, _ = run("repair", u, "--json", "--backup", os.path.join(work, "unfinished-backup"))
    r = json.loads(out)
    expect(code == 0 and r["actions"][0]["action"] == "remove" and
           not os.path.exists(os.path.join(u, "journal-00000000000000000041.log")) and
           open(os.path.join(work, "unfinished-backup", "journal-00000000000000000041.log"),
                "rb").read() == b"PRVLJRNL\x01", "repair removes it, backed up")
    expect(check_store(u)["last_seq"] == 40, "and the store opens with all 40 records")

    # ---- leftovers of an interrupted drop: an old segment, a gap, a snapshot covering both --
    x = os.path.join(work, "all-segments")
    make("journal", x, "250")
    y = os.path.join(work, "leftover")
    shutil.copytree(s, y)
    first_kept = int(segments(y)[0][8:-4])
    older = [n for n in segments(x) if int(n[8:-4]) < first_kept]
    shutil.copy(os.path.join(x, older[-2]), y)  # not the one right before: a gap follows it
    code, out, _ = run("verify", y, "--json")
    v = json.loads(out)
    expect(code == 0 and v["healthy"] and v["leftover_segments"] == 1 and
           v["first_seq"] == first_kept, "verify: leftovers of an interrupted drop are healthy")
    code, out, _ = run("repair", y, "--json", "--backup", os.path.join(work, "leftover-backup"))
    r = json.loads(out)
    expect(code == 0 and [a["file"] for a in r["actions"]] == [older[-2]] and
           older[-2] not in segments(y), "repair removes the leftover segment")
    expect(check_store(y)["last_seq"] == 250, "the store opens with every record")

    # ---- a damaged snapshot --------------------------------------------------------------
    d = os.path.join(work, "badsnap")
    shutil.copytree(s, d)
    name200 = "snapshot-00000000000000000200.snap"
    snap = os.path.join(d, name200)
    make("flip", snap, str(os.path.getsize(snap) - 3))
    code, out, _ = run("verify", d, "--json")
    v = json.loads(out)
    expect(code == 1 and [p["file"] for p in v["problems"]] == [name200] and
           v["problems"][0]["offset"] is not None and d not in v["problems"][0]["what"],
           "verify: a damaged snapshot, named relative to DIR, with the offset as a field")
    damaged = open(snap, "rb").read()
    code, out, _ = run("repair", d, "--dry-run", "--json")
    plan = json.loads(out)
    expect(code == 0 and plan["damaged_snapshots"] == [name200] and
           [(a["file"], a["action"]) for a in plan["actions"]] == [(name200, "remove")] and
           open(snap, "rb").read() == damaged,
           "repair --dry-run: plans to move the damaged snapshot out, touches nothing")
    backup = os.path.join(work, "badsnap-backup")
    code, out, _ = run("repair", d, "--backup", backup)
    expect(code == 0 and f"removed {name200}" in out and "damaged snapshot" in out and
           not os.path.exists(snap), f"repair moves the damaged snapshot out and says so: {out}")
    expect(open(os.path.join(backup, name200), "rb").read() == damaged,
           "the backup holds the damaged snapshot byte for byte")
    code, out, _ = run("verify", d, "--json")
    expect(code == 0 and json.loads(out)["healthy"], "verify after repair: healthy")
    expect(check_store(d)["last_seq"] == 250, "the store opens from snapshot 120 with 250 records")
    # A damaged header on the older snapshot: a newer one verifies, so nothing is lost.
    d2 = os.path.join(work, "badsnap-header")
    shutil.copytree(s, d2)
    make("flip", os.path.join(d2, "snapshot-00000000000000000120.snap"), "2")
    code, out, _ = run("repair", d2, "--json", "--backup", os.path.join(work, "badsnap2-backup"))
    r = json.loads(out)
    expect(code == 0 and [a["file"] for a in r["actions"]] ==
           ["snapshot-00000000000000000120.snap"] and "newer state" in r["actions"][0]["why"],
           "repair moves out an older snapshot with a damaged header")
    expect(check_store(d2)["last_seq"] == 250, "and the store opens with 250 records")
    # The only snapshot damaged, the journal no longer reaching back to record 1: refused.
    lone = os.path.join(work, "badsnap-lone")
    make("journal", lone, "100", "--snapshot-at", "60")
    code, out, _ = run("info", lone, "--json")
    expect(json.loads(out)["journal"]["first_seq"] > 1, "the journal starts after record 1")
    lsnap = os.path.join(lone, "snapshot-00000000000000000060.snap")
    make("flip", lsnap, str(os.path.getsize(lsnap) - 3))
    listing = {n: open(os.path.join(lone, n), "rb").read() for n in os.listdir(lone)}
    for extra in [["--dry-run"], []]:
        code, out, err = run("repair", lone, *extra)
        expect(code == 1 and "would lose acknowledged history" in err and "restore" in err and
               {n: open(os.path.join(lone, n), "rb").read() for n in os.listdir(lone)} ==
               listing, f"repair {' '.join(extra)} refuses to drop the only copy of records "
               "1..60, says what to do, changes nothing")

    # ---- a store in use ------------------------------------------------------------------
    h = subprocess.Popen([MAKE_STORE, "hold", f], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         text=True)
    try:
        expect(h.stdout.readline().strip() == "ready", "a store holds the lock")
        code, out, _ = run("info", f, "--json")
        expect(json.loads(out)["lock"] == {"held": True, "pid": h.pid},
               "info names the lock holder's pid")
        code, _, err = run("repair", f)
        expect(code == 4 and "in use" in err, "repair refuses a store in use: exit 4")
        code, _, err = run("repair", f, "--dry-run")
        expect(code == 4, "repair --dry-run also refuses it")
        if SESSIONS_TOOL:
            p = subprocess.run([SESSIONS_TOOL, "compact", f], capture_output=True, text=True,
                               timeout=60)
            expect(p.returncode == 4, "typed compact refuses a store in use: exit 4")
    finally:
        h.stdin.close()
        h.wait(timeout=60)

    # ---- encrypted and CBOR stores -------------------------------------------------------
    key = os.path.join(work, "key")
    open(key, "w").write("ab" * 32 + "\n")
    e = os.path.join(work, "encrypted")
    make("journal", e, "30", "--key", key, "--snapshot-at", "20")
    code, out, _ = run("info", e, "--json")
    i = json.loads(out)
    expect(code == 0 and i["encrypted"] and i["format_version"] == 3 and i["sealed"] and
           {"journal.last_seq", "journal.records", "reachable"} <= set(i["needs_key"]) and
           i["journal"]["last_seq"] is None and i["journal"]["records"] is None and
           i["journal"]["first_seq"] == i["journal"]["segments"][0]["first_seq"] and
           i["reachable"] is None and i["problem"] is None,
           "info --json without the key: sealed, the figures that need it are null and listed")
    code, out, _ = run("info", e)
    expect(code == 0 and "sealed" in out and "need the key" in out and "0 records" not in out,
           "info without the key: says the records are sealed and which figures need the key")
    code, out, _ = run("info", e, "--json", "--key-file", key)
    i = json.loads(out)
    expect(code == 0 and not i["sealed"] and i["journal"]["last_seq"] == 30,
           "info with the key: not sealed, the records read")
    code, _, err = run("dump", e)
    expect(code == 2 and "--key-file" in err, "dump without the key: exit 2 asking for it")
    code, out, _ = run("dump", e, "--key-file", key)
    seqs = [r["seq"] for r in lines(out)]
    expect(code == 0 and seqs == list(range(i["journal"]["segments"][0]["first_seq"], 31)),
           "dump with --key-file")
    code, out, _ = run("verify", e, "--key-file", key)
    expect(code == 0, "verify with --key-file")
    code, out, _ = run("snapshot-dump", e, "--key-file", key)
    expect(len(json.loads(out)["applied"]) == 20, "snapshot-dump of an encrypted snapshot")
    b = os.path.join(work, "cbor")
    make("journal", b, "50", "--cbor", "--snapshot-at", "40")
    code, out, _ = run("dump", b, "--from", "41")
    got = lines(out)
    expect(code == 0 and [r["seq"] for r in got] == list(range(41, 51)) and
           all(isinstance(r["args"], dict) for r in got), "dump of a CBOR journal")
    code, out, _ = run("info", b, "--json")
    expect(json.loads(out)["snapshots"][0]["codec"] == "cbor", "info: CBOR snapshot codec")

    # ---- replication epochs (issue 11): a store written under epoch 4, then 6 -------------
    ep = os.path.join(work, "epochs")
    make("journal", ep, "20", "--epoch", "4")
    make("journal", ep, "10", "--epoch", "6")
    code, out, _ = run("info", ep, "--json")
    segs = json.loads(out)["journal"]["segments"]
    expect(code == 0 and [x["epoch"] for x in segs] == sorted(x["epoch"] for x in segs) and
           segs[0]["epoch"] == 4 and segs[-1]["epoch"] == 6 and
           all(x["version"] == 3 for x in segs), "info: each segment's epoch, version 3")
    code, out, _ = run("info", ep)
    expect(code == 0 and "epoch 6" in out, "info text: the epoch of each segment")
    code, out, _ = run("dump", ep)
    got = lines(out)
    expect(code == 0 and [r["epoch"] for r in got] == [4] * 20 + [6] * 10,
           "dump: each record's epoch")
    code, out, _ = run("verify", ep)
    expect(code == 0, "verify: epochs that never decrease are healthy")
    dec = os.path.join(work, "epochs-decreasing")
    shutil.copytree(ep, dec)
    last = segments(dec)[-1]
    make("epoch", os.path.join(dec, last), "2")  # claims epoch 2, after segments of 4 and 6
    code, out, err = run("verify", dec)
    expect(code == 1 and "epochs never decrease" in out + err and last in out + err,
           "verify: a segment of a lower epoch than the one before it is damage, named")

    # ---- the progress bar: drawn only on a terminal, at most ten times a second ---------
    big = os.path.join(work, "big")
    make("journal", big, "60000", "--segment", "1048576")

    def on_terminal(*args):
        """stderr of the tool when it is a pseudo-terminal, and the seconds it ran."""
        master, slave = pty.openpty()
        start = time.monotonic()
        p = subprocess.Popen([PREVALENT, *args], stdout=subprocess.DEVNULL, stderr=slave)
        os.close(slave)
        out = b""
        while True:
            try:
                chunk = os.read(master, 4096)
            except OSError:
                break
            if not chunk:
                break
            out += chunk
        p.wait(timeout=120)
        os.close(master)
        return p.returncode, out.decode(), time.monotonic() - start

    code, err, secs = on_terminal("verify", big)
    draws = [x for x in err.split("\r") if x]
    bar = re.compile(r"verifying journal \[[#.]{30}\] +\d+%")
    expect(code == 0 and all(bar.fullmatch(x) for x in draws[:-1]) and
           (not draws or draws[-1] == "\x1b[K") and len(draws) - 1 <= 10 * secs + 1,
           f"progress bar on a terminal: {len(draws) - 1} redraws in {secs:.2f} s, then erased")
    code, err, _ = on_terminal("verify", big, "--quiet")
    expect(code == 0 and err == "", "--quiet: no progress bar on a terminal")
    code, _, err = run("verify", big)
    expect(code == 0 and err == "", "no progress bar when stderr is not a terminal")

    # ---- the typed tool: compact -------------------------------------------------------
    if SESSIONS_TOOL:
        w = os.path.join(work, "sessions")
        for i in range(30):
            subprocess.run([SESSIONS, w, "create", "user%d" % (i % 3), "3600"], check=True,
                           capture_output=True, timeout=60)
        # Typed time travel: the state after record 10, rebuilt with the types, read-only.
        p = subprocess.run([SESSIONS_TOOL, "state", w, "--seq", "10", "--json"],
                           capture_output=True, text=True, timeout=60)
        r = json.loads(p.stdout)
        expect(p.returncode == 0 and r["seq"] == 10 and len(r["state"]["by_hash"]) == 10,
               "typed state --seq 10: the 10 sessions created by then")
        p = subprocess.run([SESSIONS_TOOL, "state", w, "--seq", "31"], capture_output=True,
                           text=True, timeout=60)
        expect(p.returncode != 0 and "31" in p.stderr, f"typed state past the end fails: {p.stderr}")
        p = subprocess.run([SESSIONS_TOOL, "compact", w, "--json"], capture_output=True,
                           text=True, timeout=120)
        r = json.loads(p.stdout)
        expect(p.returncode == 0 and r["snapshot_seq"] == 30 and r["after"]["snapshots"] == 1,
               f"typed compact: a snapshot at 30 {r}")
        code, out, _ = run("snapshot-dump", w)
        expect(code == 0 and json.loads(out), "the compacted store's snapshot reads")
        listing = subprocess.run([SESSIONS, w, "list", "user1"], capture_output=True, text=True,
                                 check=True, timeout=60).stdout
        expect("10 session(s)" in listing, "the compacted store opens with every session")
        code, _, _ = run("verify", w)
        expect(code == 0, "verify after compact")
        # The determinism check: from the empty state (the journal reaches back to record 1) to
        # the snapshot compact took; the sessions commands are deterministic.
        p = subprocess.run([SESSIONS_TOOL, "check-determinism", w, "--json"],
                           capture_output=True, text=True, timeout=60)
        r = json.loads(p.stdout)
        expect(p.returncode == 0 and r["checked"] and r["consistent"] and r["to_seq"] == 30
               and r["replayed"] == 30, f"typed check-determinism passes: {r}")
        p = subprocess.run([SESSIONS_TOOL, "state", w], capture_output=True, text=True,
                           timeout=60)
        expect(p.returncode == 0 and json.loads(p.stdout)["seq"] == 30,
               "typed state: the last record by default")
        # Encrypted (SESSIONS_KEY_FILE): compact with --key-file, then the tool reads it.
        we = os.path.join(work, "sessions-encrypted")
        env = dict(os.environ, SESSIONS_KEY_FILE=key)
        for i in range(5):
            subprocess.run([SESSIONS, we, "create", "eve", "3600"], check=True, env=env,
                           capture_output=True, timeout=60)
        p = subprocess.run([SESSIONS_TOOL, "compact", we], capture_output=True, text=True,
                           timeout=60)
        expect(p.returncode == 2 and "--key-file" in p.stderr,
               "typed compact of an encrypted store without the key: exit 2")
        p = subprocess.run([SESSIONS_TOOL, "compact", we, "--key-file", key, "--json"],
                           capture_output=True, text=True, timeout=60)
        expect(p.returncode == 0 and json.loads(p.stdout)["snapshot_seq"] == 5,
               "typed compact with --key-file")
        code, out, _ = run("snapshot-dump", we, "--key-file", key)
        expect(code == 0 and len(json.loads(out)["by_hash"]) == 5,
               "the encrypted snapshot compact wrote reads with the key")
        p = subprocess.run([SESSIONS_TOOL, "compact", foreign], capture_output=True, text=True,
                           timeout=60)
        expect(p.returncode == 3, "typed compact of a directory that is not a store: exit 3")
        p = subprocess.run([SESSIONS_TOOL, "dump", w, "--to", "2"], capture_output=True,
                           text=True, timeout=60)
        expect(p.returncode == 0 and len(lines(p.stdout)) <= 2, "the typed tool dumps too")
finally:
    shutil.rmtree(work, ignore_errors=True)

sys.exit(1 if failures else 0)
