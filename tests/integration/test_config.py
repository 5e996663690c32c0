"""Configuration sources: flag > HERALD_* environment > JSON config file > default; bad options fail fast."""
import json
import os
import subprocess
import tempfile
import unittest

from harness import AsyncHeraldTestCase, herald_binary


class ConfigTest(AsyncHeraldTestCase):
    def config_file(self, obj):
        fd, path = tempfile.mkstemp(prefix="herald-it-", suffix=".json")
        with os.fdopen(fd, "w") as f:
            json.dump(obj, f)
        self.addCleanup(os.unlink, path)
        return path

    async def node_name(self, server):
        c = await self.ws(server)
        return (await c.connect())["node"]

    async def test_env_sets_option(self):
        server = self.start_server(node_name=None, env={"HERALD_NODE_NAME": "from-env"})
        self.assertEqual(await self.node_name(server), "from-env", msg="HERALD_NODE_NAME")

    async def test_flag_beats_env_beats_file(self):
        path = self.config_file({"node_name": "from-file", "heartbeat": 7})
        server = self.start_server("--config", path, node_name=None, env={"HERALD_NODE_NAME": "from-env"})
        c = await self.ws(server)
        reply = await c.connect()
        self.assertEqual((reply["node"], reply["heartbeat"]), ("from-env", 7),
                         msg="env beats file for node_name; file sets heartbeat")
        server2 = self.start_server("--config", path, "--node-name", "from-flag",
                                    node_name=None, env={"HERALD_NODE_NAME": "from-env"})
        self.assertEqual(await self.node_name(server2), "from-flag", msg="flag beats env and file")

    async def test_config_file_namespaces(self):
        path = self.config_file({"namespaces": {"chat": {"history_size": 3, "history_ttl": 60}}})
        server = self.start_server("--config", path)
        c = await self.ws(server)
        await c.connect()
        for i in range(6):
            await c.publish("chat:x", i, id=i)
        await c.send_json({"op": "history", "id": 9, "channel": "chat:x"})
        r = await c.expect(op="history", id=9)
        self.assertEqual([m["serial"] for m in r["messages"]], [4, 5, 6], msg="namespace from the config file")

    def run_binary(self, *args, env=None):
        e = {k: v for k, v in os.environ.items() if not k.startswith("HERALD_")}
        e.update(env or {})
        return subprocess.run([herald_binary(), *args], capture_output=True, timeout=10, env=e,
                              stdin=subprocess.DEVNULL)

    def test_version_and_help(self):
        r = self.run_binary("--version")
        self.assertEqual(r.returncode, 0, msg=repr(r))
        self.assertTrue(r.stdout.strip() or r.stderr.strip(), msg="--version prints something")
        r = self.run_binary("--help")
        self.assertEqual(r.returncode, 0, msg=repr(r))
        self.assertIn(b"--max-message-size", r.stdout + r.stderr)

    def test_bad_options_fail_fast(self):
        for args, env in ((["--no-such-flag"], None), (["--heartbeat", "abc"], None),
                          (["--max-message-size", "12Q"], None), (["--namespace", "chat:x:1"], None),
                          (["--listen", "127.0.0.1:99999"], None), ([], {"HERALD_HEARTBEAT": "soon"}),
                          (["--config", "/nonexistent/herald.json"], None)):
            with self.subTest(args=args, env=env):
                r = self.run_binary("--listen", "127.0.0.1:0", *args, env=env) if "--listen" not in args \
                    else self.run_binary(*args, env=env)
                self.assertNotEqual(r.returncode, 0, msg=f"herald {args} env={env} should refuse to start: {r!r}")
                self.assertTrue(r.stderr.strip(), msg=f"herald {args}: an error message on stderr expected")


if __name__ == "__main__":
    unittest.main()
