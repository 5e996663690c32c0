"""GET /metrics against the metric contract (docs/metrics.md): every family with its TYPE, replay / backplane / process
/ build figures on one node, and on a Redis cluster the cross-node lag and a Redis restart (up → 0 → 1, reconnects)."""
import asyncio
import re
import subprocess
import time
import unittest
import uuid

from cluster_harness import ClusterTestCase
from harness import METRIC_TYPES, AsyncHeraldTestCase, http_request, metric_value, parse_metrics

BACKPLANE_OPS = ("publish", "history", "subscribe", "save_session", "load_session")

_TYPE = re.compile(r"^# TYPE (\S+) (\S+)$", re.M)


def types_of(text):
    return dict(_TYPE.findall(text))


def contract_problems(text):
    """→ list of differences between the TYPE lines of `text` and the contract."""
    served = types_of(text)
    problems = []
    for name, kind in METRIC_TYPES.items():
        if name not in served:
            problems.append(f"{name}: no '# TYPE' line (expected {kind})")
        elif served[name] != kind:
            problems.append(f"{name}: TYPE {served[name]}, expected {kind}")
    return problems


class SingleNodeMetricsTest(AsyncHeraldTestCase):
    MAX_CONNECTIONS = 321
    API_KEY = "metrics-test-key"

    def scrape(self, server):
        r = http_request(server.port, "GET", "/metrics")
        self.assertEqual(r.status, 200, msg=f"GET /metrics: {r}")
        return r.text()

    async def test_contract_replay_backplane_process_and_build(self):
        server = self.start_server("--max-connections", str(self.MAX_CONNECTIONS), "--api-key", self.API_KEY,
                                   "--client-rate", "0")
        channel, total, since = "metrics:replay", 8, 3

        pub = await self.connected_ws(server)
        for i in range(1, total + 1):
            reply = await pub.publish(channel, {"i": i}, id=100 + i)
            self.assertEqual(reply["serial"], i, msg=f"publish #{i}: {reply}")
        await pub.send_json({"op": "history", "id": 200, "channel": channel, "limit": 0})
        epoch = (await pub.expect(op="history", id=200, serial=total))["epoch"]
        before = parse_metrics(self.scrape(server))

        # A resume from `since` replays since+1..total from history.
        sub = await self.connected_ws(server)
        s = await sub.subscribe(channel, since={"serial": since, "epoch": epoch})
        self.assertEqual((s.get("resumed"), s.get("replayed")), (True, total - since), msg=f"subscribed: {s}")
        got = [(await sub.expect(op="message", channel=channel))["serial"] for _ in range(total - since)]
        self.assertEqual(got, list(range(since + 1, total + 1)))
        # Live from here: the backplane now delivers the channel to this node (the in-memory one measures lag too).
        live = 2
        for i in range(total + 1, total + live + 1):
            await pub.publish(channel, {"i": i}, id=100 + i)
            await sub.expect(op="message", channel=channel, serial=i)

        # One of each event whose labelled family has no sample until it happens (they print no TYPE line before).
        await sub.send_json({"op": "bogus", "id": 9})
        await sub.expect(op="error", id=9)
        r = http_request(server.port, "GET", "/ws")  # not an upgrade: a refused handshake
        self.assertGreaterEqual(r.status, 400, msg=f"GET /ws without Upgrade: {r}")
        r = http_request(server.port, "POST", "/api/publish", body={"channel": "x", "data": 1},
                         headers={"Authorization": "Bearer wrong"})
        self.assertEqual(r.status, 401, msg=f"POST /api/publish with a wrong key: {r}")
        # A session id the node never saw: the connect loads it (load_session) and finds nothing.
        unknown = await self.ws(server)
        c = await unknown.connect(session=uuid.uuid4().hex)
        self.assertIs(c.get("resumed"), False, msg=f"connect with an unknown session: {c}")

        text = self.scrape(server)
        after = parse_metrics(text)
        self.assertEqual(contract_problems(text), [], msg="metric families served vs the contract")

        replayed = metric_value(after, "herald_messages_replayed_total") - \
            metric_value(before, "herald_messages_replayed_total")
        self.assertEqual(replayed, total - since, msg="herald_messages_replayed_total must grow by the replay size "
                                                      "(and not by the live messages after it)")

        builds = [labels for name, labels, value in after if name == "herald_build_info" and value == 1]
        self.assertEqual(len(builds), 1, msg=f"one herald_build_info series with value 1, got {builds}")
        version_out = subprocess.run([server.cmd[0], "--version"], capture_output=True, text=True, timeout=10).stdout
        self.assertIn(f"herald {builds[0].get('version')} ", version_out + " ",
                      msg=f"build_info version {builds[0]} vs --version {version_out!r}")
        self.assertRegex(builds[0].get("commit", ""), r"^([0-9a-f]{4,40}|unknown)$", msg=f"build_info {builds[0]}")

        value = lambda name, **labels: metric_value(after, name, **labels)
        self.assertEqual(value("herald_backplane_up"), 1)
        self.assertEqual(value("herald_max_connections"), self.MAX_CONNECTIONS)
        self.assertGreater(value("herald_process_open_fds"), 0)
        self.assertGreater(value("herald_process_resident_memory_bytes"), 0)
        self.assertGreaterEqual(value("herald_process_max_fds"), value("herald_process_open_fds"))
        self.assertGreaterEqual(value("herald_process_cpu_seconds_total"), 0)
        start = value("herald_process_start_time_seconds")
        self.assertTrue(time.time() - 600 < start <= time.time() + 1,
                        msg=f"herald_process_start_time_seconds {start} vs now {time.time()}")
        for op in BACKPLANE_OPS:
            self.assertGreater(value("herald_backplane_command_duration_seconds_count", op=op), 0,
                               msg=f"backplane op {op} was called at least once")
        self.assertEqual(value("herald_backplane_command_duration_seconds_count", op="publish"), total + live)
        # Published before any subscriber, the first `total` never left the backplane; each live one arrived once.
        self.assertEqual(value("herald_cross_node_lag_seconds_count"), live)
        self.assertEqual(value("herald_discontinuities_total"), 0)
        self.assertEqual(value("herald_backplane_reconnects_total"), 0)


class ClusterMetricsTest(ClusterTestCase):
    FLAGS = ("--heartbeat", "5", "--session-sync-interval", "0.2", "--drain-timeout", "2")

    async def _wait_metric(self, node, name, predicate, timeout, what):
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            value = await self.in_thread(node.metric, name)
            if predicate(value):
                return value
            if loop.time() > deadline:
                self.fail(f"{node.name}: {name} is {value} after {timeout}s, expected {what}\n"
                          + self.cluster.log_tails(15, (node.name, "redis")))
            await asyncio.sleep(0.1)

    async def test_cross_node_lag_and_redis_restart(self):
        cluster = await self.start_cluster(*self.FLAGS)
        channel, total = "metrics:cluster", 5
        node1, node2 = cluster.node(1), cluster.node(2)
        _, _, rec = await self.subscriber(node2, channel)
        for i in range(1, total + 1):
            r = await self.in_thread(node1.publish, channel, {"i": i})
            self.assertEqual(r.status, 200, msg=f"POST /api/publish #{i} on node1: {r}")
        await rec.wait_serial(total)

        lag2 = await self.in_thread(node2.metric, "herald_cross_node_lag_seconds_count")
        self.assertEqual(lag2, total, msg="node2 received each message from Redis once and measured its lag")
        self.assertEqual(await self.in_thread(node1.metric, "herald_cross_node_lag_seconds_count"), 0,
                         msg="node1 has no subscriber: nothing arrives there from Redis")
        # The Redis round trips: node1 published, node2 subscribed, read the channel's top and saved a session.
        published = await self.in_thread(node1.metric, "herald_backplane_command_duration_seconds_count", op="publish")
        self.assertEqual(published, total, msg="node1: one timed Redis publish per API publish")
        for op in ("subscribe", "history", "save_session"):
            count = await self.in_thread(node2.metric, "herald_backplane_command_duration_seconds_count", op=op)
            self.assertGreater(count, 0, msg=f"node2: Redis round trips of {op} are measured")
        for n in (node1, node2):
            self.assertEqual(await self.in_thread(n.metric, "herald_backplane_up"), 1, msg=n.name)
            self.assertEqual(await self.in_thread(n.metric, "herald_backplane_reconnects_total"), 0,
                             msg=f"{n.name}: connecting the first time is not a reconnect")

        await self.in_thread(cluster.stop_redis)
        for n in (node1, node2):
            await self._wait_metric(n, "herald_backplane_up", lambda v: v == 0, 5, "0 while Redis is down")
        await self.in_thread(cluster.start_redis)
        for n in (node1, node2):
            await self._wait_metric(n, "herald_backplane_up", lambda v: v == 1, 20, "1 once Redis is back")
            reconnects = await self.in_thread(n.metric, "herald_backplane_reconnects_total")
            self.assertGreaterEqual(reconnects, 1, msg=f"{n.name}: herald_backplane_reconnects_total after a restart")
        # node2's channel was caught up from history after its pub/sub connection came back.
        resyncs = await self._wait_metric(node2, "herald_backplane_resyncs_total", lambda v: v >= 1, 10,
                                          ">= 1 after the restart")
        lag_sum = await self.in_thread(node2.metric, "herald_cross_node_lag_seconds_sum")
        print(f"\ncluster metrics: node2 lag count {lag2:.0f} (mean {lag_sum / lag2 * 1000:.2f} ms); after the Redis "
              f"restart reconnects {reconnects:.0f} (last node), node2 resyncs {resyncs:.0f}")


if __name__ == "__main__":
    unittest.main()
