"""Cluster delivery: every subscriber on every node (and through HAProxy) gets every message published on any node,
in serial order, once; idempotency keys across nodes; HAProxy spreads connections; resume on another node."""
import asyncio
import json

from cluster_harness import ClusterTestCase, compare_events, expected_messages

FLAGS = ("--heartbeat", "5", "--session-sync-interval", "0.2", "--drain-timeout", "2", "--history-size", "5000")


class ClusterDeliveryTest(ClusterTestCase):
    CLUSTER_FLAGS = FLAGS  # one cluster for the class: every test uses its own channel

    async def _subscribers(self, channel):
        """One subscriber directly on each node and three through HAProxy; all see a fresh channel."""
        subs = []
        for ep in self.cluster.nodes + [self.cluster.lb] * 3:
            c, sub, rec = await self.subscriber(ep, channel)
            self.assertEqual((sub["serial"], sub["resumed"], sub["replayed"]), (0, False, 0),
                             msg=f"{rec.label}: fresh channel, got {sub}")
            subs.append((c, sub, rec))
        epochs = {s["epoch"] for _, s, _ in subs}
        self.assertEqual(len(epochs), 1, msg=f"subscribers on different nodes see different epochs: {epochs}")
        return subs, epochs.pop()

    async def _check_all(self, subs, channel, serial_to_data, total, epoch):
        expected = expected_messages(channel, serial_to_data, 1, total)
        for _, _, rec in subs:
            await rec.wait_serial(total, timeout=20)
        await asyncio.sleep(0.3)  # anything extra (a duplicate) would arrive now
        reference = subs[0][2].raw
        for _, _, rec in subs:
            self.assertEvents(rec.label, rec.events, expected)
            for i, (a, b) in enumerate(zip(reference, rec.raw)):
                if a != b:
                    self.fail(f"{rec.label}: message #{i + 1} bytes differ from {subs[0][2].label}'s:\n"
                              f"  {subs[0][2].label}: {a!r}\n  {rec.label}: {b!r}")

    async def test_every_subscriber_gets_every_message_in_serial_order(self):
        cluster = self.cluster
        channel = "cl:delivery"
        subs, epoch = await self._subscribers(channel)
        ws_pubs = [await self.connected(n) for n in cluster.nodes]
        total = 300
        serial_to_data = {}
        for i in range(1, total + 1):
            node = (i - 1) % 3  # node1, node2, node3, node1, ...
            via_ws = ((i - 1) // 3) % 2 == 0  # alternate WS and API every round
            data = {"i": i, "via": f"{'ws' if via_ws else 'api'}@node{node + 1}", "text": "héllo ✓"}
            if via_ws:
                reply = await ws_pubs[node].publish(channel, data, id=i)
                got = reply["serial"]
            else:
                r = await self.in_thread(cluster.node(node + 1).publish, channel, data)
                self.assertEqual(r.status, 200, msg=f"POST /api/publish #{i} on node{node + 1}: {r}")
                body = r.json()
                self.assertEqual((body["epoch"], body["duplicate"]), (epoch, False), msg=f"publish #{i}: {body}")
                got = body["serial"]
            self.assertEqual(got, i, msg=f"publish #{i} ({data['via']}): expected serial {i}, got {got}")
            serial_to_data[i] = data
        await self._check_all(subs, channel, serial_to_data, total, epoch)

    async def test_concurrent_publishers_on_all_nodes(self):
        # Six publishers at once (WS and API on each node): the serials they are given define the expected order.
        cluster = self.cluster
        channel = "cl:concurrent"
        subs, epoch = await self._subscribers(channel)
        per_publisher = 60
        serial_to_data = {}

        async def ws_publisher(node):
            c = await self.connected(node)
            for k in range(per_publisher):
                data = {"p": f"ws@{node.name}", "k": k}
                reply = await c.publish(channel, data, id=k + 1)
                serial_to_data.setdefault(reply["serial"], []).append(data)

        def api_publisher(node):
            out = []
            for k in range(per_publisher):
                data = {"p": f"api@{node.name}", "k": k}
                r = node.publish(channel, data)
                if r.status != 200:
                    raise AssertionError(f"POST /api/publish on {node.name}: {r}")
                out.append((r.json()["serial"], data))
            return out

        results = await asyncio.gather(*[ws_publisher(n) for n in cluster.nodes],
                                       *[self.in_thread(api_publisher, n) for n in cluster.nodes])
        for out in results[3:]:
            for serial, data in out:
                serial_to_data.setdefault(serial, []).append(data)
        total = 6 * per_publisher
        dup = {s: d for s, d in serial_to_data.items() if len(d) > 1}
        self.assertEqual(dup, {}, msg="two publishes were given the same serial")
        self.assertEqual(sorted(serial_to_data), list(range(1, total + 1)),
                         msg="the publishers' serials are not exactly 1..N")
        await self._check_all(subs, channel, {s: d[0] for s, d in serial_to_data.items()}, total, epoch)

    async def test_idempotency_key_deduplicates_across_nodes(self):
        cluster = self.cluster
        channel = "cl:idem"
        _, _, rec2 = await self.subscriber(cluster.node(2), channel)
        _, _, rec3 = await self.subscriber(cluster.node(3), channel)
        p1 = await self.connected(cluster.node(1))
        first = await p1.publish(channel, {"n": "first"}, id=1, key="order-42")
        s = first["serial"]
        self.assertEqual(s, 1, msg=f"first publish: {first}")
        r = await self.in_thread(cluster.node(2).publish, channel, {"n": "again via api@node2"}, key="order-42")
        self.assertEqual(r.status, 200, msg=f"repeat via POST /api/publish on node2: {r}")
        body = r.json()
        self.assertEqual((body["serial"], body["duplicate"]), (s, True),
                         msg=f"repeat of key order-42 on node2: expected serial {s} duplicate true, got {body}")
        p3 = await self.connected(cluster.node(3))
        again = await p3.publish(channel, {"n": "again via ws@node3"}, id=7, key="order-42")
        self.assertEqual(again["serial"], s, msg=f"repeat of key order-42 on node3 (WS): {again}")
        marker = await self.in_thread(cluster.node(3).publish, channel, {"n": "marker"})
        self.assertEqual(marker.json()["serial"], s + 1, msg=f"next publish after the duplicates: {marker}")
        expected = [{"op": "message", "channel": channel, "serial": 1, "data": {"n": "first"}},
                    {"op": "message", "channel": channel, "serial": 2, "data": {"n": "marker"}}]
        for rec in (rec2, rec3):
            await rec.wait_serial(2, timeout=10)
            await asyncio.sleep(0.3)
            self.assertEvents(rec.label, rec.events, expected)
        h = (await self.in_thread(cluster.node(1).get, f"/api/history?channel={channel}")).json()
        self.assertEqual([m["serial"] for m in h["messages"]], [1, 2], msg=f"history holds duplicates: {h}")

    async def test_haproxy_round_robin_without_stickiness(self):
        cluster = self.cluster
        nodes = []
        for _ in range(9):
            c = await self.connected(cluster.lb)  # sequential: each one lands before the next one starts
            nodes.append(c.connected["node"])
        counts = {n: nodes.count(n) for n in ("node1", "node2", "node3")}
        self.assertEqual(counts, {"node1": 3, "node2": 3, "node3": 3},
                         msg=f"9 connections through HAProxy, connected.node in order: {nodes}")
        for i in range(len(nodes) - 2):
            self.assertEqual(len(set(nodes[i:i + 3])), 3,
                             msg=f"round-robin: every 3 consecutive connections hit 3 nodes; got {nodes}")

    async def test_resume_on_another_node_with_positions(self):
        cluster = self.cluster
        channel = "cl:resume"
        api = cluster.node(3)

        async def publish_range(first, last):
            for i in range(first, last + 1):
                r = await self.in_thread(api.publish, channel, {"i": i})
                self.assertEqual((r.status, r.json().get("serial")), (200, i), msg=f"publish #{i}: {r}")

        a = await self.connected(cluster.node(1))
        self.assertEqual(a.connected["node"], "node1")
        sub = await a.subscribe(channel)
        epoch, session = sub["epoch"], a.connected["session"]
        await publish_range(1, 10)
        await self._expect_messages(a, channel, 1, 10, "client on node1")
        await a.close()
        await publish_range(11, 20)  # missed while away

        b = await self.open(cluster.node(2))
        conn = await b.connect(session=session, positions={channel: {"serial": 10, "epoch": epoch}})
        self.assertEqual((conn["resumed"], conn["session"], conn["node"]), (True, session, "node2"),
                         msg=f"connect on node2 with node1's session: {conn}")
        restored = await b.expect(op="subscribed", channel=channel)
        self.assertNotIn("id", restored, msg=f"a restored subscription has no id: {restored}")
        self.assertEqual((restored["resumed"], restored["replayed"], restored["serial"], restored["epoch"]),
                         (True, 10, 20, epoch), msg=f"restored subscription on node2: {restored}")
        await self._expect_messages(b, channel, 11, 20, "resumed client on node2 (replay)")
        await publish_range(21, 25)
        await self._expect_messages(b, channel, 21, 25, "resumed client on node2 (live)")
        await b.expect_silence(0.3)

    async def test_session_only_resume_on_another_node(self):
        cluster = self.cluster
        channel = "cl:session"
        api = cluster.node(1)

        async def publish_range(first, last):
            for i in range(first, last + 1):
                r = await self.in_thread(api.publish, channel, {"i": i})
                self.assertEqual((r.status, r.json().get("serial")), (200, i), msg=f"publish #{i}: {r}")

        a = await self.connected(cluster.node(1))
        sub = await a.subscribe(channel)
        epoch, session = sub["epoch"], a.connected["session"]
        await publish_range(1, 8)
        await self._expect_messages(a, channel, 1, 8, "client on node1")
        await asyncio.sleep(0.5)  # idle: the session sync records the position (written) of serial 8
        await a.close()  # clean close: every write completed; the record is saved at disconnect
        await publish_range(9, 12)
        await asyncio.sleep(0.5)

        b = await self.open(cluster.node(3))
        conn = await b.connect(session=session)  # no positions: the session record alone
        self.assertEqual((conn["resumed"], conn["session"], conn["node"]), (True, session, "node3"),
                         msg=f"session-only connect on node3: {conn}")
        restored = await b.expect(op="subscribed", channel=channel)
        self.assertEqual((restored["resumed"], restored["replayed"], restored["serial"], restored["epoch"]),
                         (True, 4, 12, epoch), msg=f"restored subscription on node3 from the session record: "
                                                   f"{restored}")
        await self._expect_messages(b, channel, 9, 12, "session-resumed client on node3 (replay)")
        await publish_range(13, 14)
        await self._expect_messages(b, channel, 13, 14, "session-resumed client on node3 (live)")
        await b.expect_silence(0.3)

    async def _expect_messages(self, client, channel, first, last, label):
        got = []
        for _ in range(first, last + 1):
            got.append(await client.recv_json(5, what=f"{label}: message {first}..{last}"))
        problem = compare_events(label, got, expected_messages(channel, {i: {"i": i} for i in range(first, last + 1)},
                                                               first, last))
        if problem:
            self.fail(problem + "\n" + json.dumps(got)[:500])
