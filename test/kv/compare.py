"""How the differential tests compare two replies to the same command (test/kv/README.md).

Byte for byte, except:
- replies that legitimately differ between two servers are compared by their type byte only,
  chosen by command name: INFO, TIME, LASTSAVE, RANDOMKEY, HELLO, COMMAND, CLIENT ID/LIST/INFO,
  CONFIG GET, MEMORY, OBJECT, DEBUG;
- replies whose order is unspecified (KEYS, HKEYS, HVALS, HGETALL, and the key list of SCAN)
  are compared with their elements sorted (HGETALL as sorted field/value pairs);
- with a tolerance T, integers that are >= 0 in both replies may differ by at most T.
"""

from kvlib import parse, RespError

SHAPE_ONLY = {b"INFO", b"TIME", b"LASTSAVE", b"RANDOMKEY", b"HELLO", b"COMMAND", b"MEMORY",
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


def same(args, ref, got, tol=None, shape=False):
    """True if got (bytes) is an acceptable answer where ref (bytes) is Redis's."""
    if ref == got:
        return True
    how = "shape" if shape else kind_of(args)
    if how == "shape":
        return ref[:1] == got[:1]
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


def show(args):
    """A command as a copy-pasteable script line."""
    out = []
    for a in args:
        if a and all(33 <= c < 127 and c not in b'"\\#' for c in a):
            out.append(a.decode())
        else:
            out.append('"' + repr(a)[2:-1].replace('"', '\\"') + '"')
    return " ".join(out)
