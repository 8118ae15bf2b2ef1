"""Shared tooling of the real-client tests of prevalent-kv (issue 8, part 4).

RESP2 encoding of requests, a reader that returns each complete reply as its exact bytes
(nested arrays included), free-port picking, and starting/stopping the servers by PID:
Debian's redis-server (the reference) and the server under test.

The server under test is the command in the environment variable KV_SERVER (split like a
shell line). If its program is `redis-server`, the harness starts a second redis-server
instead, so every test can be validated against Redis compared with itself. Otherwise it is
started as `KV_SERVER --dir DIR --port 0 [extra]` and must print `ready port=N` on stdout
(docs/KV.md). Python 3 standard library only.
"""

import os
import select
import shlex
import signal
import socket
import subprocess
import sys
import time

SKIP = 77  # meson's exit code for a skipped test


def exit_on_sigterm():
    """SIGTERM (meson's timeout, a `kill` of the test) raises SystemExit in the main thread, so
    the test's finally blocks stop the servers it started instead of leaving them running."""
    def handler(signum, frame):
        raise SystemExit(f"stopped by signal {signum}")
    signal.signal(signal.SIGTERM, handler)


def kv_command():
    """The server-under-test command from KV_SERVER, or exit 77 (skip) if it is not built."""
    line = os.environ.get("KV_SERVER", "")
    if not line:
        print("KV_SERVER is not set: skipping", file=sys.stderr)
        sys.exit(SKIP)
    argv = shlex.split(line)
    if os.path.basename(argv[0]) != "redis-server" and not os.access(argv[0], os.X_OK):
        print(f"server under test {argv[0]} is not built: skipping", file=sys.stderr)
        sys.exit(SKIP)
    return argv


def is_redis(argv):
    return os.path.basename(argv[0]) == "redis-server"


def encode(args):
    """A request as a RESP2 array of bulk strings; args are bytes or str."""
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        if isinstance(a, str):
            a = a.encode()
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(out)


class ConnectionClosed(Exception):
    pass


class Conn:
    """A raw socket connection that reads complete RESP2 replies as bytes."""

    def __init__(self, port, timeout=10.0, host="127.0.0.1"):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def send(self, data):
        self.sock.sendall(data)

    def _fill(self):
        chunk = self.sock.recv(1 << 16)
        if not chunk:
            raise ConnectionClosed("server closed the connection")
        self.buf += chunk

    def _line(self, pos):
        while True:
            end = self.buf.find(b"\r\n", pos)
            if end >= 0:
                return end
            self._fill()

    def _reply_end(self, pos):
        """Offset just past the complete reply that starts at pos (reads more as needed)."""
        while len(self.buf) <= pos:
            self._fill()
        end = self._line(pos)
        kind = self.buf[pos:pos + 1]
        if kind in (b"+", b"-", b":"):
            return end + 2
        if kind == b"$":
            n = int(self.buf[pos + 1:end])
            if n < 0:
                return end + 2
            stop = end + 2 + n + 2
            while len(self.buf) < stop:
                self._fill()
            return stop
        if kind == b"*":
            n = int(self.buf[pos + 1:end])
            p = end + 2
            for _ in range(max(n, 0)):
                p = self._reply_end(p)
            return p
        raise ValueError(f"not a RESP2 reply at {self.buf[pos:pos + 40]!r}")

    def reply(self):
        """The next complete reply, as its exact bytes."""
        end = self._reply_end(0)
        r, self.buf = self.buf[:end], self.buf[end:]
        return r

    def call(self, *args):
        self.send(encode(args))
        return self.reply()

    def read_until_close(self, timeout=5.0):
        """Everything the server sends until it closes the connection (or timeout)."""
        self.sock.settimeout(timeout)
        try:
            while True:
                self._fill()
        except (ConnectionClosed, ConnectionResetError):
            pass
        except socket.timeout:
            data, self.buf = self.buf, b""
            return data, False
        data, self.buf = self.buf, b""
        return data, True


def parse(reply):
    """Decode reply bytes into Python values: bytes, int, None, list, or RespError."""
    value, end = _parse(reply, 0)
    assert end == len(reply), reply
    return value


class RespError(str):
    pass


def _parse(b, pos):
    end = b.index(b"\r\n", pos)
    kind, body = b[pos:pos + 1], b[pos + 1:end]
    if kind == b"+":
        return body, end + 2
    if kind == b"-":
        return RespError(body.decode(errors="replace")), end + 2
    if kind == b":":
        return int(body), end + 2
    if kind == b"$":
        n = int(body)
        if n < 0:
            return None, end + 2
        return b[end + 2:end + 2 + n], end + 2 + n + 2
    n = int(body)
    if n < 0:
        return None, end + 2
    out, p = [], end + 2
    for _ in range(n):
        v, p = _parse(b, p)
        out.append(v)
    return out, p


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_ping(port, deadline):
    while time.monotonic() < deadline:
        try:
            c = Conn(port, timeout=2)
            r = c.call("PING")
            c.close()
            if r == b"+PONG\r\n" or r.startswith(b"-NOAUTH"):  # up (with --requirepass)
                return True
        except (OSError, ConnectionClosed):
            pass
        time.sleep(0.02)
    return False


class Server:
    """A server process started by this harness, stopped by its PID."""

    def __init__(self, proc, port, name, directory):
        self.proc, self.port, self.name, self.dir = proc, port, name, directory

    @property
    def pid(self):
        return self.proc.pid

    def alive(self):
        return self.proc.poll() is None

    def kill(self):
        """SIGKILL by PID and reap."""
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait()

    def stop(self, timeout=30):
        """SIGTERM by PID; returns the exit status (SIGKILL after timeout)."""
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        return self.proc.returncode


def start_redis(directory, durable=False, extra=(), port=None, timeout=60):
    """Debian's redis-server on 127.0.0.1, no persistence unless durable (AOF, fsync always).
    One database (--databases 1), as prevalent-kv: SELECT 1 gets Redis's out-of-range error."""
    port = port or free_port()
    persistence = (["--appendonly", "yes", "--appendfsync", "always"] if durable
                   else ["--appendonly", "no"])
    argv = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
            "--dir", directory, "--daemonize", "no", "--databases", "1",
            "--logfile", os.path.join(directory, "redis.log")] + persistence + list(extra)
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    if not wait_ping(port, time.monotonic() + timeout):
        proc.kill()
        proc.wait()
        raise RuntimeError(f"redis-server on port {port} did not answer PING; see "
                           f"{directory}/redis.log")
    return Server(proc, port, "redis-server", directory)


def start_kv(argv, directory, durable=False, extra=(), redis_extra=(), timeout=120, port=0):
    """The server under test on directory (port 0: an ephemeral one). A redis-server stand-in
    gets durable AOF settings if durable; prevalent-kv gets `--sync always` if durable."""
    os.makedirs(directory, exist_ok=True)
    if is_redis(argv):
        return start_redis(directory, durable=durable, extra=redis_extra, timeout=timeout,
                           port=port or None)
    cmd = list(argv) + ["--dir", directory, "--port", str(port)]
    if durable:
        cmd += ["--sync", "always"]
    cmd += list(extra)
    err = open(os.path.join(directory, "..", os.path.basename(directory) + ".stderr"), "ab")
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, stdin=subprocess.DEVNULL)
    err.close()
    deadline = time.monotonic() + timeout
    line, fd = b"", proc.stdout.fileno()
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.05)
        if ready:
            chunk = os.read(fd, 4096)
            if not chunk:
                break  # EOF: the server exited
            line += chunk
            for ln in line.split(b"\n")[:-1]:
                if ln.startswith(b"ready port="):
                    port = int(ln.split(b"=", 1)[1])
                    return Server(proc, port, os.path.basename(argv[0]), directory)
        elif proc.poll() is not None:
            break
    proc.kill()
    proc.wait()
    raise RuntimeError(f"{' '.join(cmd)} printed no 'ready port=N' line (got {line!r}); "
                       f"exit status {proc.returncode}")
