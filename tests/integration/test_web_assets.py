"""The SDK and the demo page served by the real binary: /sdk/herald-client.js to any origin, /demo/ with its
Content-Security-Policy and the files it loads, revalidation by ETag, and --no-demo."""
import os
import re
import unittest

from harness import HeraldTestCase, http_request


class WebAssetsTest(HeraldTestCase):
    def setUp(self):
        self.server = self.start_server()

    def get(self, path, **kw):
        return http_request(self.server.port, "GET", path, **kw)

    def test_sdk_is_javascript_for_any_origin(self):
        r = self.get("/sdk/herald-client.js")
        self.assertEqual(r.status, 200, msg=repr(r))
        self.assertEqual(r.header("content-type"), "text/javascript; charset=utf-8", msg=repr(r))
        self.assertEqual(r.header("access-control-allow-origin"), "*", msg=repr(r))
        self.assertIn(b"export class Herald", r.body, msg="the served file is the SDK")
        with open(f"{self.server_root()}/sdk/js/herald-client.js", "rb") as f:
            self.assertEqual(r.body, f.read(), msg="served bytes equal sdk/js/herald-client.js")
        d = self.get("/sdk/herald-client.d.ts")
        self.assertEqual((d.status, b"export class Herald" in d.body), (200, True), msg=repr(d))

    def test_demo_page_and_everything_it_loads(self):
        page = self.get("/demo/")
        self.assertEqual(page.status, 200, msg=repr(page))
        self.assertTrue(page.header("content-type").startswith("text/html"), msg=repr(page))
        policy = page.header("content-security-policy") or ""
        self.assertIn("script-src 'self'", policy, msg=f"CSP: {policy!r}")
        self.assertIn("frame-ancestors 'none'", policy, msg=f"CSP: {policy!r}")
        refs = re.findall(rb'(?:src|href)="(/[^"]+)"', page.body)
        self.assertGreaterEqual(len(refs), 3, msg=f"page references: {refs}")
        for ref in refs:
            with self.subTest(ref=ref):
                r = self.get(ref.decode())
                self.assertEqual(r.status, 200, msg=f"GET {ref!r} (referenced by /demo/): {r!r}")
        r = self.get("/demo")
        self.assertEqual((r.status, r.header("location")), (301, "/demo/"), msg=repr(r))

    def test_etag_revalidation(self):
        first = self.get("/demo/demo.js")
        etag = first.header("etag")
        self.assertTrue(etag and etag.startswith('"'), msg=repr(first))
        again = self.get("/demo/demo.js", headers={"If-None-Match": etag})
        self.assertEqual((again.status, again.body), (304, b""), msg=repr(again))
        self.assertEqual(again.header("etag"), etag)

    def test_wrong_method_and_unknown_files(self):
        r = http_request(self.server.port, "POST", "/demo/", body=b"x")
        self.assertEqual((r.status, r.header("allow")), (405, "GET"), msg=repr(r))
        for path in ("/demo/nope.js", "/demo/../sdk/js/index.d.ts", "/sdk/js/herald-client.js", "/sdk/"):
            with self.subTest(path=path):
                self.assertEqual(self.get(path).status, 404, msg=path)

    def server_root(self):
        return os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


class NoDemoTest(HeraldTestCase):
    def test_no_demo_serves_only_the_sdk(self):
        server = self.start_server("--no-demo")
        for path in ("/demo/", "/demo/demo.js", "/"):
            with self.subTest(path=path):
                r = http_request(server.port, "GET", path)
                self.assertEqual(r.status, 404, msg=f"--no-demo: GET {path}: {r!r}")
        r = http_request(server.port, "GET", "/sdk/herald-client.js")
        self.assertEqual(r.status, 200, msg=f"--no-demo keeps the SDK: {r!r}")
        self.assertNotIn("demo", server.stderr(), msg="--no-demo: no demo URL in the log")


if __name__ == "__main__":
    unittest.main()
