"""Integration-test harness for Herald.

Starts the real broker binary (HERALD_BINARY) on a free loopback port and offers three ways to talk to it:
  * http_request()  — one HTTP/1.1 request per TCP connection (http.client),
  * RawClient       — a raw socket: hand-written HTTP requests, WebSocket handshake, raw RFC 6455 frames,
  * WSClient        — python3-websockets 10.x (asyncio) speaking herald.v1.json.

Every network operation targets 127.0.0.1 and every wait is bounded by a timeout. Servers are stopped with SIGTERM
(SIGKILL as a fallback) and must exit with status 0; no process outlives the test run.
"""
import asyncio
import atexit
import base64
import ctypes
import hashlib
import http.client
import json
import os
import re
import signal
import socket
import struct
import subprocess
import tempfile
import time
import unittest

import websockets
import websockets.client
import websockets.exceptions

HOST = "127.0.0.1"
SUBPROTOCOL = "herald.v1.json"

# The metrics contract (docs/metrics.md): name → Prometheus type. Every node serves every family's TYPE line;
# families labelled "on first use" in docs/metrics.md have samples only once a value occurred.
METRIC_TYPES = {
    "herald_connections": "gauge",
    "herald_connections_accepted_total": "counter",
    "herald_connections_closed_total": "counter",
    "herald_handshake_failures_total": "counter",
    "herald_subscriptions": "gauge",
    "herald_channels": "gauge",
    "herald_messages_published_total": "counter",
    "herald_messages_delivered_total": "counter",
    "herald_bytes_received_total": "counter",
    "herald_bytes_sent_total": "counter",
    "herald_slow_consumer_closes_total": "counter",
    "herald_resumes_total": "counter",
    "herald_errors_total": "counter",
    "herald_auth_failures_total": "counter",
    "herald_rate_limited_total": "counter",
    "herald_token_events_total": "counter",
    "herald_publish_to_write_seconds": "histogram",
    "herald_messages_replayed_total": "counter",
    "herald_gaps_repaired_total": "counter",
    "herald_discontinuities_total": "counter",
    "herald_cross_node_lag_seconds": "histogram",
    "herald_backplane_command_duration_seconds": "histogram",
    "herald_backplane_up": "gauge",
    "herald_backplane_reconnects_total": "counter",
    "herald_backplane_resyncs_total": "counter",
    "herald_max_connections": "gauge",
    "herald_process_cpu_seconds_total": "counter",
    "herald_process_resident_memory_bytes": "gauge",
    "herald_process_open_fds": "gauge",
    "herald_process_max_fds": "gauge",
    "herald_process_start_time_seconds": "gauge",
    "herald_build_info": "gauge",
}

WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA

STARTUP_TIMEOUT = 10.0
STOP_MARGIN = 5.0  # seconds allowed beyond --drain-timeout for a SIGTERM'd server to exit


# ----------------------------------------------------------------------------------------------------------------
# Server process
# ----------------------------------------------------------------------------------------------------------------

def herald_binary():
    path = os.environ.get("HERALD_BINARY", "")
    if not path:
        raise unittest.SkipTest("HERALD_BINARY is not set")
    if not os.access(path, os.X_OK):
        raise AssertionError(f"HERALD_BINARY={path!r} is not an executable file")
    return path


_live_servers = set()


def _kill_leftovers():
    for proc in list(_live_servers):
        if proc.poll() is None:
            proc.kill()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass


atexit.register(_kill_leftovers)


def _die_with_parent():
    # Linux: the broker gets SIGKILL if the test process dies, so an aborted run leaves nothing behind.
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except Exception:
        pass


class HeraldServer:
    """One herald process listening on 127.0.0.1:<free port>."""

    def __init__(self, *args, node_name="itest", drain_timeout=3, env=None):
        self.args = [str(a) for a in args]
        if node_name is not None and "--node-name" not in self.args:
            self.args += ["--node-name", node_name]
        if drain_timeout is not None and "--drain-timeout" not in self.args:
            self.args += ["--drain-timeout", str(drain_timeout)]
        self.drain_timeout = float(self.args[self.args.index("--drain-timeout") + 1]) \
            if "--drain-timeout" in self.args else 10.0
        self.extra_env = env or {}
        self.proc = None
        self.port = None
        self.addr = None
        self.exit_code = None
        self._dir = tempfile.mkdtemp(prefix="herald-it-")
        self.stderr_path = os.path.join(self._dir, "stderr.log")
        self.stdout_path = os.path.join(self._dir, "stdout.log")

    # -- lifecycle --------------------------------------------------------------------------------------------

    def start(self):
        binary = herald_binary()
        env = {k: v for k, v in os.environ.items() if not k.startswith("HERALD_")}
        env.update(self.extra_env)
        cmd = [binary, "--listen", f"{HOST}:0", *self.args]
        self.cmd = cmd
        self._stderr = open(self.stderr_path, "wb")
        self._stdout = open(self.stdout_path, "wb")
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=self._stdout, stderr=self._stderr,
                                     env=env, preexec_fn=_die_with_parent)
        _live_servers.add(self.proc)
        try:
            self._wait_listening()
            self._wait_healthy()
        except BaseException:
            self.kill()
            raise
        return self

    def _wait_listening(self):
        deadline = time.monotonic() + STARTUP_TIMEOUT
        pattern = re.compile(r"event=listening\b.*?\baddr=(\S+)")
        while time.monotonic() < deadline:
            m = pattern.search(self.stderr())
            if m:
                self.addr = m.group(1)
                host, _, port = self.addr.rpartition(":")
                self.port = int(port)
                return
            if self.proc.poll() is not None:
                raise AssertionError(f"herald exited with status {self.proc.returncode} before listening\n"
                                     f"command: {' '.join(self.cmd)}\nstderr:\n{self.stderr_tail()}")
            time.sleep(0.02)
        raise AssertionError(f"no 'event=listening ... addr=HOST:PORT' line on stderr within {STARTUP_TIMEOUT}s\n"
                             f"command: {' '.join(self.cmd)}\nstderr:\n{self.stderr_tail()}")

    def _wait_healthy(self):
        deadline = time.monotonic() + STARTUP_TIMEOUT
        last = None
        while time.monotonic() < deadline:
            try:
                r = http_request(self.port, "GET", "/healthz", timeout=2)
                if r.status == 200:
                    return
                last = f"status {r.status} body {r.body!r}"
            except OSError as e:
                last = repr(e)
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise AssertionError(f"GET /healthz did not answer 200 within {STARTUP_TIMEOUT}s (last: {last})\n"
                             f"stderr:\n{self.stderr_tail()}")

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def terminate(self):
        """Send SIGTERM (for shutdown tests); use wait_exit() afterwards."""
        self.proc.send_signal(signal.SIGTERM)

    def wait_exit(self, timeout):
        """Waits up to `timeout` for the process to exit; returns the exit code or None (still running)."""
        try:
            self.exit_code = self.proc.wait(timeout=timeout)
            _live_servers.discard(self.proc)
            return self.exit_code
        except subprocess.TimeoutExpired:
            return None

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
        if self.proc is not None:
            _live_servers.discard(self.proc)
        self._close_files()

    def stop(self, check=True):
        """SIGTERM, then require exit status 0 within drain-timeout + margin (SIGKILL otherwise)."""
        if self.proc is None:
            return None
        problem = None
        if self.proc.poll() is not None:
            rc = self.proc.returncode
            if rc != 0 or self.exit_code is None:
                problem = f"herald had already exited (status {rc}) before the test stopped it"
        else:
            self.proc.send_signal(signal.SIGTERM)
            bound = self.drain_timeout + STOP_MARGIN
            rc = self.wait_exit(bound)
            if rc is None:
                self.kill()
                problem = f"herald did not exit within {bound}s of SIGTERM (killed with SIGKILL)"
            elif rc != 0:
                problem = f"herald exited with status {rc} after SIGTERM, expected 0"
        self.exit_code = self.proc.returncode
        _live_servers.discard(self.proc)
        self._close_files()
        if problem and check:
            raise AssertionError(f"{problem}\nstderr:\n{self.stderr_tail()}")
        return self.exit_code

    def _close_files(self):
        for f in (getattr(self, "_stderr", None), getattr(self, "_stdout", None)):
            if f is not None and not f.closed:
                f.close()

    def cleanup_files(self):
        for p in (self.stderr_path, self.stdout_path):
            try:
                os.unlink(p)
            except OSError:
                pass
        try:
            os.rmdir(self._dir)
        except OSError:
            pass

    # -- inspection -------------------------------------------------------------------------------------------

    def stderr(self):
        try:
            with open(self.stderr_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def stderr_tail(self, lines=30):
        return "\n".join(self.stderr().splitlines()[-lines:]) or "(empty)"

    def rss_kib(self):
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

    def ws_url(self, path="/ws"):
        return f"ws://{HOST}:{self.port}{path}"

    def metrics(self):
        r = http_request(self.port, "GET", "/metrics")
        if r.status != 200:
            raise AssertionError(f"GET /metrics: expected 200, got {r.status} {r.body!r}")
        return parse_metrics(r.text())

    def metric(self, name, **labels):
        """Sum of the samples of `name` whose labels include `labels` (0 when absent)."""
        return metric_value(self.metrics(), name, **labels)


# ----------------------------------------------------------------------------------------------------------------
# Prometheus text
# ----------------------------------------------------------------------------------------------------------------

_SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)')
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse_metrics(text):
    """→ list of (name, {label: value}, float)."""
    samples = []
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = _SAMPLE.match(line)
        if not m:
            continue
        labels = dict(_LABEL.findall(m.group(3) or ""))
        try:
            value = float(m.group(4))
        except ValueError:
            continue
        samples.append((m.group(1), labels, value))
    return samples


def metric_value(samples, name, **labels):
    total = 0.0
    for n, l, v in samples:
        if n == name and all(l.get(k) == str(val) for k, val in labels.items()):
            total += v
    return total


# ----------------------------------------------------------------------------------------------------------------
# HTTP
# ----------------------------------------------------------------------------------------------------------------

class HttpResponse:
    def __init__(self, status, reason, header_list, body):
        self.status = status
        self.reason = reason
        self.header_list = header_list  # [(name, value)] as received
        self.headers = {k.lower(): v for k, v in header_list}
        self.body = body

    def header(self, name, default=None):
        return self.headers.get(name.lower(), default)

    def text(self):
        return self.body.decode("utf-8", "replace")

    def json(self):
        try:
            return json.loads(self.body)
        except ValueError:
            raise AssertionError(f"expected a JSON body, got status {self.status} body {self.body!r}")

    def __repr__(self):
        return f"<HTTP {self.status} {self.reason} headers={self.header_list} body={self.body[:300]!r}>"


def http_request(port, method, path, body=None, headers=None, timeout=5.0):
    """One request on its own TCP connection (the broker answers with Connection: close)."""
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        if isinstance(body, (dict, list)):
            body = json.dumps(body)
        if isinstance(body, str):
            body = body.encode()
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        data = r.read()
        return HttpResponse(r.status, r.reason, r.getheaders(), data)
    finally:
        conn.close()


def api_publish(port, channel, data, key=None, api_key=None, timeout=5.0):
    body = {"channel": channel, "data": data}
    if key is not None:
        body["key"] = key
    headers = {"Content-Type": "application/json"}
    if api_key is not None:
        headers["Authorization"] = f"Bearer {api_key}"
    return http_request(port, "POST", "/api/publish", body=body, headers=headers, timeout=timeout)


# ----------------------------------------------------------------------------------------------------------------
# RFC 6455 frames
# ----------------------------------------------------------------------------------------------------------------

def ws_accept(key):
    return base64.b64encode(hashlib.sha1((key + WS_GUID).encode()).digest()).decode()


def new_key():
    return base64.b64encode(os.urandom(16)).decode()


def mask_bytes(payload, key):
    if not payload:
        return b""
    n = len(payload)
    k = (key * (n // 4 + 1))[:n]
    return (int.from_bytes(payload, "big") ^ int.from_bytes(k, "big")).to_bytes(n, "big")


def encode_frame(opcode, payload=b"", fin=True, mask=True, mask_key=None, rsv=0, length=None):
    """One frame. `rsv` is the 3-bit RSV1..3 field; `length` overrides the declared payload length."""
    if isinstance(payload, str):
        payload = payload.encode()
    b0 = (0x80 if fin else 0) | ((rsv & 7) << 4) | (opcode & 0x0F)
    n = len(payload) if length is None else length
    mbit = 0x80 if mask else 0
    if n < 126:
        head = bytes([b0, mbit | n])
    elif n < 65536:
        head = bytes([b0, mbit | 126]) + struct.pack("!H", n)
    else:
        head = bytes([b0, mbit | 127]) + struct.pack("!Q", n)
    if mask:
        if mask_key is None:
            mask_key = os.urandom(4)
        return head + mask_key + mask_bytes(payload, mask_key)
    return head + payload


def close_payload(code=None, reason=b""):
    if code is None:
        return b""
    if isinstance(reason, str):
        reason = reason.encode()
    return struct.pack("!H", code) + reason


class Frame:
    def __init__(self, fin, rsv, opcode, masked, payload):
        self.fin, self.rsv, self.opcode, self.masked, self.payload = fin, rsv, opcode, masked, payload

    @property
    def close_code(self):
        if self.opcode != OP_CLOSE or len(self.payload) < 2:
            return None
        return struct.unpack("!H", self.payload[:2])[0]

    @property
    def close_reason(self):
        return self.payload[2:]

    def text(self):
        return self.payload.decode("utf-8")

    def __repr__(self):
        names = {0: "cont", 1: "text", 2: "binary", 8: "close", 9: "ping", 10: "pong"}
        extra = f" code={self.close_code}" if self.opcode == OP_CLOSE else ""
        p = self.payload if len(self.payload) <= 120 else self.payload[:120] + b"..."
        return (f"<Frame {names.get(self.opcode, self.opcode)} fin={int(self.fin)} rsv={self.rsv} "
                f"masked={int(self.masked)}{extra} payload={p!r}>")


def decode_frame(buf):
    """→ (Frame, bytes consumed) or (None, 0) when `buf` does not hold a whole frame yet."""
    if len(buf) < 2:
        return None, 0
    b0, b1 = buf[0], buf[1]
    masked = bool(b1 & 0x80)
    n = b1 & 0x7F
    pos = 2
    if n == 126:
        if len(buf) < 4:
            return None, 0
        n = struct.unpack("!H", bytes(buf[2:4]))[0]
        pos = 4
    elif n == 127:
        if len(buf) < 10:
            return None, 0
        n = struct.unpack("!Q", bytes(buf[2:10]))[0]
        pos = 10
    key = None
    if masked:
        if len(buf) < pos + 4:
            return None, 0
        key = bytes(buf[pos:pos + 4])
        pos += 4
    if len(buf) < pos + n:
        return None, 0
    payload = bytes(buf[pos:pos + n])
    if masked:
        payload = mask_bytes(payload, key)
    return Frame(bool(b0 & 0x80), (b0 >> 4) & 7, b0 & 0x0F, masked, payload), pos + n


# ----------------------------------------------------------------------------------------------------------------
# Raw socket client
# ----------------------------------------------------------------------------------------------------------------

class Eof(Exception):
    """The server closed (or reset) the TCP connection."""


def build_request(method="GET", path="/ws", version="HTTP/1.1", headers=None):
    lines = [f"{method} {path} {version}"]
    for k, v in headers or []:
        lines.append(f"{k}: {v}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def upgrade_headers(port, key=None, protocols=SUBPROTOCOL, version="13", upgrade="websocket", connection="Upgrade",
                    extra=None):
    """Header list of a client handshake; pass None to leave a header out."""
    h = [("Host", f"{HOST}:{port}")]
    if upgrade is not None:
        h.append(("Upgrade", upgrade))
    if connection is not None:
        h.append(("Connection", connection))
    if key is not None:
        h.append(("Sec-WebSocket-Key", key))
    if version is not None:
        h.append(("Sec-WebSocket-Version", version))
    if protocols is not None:
        h.append(("Sec-WebSocket-Protocol", protocols))
    h += extra or []
    return h


class RawClient:
    """A TCP connection to the server driven byte by byte."""

    def __init__(self, server, rcvbuf=None, timeout=5.0, connect=True):
        self.server = server
        self.port = server.port if hasattr(server, "port") else int(server)
        self.timeout = timeout
        self.buf = bytearray()
        self.eof = False
        self.received = []  # frames seen by recv_frame, for failure messages
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf is not None:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.settimeout(timeout)
        if connect:
            self.sock.connect((HOST, self.port))

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _ctx(self):
        tail = self.server.stderr_tail(15) if hasattr(self.server, "stderr_tail") else ""
        return f"\nframes received so far: {self.received[-10:]}\nserver stderr (tail):\n{tail}"

    # -- bytes ------------------------------------------------------------------------------------------------

    def send(self, data):
        self.sock.sendall(data)

    def _fill(self, deadline):
        """Reads once into the buffer; raises Eof on close/reset, socket.timeout past the deadline."""
        if self.eof:
            raise Eof()
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise socket.timeout()
        self.sock.settimeout(remaining)
        try:
            chunk = self.sock.recv(65536)
        except (ConnectionResetError, BrokenPipeError):
            self.eof = True
            raise Eof()
        if not chunk:
            self.eof = True
            raise Eof()
        self.buf += chunk

    def read_eof(self, timeout=5.0):
        """Waits for the server to close the TCP connection; returns the bytes that arrived before. Fails on
        timeout."""
        deadline = time.monotonic() + timeout
        start = len(self.buf)
        try:
            while True:
                self._fill(deadline)
        except Eof:
            return bytes(self.buf[start:])
        except socket.timeout:
            raise AssertionError(f"the server did not close the TCP connection within {timeout}s "
                                 f"(pending bytes: {bytes(self.buf[:200])!r})" + self._ctx())

    # -- HTTP -------------------------------------------------------------------------------------------------

    def read_http_response(self, timeout=5.0, read_body=True):
        deadline = time.monotonic() + timeout
        try:
            while b"\r\n\r\n" not in self.buf:
                self._fill(deadline)
        except socket.timeout:
            raise AssertionError(f"no complete HTTP response head within {timeout}s; got {bytes(self.buf)!r}"
                                 + self._ctx())
        except Eof:
            raise AssertionError(f"connection closed before a complete HTTP response head; got {bytes(self.buf)!r}"
                                 + self._ctx())
        idx = self.buf.index(b"\r\n\r\n")
        head = bytes(self.buf[:idx]).decode("latin-1")
        del self.buf[:idx + 4]
        lines = head.split("\r\n")
        parts = lines[0].split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/"):
            raise AssertionError(f"malformed status line {lines[0]!r}")
        status = int(parts[1])
        reason = parts[2] if len(parts) > 2 else ""
        header_list = []
        for line in lines[1:]:
            k, _, v = line.partition(":")
            header_list.append((k.strip(), v.strip()))
        resp = HttpResponse(status, reason, header_list, b"")
        resp.status_line = lines[0]
        if read_body and status != 101:
            cl = resp.header("content-length")
            if cl is None:
                raise AssertionError(f"HTTP {status} response without Content-Length: {header_list}")
            n = int(cl)
            try:
                while len(self.buf) < n:
                    self._fill(deadline)
            except (socket.timeout, Eof):
                raise AssertionError(f"HTTP {status} body incomplete: Content-Length {n}, got {bytes(self.buf)!r}")
            resp.body = bytes(self.buf[:n])
            del self.buf[:n]
        return resp

    def request(self, raw, timeout=5.0):
        self.send(raw)
        return self.read_http_response(timeout)

    def handshake(self, path="/ws", key=None, protocols=SUBPROTOCOL, extra=None, timeout=5.0, check=True):
        key = key or new_key()
        resp = self.request(build_request("GET", path, headers=upgrade_headers(self.port, key=key,
                                                                               protocols=protocols, extra=extra)),
                            timeout)
        if check:
            if resp.status != 101:
                raise AssertionError(f"handshake: expected 101, got {resp!r}" + self._ctx())
            if resp.header("sec-websocket-accept") != ws_accept(key):
                raise AssertionError(f"handshake: bad Sec-WebSocket-Accept {resp.header('sec-websocket-accept')!r},"
                                     f" expected {ws_accept(key)!r}")
        return resp

    # -- frames -----------------------------------------------------------------------------------------------

    def send_frame(self, opcode, payload=b"", **kw):
        self.send(encode_frame(opcode, payload, **kw))

    def send_text(self, text, **kw):
        self.send_frame(OP_TEXT, text.encode() if isinstance(text, str) else text, **kw)

    def send_json(self, obj):
        self.send_text(json.dumps(obj))

    def send_close(self, code=None, reason=b"", **kw):
        self.send_frame(OP_CLOSE, close_payload(code, reason), **kw)

    def recv_frame(self, timeout=None, what="a frame"):
        timeout = self.timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        while True:
            frame, used = decode_frame(self.buf)
            if frame is not None:
                del self.buf[:used]
                self.received.append(frame)
                if frame.masked:
                    raise AssertionError(f"server sent a masked frame (RFC 6455 5.1 forbids it): {frame!r}")
                return frame
            try:
                self._fill(deadline)
            except socket.timeout:
                raise AssertionError(f"timed out after {timeout}s waiting for {what}; "
                                     f"partial bytes {bytes(self.buf[:100])!r}" + self._ctx())
            except Eof:
                raise AssertionError(f"TCP connection closed while waiting for {what}; "
                                     f"partial bytes {bytes(self.buf[:100])!r}" + self._ctx())

    def next_frame_or_eof(self, timeout, what="a frame or the TCP close"):
        """Next frame, or None when the server closes/resets the TCP connection first. Fails on timeout."""
        deadline = time.monotonic() + timeout
        while True:
            frame, used = decode_frame(self.buf)
            if frame is not None:
                del self.buf[:used]
                self.received.append(frame)
                if frame.masked:
                    raise AssertionError(f"server sent a masked frame (RFC 6455 5.1 forbids it): {frame!r}")
                return frame
            try:
                self._fill(deadline)
            except Eof:
                return None
            except socket.timeout:
                raise AssertionError(f"timed out after {timeout}s waiting for {what}" + self._ctx()) from None

    def recv_message(self, timeout=None, what="a text message", skip_pings=True):
        """Next text frame's payload (str); ping/pong frames are skipped (not answered)."""
        timeout = self.timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        while True:
            f = self.recv_frame(max(0.0, deadline - time.monotonic()), what)
            if skip_pings and f.opcode in (OP_PING, OP_PONG):
                continue
            if f.opcode != OP_TEXT or not f.fin:
                raise AssertionError(f"expected {what} (one unfragmented text frame), got {f!r}" + self._ctx())
            return f.text()

    def recv_json(self, timeout=None, what="a JSON message"):
        text = self.recv_message(timeout, what)
        try:
            return json.loads(text)
        except ValueError:
            raise AssertionError(f"expected {what} as JSON, got {text!r}")

    def expect_close(self, code, timeout=3.0, reply=True, what=None):
        """Reads until a close frame; asserts its code; answers it and requires the TCP close afterwards."""
        what = what or f"a close frame with code {code}"
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            try:
                f = self.recv_frame(max(0.0, remaining), what)
            except AssertionError as e:
                raise AssertionError(f"expected {what}; {e}")
            if f.opcode == OP_CLOSE:
                break
        if f.close_code != code:
            raise AssertionError(f"expected close code {code}, got {f.close_code} (frame {f!r})" + self._ctx())
        if reply:
            try:
                self.send_close(code)
            except OSError:
                pass
            self.read_eof(3.0)
        return f

    def connect_op(self, timeout=5.0, **fields):
        """Sends {"op":"connect"} and returns the `connected` reply."""
        self.send_json({"op": "connect", "id": 1, **fields})
        reply = self.recv_json(timeout, "the connected reply")
        if reply.get("op") != "connected":
            raise AssertionError(f"expected op connected, got {reply!r}")
        return reply


def open_ws_raw(server, rcvbuf=None, connect_op=False, timeout=5.0):
    c = RawClient(server, rcvbuf=rcvbuf, timeout=timeout)
    c.handshake()
    if connect_op:
        c.connect_op()
    return c


# ----------------------------------------------------------------------------------------------------------------
# asyncio websockets client
# ----------------------------------------------------------------------------------------------------------------

class WSClient:
    """python3-websockets 10.x connection with herald.v1.json helpers."""

    def __init__(self, ws, server):
        self.ws = ws
        self.server = server
        self.log = []  # recent texts received

    @classmethod
    async def open(cls, server, path="/ws", subprotocols=(SUBPROTOCOL,), **kw):
        kw.setdefault("open_timeout", 5)
        kw.setdefault("close_timeout", 3)
        kw.setdefault("ping_interval", None)
        kw.setdefault("max_size", 16 * 1024 * 1024)
        kw.setdefault("max_queue", 4096)
        ws = await websockets.client.connect(server.ws_url(path), subprotocols=list(subprotocols) or None, **kw)
        return cls(ws, server)

    def _ctx(self):
        return (f"\nlast messages received: {self.log[-8:]}\nserver stderr (tail):\n"
                f"{self.server.stderr_tail(15)}")

    async def send_json(self, obj):
        await self.ws.send(json.dumps(obj))

    async def send_text(self, text):
        await self.ws.send(text)

    async def recv_text(self, timeout=5.0, what="a message"):
        try:
            text = await asyncio.wait_for(self.ws.recv(), timeout)
        except asyncio.TimeoutError:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}" + self._ctx()) from None
        except websockets.exceptions.ConnectionClosed:
            raise AssertionError(f"connection closed (code {self.ws.close_code}, reason {self.ws.close_reason!r}) "
                                 f"while waiting for {what}" + self._ctx()) from None
        if not isinstance(text, str):
            raise AssertionError(f"expected a text message while waiting for {what}, got binary {text[:100]!r}")
        self.log.append(text)
        del self.log[:-50]
        return text

    async def recv_json(self, timeout=5.0, what="a message"):
        text = await self.recv_text(timeout, what)
        try:
            return json.loads(text)
        except ValueError:
            raise AssertionError(f"expected JSON while waiting for {what}, got {text!r}") from None

    async def expect(self, timeout=5.0, **fields):
        """Next message must contain `fields` (exact values)."""
        msg = await self.recv_json(timeout, f"a message with {fields}")
        for k, v in fields.items():
            if msg.get(k) != v:
                raise AssertionError(f"expected a message with {fields}, got {msg!r}" + self._ctx())
        return msg

    async def expect_silence(self, duration=0.3):
        try:
            text = await asyncio.wait_for(self.ws.recv(), duration)
        except asyncio.TimeoutError:
            return
        except websockets.exceptions.ConnectionClosed:
            raise AssertionError(f"connection closed (code {self.ws.close_code}) while expecting silence"
                                 + self._ctx()) from None
        raise AssertionError(f"expected no message for {duration}s, got {text!r}" + self._ctx())

    async def expect_closed(self, timeout=5.0):
        """Waits for the connection to close; returns the close code received from the server."""
        try:
            await asyncio.wait_for(self.ws.wait_closed(), timeout)
        except asyncio.TimeoutError:
            raise AssertionError(f"connection still open after {timeout}s" + self._ctx()) from None
        return self.ws.close_code

    async def connect(self, id=1, **fields):
        await self.send_json({"op": "connect", "id": id, **fields})
        self.connected = await self.expect(op="connected", id=id)
        return self.connected

    async def subscribe(self, channel, id=2, since=None):
        cmd = {"op": "subscribe", "id": id, "channel": channel}
        if since is not None:
            cmd["since"] = since
        await self.send_json(cmd)
        return await self.expect(op="subscribed", id=id, channel=channel)

    async def publish(self, channel, data, id=3, key=None):
        cmd = {"op": "publish", "id": id, "channel": channel, "data": data}
        if key is not None:
            cmd["key"] = key
        await self.send_json(cmd)
        return await self.expect(op="published", id=id, channel=channel)

    async def ping(self, id=99, timeout=5.0):
        await self.send_json({"op": "ping", "id": id})
        return await self.expect(timeout, op="pong", id=id)

    async def close(self):
        try:
            await asyncio.wait_for(self.ws.close(), 5)
        except Exception:
            self.ws.transport.abort()


# ----------------------------------------------------------------------------------------------------------------
# Test cases
# ----------------------------------------------------------------------------------------------------------------

class _ServerMixin:
    def start_server(self, *args, **kw):
        server = HeraldServer(*args, **kw)
        self.addCleanup(self._stop_server, server)
        server.start()
        self.servers = getattr(self, "servers", []) + [server]
        return server

    def _stop_server(self, server):
        failed = not getattr(getattr(self, "_outcome", None), "success", True)
        try:
            if server.proc is not None and server.port is not None:
                server.stop()
            else:
                server.kill()  # start() failed and already reported why
        finally:
            if failed:
                print(f"\n--- herald stderr ({' '.join(server.args)}) ---\n{server.stderr_tail(40)}\n---",
                      file=__import__("sys").stderr)
            server.cleanup_files()

    def raw(self, server, **kw):
        c = RawClient(server, **kw)
        self.addCleanup(c.close)
        return c


class HeraldTestCase(_ServerMixin, unittest.TestCase):
    pass


class AsyncHeraldTestCase(_ServerMixin, unittest.IsolatedAsyncioTestCase):
    async def ws(self, server, **kw):
        c = await WSClient.open(server, **kw)
        self.addAsyncCleanup(c.close)
        return c

    async def connected_ws(self, server, **kw):
        c = await self.ws(server, **kw)
        await c.connect()
        return c

    async def to_thread(self, fn, *args, **kw):
        return await asyncio.get_running_loop().run_in_executor(None, lambda: fn(*args, **kw))
