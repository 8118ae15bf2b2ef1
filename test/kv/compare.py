"""How the differential tests compare two replies to the same command (test/kv/README.md).

Byte for byte, except:
- replies that legitimately differ between two servers are compared by their type byte only,
  chosen by command name: TIME, LASTSAVE, RANDOMKEY, HELLO, COMMAND, CLIENT ID/LIST/INFO,
  CONFIG GET, MEMORY, OBJECT, DEBUG;
- INFO by its structure (info_same): the sections the issue lists (Server, Clients,
  Persistence, Stats, Keyspace) are there when Redis has them, every section and every field
  name is one Redis 7.0 has in that section (fields named prevalent_* excepted), and the
  keyspace lines have Redis's keys= and expires= counts;
- replies whose order is unspecified (KEYS, HKEYS, HVALS, HGETALL, and the key list of SCAN)
  are compared with their elements sorted (HGETALL as sorted field/value pairs);
- with a tolerance T, integers that are >= 0 in both replies may differ by at most T.
"""

from kvlib import parse, RespError

SHAPE_ONLY = {b"TIME", b"LASTSAVE", b"RANDOMKEY", b"HELLO", b"COMMAND", b"MEMORY",
              b"OBJECT", b"DEBUG"}
SHAPE_ONLY_SUB = {(b"CLIENT", b"ID"), (b"CLIENT", b"LIST"), (b"CLIENT", b"INFO"),
                  (b"CONFIG", b"GET")}
UNORDERED = {b"KEYS", b"HKEYS", b"HVALS"}


def kind_of(args):
    name = args[0].upper() if args else b""
    sub = args[1].upper() if len(args) > 1 else b""
    if name in SHAPE_ONLY or (name, sub) in SHAPE_ONLY_SUB:
        return "shape"
    if name in UNORDERED:
        return "unordered"
    if name == b"INFO":
        return "info"
    if name == b"HGETALL":
        return "pairs"
    if name == b"SCAN":
        return "scan"
    return "exact"


def _normalize(value, how):
    if isinstance(value, RespError) or not isinstance(value, list):
        return value
    if how == "unordered":
        return sorted(value, key=repr)
    if how == "pairs":
        return sorted(zip(value[0::2], value[1::2]), key=repr)
    if how == "scan" and len(value) == 2 and isinstance(value[1], list):
        return [value[0], sorted(value[1], key=repr)]
    return value


def _close(a, b, tol):
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_close(x, y, tol) for x, y in zip(a, b))
    if (type(a) is int and type(b) is int and a >= 0 and b >= 0):
        return abs(a - b) <= tol
    return a == b and type(a) is type(b)


INFO_REQUIRED = {"Server", "Clients", "Persistence", "Stats", "Keyspace"}


def _info_sections(text):
    sections, current = {}, None
    for line in text.split("\r\n"):
        if line.startswith("# "):
            current = sections.setdefault(line[2:], {})
        elif ":" in line and current is not None:
            k, v = line.split(":", 1)
            current[k] = v
    return sections


def info_same(ref, got):
    """None if got is an acceptable INFO reply where ref is Redis's, else why not."""
    a, b = parse(ref), parse(got)
    if not isinstance(a, bytes) or not isinstance(b, bytes):
        return None if type(a) is type(b) else "not a bulk string"
    ra, rb = _info_sections(a.decode("latin-1")), _info_sections(b.decode("latin-1"))
    missing = (set(ra) & INFO_REQUIRED) - set(rb)
    if missing:
        return f"sections missing: {sorted(missing)}"
    for sec, fields in rb.items():
        if sec not in ra:
            return f"section {sec} is not one of Redis's here"
        unknown = [f for f in fields if f not in ra[sec] and not f.startswith("prevalent_")]
        if unknown and sec != "Keyspace":
            return f"fields Redis 7.0 does not have in {sec}: {unknown}"
    ka, kb = ra.get("Keyspace", {}), rb.get("Keyspace", {})
    counts = {db: ",".join(p for p in v.split(",") if not p.startswith("avg_ttl="))
              for db, v in ka.items()}
    countsb = {db: ",".join(p for p in v.split(",") if not p.startswith("avg_ttl="))
               for db, v in kb.items()}
    if counts != countsb:
        return f"keyspace {countsb}, Redis {counts}"
    return None


def same(args, ref, got, tol=None, shape=False):
    """True if got (bytes) is an acceptable answer where ref (bytes) is Redis's."""
    if ref == got:
        return True
    how = "shape" if shape else kind_of(args)
    if how == "shape":
        return ref[:1] == got[:1]
    if how == "info":
        try:
            return info_same(ref, got) is None
        except (ValueError, AssertionError, IndexError):
            return False
    if how == "exact" and tol is None:
        return False
    try:
        a, b = parse(ref), parse(got)
    except (ValueError, AssertionError, IndexError):
        return False
    a, b = _normalize(a, how), _normalize(b, how)
    if tol is not None:
        return _close(a, b, tol)
    return a == b


def explain(args, ref, got):
    """Why two replies differ, where the bytes alone do not say it (INFO), else None."""
    if kind_of(args) != "info":
        return None
    try:
        return info_same(ref, got)
    except (ValueError, AssertionError, IndexError) as e:
        return f"not a RESP reply: {e}"


def show(args):
    """A command as a copy-pasteable script line."""
    out = []
    for a in args:
        if a and all(33 <= c < 127 and c not in b'"\\#' for c in a):
            out.append(a.decode())
        else:
            out.append('"' + repr(a)[2:-1].replace('"', '\\"') + '"')
    return " ".join(out)
