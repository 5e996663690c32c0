"""Every PromQL expression of deploy/grafana/herald.json and deploy/prometheus/alerts.yml, evaluated by a real
Prometheus (Debian's, started by scripts/prometheus.sh with a config derived from deploy/prometheus/prometheus.yml)
that scrapes the 3-node cluster of the cluster tests every second under a steady load with resumes, a node restart
and a slow consumer. Each expression must parse; each dashboard query must return at least one series (an empty
answer names a metric or label that does not exist); every alert rule must be loaded and healthy."""
import asyncio
import atexit
import concurrent.futures
import http.client
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.parse

import websockets.exceptions
import yaml

from cluster_harness import ROOT, ClusterTestCase, DownWatchdog, free_base_port, pid_alive
from harness import HOST, RawClient, WSClient, _die_with_parent, api_publish, http_request

PROMETHEUS_SH = os.path.join(ROOT, "scripts", "prometheus.sh")
DASHBOARD = os.path.join(ROOT, "deploy", "grafana", "herald.json")
DATASOURCES = os.path.join(ROOT, "deploy", "grafana", "provisioning", "datasources", "prometheus.yml")
ALERTS = os.path.join(ROOT, "deploy", "prometheus", "alerts.yml")
PROMETHEUS_CONFIG = os.path.join(ROOT, "deploy", "prometheus", "prometheus.yml")

API_KEY = "live-test-api-key"
FLAGS = ("--heartbeat", "5", "--session-sync-interval", "0.2", "--drain-timeout", "2", "--history-size", "5000",
         "--outbound-limit", "65536", "--client-rate", "0", "--api-key", API_KEY)
SCRAPE = "1s"
# Grafana's $__rate_interval is max(4 × scrape interval, $__interval + scrape interval); a wider window keeps the
# one-off events of the load (resumes, refusals) inside it while the expressions are evaluated.
SUBSTITUTIONS = {"__rate_interval": "30s", "__interval": "5s", "__range": "2m", "__range_s": "120",
                 "__range_ms": "120000", "__interval_ms": "5000", "node": ".*"}
NODE_VARIABLE_QUERY = "label_values(herald_build_info, instance)"


# ----------------------------------------------------------------------------------------------------------------
# Expressions of the dashboard and the alerts
# ----------------------------------------------------------------------------------------------------------------

def substitute(expr):
    """Grafana variables → values Prometheus accepts; → (expr, unknown variable names)."""
    unknown = []

    def repl(m):
        name = m.group(1) or m.group(2) or m.group(3)
        if name in SUBSTITUTIONS:
            return SUBSTITUTIONS[name]
        unknown.append(name)
        return m.group(0)

    out = re.sub(r"\$\{(\w+)(?::\w+)?\}|\[\[(\w+)\]\]|\$(\w+)", repl, expr)
    return out, unknown


def dashboard_panels(panels):
    """Every panel with the title of its row; → [(row title, panel)]. An expanded row is followed by its panels, a
    collapsed one holds them in its own `panels`."""
    out, row = [], None
    for p in panels:
        if p.get("type") == "row":
            row = p.get("title")
            out.extend((row, nested) for nested in p.get("panels", []))
        else:
            out.append((row, p))
    return out


def dashboard_queries(dashboard):
    """→ ([(where, expr)], [(variable name, query)]) for every target and every query variable."""
    exprs = []
    for row, panel in dashboard_panels(dashboard.get("panels", [])):
        for t in panel.get("targets", []):
            if t.get("expr"):
                exprs.append((f"{row or '(no row)'} / {panel.get('title')!r} target {t.get('refId')}", t["expr"]))
    for a in dashboard.get("annotations", {}).get("list", []):
        if a.get("expr"):
            exprs.append((f"annotation {a.get('name')!r}", a["expr"]))
    variables = []
    for v in dashboard.get("templating", {}).get("list", []):
        if v.get("type") == "query":
            q = v.get("query")
            if isinstance(q, dict):
                q = q.get("query", "")
            variables.append((v.get("name"), q or v.get("definition", "")))
    return exprs, variables


def alert_rules():
    with open(ALERTS) as f:
        groups = yaml.safe_load(f)["groups"]
    return [(g["name"], r) for g in groups for r in g["rules"]]


# ----------------------------------------------------------------------------------------------------------------
# Prometheus
# ----------------------------------------------------------------------------------------------------------------

_live_prometheus = set()


@atexit.register
def _down_all():
    for p in list(_live_prometheus):
        p.down()


class Prometheus:
    """Debian's prometheus started by scripts/prometheus.sh against a cluster_harness.Cluster. Stopped by down() on
    every exit path: the test's cleanup, atexit, and a watchdog process that runs `prometheus.sh down` when the test
    process disappears without cleaning up."""

    def __init__(self, cluster):
        self.cluster = cluster
        self.port = None
        self.dir = None
        self.pid = None
        self._watchdog = None

    def up(self):
        if not os.access("/usr/bin/prometheus", os.X_OK):
            raise AssertionError("this test needs Debian's prometheus (apt-get install prometheus); "
                                 "scripts/install-deps.sh installs it")
        self.port = free_base_port(span=1)
        self.dir = tempfile.mkdtemp(prefix="herald-prometheus-it-")
        _live_prometheus.add(self)
        self._watchdog = DownWatchdog(PROMETHEUS_SH, self.dir, 60)
        cmd = ["bash", PROMETHEUS_SH, "up", "--base-port", str(self.cluster.base), "--dir", self.dir,
               "--port", str(self.port), "--interval", SCRAPE]
        out_path = os.path.join(self.dir, "prometheus-up.out")
        with open(out_path, "wb") as out:  # a file, not a pipe: prometheus inherits the script's stdout
            try:
                rc = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                    timeout=60).returncode
            except subprocess.TimeoutExpired:
                rc = "timeout"
        try:
            with open(os.path.join(self.dir, "prometheus.pid")) as f:
                self.pid = int(f.read().strip())
        except (OSError, ValueError):
            pass
        if rc != 0:
            with open(out_path, "rb") as f:
                text = f.read().decode("utf-8", "replace")
            self.down()
            raise AssertionError(f"`{' '.join(cmd)}` failed ({rc}):\n{text}\n{self.log_tail()}")
        return self

    def down(self):
        if self not in _live_prometheus:
            return
        _live_prometheus.discard(self)
        try:
            subprocess.run(["bash", PROMETHEUS_SH, "down", "--dir", self.dir], stdin=subprocess.DEVNULL,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=30)
        except subprocess.TimeoutExpired:
            pass
        if self.pid and pid_alive(self.pid):
            try:
                os.kill(self.pid, signal.SIGKILL)
            except OSError:
                pass
        if self._watchdog is not None:
            self._watchdog.fire()

    def log_tail(self, lines=20):
        try:
            with open(os.path.join(self.dir, "prometheus.log"), "rb") as f:
                text = f.read().decode("utf-8", "replace")
        except OSError:
            text = "(no log)"
        return "--- prometheus.log (tail) ---\n" + ("\n".join(text.splitlines()[-lines:]) or "(empty)")

    def api(self, path, **params):
        """GET /api/v1/<path>; → the decoded JSON body (also for 4xx answers, which carry the error)."""
        query = urllib.parse.urlencode(params, doseq=True)
        conn = http.client.HTTPConnection(HOST, self.port, timeout=10)
        try:
            conn.request("GET", f"/api/v1/{path}" + (f"?{query}" if query else ""))
            r = conn.getresponse()
            body = r.read().decode("utf-8", "replace")
        finally:
            conn.close()
        try:
            return json.loads(body)
        except ValueError:
            return {"status": "error", "error": f"HTTP {r.status}: {body[:300]}"}

    def query(self, expr):
        return self.api("query", query=expr)

    def vector(self, expr):
        """→ {instance or '': float} of an instant query that must succeed."""
        r = self.query(expr)
        if r.get("status") != "success":
            raise AssertionError(f"query {expr!r} failed: {r}")
        return {s["metric"].get("instance", ""): float(s["value"][1]) for s in r["data"]["result"]}


# ----------------------------------------------------------------------------------------------------------------
# Load
# ----------------------------------------------------------------------------------------------------------------

class Subscriber:
    """One client on one channel that keeps reading; when its connection closes (a node drains) or when told to
    churn, it comes back through HAProxy and resumes — with its session, or with `subscribe` + `since`."""

    def __init__(self, endpoint, lb, channel, label):
        self.endpoint, self.lb, self.channel, self.label = endpoint, lb, channel, label
        self.client = None
        self.session = None
        self.position = None  # {"serial", "epoch"}
        self.messages = 0
        self.closes = []  # close codes seen
        self.resumes = []  # (how, reply)
        self.failures = []

    async def start(self):
        self.client = await WSClient.open(self.endpoint)
        conn = await self.client.connect()
        self.session = conn["session"]
        sub = await self.client.subscribe(self.channel)
        self.position = {"serial": sub["serial"], "epoch": sub["epoch"]}

    async def run(self, stop, churn_every=None):
        loop = asyncio.get_running_loop()
        next_churn = loop.time() + churn_every if churn_every else None
        use_session = True
        while not stop.is_set():
            if next_churn is not None and loop.time() >= next_churn:
                next_churn = loop.time() + churn_every
                await self.client.close()
                await self.resume(use_session)
                use_session = not use_session
                continue
            try:
                text = await asyncio.wait_for(self.client.ws.recv(), 0.5)
            except asyncio.TimeoutError:
                continue
            except websockets.exceptions.ConnectionClosed:
                self.closes.append(self.client.ws.close_code)
                await self.resume(True)
                continue
            m = json.loads(text)
            if m.get("channel") != self.channel:
                continue
            if m.get("op") in ("message", "discontinuity", "subscribed"):
                self.position = {"serial": m["serial"], "epoch": m["epoch"] if "epoch" in m else
                                 self.position["epoch"]}
                self.messages += m.get("op") == "message"

    async def resume(self, with_session):
        # A reconnect can land on the node that is being restarted just as it drains; like a real client, try
        # again (through HAProxy, which then picks another node) when the handshake is cut with 1001.
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 15
        while True:
            try:
                c = await WSClient.open(self.lb, open_timeout=3)
                await self.handshake(c, with_session)
                return
            except (OSError, asyncio.TimeoutError, websockets.exceptions.WebSocketException, AssertionError) as e:
                drained = isinstance(e, AssertionError) and "code 1001" in str(e)
                if isinstance(e, AssertionError) and not drained:
                    raise
                if loop.time() > deadline:
                    raise AssertionError(f"{self.label}: no reconnect through HAProxy within 15 s: {e!r}") from None
                await asyncio.sleep(0.1)

    async def handshake(self, c, with_session):
        self.client = c
        if with_session:
            conn = await c.connect(session=self.session, positions={self.channel: self.position})
            self.resumes.append(("session", conn.get("resumed")))
            if conn.get("resumed") is not True:
                self.failures.append(f"{self.label}: session resume from {self.position} refused: {conn}")
                self.session = conn["session"]
                sub = await c.subscribe(self.channel)
                self.position = {"serial": sub["serial"], "epoch": sub["epoch"]}
        else:
            conn = await c.connect()
            self.session = conn["session"]
            sub = await c.subscribe(self.channel, since=self.position)
            self.resumes.append(("since", sub.get("resumed")))
            self.position = {"serial": sub["serial"], "epoch": sub["epoch"]}

    async def close(self):
        if self.client is not None:
            await self.client.close()


class PrometheusLiveTest(ClusterTestCase):
    async def test_every_dashboard_and_alert_expression_on_a_live_cluster(self):
        with open(DASHBOARD) as f:
            dashboard = json.load(f)
        exprs, variables = dashboard_queries(dashboard)
        rules = alert_rules()
        self.assertGreater(len(exprs), 20, msg=f"{DASHBOARD}: expected the dashboard's queries, found {exprs}")

        cluster = await self.start_cluster(*FLAGS)
        prom = Prometheus(cluster)
        self.addAsyncCleanup(self.in_thread, prom.down)  # runs before the cluster goes down
        await self.in_thread(prom.up)
        self.addCleanup(self._print_on_failure, prom)
        lb = cluster.lb
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        stop_publishing = threading.Event()

        # -- steady load: API publishes through HAProxy and on every node, WebSocket publishes, subscribers -------
        published = {"ok": 0, "failed": 0, "errors": []}
        publish_targets = [lb, *cluster.nodes]

        def publish_steadily():
            i = 0
            while not stop_publishing.is_set():
                target = publish_targets[i % len(publish_targets)]
                channel = ("live:a", "live:b", "live:c")[i % 3]
                try:
                    r = api_publish(target.port, channel, {"i": i}, api_key=API_KEY, timeout=2)
                    if r.status == 200:
                        published["ok"] += 1
                    else:
                        published["failed"] += 1
                        published["errors"].append(f"{target.name}: {r.status} {r.body[:80]!r}")
                except OSError as e:  # the node being restarted
                    published["failed"] += 1
                    published["errors"].append(f"{target.name}: {e!r}")
                i += 1
                stop_publishing.wait(0.02)

        publisher = loop.run_in_executor(None, publish_steadily)
        self.addAsyncCleanup(self._stop_publisher, stop_publishing, publisher)

        ws_published = [0]

        async def ws_publisher():
            c = None
            n = 0
            while not stop.is_set():
                try:
                    if c is None:
                        c = await WSClient.open(lb, open_timeout=3)
                        await c.connect()
                    n += 1
                    await c.publish("live:c", {"ws": n}, id=100 + n)
                    ws_published[0] += 1
                except (AssertionError, OSError, asyncio.TimeoutError, websockets.exceptions.WebSocketException):
                    if c is not None:
                        await c.close()
                    c = None  # its node is draining: reconnect through HAProxy
                await asyncio.sleep(0.1)
            if c is not None:
                await c.close()

        subscribers = []
        placements = [(lb, "live:a"), (lb, "live:b"), (lb, "live:c"), (cluster.node(1), "live:a"),
                      (cluster.node(2), "live:b"), (cluster.node(3), "live:c"), (cluster.node(3), "live:a")]
        for k, (endpoint, channel) in enumerate(placements):
            s = Subscriber(endpoint, lb, channel, f"subscriber {k} ({endpoint.name}, {channel})")
            await s.start()
            self.addAsyncCleanup(s.close)
            subscribers.append(s)
        churner = Subscriber(lb, lb, "live:b", "churning subscriber")
        await churner.start()
        self.addAsyncCleanup(churner.close)
        tasks = [asyncio.create_task(s.run(stop)) for s in subscribers]
        tasks.append(asyncio.create_task(churner.run(stop, churn_every=1.5)))
        tasks.append(asyncio.create_task(ws_publisher()))

        async def stop_tasks():
            stop.set()
            await asyncio.gather(*tasks, return_exceptions=True)

        self.addAsyncCleanup(stop_tasks)

        def check_tasks():
            for t in tasks:
                if t.done() and not t.cancelled() and t.exception() is not None:
                    raise t.exception()

        # -- a slow consumer on node2: subscribes, never reads, is closed with 4008 ------------------------------
        node1, node2, node3 = cluster.nodes
        slow = RawClient(node2, rcvbuf=4096)
        self.addCleanup(slow.close)
        await self.in_thread(slow.handshake)
        await self.in_thread(slow.connect_op)
        await self.in_thread(slow.send_json, {"op": "subscribe", "id": 2, "channel": "live:bulk"})
        reply = await self.in_thread(slow.recv_json, 5.0, "subscribed (slow consumer)")
        self.assertEqual(reply.get("op"), "subscribed", msg=f"slow consumer's subscribe: {reply}")
        pad = "x" * 1000
        pool = concurrent.futures.ThreadPoolExecutor(4)
        self.addCleanup(pool.shutdown, wait=True)
        bulk, slow_closes = 0, 0
        while bulk < 12_000 and slow_closes < 1:
            results = await asyncio.gather(*[loop.run_in_executor(pool, api_publish, node1.port, "live:bulk",
                                                                  {"i": i, "pad": pad}, None, API_KEY)
                                             for i in range(bulk, bulk + 250)])
            bad = [r for r in results if r.status != 200]
            self.assertEqual(bad, [], msg="bulk publishes for the slow consumer failed")
            bulk += 250
            slow_closes = await self.in_thread(node2.metric, "herald_slow_consumer_closes_total")
        self.assertGreaterEqual(slow_closes, 1, msg=f"the slow consumer on node2 was not closed after {bulk} "
                                                    f"messages of 1 KB with --outbound-limit 65536")
        check_tasks()

        # -- a node restart: node3 drains on SIGTERM (its clients resume elsewhere), then starts again ------------
        old_pid = cluster.kill_node(3, signal.SIGTERM)
        deadline = loop.time() + 15
        while pid_alive(old_pid):
            self.assertLess(loop.time(), deadline, msg=f"node3 (pid {old_pid}) still running 15 s after SIGTERM")
            await asyncio.sleep(0.05)
        target3 = f"{HOST}:{node3.port}"
        await self.wait_for(prom, lambda: prom.vector(f'up{{job="herald", instance="{target3}"}}').get(target3) == 0,
                            20, f"Prometheus to see {target3} down")
        restarted = await self.in_thread(self.restart_node, cluster, 3)
        self.addAsyncCleanup(self.in_thread, self.reap, restarted)
        deadline = loop.time() + 20
        while (await self.in_thread(node3.readyz))[0] != 200:
            self.assertIsNone(restarted.poll(), msg=f"restarted node3 exited ({restarted.returncode})\n"
                                                    f"{node3.stderr_tail()}")
            self.assertLess(loop.time(), deadline, msg=f"restarted node3 not ready in 20 s\n{node3.stderr_tail()}")
            await asyncio.sleep(0.1)
        check_tasks()

        # -- one-off events on every node after the restart: refusals, errors, normal closes ---------------------
        for node in cluster.nodes:
            r = await self.in_thread(node.get, "/no-such-path")
            self.assertEqual(r.status, 404, msg=f"GET /no-such-path on {node.name}: {r}")
            r = await self.in_thread(node.get, "/ws")
            self.assertEqual(r.status, 400, msg=f"GET /ws without an upgrade on {node.name}: {r}")
            r = await self.in_thread(api_publish, node.port, "live:a", {"bad": "key"}, None, "wrong-key")
            self.assertEqual(r.status, 401, msg=f"POST /api/publish with a wrong key on {node.name}: {r}")
            c = await WSClient.open(node)
            await c.connect()
            await c.subscribe("live:errors")
            await c.send_json({"op": "subscribe", "id": 3, "channel": "live:errors"})
            err = await c.expect(op="error", id=3)
            self.assertEqual(err.get("code"), "already_subscribed", msg=f"second subscribe on {node.name}: {err}")
            await c.close()

        # -- Prometheus has scraped all three nodes several times since the restart ------------------------------
        targets = [f"{HOST}:{n.port}" for n in cluster.nodes]

        def scraped_enough():
            ups = prom.vector('sum_over_time(up{job="herald"}[8s])')
            now = prom.vector('up{job="herald"}')
            return all(ups.get(t, 0) >= 5 and now.get(t) == 1 for t in targets)

        await self.wait_for(prom, scraped_enough, 30, f"5 successful scrapes of each of {targets} within 8 s")
        r = await self.in_thread(prom.api, "targets")
        active = [(t["labels"].get("instance"), t["labels"].get("job"), t["health"])
                  for t in r["data"]["activeTargets"]]
        self.assertEqual(sorted(active), sorted((t, "herald", "up") for t in targets),
                         msg="Prometheus' active targets (instance, job, health)")
        check_tasks()

        # -- every dashboard expression: parses and returns at least one series ----------------------------------
        failures, report = [], []
        for where, raw in exprs:
            expr, unknown = substitute(raw)
            if unknown:
                failures.append(f"{where}: unknown variable(s) {unknown} in {raw}")
                continue
            r = await self.in_thread(prom.query, expr)
            if r.get("status") != "success":
                failures.append(f"{where}: does not evaluate\n    {expr}\n    → {r.get('errorType')}: "
                                f"{r.get('error')}")
            elif not r["data"]["result"]:
                failures.append(f"{where}: returns no series (a metric or label that does not exist?)\n    {expr}")
            else:
                result = r["data"]["result"]
                report.append(f"{len(result):3d} series  {where}: {result[0]['value'][1]}")
        for name, query in variables:
            q, unknown = substitute(query)
            m = re.fullmatch(r"\s*label_values\(\s*(.+?)\s*,\s*(\w+)\s*\)\s*", q)
            if unknown or not m:
                failures.append(f"variable ${name}: cannot check query {query!r} (expected label_values(m, l))")
                continue
            r = await self.in_thread(prom.api, "series", **{"match[]": m.group(1)})
            values = sorted({s.get(m.group(2)) for s in r.get("data", [])} - {None})
            if r.get("status") != "success" or not values:
                failures.append(f"variable ${name}: {query} → {r}")
            report.append(f"variable ${name}: {query} → {values}")
            if query == NODE_VARIABLE_QUERY and values != sorted(targets):
                failures.append(f"variable ${name}: expected the three nodes {sorted(targets)}, got {values}")

        # -- every alert expression parses; every rule is loaded and healthy -------------------------------------
        for group, rule in rules:
            r = await self.in_thread(prom.query, rule["expr"])
            if r.get("status") != "success":
                failures.append(f"alert {rule.get('alert')} (group {group}): does not evaluate\n    {rule['expr']}"
                                f"\n    → {r.get('errorType')}: {r.get('error')}")
        r = await self.in_thread(prom.api, "rules")
        loaded = {(g["name"], rl["name"]): rl for g in r["data"]["groups"] for rl in g["rules"]
                  if rl.get("type") == "alerting"}
        for group, rule in rules:
            rl = loaded.get((group, rule.get("alert")))
            if rl is None:
                failures.append(f"alert {rule.get('alert')} (group {group}) is not loaded; loaded: {sorted(loaded)}")
            elif rl.get("health") != "ok":
                failures.append(f"alert {rule.get('alert')}: health {rl.get('health')!r}, "
                                f"lastError {rl.get('lastError')!r}")
        firing = [(rl["name"], a["labels"].get("instance") or a["labels"].get("reason"), a["state"])
                  for rl in loaded.values() for a in rl.get("alerts", [])]

        # -- the load did what it was meant to ---------------------------------------------------------------------
        await stop_tasks()
        stop_publishing.set()
        await publisher
        check_tasks()
        sub_failures = [f for s in subscribers + [churner] for f in s.failures]
        resumed = [s.label for s in subscribers if s.resumes]
        print(f"\nload: {published['ok']} API publishes ({published['failed']} refused while node3 restarted), "
              f"{ws_published[0]} WebSocket publishes, {bulk} bulk messages for the slow consumer; "
              f"{sum(s.messages for s in subscribers + [churner])} messages received; churn resumes "
              f"{len(churner.resumes)}; resumed after the restart: {resumed}; closes "
              f"{[c for s in subscribers for c in s.closes]}")
        print("dashboard queries:\n  " + "\n  ".join(report))
        print(f"alerts loaded: {len(loaded)}; pending or firing: {firing or 'none'}")
        self.assertEqual(sub_failures, [], msg="resumes through HAProxy failed")
        self.assertGreater(published["ok"], 100, msg=f"steady publishes: {published}")
        self.assertTrue(resumed, msg="no subscriber on node3 resumed after its restart")
        self.assertEqual(failures, [], msg=f"{len(failures)} of {len(exprs) + len(variables) + len(rules)} "
                                           f"expressions failed against the live cluster:\n"
                                           + "\n".join(failures))

    # -- helpers ----------------------------------------------------------------------------------------------

    async def wait_for(self, prom, predicate, timeout, what):
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        last = None
        while True:
            try:
                if await self.in_thread(predicate):
                    return
            except (AssertionError, OSError, KeyError) as e:
                last = e
            if loop.time() > deadline:
                self.fail(f"timed out after {timeout} s waiting for {what} (last error: {last!r})\n"
                          f"{prom.log_tail(10)}")
            await asyncio.sleep(0.25)

    @staticmethod
    def restart_node(cluster, i):
        """Starts node i again exactly as scripts/cluster.sh does (same port, name, Redis and flags)."""
        node = cluster.node(i)
        cmd = [cluster.binary, "--listen", f"{HOST}:{node.port}", "--node-name", node.name,
               "--redis", f"redis://127.0.0.1:{cluster.redis_port}", *cluster.flags]
        with open(node.log_path(), "ab") as log:
            proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log,
                                    preexec_fn=_die_with_parent)
        with open(os.path.join(cluster.dir, f"{node.name}.pid"), "w") as f:
            f.write(f"{proc.pid}\n")
        cluster._remember_pids()  # cluster.down() stops it like the others
        return proc

    @staticmethod
    def reap(proc):
        if proc.poll() is None:
            proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)

    @staticmethod
    async def _stop_publisher(event, future):
        event.set()
        try:
            await asyncio.wait_for(future, 10)
        except Exception:
            pass

    def _print_on_failure(self, prom):
        if self._failed():
            print(f"\n{prom.log_tail(30)}", file=sys.stderr)


class DashboardShapeTest(unittest.TestCase):
    """What the live test cannot see: the dashboard's variables, units and node filter, and its datasource."""

    def test_dashboard_shape(self):
        with open(DASHBOARD) as f:
            dashboard = json.load(f)
        with open(DATASOURCES) as f:
            datasource_uid = yaml.safe_load(f)["datasources"][0]["uid"]
        variables = {v["name"]: v for v in dashboard["templating"]["list"]}
        node = variables.get("node")
        self.assertIsNotNone(node, msg=f"no `node` variable in {sorted(variables)}")
        query = node.get("query")
        query = query.get("query") if isinstance(query, dict) else query
        self.assertEqual((query, node.get("multi"), node.get("includeAll")), (NODE_VARIABLE_QUERY, True, True),
                         msg="node variable: (query, multi, includeAll)")
        ds = variables.get("datasource")
        self.assertEqual((ds and ds.get("type"), ds and ds["current"].get("value")), ("datasource", datasource_uid),
                         msg=f"`datasource` variable should default to the provisioned uid {datasource_uid}")
        problems = []
        rows = [p["title"] for p in dashboard["panels"] if p.get("type") == "row"]
        self.assertEqual(rows, ["Overview", "Connections", "Delivery", "Backplane", "Process"], msg="rows")
        for row, panel in dashboard_panels(dashboard["panels"]):
            where = f"{row} / {panel.get('title')!r}"
            if not panel.get("fieldConfig", {}).get("defaults", {}).get("unit"):
                problems.append(f"{where}: no unit")
            if panel.get("datasource", {}).get("uid") != "${datasource}":
                problems.append(f"{where}: datasource {panel.get('datasource')}")
            if not panel.get("targets"):
                problems.append(f"{where}: no targets")
            for t in panel.get("targets", []):
                selectors = re.findall(r"\b(\w+)\{([^}]*)\}", t["expr"])
                if not selectors or any('instance=~"$node"' not in body for _, body in selectors):
                    problems.append(f"{where}: a selector without instance=~\"$node\": {t['expr']}")
        ids = [p["id"] for p in dashboard["panels"]]
        self.assertEqual(len(ids), len(set(ids)), msg=f"panel ids repeat: {ids}")
        self.assertEqual(problems, [], msg="\n".join(problems))


if __name__ == "__main__":
    unittest.main()
