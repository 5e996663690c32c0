"""TLS on the listener (--tls-cert/--tls-key): wss and https with a throwaway CA (root → intermediate → leaf, the client
trusting only the root, so the chain must be served whole), the version and suite policy, plain HTTP on the TLS port,
SIGHUP reload while an old connection keeps streaming, and the handshake timeout.

The certificates are made with the `openssl` command in a temporary directory per test class.
"""
import asyncio
import http.client
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
import unittest
import warnings

from harness import HOST, AsyncHeraldTestCase, HeraldServer, RawClient, herald_binary, parse_metrics

OPENSSL = shutil.which("openssl")


# ----------------------------------------------------------------------------------------------------------------
# A throwaway PKI
# ----------------------------------------------------------------------------------------------------------------

def _openssl(*args, cwd):
    r = subprocess.run([OPENSSL, *args], cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
    if r.returncode != 0:
        raise AssertionError(f"openssl {' '.join(args)} failed ({r.returncode}):\n{r.stderr.decode(errors='replace')}")


def _write(path, text):
    with open(path, "w") as f:
        f.write(text)


class Pki:
    """Root CA → intermediate CA → server leaves for 127.0.0.1/localhost, all EC P-256, valid for a day."""

    def __init__(self):
        if not OPENSSL:
            raise unittest.SkipTest("the openssl command is not installed")
        self.dir = tempfile.mkdtemp(prefix="herald-tls-pki-")
        d = self.dir
        _write(os.path.join(d, "ca.ext"), "basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n"
                                          "subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid:always\n")
        _write(os.path.join(d, "leaf.ext"), "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n"
                                            "extendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n"
                                            "subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid:always\n")
        _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                 "-keyout", "ca.key", "-out", "ca.crt", "-days", "1", "-subj", "/CN=Herald Test Root CA",
                 "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
                 cwd=d)
        _openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                 "-keyout", "int.key", "-out", "int.csr", "-subj", "/CN=Herald Test Intermediate CA", cwd=d)
        _openssl("x509", "-req", "-in", "int.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-set_serial", "100",
                 "-days", "1", "-extfile", "ca.ext", "-out", "int.crt", cwd=d)
        self.ca = os.path.join(d, "ca.crt")

    def leaf(self, name, serial, cn="localhost"):
        """Issues a leaf from the intermediate; returns (chain file: leaf + intermediate, key file)."""
        d = self.dir
        _openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                 "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={cn}", cwd=d)
        _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "int.crt", "-CAkey", "int.key",
                 "-set_serial", str(serial), "-days", "1", "-extfile", "leaf.ext", "-out", f"{name}.crt", cwd=d)
        with open(os.path.join(d, f"{name}.crt")) as leaf, open(os.path.join(d, "int.crt")) as intermediate:
            _write(os.path.join(d, f"{name}.chain.pem"), leaf.read() + intermediate.read())
        return os.path.join(d, f"{name}.chain.pem"), os.path.join(d, f"{name}.key")

    def cleanup(self):
        shutil.rmtree(self.dir, ignore_errors=True)


# ----------------------------------------------------------------------------------------------------------------
# Clients
# ----------------------------------------------------------------------------------------------------------------

def client_context(ca, max_version=None, ciphers=None, alpn=("http/1.1",)):
    """Trusts only the test root; verifies the host name (127.0.0.1 is in the leaf's subjectAltName)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(ca)
    if max_version is not None:
        ctx.maximum_version = max_version
    if ciphers is not None:
        ctx.set_ciphers(ciphers)
    if alpn:
        ctx.set_alpn_protocols(list(alpn))
    return ctx


def legacy_tls11_context(ca):
    """A client that offers TLS 1.1 only. OpenSSL's default security level refuses TLS 1.1 on the client side too,
    so it is lowered here: the ClientHello must reach the server for the server's refusal to be what is tested."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(ca)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
        except ssl.SSLError:
            pass
        try:
            ctx.minimum_version = ssl.TLSVersion.TLSv1_1
        except (ValueError, ssl.SSLError):
            pass
        ctx.maximum_version = ssl.TLSVersion.TLSv1_1
    return ctx


def tls_connect(port, ctx, timeout=5.0):
    """A completed TLS handshake (raises on refusal)."""
    sock = socket.create_connection((HOST, port), timeout=timeout)
    try:
        return ctx.wrap_socket(sock, server_hostname=HOST)
    except BaseException:
        sock.close()
        raise


def peer_serial(port, ctx):
    with tls_connect(port, ctx) as s:
        cert = s.getpeercert()
        return int(cert["serialNumber"], 16), dict(x[0] for x in cert["subject"])["commonName"]


def https_request(port, ctx, method, path, body=None, headers=None, timeout=5.0):
    conn = http.client.HTTPSConnection(HOST, port, context=ctx, timeout=timeout)
    try:
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        return r.status, r.read()
    finally:
        conn.close()


def read_until_eof(sock, timeout):
    """Everything the server sends before closing; fails if it is still open after `timeout`."""
    deadline = time.monotonic() + timeout
    data = b""
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError(f"connection still open after {timeout}s; received {data[:200]!r}")
        sock.settimeout(remaining)
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            raise AssertionError(f"connection still open after {timeout}s; received {data[:200]!r}") from None
        except ConnectionResetError:
            return data
        if not chunk:
            return data
        data += chunk


class TlsServer(HeraldServer):
    """A herald with --tls-cert/--tls-key: readiness, metrics and ws_url go through TLS."""

    def __init__(self, pki, cert, key, *args, **kw):
        super().__init__("--tls-cert", cert, "--tls-key", key, *args, **kw)
        self.pki = pki
        self.ctx = client_context(pki.ca)

    def _wait_healthy(self):
        deadline = time.monotonic() + 10
        last = None
        while time.monotonic() < deadline:
            try:
                status, body = https_request(self.port, self.ctx, "GET", "/healthz", timeout=2)
                if status == 200:
                    return
                last = f"status {status} body {body!r}"
            except (OSError, ssl.SSLError) as e:
                last = repr(e)
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise AssertionError(f"GET https://…/healthz did not answer 200 (last: {last})\nstderr:\n{self.stderr_tail()}")

    def ws_url(self, path="/ws"):
        return f"wss://{HOST}:{self.port}{path}"

    def metrics(self):
        status, body = https_request(self.port, self.ctx, "GET", "/metrics")
        if status != 200:
            raise AssertionError(f"GET /metrics over TLS: expected 200, got {status} {body!r}")
        return parse_metrics(body.decode())

    def wait_log(self, event, timeout=5.0, after=0):
        """Waits for `event=<event>` in the log beyond offset `after`; returns the line."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in self.stderr()[after:].splitlines():
                if f"event={event} " in line + " ":
                    return line
            time.sleep(0.05)
        raise AssertionError(f"no event={event} in the log within {timeout}s\nstderr:\n{self.stderr_tail()}")


class TlsTestCase(AsyncHeraldTestCase):
    @classmethod
    def setUpClass(cls):
        cls.pki = Pki()
        cls.cert, cls.key = cls.pki.leaf("server", 1001)

    @classmethod
    def tearDownClass(cls):
        cls.pki.cleanup()

    def start_tls_server(self, *args, cert=None, key=None, **kw):
        server = TlsServer(self.pki, cert or self.cert, key or self.key, *args, **kw)
        self.addCleanup(self._stop_server, server)
        server.start()
        return server

    async def wss(self, server, ctx=None, **kw):
        return await self.ws(server, ssl=ctx or server.ctx, **kw)

    # -- what works -------------------------------------------------------------------------------------------

    async def test_wss_pubsub_and_https(self):
        server = self.start_tls_server()
        sub = await self.wss(server)
        await sub.connect()
        subscribed = await sub.subscribe("tls.room")
        pub = await self.wss(server)
        await pub.connect()
        await pub.publish("tls.room", {"hello": "wss"})
        msg = await sub.expect(op="message", channel="tls.room")
        self.assertEqual(msg["data"], {"hello": "wss"}, msg=f"delivery over wss: {msg!r}")
        self.assertEqual(msg["serial"], subscribed["serial"] + 1, msg=f"serial after {subscribed!r}: {msg!r}")
        ssl_object = sub.ws.transport.get_extra_info("ssl_object")
        self.assertEqual(ssl_object.selected_alpn_protocol(), "http/1.1")

        status, body = await self.to_thread(https_request, server.port, server.ctx, "GET", "/healthz")
        self.assertEqual((status, body.strip()), (200, b"ok"), msg="GET https://…/healthz")
        status, body = await self.to_thread(https_request, server.port, server.ctx, "POST", "/api/publish",
                                            body={"channel": "tls.room", "data": 2},
                                            headers={"Content-Type": "application/json"})
        self.assertEqual(status, 200, msg=f"POST https://…/api/publish: {status} {body!r}")
        msg = await sub.expect(op="message", channel="tls.room")
        self.assertEqual(msg["data"], 2)

    def test_chain_served_whole_and_tls12_suites_are_ecdhe_aead(self):
        server = self.start_tls_server()
        # The client trusts only the root: the handshake verifies only because the intermediate is sent.
        with tls_connect(server.port, client_context(self.pki.ca)) as s:
            self.assertEqual(s.version(), "TLSv1.3")
            self.assertEqual(s.selected_alpn_protocol(), "http/1.1")
        with tls_connect(server.port, client_context(self.pki.ca, max_version=ssl.TLSVersion.TLSv1_2)) as s:
            name, version, _ = s.cipher()
            self.assertEqual(version, "TLSv1.2")
            self.assertTrue(name.startswith("ECDHE-") and ("GCM" in name or "CHACHA20" in name),
                            msg=f"TLS 1.2 suite {name}: expected ECDHE with AES-GCM or ChaCha20-Poly1305")
        for ciphers in ("AES128-GCM-SHA256", "ECDHE-ECDSA-AES128-SHA"):
            ctx = client_context(self.pki.ca, max_version=ssl.TLSVersion.TLSv1_2, ciphers=ciphers)
            with self.assertRaises(ssl.SSLError, msg=f"a TLS 1.2 client offering only {ciphers} was accepted"):
                tls_connect(server.port, ctx).close()
        with self.assertRaises(ssl.SSLError, msg="a client offering ALPN h2 only was accepted"):
            tls_connect(server.port, client_context(self.pki.ca, alpn=("h2",))).close()

    async def test_slow_wss_consumer_closed_fast_one_complete(self):
        """The outbound limit holds with TLS: queued frames plus in-flight ciphertext."""
        server = self.start_tls_server("--outbound-limit", "65536", "--client-rate", "0")
        slow = RawClient(server, rcvbuf=4096, connect=False)  # a small advertised window
        self.addCleanup(slow.close)
        slow.sock.connect((HOST, server.port))
        slow.sock = server.ctx.wrap_socket(slow.sock, server_hostname=HOST)
        slow.handshake()
        slow.connect_op()
        slow.send_json({"op": "subscribe", "id": 2, "channel": "tls.bp"})
        reply = slow.recv_json(what="subscribed (slow wss client)")
        self.assertEqual(reply.get("op"), "subscribed", msg=repr(reply))
        # From here on the slow client never reads.

        fast = await self.wss(server)
        await fast.connect()
        await fast.subscribe("tls.bp")
        pub = await self.wss(server)
        await pub.connect()
        received = []

        async def read_fast():
            while True:
                m = await fast.expect(op="message", channel="tls.bp", timeout=15)
                received.append(m["serial"])

        reader = asyncio.ensure_future(read_fast())
        pad = "x" * 1000
        published = 0
        try:
            while published < 6000:
                published += 1
                await pub.publish("tls.bp", {"i": published, "pad": pad}, id=published + 10)
                if published % 500 == 0 and published >= 1000 and \
                        await self.to_thread(server.metric, "herald_slow_consumer_closes_total") >= 1:
                    break
            deadline = time.monotonic() + 20
            while len(received) < published and time.monotonic() < deadline and not reader.done():
                await asyncio.sleep(0.05)
            if reader.done():
                reader.result()
        finally:
            reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)
        self.assertGreaterEqual(await self.to_thread(server.metric, "herald_slow_consumer_closes_total"), 1,
                                msg=f"the non-reading wss subscriber was not closed after {published} messages")
        self.assertEqual(received, list(range(1, published + 1)), msg="fast wss subscriber: serials 1..N in order")

    # -- what is refused --------------------------------------------------------------------------------------

    def test_tls11_client_refused(self):
        server = self.start_tls_server()
        before = server.metric("herald_handshake_failures_total", reason="tls")
        established = None
        try:
            s = tls_connect(server.port, legacy_tls11_context(self.pki.ca))
            established = s.version()
            s.close()
        except (ssl.SSLError, OSError) as e:
            refusal = e
        self.assertIsNone(established, msg=f"a TLS 1.1-only client established a session ({established})")
        self.assertIn("protocol version", str(refusal).lower().replace("_", " "),
                      msg=f"expected the server's protocol_version alert, got {refusal!r}")
        self.assertEqual(server.metric("herald_handshake_failures_total", reason="tls"), before + 1)

    def test_min_version_13_refuses_tls12(self):
        server = self.start_tls_server("--tls-min-version", "1.3")
        with self.assertRaises(ssl.SSLError, msg="a TLS 1.2-max client was accepted with --tls-min-version 1.3"):
            tls_connect(server.port, client_context(self.pki.ca, max_version=ssl.TLSVersion.TLSv1_2)).close()
        with tls_connect(server.port, client_context(self.pki.ca)) as s:
            self.assertEqual(s.version(), "TLSv1.3")

    def test_plain_http_on_tls_port_is_answered_at_once(self):
        server = self.start_tls_server()
        started = time.monotonic()
        with socket.create_connection((HOST, server.port), timeout=2) as s:
            s.sendall(f"GET /healthz HTTP/1.1\r\nHost: {HOST}:{server.port}\r\n\r\n".encode())
            data = read_until_eof(s, 1.0)
        elapsed = time.monotonic() - started
        self.assertTrue(data.startswith(b"HTTP/1.1 400 "), msg=f"expected a plain-text 400, got {data[:200]!r}")
        self.assertIn(b"this port speaks TLS: use https:// or wss://", data)
        self.assertLess(elapsed, 1.0)
        # A plain WebSocket upgrade is refused the same way.
        with socket.create_connection((HOST, server.port), timeout=2) as s:
            s.sendall(b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                      b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
            data = read_until_eof(s, 1.0)
        self.assertTrue(data.startswith(b"HTTP/1.1 400 "), msg=f"plain upgrade on the TLS port: {data[:200]!r}")
        self.assertEqual(server.metric("herald_handshake_failures_total", reason="tls_plain_http"), 2)

    def test_handshake_timeout_covers_tls(self):
        server = self.start_tls_server("--handshake-timeout", "1")
        started = time.monotonic()
        with socket.create_connection((HOST, server.port), timeout=3) as silent, \
                socket.create_connection((HOST, server.port), timeout=3) as partial:
            partial.sendall(b"\x16\x03\x01")  # the start of a ClientHello, never finished
            for s, what in ((silent, "a client that sends nothing"), (partial, "a client stuck mid-ClientHello")):
                try:
                    read_until_eof(s, 2.5)
                except AssertionError as e:
                    raise AssertionError(f"{what}: {e}") from None
        self.assertLess(time.monotonic() - started, 2.5)
        self.assertGreaterEqual(server.metric("herald_handshake_failures_total", reason="timeout"), 2)

    def test_bad_pair_fails_start(self):
        other_cert, other_key = self.pki.leaf("other", 3003)
        missing = os.path.join(self.pki.dir, "missing.pem")
        for cert, key, expect in ((missing, self.key, "missing.pem"), (self.cert, other_key, "other.key")):
            r = subprocess.run([herald_binary(), "--listen", f"{HOST}:0", "--tls-cert", cert, "--tls-key", key],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=10)
            err = r.stderr.decode(errors="replace")
            self.assertEqual(r.returncode, 1, msg=f"start with cert {cert} key {key}: status {r.returncode}\n{err}")
            self.assertIn("event=start_failed", err)
            self.assertIn(expect, err)
            self.assertNotIn("event=listening", err)
            self.assertNotIn("PRIVATE KEY", err, msg="key material in the log")

    # -- reload -----------------------------------------------------------------------------------------------

    async def test_sighup_reload_keeps_old_connections(self):
        d = tempfile.mkdtemp(prefix="herald-tls-live-", dir=self.pki.dir)
        cert, key = os.path.join(d, "live.pem"), os.path.join(d, "live.key")
        shutil.copy(self.cert, cert)
        shutil.copy(self.key, key)
        server = self.start_tls_server(cert=cert, key=key)
        self.assertEqual(await self.to_thread(peer_serial, server.port, server.ctx), (1001, "localhost"))

        # A streams: B publishes every 10 ms on its own (old) connection while the pair changes.
        a = await self.wss(server)
        await a.connect()
        top = (await a.subscribe("tls.stream"))["serial"]
        a_serial = int(a.ws.transport.get_extra_info("ssl_object").getpeercert()["serialNumber"], 16)
        b = await self.wss(server)
        await b.connect()
        published = 0
        stop = asyncio.Event()

        async def publisher():
            nonlocal published
            while not stop.is_set():
                published += 1
                await b.publish("tls.stream", {"i": published}, id=published + 10)
                await asyncio.sleep(0.01)

        received = []

        async def reader():
            while True:
                msg = await a.expect(op="message", channel="tls.stream", timeout=5)
                if msg["data"] == "end":
                    return
                received.append(msg)

        pub_task = asyncio.ensure_future(publisher())
        read_task = asyncio.ensure_future(reader())
        try:
            await asyncio.sleep(0.3)

            # A new pair, in place (renamed over the old files), then SIGHUP.
            new_cert, new_key = await self.to_thread(self.pki.leaf, "renewed", 2002, cn="herald-renewed")
            shutil.copy(new_cert, cert + ".tmp")
            shutil.copy(new_key, key + ".tmp")
            os.replace(key + ".tmp", key)
            os.replace(cert + ".tmp", cert)
            mark = len(server.stderr())
            os.kill(server.proc.pid, signal.SIGHUP)
            line = await self.to_thread(server.wait_log, "tls_reloaded", after=mark)
            self.assertIn("herald-renewed", line)
            self.assertEqual(await self.to_thread(peer_serial, server.port, server.ctx), (2002, "herald-renewed"),
                             msg="a new handshake after SIGHUP should see the new certificate")
            await asyncio.sleep(0.3)

            # Bad files: a garbage certificate, then a key that does not match; the renewed pair stays in use.
            other_cert, other_key = await self.to_thread(self.pki.leaf, "unrelated", 4004)
            for bad_cert, bad_key, what in ((b"-----BEGIN CERTIFICATE-----\ngarbage\n", None, "garbage certificate"),
                                            (None, other_key, "key of another certificate")):
                if bad_cert is not None:
                    with open(cert, "wb") as f:
                        f.write(bad_cert)
                else:
                    shutil.copy(new_cert, cert)
                    shutil.copy(bad_key, key)
                mark = len(server.stderr())
                os.kill(server.proc.pid, signal.SIGHUP)
                line = await self.to_thread(server.wait_log, "tls_reload_failed", after=mark)
                self.assertIn("herald-renewed", line, msg=f"{what}: the log should name the pair kept: {line}")
                self.assertNotIn("PRIVATE KEY", server.stderr(), msg="key material in the log")
                self.assertEqual(await self.to_thread(peer_serial, server.port, server.ctx),
                                 (2002, "herald-renewed"), msg=f"after a failed reload ({what})")
                await asyncio.sleep(0.2)
        finally:
            stop.set()
            await asyncio.wait_for(pub_task, 10)
        await b.publish("tls.stream", "end", id=1)
        await asyncio.wait_for(read_task, 10)

        self.assertEqual(len(received), published, msg="A missed deliveries across the reloads")
        serials = [m["serial"] for m in received]
        self.assertEqual(serials, list(range(top + 1, top + 1 + published)), msg="A's serials are not consecutive")
        self.assertGreater(len(received), 0)
        self.assertEqual([m["data"]["i"] for m in received], list(range(1, published + 1)))
        self.assertGreater(published, 30, msg="the stream should have run through both reloads")
        # A still talks to the SSL session of its handshake: the old certificate.
        self.assertEqual(a_serial, 1001)
        self.assertEqual(int(a.ws.transport.get_extra_info("ssl_object").getpeercert()["serialNumber"], 16), 1001)
        await a.ping()


if __name__ == "__main__":
    unittest.main()
