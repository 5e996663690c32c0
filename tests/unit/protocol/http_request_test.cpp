// Tests for protocol/http_request.cpp: request heads in, the parsed request or the HTTP status out, under any split.
#include "protocol/http_request.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace herald {
namespace {

using namespace std::literals;

// The outcome of parsing `input` fed in pieces of `piece` bytes.
struct Outcome {
    HttpParseStatus status = HttpParseStatus::NeedMore;
    int error_status = 0;
    std::string error_reason;
    size_t consumed = 0;
    HttpRequest request;
};

Outcome parse(std::string_view input, size_t piece = SIZE_MAX, HttpParseLimits limits = {}) {
    HttpRequestParser parser(limits);
    Outcome out;
    size_t pos = 0;
    while (pos < input.size() && parser.status() == HttpParseStatus::NeedMore) {
        const std::string_view chunk = input.substr(pos, std::min(piece, input.size() - pos));
        const size_t used = parser.feed(chunk);
        out.consumed += used;
        pos += chunk.size();
        if (used < chunk.size()) break;
    }
    out.status = parser.status();
    out.error_status = parser.error_status();
    out.error_reason = parser.error_reason();
    out.request = parser.take_request();
    return out;
}

const char* kUpgrade =
    "GET /ws?token=abc HTTP/1.1\r\n"
    "Host: example.com\r\n"
    "Upgrade: websocket\r\n"
    "Connection: keep-alive, Upgrade\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    "Sec-WebSocket-Version: 13\r\n"
    "\r\n";

TEST(HttpRequestParser, ParsesAnUpgradeRequestUnderEverySplit) {
    for (size_t piece : {SIZE_MAX, size_t{1}, size_t{2}, size_t{5}, size_t{17}}) {
        SCOPED_TRACE("piece size " + std::to_string(piece));
        Outcome o = parse(kUpgrade, piece);
        ASSERT_EQ(o.status, HttpParseStatus::Complete) << o.error_status << " " << o.error_reason;
        EXPECT_EQ(o.consumed, std::string_view(kUpgrade).size());
        EXPECT_EQ(o.request.method, "GET");
        EXPECT_EQ(o.request.target, "/ws?token=abc");
        EXPECT_EQ(o.request.path, "/ws");
        EXPECT_EQ(o.request.query, "token=abc");
        EXPECT_EQ(o.request.version_minor, 1);
        ASSERT_EQ(o.request.headers.size(), 5u);
        EXPECT_EQ(o.request.headers[0].name, "Host");
        EXPECT_EQ(o.request.headers[0].value, "example.com");
        EXPECT_TRUE(o.request.body.empty());
    }
}

TEST(HttpRequestParser, LeavesBytesAfterTheHeadForTheCaller) {
    const std::string input = std::string(kUpgrade) + "\x81\x85\x37\xfa";
    HttpRequestParser parser({});
    EXPECT_EQ(parser.feed(input), std::string_view(kUpgrade).size());
    EXPECT_EQ(parser.status(), HttpParseStatus::Complete);
    EXPECT_EQ(parser.feed("more"), 0u) << "a complete parser consumes nothing";
    EXPECT_EQ(parser.buffered_bytes(), 0u);
}

TEST(HttpRequestParser, ReadsAContentLengthBodyUnderEverySplit) {
    const std::string input =
        "POST /api/publish HTTP/1.1\r\nHost: h\r\nContent-Length: 11\r\n\r\n{\"a\":\"b c\"}EXTRA";
    for (size_t piece : {SIZE_MAX, size_t{1}, size_t{3}}) {
        SCOPED_TRACE("piece size " + std::to_string(piece));
        Outcome o = parse(input, piece);
        ASSERT_EQ(o.status, HttpParseStatus::Complete) << o.error_reason;
        EXPECT_EQ(o.request.body, "{\"a\":\"b c\"}");
        EXPECT_EQ(o.consumed, input.size() - 5) << "the bytes after the body are not consumed";
    }
}

TEST(HttpRequestParser, NeedsMoreUntilTheBodyIsComplete) {
    HttpRequestParser parser({});
    const std::string head = "POST /api/publish HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\n\r\nab";
    EXPECT_EQ(parser.feed(head), head.size());
    EXPECT_EQ(parser.status(), HttpParseStatus::NeedMore);
    EXPECT_EQ(parser.feed("cdef"), 2u);
    EXPECT_EQ(parser.status(), HttpParseStatus::Complete);
    EXPECT_EQ(parser.request().body, "abcd");
}

TEST(HttpRequestParser, BufferedBytesWhileTheHeadIsIncomplete) {
    HttpRequestParser parser({});
    EXPECT_EQ(parser.feed("GET /ws HTTP/1.1\r\nHo"), 20u);
    EXPECT_EQ(parser.status(), HttpParseStatus::NeedMore);
    EXPECT_EQ(parser.buffered_bytes(), 20u);
    parser.feed("st: x\r\n\r\n");
    EXPECT_EQ(parser.status(), HttpParseStatus::Complete);
    EXPECT_EQ(parser.buffered_bytes(), 0u);
}

TEST(HttpRequestParser, ToleratesBareLineFeeds) {
    Outcome o = parse("GET /healthz HTTP/1.1\nHost: h\nX-A: 1\n\n");
    ASSERT_EQ(o.status, HttpParseStatus::Complete) << o.error_reason;
    EXPECT_EQ(o.request.path, "/healthz");
    ASSERT_EQ(o.request.headers.size(), 2u);
    EXPECT_EQ(o.request.headers[1].value, "1");
}

TEST(HttpRequestParser, IgnoresOneEmptyLineBeforeTheRequestLine) {
    Outcome o = parse("\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n");
    ASSERT_EQ(o.status, HttpParseStatus::Complete) << o.error_reason;
    EXPECT_EQ(o.request.path, "/");
}

TEST(HttpRequestParser, AcceptsHttp10AndAbsoluteForm) {
    Outcome o = parse("GET http://example.com:8080/api/history?channel=a HTTP/1.0\r\n\r\n");
    ASSERT_EQ(o.status, HttpParseStatus::Complete) << o.error_reason;
    EXPECT_EQ(o.request.version_minor, 0);
    EXPECT_EQ(o.request.path, "/api/history");
    EXPECT_EQ(o.request.query, "channel=a");
    Outcome bare = parse("GET http://example.com HTTP/1.1\r\nHost: example.com\r\n\r\n");
    ASSERT_EQ(bare.status, HttpParseStatus::Complete);
    EXPECT_EQ(bare.request.path, "/");
}

TEST(HttpRequestParser, TrimsHeaderValuesAndAllowsIdenticalContentLengths) {
    Outcome o = parse("POST /x HTTP/1.1\r\nHost:\t h \t\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nok");
    ASSERT_EQ(o.status, HttpParseStatus::Complete) << o.error_reason;
    EXPECT_EQ(*o.request.header("host"), "h");
    EXPECT_EQ(o.request.body, "ok");
}

struct Rejection {
    std::string name;
    std::string input;
    int status;
};

std::string many_headers(size_t n) {
    std::string out = "GET / HTTP/1.1\r\n";
    for (size_t i = 0; i < n; ++i) out += "X-H" + std::to_string(i) + ": v\r\n";
    return out + "\r\n";
}

TEST(HttpRequestParser, RejectionsUnderEverySplit) {
    const std::vector<Rejection> cases = {
        {"HTTP/2.0", "GET / HTTP/2.0\r\nHost: h\r\n\r\n", 505},
        {"HTTP/2", "GET / HTTP/2\r\nHost: h\r\n\r\n", 505},
        {"HTTP/0.9", "GET / HTTP/0.9\r\n\r\n", 505},
        {"HTTP/3.0", "GET / HTTP/3.0\r\n\r\n", 505},
        {"HTTP/2 connection preface", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 505},
        {"lower-case version", "GET / http/1.1\r\n\r\n", 400},
        {"version without minor", "GET / HTTP/1\r\n\r\n", 400},
        {"garbage version", "GET / HTTP/1.x\r\n\r\n", 400},
        {"missing version", "GET /\r\n\r\n", 400},
        {"empty request line", "\r\n\r\n", 400},
        {"double space", "GET  / HTTP/1.1\r\n\r\n", 400},
        {"space in target", "GET /a b HTTP/1.1\r\n\r\n", 400},
        {"bad method character", "G(T / HTTP/1.1\r\n\r\n", 400},
        {"relative target", "GET ws HTTP/1.1\r\n\r\n", 400},
        {"control character in target", "GET /\x01 HTTP/1.1\r\n\r\n", 400},
        {"header without colon", "GET / HTTP/1.1\r\nHost h\r\n\r\n", 400},
        {"space before colon", "GET / HTTP/1.1\r\nHost : h\r\n\r\n", 400},
        {"empty header name", "GET / HTTP/1.1\r\n: h\r\n\r\n", 400},
        {"obs-fold", "GET / HTTP/1.1\r\nHost: h\r\nX-A: a\r\n b\r\n\r\n", 400},
        {"obs-fold with tab", "GET / HTTP/1.1\r\nHost: h\r\n\tb\r\n\r\n", 400},
        {"bare CR in header", "GET / HTTP/1.1\r\nX-A: a\rb\r\n\r\n", 400},
        {"NUL in header value", std::string("GET / HTTP/1.1\r\nX-A: a\0b\r\n\r\n"sv), 400},
        {"two Host headers", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400},
        {"non-numeric Content-Length", "POST / HTTP/1.1\r\nContent-Length: abc\r\n\r\n", 400},
        {"negative Content-Length", "POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n", 400},
        {"empty Content-Length", "POST / HTTP/1.1\r\nContent-Length:\r\n\r\n", 400},
        {"conflicting Content-Length", "POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 400},
        {"conflicting Content-Length list", "POST / HTTP/1.1\r\nContent-Length: 1, 2\r\n\r\n", 400},
        {"body over the limit", "POST / HTTP/1.1\r\nContent-Length: 65537\r\n\r\n", 413},
        {"Content-Length overflowing 64 bits", "POST / HTTP/1.1\r\nContent-Length: 99999999999999999999999\r\n\r\n",
         413},
        {"chunked", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", 411},
        {"gzip, chunked", "POST / HTTP/1.1\r\nTransfer-Encoding: gzip, Chunked\r\n\r\n", 411},
        {"unknown transfer coding", "POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", 501},
        {"Transfer-Encoding and Content-Length",
         "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\nabc", 400},
        {"101 header fields", many_headers(101), 431},
        {"head over 16 KiB", "GET / HTTP/1.1\r\nX-Big: " + std::string(16 * 1024, 'a') + "\r\n\r\n", 431},
        {"head over 16 KiB without an end", "GET / HTTP/1.1\r\nX-Big: " + std::string(20 * 1024, 'a'), 431},
    };
    for (const auto& c : cases) {
        for (size_t piece : {SIZE_MAX, size_t{1}, size_t{7}}) {
            SCOPED_TRACE("case: " + c.name + ", piece size " + std::to_string(piece));
            Outcome o = parse(c.input, piece);
            EXPECT_EQ(o.status, HttpParseStatus::Failed);
            EXPECT_EQ(o.error_status, c.status) << "reason: " << o.error_reason;
            EXPECT_FALSE(o.error_reason.empty());
        }
    }
}

TEST(HttpRequestParser, ChunkedReasonTellsTheClientWhatToDo) {
    Outcome o = parse("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n");
    EXPECT_NE(o.error_reason.find("Content-Length"), std::string::npos) << "got: " << o.error_reason;
}

TEST(HttpRequestParser, HeaderCountLimitIsInclusive) {
    Outcome o = parse(many_headers(100));
    EXPECT_EQ(o.status, HttpParseStatus::Complete) << o.error_status << " " << o.error_reason;
    EXPECT_EQ(o.request.headers.size(), 100u);
}

TEST(HttpRequestParser, HeadOfExactlyTheLimitIsAccepted) {
    std::string head = "GET / HTTP/1.1\r\nX-Fill: ";
    const std::string tail = "\r\n\r\n";
    head += std::string(16 * 1024 - head.size() - tail.size(), 'a') + tail;
    ASSERT_EQ(head.size(), 16u * 1024u);
    for (size_t piece : {SIZE_MAX, size_t{1}, size_t{1000}}) {
        Outcome o = parse(head, piece);
        EXPECT_EQ(o.status, HttpParseStatus::Complete) << "piece " << piece << ": " << o.error_reason;
    }
    Outcome over = parse("GET / HTTP/1.1\r\nX-Fill: a" + head.substr(23));
    EXPECT_EQ(over.error_status, 431);
}

TEST(HttpRequestParser, BodyAtTheLimitIsAccepted) {
    Outcome o = parse("POST / HTTP/1.1\r\nContent-Length: 65536\r\n\r\n" + std::string(65536, 'b'));
    ASSERT_EQ(o.status, HttpParseStatus::Complete) << o.error_reason;
    EXPECT_EQ(o.request.body.size(), 65536u);
}

TEST(HttpRequestParser, CustomLimits) {
    HttpParseLimits limits;
    limits.max_head_bytes = 64;
    limits.max_header_count = 1;
    limits.max_body_bytes = 3;
    EXPECT_EQ(parse("GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\n\r\n", SIZE_MAX, limits).error_status, 431);
    EXPECT_EQ(parse("GET / HTTP/1.1\r\nA: " + std::string(60, 'x') + "\r\n\r\n", SIZE_MAX, limits).error_status, 431);
    EXPECT_EQ(parse("POST / HTTP/1.1\r\nContent-Length: 4\r\n\r\nabcd", SIZE_MAX, limits).error_status, 413);
}

TEST(HttpRequestParser, FailedParserConsumesNothingMore) {
    HttpRequestParser parser({});
    parser.feed("GET / HTTP/2.0\r\n\r\n");
    ASSERT_EQ(parser.status(), HttpParseStatus::Failed);
    EXPECT_EQ(parser.feed("GET / HTTP/1.1\r\n\r\n"), 0u);
    EXPECT_EQ(parser.error_status(), 505);
}

TEST(HttpRequest, HeaderLookupIsCaseInsensitive) {
    Outcome o = parse("GET / HTTP/1.1\r\nsec-websocket-KEY: k\r\nX-A: 1\r\nx-a: 2\r\n\r\n");
    ASSERT_EQ(o.status, HttpParseStatus::Complete);
    ASSERT_NE(o.request.header("Sec-WebSocket-Key"), nullptr);
    EXPECT_EQ(*o.request.header("Sec-WebSocket-Key"), "k");
    EXPECT_EQ(*o.request.header("X-A"), "1") << "first of several";
    EXPECT_EQ(o.request.header("Missing"), nullptr);
}

TEST(HttpRequest, HeaderTokensJoinsRepeatedHeadersAndCommaLists) {
    Outcome o = parse(
        "GET / HTTP/1.1\r\nSec-WebSocket-Protocol: chat, superchat\r\nsec-websocket-protocol:herald.v1.json ,, x\r\n\r\n");
    ASSERT_EQ(o.status, HttpParseStatus::Complete);
    EXPECT_EQ(o.request.header_tokens("Sec-WebSocket-Protocol"),
              (std::vector<std::string>{"chat", "superchat", "herald.v1.json", "x"}));
    EXPECT_TRUE(o.request.header_tokens("Connection").empty());
}

TEST(HttpRequest, QueryParamDecoding) {
    HttpRequest r;
    r.query = "channel=chat%3Aroom+1&since=42&empty=&flag&dup=first&dup=second&bad=%zz%4&caf%C3%A9=yes&a+b=sp";
    struct Case {
        std::string name;
        std::optional<std::string> expected;
    };
    const Case cases[] = {
        {"channel", "chat:room 1"}, {"since", "42"},     {"empty", ""},         {"flag", ""},
        {"dup", "first"},           {"bad", "%zz%4"},    {"caf\xC3\xA9", "yes"}, {"a b", "sp"},
        {"missing", std::nullopt},  {"chan", std::nullopt},
    };
    for (const auto& c : cases) EXPECT_EQ(r.query_param(c.name), c.expected) << "parameter " << c.name;
    HttpRequest none;
    EXPECT_EQ(none.query_param("a"), std::nullopt);
}

}  // namespace
}  // namespace herald
