"""The corpus script language of the differential tests (test/kv/corpus/*.txt).

One command per line, arguments separated by blanks. A quoted argument "..." is a Python
bytes literal (so "\\x00\\r\\n", "" and "a b" are one argument each); a bare word is taken as
its UTF-8 bytes. `#` starts a comment line. Prefixes before the command:

  @N        send on connection N (1-9, opened on first use; default 1)
  ~T        integer replies (also inside arrays) may differ by at most T when both are >= 0
            (for PTTL and friends: the two servers run the command a few ms apart)

Directives:

  !pipeline / !end      the commands between are sent in one write, replies read afterwards
  !raw N "bytes"        send these bytes as they are, then read N replies
  !raw-close "bytes"    send these bytes, then read until the server closes the connection
  !sleep MS             wait (expiry)
  !scan-all ARGS...     iterate SCAN 0 ARGS... until cursor 0, compare the sorted key sets
  !shape CMD ...        compare only the reply's type byte (for values that may differ)
"""

import ast


class ScriptError(Exception):
    pass


def split_args(text, where):
    out, i, n = [], 0, len(text)
    while i < n:
        c = text[i]
        if c.isspace():
            i += 1
            continue
        if c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            if j >= n:
                raise ScriptError(f"{where}: unterminated quote")
            try:
                out.append(ast.literal_eval("b" + text[i:j + 1]))
            except (SyntaxError, ValueError) as e:
                raise ScriptError(f"{where}: bad quoted argument {text[i:j + 1]}: {e}")
            i = j + 1
            if i < n and not text[i].isspace():
                raise ScriptError(f"{where}: text right after a closing quote")
        else:
            j = i
            while j < n and not text[j].isspace():
                j += 1
            out.append(text[i:j].encode())
            i = j
    return out


class Step:
    """kind: cmd | pipeline | raw | raw-close | sleep | scan-all; line: source line number."""

    def __init__(self, kind, line, text, args=(), conn=1, tol=None, shape=False, count=0,
                 data=b"", steps=()):
        self.kind, self.line, self.text = kind, line, text
        self.args, self.conn, self.tol, self.shape = list(args), conn, tol, shape
        self.count, self.data, self.steps = count, data, list(steps)


def parse_command(text, lineno, where):
    conn, tol, shape = 1, None, False
    rest = text
    while True:
        rest = rest.lstrip()
        if rest.startswith("@"):
            tok, _, rest = rest.partition(" ")
            conn = int(tok[1:])
        elif rest.startswith("~"):
            tok, _, rest = rest.partition(" ")
            tol = int(tok[1:])
        elif rest.startswith("!shape "):
            shape, rest = True, rest[len("!shape "):]
        else:
            break
    args = split_args(rest, where)
    if not args:
        raise ScriptError(f"{where}: no command")
    return Step("cmd", lineno, text, args=args, conn=conn, tol=tol, shape=shape)


def parse_script(path):
    steps, pipeline = [], None
    with open(path, encoding="utf-8") as f:
        lines = f.read().split("\n")
    for lineno, raw in enumerate(lines, 1):
        text = raw.strip()
        where = f"{path}:{lineno}"
        if not text or text.startswith("#"):
            continue
        if text == "!pipeline":
            pipeline = Step("pipeline", lineno, text)
            continue
        if text == "!end":
            if pipeline is None:
                raise ScriptError(f"{where}: !end without !pipeline")
            steps.append(pipeline)
            pipeline = None
            continue
        if text.startswith("!raw "):
            _, n, data = text.split(None, 2)
            (data,) = split_args(data, where)
            step = Step("raw", lineno, text, count=int(n), data=data)
        elif text.startswith("!raw-close "):
            (data,) = split_args(text[len("!raw-close "):], where)
            step = Step("raw-close", lineno, text, data=data)
        elif text.startswith("!sleep "):
            step = Step("sleep", lineno, text, count=int(text.split()[1]))
        elif text.startswith("!scan-all"):
            step = Step("scan-all", lineno, text, args=split_args(text[9:], where))
        elif text.startswith("!") and not text.startswith("!shape "):
            raise ScriptError(f"{where}: unknown directive {text.split()[0]}")
        else:
            step = parse_command(text, lineno, where)
        if pipeline is not None:
            if step.kind != "cmd":
                raise ScriptError(f"{where}: only commands inside !pipeline")
            pipeline.steps.append(step)
        else:
            steps.append(step)
    if pipeline is not None:
        raise ScriptError(f"{path}: !pipeline without !end")
    return steps
