"""Cluster harness: scripts/cluster.sh (redis-server with AOF + three herald nodes with --redis + HAProxy), on
loopback, driven from the tests with the single-node harness' clients (harness.WSClient, http_request, api_publish).

Ports: HAProxy on BASE, nodes on BASE+1..BASE+3, Redis on BASE+9 (BASE is picked free by binding every port). Each
cluster lives in its own temporary directory (pids, logs, AOF). Processes are stopped with `cluster.sh down` plus a
SIGKILL of any straggler by pid, on every exit path: the test's cleanup, atexit, and a watchdog process that runs
`cluster.sh down` when the test process disappears without cleaning up (e.g. killed by a ctest timeout).
"""
import asyncio
import atexit
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest

import websockets.exceptions

from harness import HOST, WSClient, api_publish, herald_binary, http_request, metric_value, parse_metrics

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
CLUSTER_SH = os.path.join(ROOT, "scripts", "cluster.sh")
UP_TIMEOUT = 60.0
DOWN_TIMEOUT = 60.0
PROCESS_NAMES = ("haproxy", "node1", "node2", "node3", "redis")

_WATCHDOG = r"""
import subprocess, sys
try:
    sys.stdin.buffer.read()  # EOF once the test process has exited, however it exited
except BaseException:
    pass
subprocess.run(["bash", sys.argv[1], "down", "--dir", sys.argv[2]], stdin=subprocess.DEVNULL,
               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=float(sys.argv[3]))
"""


class DownWatchdog:
    """A process that runs `bash SCRIPT down --dir DIR` once this test process is gone, however it went (its stdin
    reaches EOF): the last line of defence for the background processes a script such as cluster.sh started."""

    def __init__(self, script, directory, timeout):
        self._timeout = timeout
        self._proc = subprocess.Popen([sys.executable, "-c", _WATCHDOG, script, directory, str(timeout)],
                                      stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL, start_new_session=True)

    def fire(self):
        """Runs the `down` now and waits for it (the normal teardown path)."""
        try:
            self._proc.stdin.close()
            self._proc.wait(timeout=self._timeout)
        except (OSError, subprocess.TimeoutExpired):
            pass


# ----------------------------------------------------------------------------------------------------------------
# Small process helpers
# ----------------------------------------------------------------------------------------------------------------

def pid_alive(pid):
    """True while `pid` runs (a zombie counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
        return state not in ("Z", "X")
    except (OSError, IndexError):
        return False


def require_tools():
    missing = [t for t in ("redis-server", "redis-cli", "haproxy", "curl", "bash") if shutil.which(t) is None]
    if missing:
        raise AssertionError(f"the cluster tests need {', '.join(missing)} on PATH "
                             f"(apt-get install redis-server redis-tools haproxy curl); CI installs them")


def free_base_port(span=10, attempts=200):
    """A BASE such that BASE..BASE+span-1 are all free on 127.0.0.1 (below the Linux ephemeral range)."""
    rng = random.Random(os.getpid() ^ time.monotonic_ns())
    for _ in range(attempts):
        base = rng.randrange(20000, 32000 - span)
        socks = []
        try:
            for p in range(base, base + span):
                s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                socks.append(s)
                s.bind((HOST, p))
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise AssertionError(f"no free run of {span} loopback ports found in {attempts} attempts")


# ----------------------------------------------------------------------------------------------------------------
# Cluster
# ----------------------------------------------------------------------------------------------------------------

class Endpoint:
    """A node or the HAProxy frontend; quacks like harness.HeraldServer for WSClient and the HTTP helpers."""

    def __init__(self, cluster, name, port):
        self.cluster, self.name, self.port = cluster, name, port

    def ws_url(self, path="/ws"):
        return f"ws://{HOST}:{self.port}{path}"

    def log_path(self):
        return os.path.join(self.cluster.dir, f"{self.name}.log")

    def stderr(self):
        try:
            with open(self.log_path(), "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def stderr_tail(self, lines=30):
        return "\n".join(self.stderr().splitlines()[-lines:]) or "(empty)"

    def pid(self):
        return self.cluster.pid(self.name)

    def get(self, path, timeout=5.0):
        return http_request(self.port, "GET", path, timeout=timeout)

    def readyz(self, timeout=2.0):
        """→ (status, body text); (None, error) when the request fails."""
        try:
            r = self.get("/readyz", timeout=timeout)
            return r.status, r.text()
        except OSError as e:
            return None, repr(e)

    def publish(self, channel, data, key=None, timeout=5.0):
        return api_publish(self.port, channel, data, key=key, timeout=timeout)

    def metrics(self):
        r = self.get("/metrics")
        if r.status != 200:
            raise AssertionError(f"GET /metrics on {self.name}: expected 200, got {r.status} {r.body!r}")
        return parse_metrics(r.text())

    def metric(self, name, **labels):
        return metric_value(self.metrics(), name, **labels)

    def __repr__(self):
        return f"<{self.name} 127.0.0.1:{self.port}>"


_live_clusters = set()


@atexit.register
def _down_all():
    for c in list(_live_clusters):
        c.down()


class Cluster:
    def __init__(self, *herald_flags):
        require_tools()
        self.binary = herald_binary()
        self.flags = [str(f) for f in herald_flags]
        self.base = None
        self.dir = None
        self.pids = {}  # name -> every pid ever seen for it (stragglers are killed by these)
        self._redis_proc = None
        self._watchdog = None

    # -- ports and endpoints ------------------------------------------------------------------------------------

    @property
    def redis_port(self):
        return self.base + 9

    @property
    def lb(self):
        return Endpoint(self, "haproxy", self.base)

    def node(self, i):
        return Endpoint(self, f"node{i}", self.base + i)

    @property
    def nodes(self):
        return [self.node(i) for i in (1, 2, 3)]

    def pid(self, name):
        try:
            with open(os.path.join(self.dir, f"{name}.pid")) as f:
                return int(f.read().strip())
        except (OSError, ValueError):
            return None

    def _remember_pids(self):
        for name in PROCESS_NAMES:
            p = self.pid(name)
            if p:
                self.pids.setdefault(name, set()).add(p)

    # -- up / down ---------------------------------------------------------------------------------------------

    def up(self):
        help_text = subprocess.run([self.binary, "--help"], stdin=subprocess.DEVNULL, capture_output=True,
                                   timeout=10).stdout.decode("utf-8", "replace")
        if "--redis" not in help_text:
            raise AssertionError(f"{self.binary} --help does not mention --redis: this build has no cluster mode")
        self.base = free_base_port()
        self.dir = tempfile.mkdtemp(prefix="herald-cluster-it-")
        _live_clusters.add(self)
        self._watchdog = DownWatchdog(CLUSTER_SH, self.dir, DOWN_TIMEOUT + 30)
        out_path = os.path.join(self.dir, "cluster-up.out")
        cmd = ["bash", CLUSTER_SH, "up", "--base-port", str(self.base), "--dir", self.dir, "--binary", self.binary,
               "--", *self.flags]
        # Output to a file, not a pipe: the background processes inherit cluster.sh's stdout.
        with open(out_path, "wb") as out:
            try:
                rc = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                    timeout=UP_TIMEOUT).returncode
            except subprocess.TimeoutExpired:
                rc = "timeout"
        self._remember_pids()
        if rc != 0:
            with open(out_path, "rb") as f:
                text = f.read().decode("utf-8", "replace")
            report = self.log_tails(20)
            self.down()
            hint = ""
            try:
                with open(os.path.join(self.dir, "haproxy.log"), "rb") as f:
                    if b"Cannot raise FD limit" in f.read():
                        import resource
                        hint = (f"HAProxy refused to start: the global `maxconn` of deploy/haproxy.cfg needs about "
                                f"2 file descriptors per connection, above this machine's hard limit "
                                f"(RLIMIT_NOFILE {resource.getrlimit(resource.RLIMIT_NOFILE)}).\n")
            except OSError:
                pass
            raise AssertionError(f"{hint}`{' '.join(cmd)}` failed ({rc}):\n{text}\n{report}")
        return self

    def down(self):
        if self.dir is None or self not in _live_clusters:
            return
        _live_clusters.discard(self)
        self._remember_pids()
        try:
            subprocess.run(["bash", CLUSTER_SH, "down", "--dir", self.dir], stdin=subprocess.DEVNULL,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=DOWN_TIMEOUT)
        except subprocess.TimeoutExpired:
            pass
        for pids in self.pids.values():
            for p in pids:
                if pid_alive(p):
                    try:
                        os.kill(p, signal.SIGKILL)
                    except OSError:
                        pass
        if self._redis_proc is not None:
            try:
                self._redis_proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
        if self._watchdog is not None:
            self._watchdog.fire()

    def remove_files(self):
        if self.dir and self not in _live_clusters:
            shutil.rmtree(self.dir, ignore_errors=True)

    def log_tails(self, lines=25, names=("node1", "node2", "node3", "redis", "haproxy")):
        parts = []
        for name in names:
            try:
                with open(os.path.join(self.dir, f"{name}.log"), "rb") as f:
                    text = f.read().decode("utf-8", "replace")
            except OSError:
                text = "(no log)"
            tail = "\n".join(text.splitlines()[-lines:]) or "(empty)"
            parts.append(f"--- {name}.log (tail) ---\n{tail}")
        return "\n".join(parts)

    # -- fault injection ---------------------------------------------------------------------------------------

    def kill_node(self, i, sig=signal.SIGKILL):
        pid = self.pid(f"node{i}")
        if not pid or not pid_alive(pid):
            raise AssertionError(f"node{i} (pid {pid}) is not running")
        os.kill(pid, sig)
        return pid

    def redis_cli(self, *args, timeout=5.0):
        r = subprocess.run(["redis-cli", "-h", HOST, "-p", str(self.redis_port), *[str(a) for a in args]],
                           stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout)
        out = r.stdout.decode("utf-8", "replace").strip()
        if r.returncode != 0:
            raise AssertionError(f"redis-cli {' '.join(map(str, args))} failed ({r.returncode}): "
                                 f"{out} {r.stderr.decode('utf-8', 'replace')}")
        return out

    def stop_redis(self, timeout=15.0):
        """SIGTERM redis-server (it rewrites nothing and fsyncs the AOF on a clean shutdown) and wait for its exit."""
        pid = self.pid("redis")
        if not pid or not pid_alive(pid):
            raise AssertionError(f"redis-server (pid {pid}) is not running")
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while pid_alive(pid):
            if self._redis_proc is not None and self._redis_proc.pid == pid:
                self._redis_proc.poll()
            if time.monotonic() > deadline:
                raise AssertionError(f"redis-server (pid {pid}) still running {timeout}s after SIGTERM\n"
                                     + self.log_tails(20, ("redis",)))
            time.sleep(0.05)

    def start_redis(self, timeout=10.0):
        """Starts redis-server exactly as scripts/cluster.sh does (same port, --dir and AOF), waits for PONG."""
        cmd = ["redis-server", "--port", str(self.redis_port), "--bind", "127.0.0.1", "--dir", self.dir,
               "--appendonly", "yes", "--appendfsync", "always", "--save", "", "--daemonize", "no",
               "--logfile", os.path.join(self.dir, "redis.log")]
        self._redis_proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                            stderr=subprocess.DEVNULL)
        with open(os.path.join(self.dir, "redis.pid"), "w") as f:
            f.write(f"{self._redis_proc.pid}\n")
        self._remember_pids()
        deadline = time.monotonic() + timeout
        while True:
            r = subprocess.run(["redis-cli", "-h", HOST, "-p", str(self.redis_port), "ping"],
                               stdin=subprocess.DEVNULL, capture_output=True, timeout=5)
            if r.stdout.strip() == b"PONG":
                return self._redis_proc.pid
            if self._redis_proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"restarted redis-server does not answer PING ({' '.join(cmd)})\n"
                                     + self.log_tails(20, ("redis",)))
            time.sleep(0.05)


# ----------------------------------------------------------------------------------------------------------------
# Stream checks
# ----------------------------------------------------------------------------------------------------------------

def _brief(m):
    if m is None:
        return "(nothing)"
    return json.dumps(m, separators=(",", ":"))[:200]


def compare_events(label, got, expected, keys=("op", "channel", "serial", "data", "epoch", "reason")):
    """Message-by-message comparison; → None when equal, else a report of the first difference.

    `got` and `expected` are lists of dicts; only `keys` present in the expected item are compared."""
    for i in range(max(len(got), len(expected))):
        g = got[i] if i < len(got) else None
        e = expected[i] if i < len(expected) else None
        same = g is not None and e is not None and all(g.get(k) == e[k] for k in keys if k in e)
        if not same:
            lo = max(0, i - 3)
            ctx_got = ", ".join(_brief(x) for x in got[lo:i + 4])
            serials = [x.get("serial") for x in got if x.get("op") == "message"]
            dups = sorted({s for s in serials if serials.count(s) > 1})[:10]
            return (f"{label}: item #{i + 1} differs — expected {_brief(e)}, got {_brief(g)}\n"
                    f"  received {len(got)} items, expected {len(expected)}; duplicate serials: {dups or 'none'}\n"
                    f"  received around #{lo + 1}: {ctx_got}")
    return None


def expected_messages(channel, serial_to_data, first, last):
    return [{"op": "message", "channel": channel, "serial": s, "data": serial_to_data[s]}
            for s in range(first, last + 1)]


class Recorder:
    """Reads a WSClient in the background and keeps every message/discontinuity of `channel` (parsed and raw)."""

    def __init__(self, client, channel, label):
        self.client, self.channel, self.label = client, channel, label
        self.events = []
        self.raw = []
        self.other = []
        self.closed = None
        self._changed = asyncio.Event()
        self.task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self):
        try:
            while True:
                text = await self.client.ws.recv()
                try:
                    m = json.loads(text)
                except ValueError:
                    self.other.append(text)
                    continue
                if m.get("channel") == self.channel and m.get("op") in ("message", "discontinuity"):
                    self.events.append(m)
                    self.raw.append(text)
                else:
                    self.other.append(m)
                self._changed.set()
        except websockets.exceptions.ConnectionClosed as e:
            self.closed = e
            self._changed.set()

    def messages(self):
        return [e for e in self.events if e.get("op") == "message"]

    def last_serial(self):
        return self.events[-1]["serial"] if self.events else None

    async def wait_until(self, predicate, timeout, what):
        deadline = asyncio.get_running_loop().time() + timeout
        while not predicate(self):
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0 or (self.closed is not None and not predicate(self)):
                state = "connection closed: " + repr(self.closed) if self.closed else f"timed out after {timeout}s"
                tail = ", ".join(_brief(e) for e in self.events[-5:])
                raise AssertionError(f"{self.label}: {state} waiting for {what}; received {len(self.events)} "
                                     f"items, last: {tail or '(none)'}; other: {self.other[-5:]}")
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), min(remaining, 0.5))
            except asyncio.TimeoutError:
                pass

    async def wait_serial(self, serial, timeout=15.0):
        """Until the last item received is a message with serial >= `serial`."""
        await self.wait_until(lambda r: bool(r.events) and r.events[-1].get("op") == "message"
                              and r.events[-1]["serial"] >= serial, timeout, f"serial {serial}")

    async def stop(self):
        self.task.cancel()
        try:
            await self.task
        except (asyncio.CancelledError, Exception):
            pass


# ----------------------------------------------------------------------------------------------------------------
# Test case base
# ----------------------------------------------------------------------------------------------------------------

class ClusterTestCase(unittest.IsolatedAsyncioTestCase):
    """A cluster per test (`await self.start_cluster(flags…)`), or one per class when CLUSTER_FLAGS is set (then
    `self.cluster` is ready in every test). Clients are closed before the cluster goes down; the logs of a cluster
    whose test failed are printed and kept."""

    CLUSTER_FLAGS = None
    _shared = None
    _shared_failed = False

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        if cls.CLUSTER_FLAGS is not None:
            cls._shared = Cluster(*cls.CLUSTER_FLAGS)
            cls.addClassCleanup(cls._down_shared)
            cls._shared.up()

    @classmethod
    def _down_shared(cls):
        cls._shared.down()
        if cls._shared_failed or os.environ.get("HERALD_KEEP_CLUSTER"):
            print(f"\n(cluster files kept in {cls._shared.dir})", file=sys.stderr)
        else:
            cls._shared.remove_files()

    def setUp(self):
        if self._shared is not None:
            self.cluster = self._shared
            self.addCleanup(self._report_shared)

    def _failed(self):
        # Inside a cleanup, _outcome.success is reset for that cleanup; the result already lists the failure.
        result = getattr(getattr(self, "_outcome", None), "result", None)
        if result is None:
            return False
        return any(test is self for test, _ in list(result.errors) + list(result.failures))

    def _report_shared(self):
        if self._failed():
            type(self)._shared_failed = True
            print(f"\n--- cluster logs after {self.id()} ---\n{self.cluster.log_tails(30)}\n---", file=sys.stderr)

    async def start_cluster(self, *herald_flags):
        cluster = Cluster(*herald_flags)
        self.addAsyncCleanup(self._down, cluster)
        await self.in_thread(cluster.up)
        self.cluster = cluster
        return cluster

    async def _down(self, cluster):
        await self.in_thread(cluster.down)
        if self._failed():
            print(f"\n--- cluster logs ({cluster.dir}, kept) ---\n{cluster.log_tails(40)}\n---", file=sys.stderr)
        elif not os.environ.get("HERALD_KEEP_CLUSTER"):
            cluster.remove_files()

    async def open(self, endpoint, **kw):
        c = await WSClient.open(endpoint, **kw)
        self.addAsyncCleanup(c.close)
        return c

    async def connected(self, endpoint, **fields):
        c = await self.open(endpoint)
        await c.connect(**fields)
        return c

    async def subscriber(self, endpoint, channel, label=None):
        """Connected + subscribed client with a Recorder; → (client, subscribed reply, recorder)."""
        c = await self.connected(endpoint)
        sub = await c.subscribe(channel)
        rec = Recorder(c, channel, label or f"subscriber via {endpoint.name} (connected.node="
                                              f"{c.connected.get('node')})")
        self.addAsyncCleanup(rec.stop)
        return c, sub, rec

    async def in_thread(self, fn, *args, **kw):
        return await asyncio.get_running_loop().run_in_executor(None, lambda: fn(*args, **kw))

    def assertEvents(self, label, got, expected, **kw):
        problem = compare_events(label, got, expected, **kw)
        if problem:
            self.fail(problem)
