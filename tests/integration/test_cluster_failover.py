"""Failover: SIGKILL a node mid-stream; its clients reconnect through HAProxy with session + positions and every
client ends with exactly serials 1..N, in order, once."""
import asyncio
import json
import threading
import time

import websockets.exceptions

from cluster_harness import ClusterTestCase, compare_events, expected_messages
from harness import WSClient

CHANNEL = "cl:failover"
TOTAL = 3000
RATE = 300.0  # messages per second
KILL_AT = 1000  # SIGKILL right after this publish
CLIENTS = 6
RECONNECT_DEADLINE = 15.0


class FailoverClient:
    def __init__(self, tc, index):
        self.tc, self.index = tc, index
        self.client = None
        self.nodes = []  # connected.node of every connection, in order
        self.events = []  # every message/discontinuity/subscribed of CHANNEL, in arrival order
        self.messages = []
        self.last = 0
        self.epoch = None
        self.session = None
        self.reconnects = []  # (close code, seconds to resume, connected, subscribed)

    @property
    def label(self):
        return f"client {self.index} (nodes {' -> '.join(self.nodes)})"

    async def start(self, lb):
        self.client = await WSClient.open(lb)
        conn = await self.client.connect()
        self.session = conn["session"]
        self.nodes.append(conn["node"])
        sub = await self.client.subscribe(CHANNEL)
        self.epoch = sub["epoch"]
        self.last = sub["serial"]
        self.events.append(sub)

    async def run(self, lb, deadline):
        loop = asyncio.get_running_loop()
        while self.last < TOTAL:
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise AssertionError(f"{self.label}: stream incomplete at the deadline: last serial {self.last}")
            try:
                text = await asyncio.wait_for(self.client.ws.recv(), min(remaining, 10))
            except asyncio.TimeoutError:
                raise AssertionError(f"{self.label}: nothing received for 10 s after serial {self.last}") from None
            except websockets.exceptions.ConnectionClosed:
                await self.reconnect(lb, self.client.ws.close_code)
                continue
            m = json.loads(text)
            if m.get("op") == "pong":
                continue
            self.events.append(m)
            if m.get("op") == "message" and m.get("channel") == CHANNEL:
                self.messages.append(m)
                self.last = m["serial"]
            elif m.get("op") == "discontinuity":
                self.last = m["serial"]
                self.epoch = m["epoch"]

    async def close(self):
        await self.client.close()

    async def reconnect(self, lb, code):
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        try:
            await self.client.close()
        except Exception:
            pass
        delay, attempts, last_error = 0.05, 0, None
        while True:
            attempts += 1
            try:
                c = await WSClient.open(lb, open_timeout=3)
            except (OSError, asyncio.TimeoutError, websockets.exceptions.WebSocketException) as e:
                last_error = e
                if loop.time() - t0 > RECONNECT_DEADLINE:
                    raise AssertionError(f"{self.label}: no reconnect through HAProxy within {RECONNECT_DEADLINE}s "
                                         f"({attempts} attempts, last error {last_error!r})") from None
                await asyncio.sleep(delay)
                delay = min(delay * 2, 0.5)
                continue
            break
        self.tc.addAsyncCleanup(c.close)
        position = {"serial": self.last, "epoch": self.epoch}
        conn = await c.connect(session=self.session, positions={CHANNEL: position})
        self.nodes.append(conn["node"])
        if conn.get("resumed") is not True or conn.get("session") != self.session:
            raise AssertionError(f"{self.label}: reconnect with session {self.session} and position {position} "
                                 f"was not resumed: {conn}")
        sub = await c.expect(op="subscribed", channel=CHANNEL)
        self.events.append(sub)
        if sub.get("resumed") is not True or sub.get("epoch") != self.epoch or "id" in sub:
            raise AssertionError(f"{self.label}: restored subscription from {position} not resumed: {sub}")
        self.reconnects.append((code, loop.time() - t0, conn, sub))
        self.client = c


class ClusterFailoverTest(ClusterTestCase):
    async def test_sigkill_a_node_mid_stream(self):
        cluster = await self.start_cluster("--heartbeat", "5", "--session-sync-interval", "0.2",
                                           "--drain-timeout", "2", "--history-size", str(TOTAL + 1000))
        lb = cluster.lb
        clients = []
        for k in range(CLIENTS):
            fc = FailoverClient(self, k)
            await fc.start(lb)
            self.addAsyncCleanup(fc.close)
            clients.append(fc)
        placement = [fc.nodes[0] for fc in clients]
        self.assertEqual(len(set(placement)), 3, msg=f"HAProxy should spread {CLIENTS} clients over 3 nodes: "
                                                     f"{placement}")
        victim = placement[0]
        victim_index = int(victim[-1])
        publisher = cluster.node(1 if victim_index != 1 else 2)
        on_victim = [fc for fc in clients if fc.nodes[0] == victim]

        published = {}
        errors = []
        killed = threading.Event()

        def publish_steadily():
            t0 = time.monotonic()
            for i in range(1, TOTAL + 1):
                delay = t0 + i / RATE - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                try:
                    r = publisher.publish(CHANNEL, {"i": i})
                except OSError as e:
                    errors.append(f"publish #{i} on {publisher.name}: {e!r}")
                    return
                if r.status != 200 or r.json().get("serial") != i:
                    errors.append(f"publish #{i} on {publisher.name}: expected 200 serial {i}, got {r}")
                    return
                published[i] = r.json()
                if i == KILL_AT:
                    cluster.kill_node(victim_index)
                    killed.set()

        loop = asyncio.get_running_loop()
        deadline = loop.time() + TOTAL / RATE + 30
        pub_task = loop.run_in_executor(None, publish_steadily)
        runs = [asyncio.create_task(fc.run(lb, deadline)) for fc in clients]
        try:
            results = await asyncio.wait_for(asyncio.gather(*runs, return_exceptions=True),
                                             deadline - loop.time() + 5)
        finally:
            for t in runs:
                t.cancel()
        await asyncio.wait_for(pub_task, 30)
        self.assertEqual(errors, [], msg="the publisher (on a surviving node) failed")
        self.assertTrue(killed.is_set(), msg=f"{victim} was never killed")
        failures = [str(r) for r in results if isinstance(r, BaseException)]
        self.assertEqual(failures, [], msg="client failures:\n" + "\n".join(failures))

        expected = expected_messages(CHANNEL, {i: {"i": i} for i in range(1, TOTAL + 1)}, 1, TOTAL)
        for fc in clients:
            problem = compare_events(fc.label, fc.messages, expected)
            if problem:
                self.fail(problem + f"\n  reconnects: {[(c, round(t, 2), s) for c, t, _, s in fc.reconnects]}"
                                    f"\n  non-message events: {[e for e in fc.events if e.get('op') != 'message']}")
            discontinuities = [e for e in fc.events if e.get("op") == "discontinuity"]
            self.assertEqual(discontinuities, [], msg=f"{fc.label}: unexpected discontinuity")
        for fc in on_victim:
            self.assertGreaterEqual(len(fc.reconnects), 1, msg=f"{fc.label} was on the killed {victim} but never "
                                                              f"reconnected")
            self.assertNotIn(victim, fc.nodes[1:], msg=f"{fc.label}: reconnected to the killed node")
        for fc in clients:
            if fc not in on_victim:
                self.assertEqual(fc.reconnects, [], msg=f"{fc.label} was on a surviving node but lost its "
                                                        f"connection")
        print(f"\nfailover: killed {victim} after publish #{KILL_AT}; publisher {publisher.name}; "
              f"placement {placement}; reconnects " +
              ", ".join(f"client {fc.index}: {fc.nodes} in {fc.reconnects[0][1]:.2f}s "
                        f"(replayed {fc.reconnects[0][3].get('replayed')})" for fc in on_victim))
