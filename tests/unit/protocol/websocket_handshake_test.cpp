// Tests for protocol/websocket_handshake.cpp: one rule per case, requests written as raw HTTP and parsed.
#include "protocol/websocket_handshake.h"

#include <gtest/gtest.h>

#include <set>
#include <string>
#include <vector>

namespace herald {
namespace {

HttpRequest parse(std::string_view raw) {
    HttpRequestParser parser({});
    parser.feed(raw);
    EXPECT_EQ(parser.status(), HttpParseStatus::Complete) << parser.error_reason() << "\n" << raw;
    return parser.take_request();
}

std::string find_header(const HttpResponse& r, std::string_view name) {
    for (const auto& [n, v] : r.headers) {
        if (n == name) return v;
    }
    return "<absent>";
}

// The RFC 6455 1.3 example, at /ws, with herald.v1.json among the offered subprotocols.
struct RequestSpec {
    std::string method = "GET";
    std::string target = "/ws";
    std::string version = "HTTP/1.1";
    std::vector<std::string> headers = {
        "Host: server.example.com",
        "Upgrade: websocket",
        "Connection: Upgrade",
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
        "Origin: http://example.com",
        "Sec-WebSocket-Protocol: chat, herald.v1.json",
        "Sec-WebSocket-Version: 13",
    };

    RequestSpec& without(std::string_view prefix) {
        std::erase_if(headers, [&](const std::string& h) { return h.rfind(prefix, 0) == 0; });
        return *this;
    }
    RequestSpec& with(std::string header) {
        headers.push_back(std::move(header));
        return *this;
    }
    RequestSpec& replace(std::string_view prefix, std::string header) { return without(prefix).with(std::move(header)); }
    std::string raw() const {
        std::string out = method + " " + target + " " + version + "\r\n";
        for (const auto& h : headers) out += h + "\r\n";
        return out + "\r\n";
    }
};

TEST(WebSocketHandshake, AcceptsTheRfcExampleWithExactResponse) {
    const HandshakeOutcome o = decide_websocket_handshake(parse(RequestSpec{}.raw()));
    ASSERT_TRUE(o.accepted) << o.reason;
    EXPECT_EQ(o.response.serialize(),
              "HTTP/1.1 101 Switching Protocols\r\n"
              "Upgrade: websocket\r\n"
              "Connection: Upgrade\r\n"
              "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
              "Sec-WebSocket-Protocol: herald.v1.json\r\n"
              "\r\n");
}

struct Accepted {
    std::string name;
    RequestSpec spec;
};

TEST(WebSocketHandshake, AcceptedVariants) {
    const std::vector<Accepted> cases = {
        {"no subprotocol offered", RequestSpec{}.without("Sec-WebSocket-Protocol")},
        {"only herald.v1.json offered", RequestSpec{}.replace("Sec-WebSocket-Protocol", "Sec-WebSocket-Protocol: herald.v1.json")},
        {"protocols in two headers",
         RequestSpec{}.replace("Sec-WebSocket-Protocol", "Sec-WebSocket-Protocol: chat").with("Sec-WebSocket-Protocol: herald.v1.json")},
        {"case-insensitive upgrade tokens",
         RequestSpec{}.replace("Upgrade", "Upgrade: WebSocket").replace("Connection", "Connection: keep-alive, UPGRADE")},
        {"query string on /ws", [] { RequestSpec s; s.target = "/ws?token=1"; return s; }()},
        {"no Origin", RequestSpec{}.without("Origin")},
        {"HTTP/1.1 compatible minor version", [] { RequestSpec s; s.version = "HTTP/1.2"; return s; }()},
    };
    for (const auto& c : cases) {
        SCOPED_TRACE("case: " + c.name);
        const HandshakeOutcome o = decide_websocket_handshake(parse(c.spec.raw()));
        EXPECT_TRUE(o.accepted) << "rejected with " << o.response.status << " " << o.reason;
        EXPECT_EQ(o.response.status, 101);
        EXPECT_EQ(find_header(o.response, "Sec-WebSocket-Protocol"), "herald.v1.json");
        EXPECT_EQ(find_header(o.response, "Sec-WebSocket-Accept"), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
        EXPECT_TRUE(o.reason.empty());
    }
}

struct Rejected {
    std::string name;
    RequestSpec spec;
    int status;
    std::string reason;
};

RequestSpec with_method(std::string method) {
    RequestSpec s;
    s.method = std::move(method);
    return s;
}
RequestSpec with_target(std::string target) {
    RequestSpec s;
    s.target = std::move(target);
    return s;
}

TEST(WebSocketHandshake, RejectionsOnePerRule) {
    RequestSpec http10;
    http10.version = "HTTP/1.0";
    const std::vector<Rejected> cases = {
        {"POST", with_method("POST"), 405, "method"},
        {"HEAD", with_method("HEAD"), 405, "method"},
        {"HTTP/1.0", http10, 400, "version"},
        {"no Host", RequestSpec{}.without("Host"), 400, "no_host"},
        {"no Upgrade", RequestSpec{}.without("Upgrade"), 400, "not_upgrade"},
        {"Upgrade: h2c", RequestSpec{}.replace("Upgrade", "Upgrade: h2c"), 400, "not_upgrade"},
        {"no Connection", RequestSpec{}.without("Connection"), 400, "not_upgrade"},
        {"Connection without upgrade", RequestSpec{}.replace("Connection", "Connection: keep-alive"), 400, "not_upgrade"},
        {"no Sec-WebSocket-Version", RequestSpec{}.without("Sec-WebSocket-Version"), 426, "ws_version"},
        {"Sec-WebSocket-Version 8", RequestSpec{}.replace("Sec-WebSocket-Version", "Sec-WebSocket-Version: 8"), 426,
         "ws_version"},
        {"Sec-WebSocket-Version 13, 8", RequestSpec{}.replace("Sec-WebSocket-Version", "Sec-WebSocket-Version: 13, 8"),
         426, "ws_version"},
        {"no key", RequestSpec{}.without("Sec-WebSocket-Key"), 400, "bad_key"},
        {"key not base64", RequestSpec{}.replace("Sec-WebSocket-Key", "Sec-WebSocket-Key: not a key!"), 400, "bad_key"},
        {"key of 15 bytes", RequestSpec{}.replace("Sec-WebSocket-Key", "Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAA"), 400,
         "bad_key"},
        {"key of 17 bytes", RequestSpec{}.replace("Sec-WebSocket-Key", "Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAAA="),
         400, "bad_key"},
        {"two keys", RequestSpec{}.with("Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ=="), 400, "bad_key"},
        {"path /", with_target("/"), 404, "path"},
        {"path /ws/", with_target("/ws/"), 404, "path"},
        {"path /WS", with_target("/WS"), 404, "path"},
        {"subprotocol not offered",
         RequestSpec{}.replace("Sec-WebSocket-Protocol", "Sec-WebSocket-Protocol: chat, superchat"), 400, "subprotocol"},
        {"subprotocol with different case",
         RequestSpec{}.replace("Sec-WebSocket-Protocol", "Sec-WebSocket-Protocol: HERALD.V1.JSON"), 400, "subprotocol"},
    };
    const std::set<std::string> bounded = {"method", "version", "not_upgrade", "ws_version", "bad_key",
                                           "path",   "subprotocol", "no_host"};
    for (const auto& c : cases) {
        SCOPED_TRACE("case: " + c.name);
        const HandshakeOutcome o = decide_websocket_handshake(parse(c.spec.raw()));
        EXPECT_FALSE(o.accepted);
        EXPECT_EQ(o.response.status, c.status);
        EXPECT_EQ(o.reason, c.reason);
        EXPECT_TRUE(bounded.count(o.reason)) << "reason outside the metric label set: " << o.reason;
        EXPECT_TRUE(o.response.close) << "every rejection closes the connection";
        EXPECT_FALSE(o.response.body.empty());
        const std::string wire = o.response.serialize();
        EXPECT_NE(wire.find("\r\nConnection: close\r\n"), std::string::npos) << wire;
        EXPECT_NE(wire.find("\r\nContent-Length: " + std::to_string(o.response.body.size()) + "\r\n"),
                  std::string::npos)
            << wire;
        EXPECT_EQ(wire.find("Sec-WebSocket-Accept"), std::string::npos) << wire;
    }
}

TEST(WebSocketHandshake, MethodRejectionNamesTheAllowedMethod) {
    const HandshakeOutcome o = decide_websocket_handshake(parse(with_method("POST").raw()));
    EXPECT_EQ(find_header(o.response, "Allow"), "GET");
}

TEST(WebSocketHandshake, VersionRejectionAdvertises13) {
    const HandshakeOutcome o = decide_websocket_handshake(
        parse(RequestSpec{}.replace("Sec-WebSocket-Version", "Sec-WebSocket-Version: 8").raw()));
    EXPECT_EQ(find_header(o.response, "Sec-WebSocket-Version"), "13");
}

TEST(WebSocketHandshake, IsWebSocketUpgradeLooksOnlyAtUpgrade) {
    EXPECT_TRUE(is_websocket_upgrade(parse(RequestSpec{}.raw())));
    EXPECT_TRUE(is_websocket_upgrade(parse(with_method("POST").without("Connection").raw())));
    EXPECT_TRUE(is_websocket_upgrade(parse(RequestSpec{}.replace("Upgrade", "Upgrade: foo, WEBSOCKET").raw())));
    EXPECT_FALSE(is_websocket_upgrade(parse("GET /healthz HTTP/1.1\r\nHost: h\r\n\r\n")));
    EXPECT_FALSE(is_websocket_upgrade(parse(RequestSpec{}.replace("Upgrade", "Upgrade: h2c").raw())));
}

}  // namespace
}  // namespace herald
