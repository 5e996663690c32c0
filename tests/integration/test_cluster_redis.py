"""Redis faults under a running cluster: a restart (outage → /readyz 503, `unavailable`; back → serials continue),
a killed pub/sub connection (gap repair from history), FLUSHALL (discontinuity epoch_changed, new epoch)."""
import asyncio
import re
import time

from cluster_harness import ClusterTestCase, expected_messages

FLAGS = ("--heartbeat", "5", "--session-sync-interval", "0.2", "--drain-timeout", "2", "--history-size", "5000")


def check_continuity(label, events, data_by_position, start, final):
    """Every item follows the previous one: a message is last+1 in the current epoch, or an explicit discontinuity
    says where the stream continues (its serial, in its epoch). `start`/`final` are (epoch, serial). → None or a
    report of the first break."""
    epoch, last = start
    for i, e in enumerate(events):
        if e["op"] == "discontinuity":
            epoch, last = e["epoch"], e["serial"]
            continue
        want = data_by_position.get((epoch, last + 1))
        if e["serial"] != last + 1 or e["data"] != want:
            ctx = events[max(0, i - 3):i + 3]
            return (f"{label}: item #{i + 1}: expected message serial {last + 1} data {want} (epoch {epoch}), "
                    f"got {e}\n  around it: {ctx}")
        last = e["serial"]
    if (epoch, last) != final:
        return f"{label}: stream ended at (epoch, serial) {(epoch, last)}, expected {final}"
    return None


class ClusterRedisTest(ClusterTestCase):
    async def _publish_range(self, node, channel, first, last, epoch=None, data=lambda i: {"i": i}):
        """Sequential API publishes that must get serials first..last; → epoch."""
        for i in range(first, last + 1):
            r = await self.in_thread(node.publish, channel, data(i))
            body = r.json() if r.status == 200 else None
            self.assertEqual(r.status, 200, msg=f"POST /api/publish #{i} on {node.name}: {r}")
            self.assertEqual(body["serial"], i, msg=f"publish #{i} on {node.name}: expected serial {i}, got {body}")
            if epoch is not None:
                self.assertEqual(body["epoch"], epoch, msg=f"publish #{i}: epoch changed: {body}")
            epoch = body["epoch"]
        return epoch

    async def _wait_readyz(self, nodes, status, timeout):
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        t0 = loop.time()
        pending = list(nodes)
        last = {}
        while pending:
            for n in list(pending):
                last[n.name] = await self.in_thread(n.readyz, 1.0)
                if last[n.name][0] == status:
                    pending.remove(n)
            if not pending:
                break
            if loop.time() > deadline:
                self.fail(f"/readyz did not turn {status} within {timeout}s on {[n.name for n in pending]}; "
                          f"last answers {last}\n" + self.cluster.log_tails(15, tuple(n.name for n in pending)))
            await asyncio.sleep(0.05)
        return loop.time() - t0, last

    async def test_redis_restart(self):
        cluster = await self.start_cluster(*FLAGS)
        channel = "cl:restart"
        recs = []
        for ep in (cluster.node(2), cluster.node(3), cluster.lb):
            _, sub, rec = await self.subscriber(ep, channel)
            recs.append((rec, sub))
        ws_pub = await self.connected(cluster.node(2))
        epoch = await self._publish_range(cluster.node(1), channel, 1, 50)
        for rec, _ in recs:
            await rec.wait_serial(50)

        await self.in_thread(cluster.stop_redis)
        took, answers = await self._wait_readyz(cluster.nodes, 503, 5)
        for name, (status, body) in answers.items():
            self.assertEqual(body, "backplane unavailable\n", msg=f"/readyz on {name} during the outage")

        t0 = time.monotonic()
        await ws_pub.send_json({"op": "publish", "id": 77, "channel": channel, "data": {"during": "outage"}})
        err = await ws_pub.recv_json(3, what="the reply to a WS publish during the Redis outage")
        ws_took = time.monotonic() - t0
        self.assertEqual((err.get("op"), err.get("id"), err.get("code")), ("error", 77, "unavailable"),
                         msg=f"WS publish on node2 during the outage: expected error unavailable, got {err}")
        self.assertLess(ws_took, 1.0, msg=f"WS publish during the outage took {ws_took:.2f}s to fail")
        t0 = time.monotonic()
        r = await self.in_thread(cluster.node(1).publish, channel, {"during": "outage"}, None, 3.0)
        api_took = time.monotonic() - t0
        self.assertEqual(r.status, 503, msg=f"POST /api/publish on node1 during the outage: {r}")
        self.assertEqual(r.json().get("code"), "unavailable", msg=f"POST /api/publish during the outage: {r}")
        self.assertLess(api_took, 1.0, msg=f"POST /api/publish during the outage took {api_took:.2f}s to fail")

        await self.in_thread(cluster.start_redis)
        back, _ = await self._wait_readyz(cluster.nodes, 200, 20)
        # AOF (everysec) is fsynced on a clean SIGTERM shutdown: the lineage and the counter survive.
        await self._publish_range(cluster.node(1), channel, 51, 100, epoch=epoch)
        data = {(epoch, i): {"i": i} for i in range(1, 101)}
        for rec, sub in recs:
            await rec.wait_until(lambda r: any(e["op"] == "message" and e["serial"] == 100 for e in r.events[-3:]),
                                 20, "serial 100 after the Redis restart")
            await asyncio.sleep(0.2)
            problem = check_continuity(rec.label, rec.events, data, (sub["epoch"], sub["serial"]), (epoch, 100))
            if problem:
                self.fail(problem + "\n" + cluster.log_tails(20))
            gaps = [e for e in rec.events if e["op"] == "discontinuity"]
            if gaps:
                print(f"\nnote: {rec.label} got explicit discontinuities across the restart: {gaps}")
        print(f"\nredis restart: /readyz 503 after {took:.2f}s, back to 200 {back:.2f}s after restart; "
              f"WS publish failed in {ws_took * 1000:.0f} ms, API in {api_took * 1000:.0f} ms")

    async def test_pubsub_connection_killed_gap_repaired(self):
        cluster = await self.start_cluster(*FLAGS, "--log-level", "debug")
        channel = "cl:pubsubkill"
        total, rate = 1500, 250.0
        kill_at = (300, 700, 1100)
        recs = []
        for ep in (cluster.node(2), cluster.node(2), cluster.node(3), cluster.node(3)):
            _, _, rec = await self.subscriber(ep, channel)
            recs.append(rec)
        before = {n.name: n.stderr() for n in (cluster.node(2), cluster.node(3))}
        killed, errors = [], []

        def publish_steadily():
            t0 = time.monotonic()
            for i in range(1, total + 1):
                delay = t0 + i / rate - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                r = cluster.node(1).publish(channel, {"i": i})
                if r.status != 200 or r.json().get("serial") != i:
                    errors.append(f"publish #{i} on node1: expected 200 serial {i}, got {r}")
                    return
                if i in kill_at:
                    killed.append((i, cluster.redis_cli("CLIENT", "KILL", "TYPE", "pubsub")))

        await self.in_thread(publish_steadily)
        self.assertEqual(errors, [])
        for i, n in killed:
            self.assertGreaterEqual(int(n), 2, msg=f"CLIENT KILL TYPE pubsub after publish #{i} killed {n} "
                                                   f"connections; node2 and node3 each hold one")
        expected = expected_messages(channel, {i: {"i": i} for i in range(1, total + 1)}, 1, total)
        for rec in recs:
            await rec.wait_serial(total, timeout=20)
            await asyncio.sleep(0.2)
            self.assertEvents(rec.label, rec.events, expected)
        # The nodes noticed: each lost pub/sub connection is followed by a resync (catch-up from history).
        repaired = {}
        for n in (cluster.node(2), cluster.node(3)):
            new = n.stderr()[len(before[n.name]):]
            resyncs = re.findall(r"^.*event=redis_resync\b.*$", new, re.M)
            self.assertGreaterEqual(len(resyncs), len(killed),
                                    msg=f"{n.name}: expected an event=redis_resync line per CLIENT KILL "
                                        f"({len(killed)}), found {len(resyncs)}; log since the first kill:\n"
                                        + "\n".join(l for l in new.splitlines() if "redis" in l or "gap" in l)[-3000:])
            repaired[n.name] = len(re.findall(r"event=gap_repaired\b", new))
        print(f"\npubsub kill: CLIENT KILL after publishes {[i for i, _ in killed]} killed {[k for _, k in killed]} "
              f"connections; gap_repaired log lines: {repaired}")

    async def test_flushall_changes_epoch(self):
        cluster = await self.start_cluster(*FLAGS)
        channel = "cl:flush"
        recs = []
        for ep in (cluster.node(2), cluster.node(3), cluster.lb):
            _, _, rec = await self.subscriber(ep, channel)
            recs.append(rec)
        old = await self._publish_range(cluster.node(1), channel, 1, 20, data=lambda i: {"old": i})
        for rec in recs:
            await rec.wait_serial(20)
        self.assertEqual(cluster.redis_cli("FLUSHALL"), "OK")
        new = await self._publish_range(cluster.node(1), channel, 1, 10, data=lambda i: {"new": i})
        self.assertNotEqual(new, old, msg="after FLUSHALL the first publish must start a new epoch")
        expected = expected_messages(channel, {i: {"old": i} for i in range(1, 21)}, 1, 20) + \
            [{"op": "discontinuity", "channel": channel, "epoch": new, "serial": 0, "reason": "epoch_changed"}] + \
            expected_messages(channel, {i: {"new": i} for i in range(1, 11)}, 1, 10)
        for rec in recs:
            await rec.wait_until(lambda r: len(r.events) >= len(expected), 15,
                                 f"the discontinuity and serials 1..10 of the new epoch {new}")
            await asyncio.sleep(0.3)
            self.assertEvents(rec.label, rec.events, expected)
