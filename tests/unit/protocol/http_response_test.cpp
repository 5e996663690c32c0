// Tests for protocol/http_response.cpp: exact serialisation of complete responses.
#include "protocol/http_response.h"

#include <gtest/gtest.h>

namespace herald {
namespace {

TEST(HttpResponse, TextResponseIsCompleteAndCloses) {
    EXPECT_EQ(text_response(404, "not found").serialize(),
              "HTTP/1.1 404 Not Found\r\n"
              "Content-Type: text/plain; charset=utf-8\r\n"
              "Content-Length: 10\r\n"
              "Connection: close\r\n"
              "\r\n"
              "not found\n");
}

TEST(HttpResponse, TextResponseBodyEndsWithOneNewline) {
    EXPECT_EQ(text_response(200, "ok\n").body, "ok\n");
    EXPECT_EQ(text_response(200, "ok").body, "ok\n");
    EXPECT_EQ(text_response(200, "").body, "\n");
}

TEST(HttpResponse, ExtraHeadersFollowTheFixedOnes) {
    HttpResponse r = text_response(503, "too many connections");
    r.headers.emplace_back("Retry-After", "1");
    EXPECT_EQ(r.serialize(),
              "HTTP/1.1 503 Service Unavailable\r\n"
              "Content-Type: text/plain; charset=utf-8\r\n"
              "Content-Length: 21\r\n"
              "Connection: close\r\n"
              "Retry-After: 1\r\n"
              "\r\n"
              "too many connections\n");
}

TEST(HttpResponse, EmptyBodyStillHasContentLength) {
    HttpResponse r;
    EXPECT_EQ(r.serialize(), "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
}

TEST(HttpResponse, JsonContentType) {
    HttpResponse r;
    r.content_type = "application/json";
    r.body = "{}";
    EXPECT_EQ(r.serialize(),
              "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}");
}

TEST(HttpResponse, SwitchingProtocolsHasNoBodyHeaders) {
    HttpResponse r;
    r.status = 101;
    r.close = false;
    r.body = "ignored";
    r.headers = {{"Upgrade", "websocket"}, {"Connection", "Upgrade"}};
    EXPECT_EQ(r.serialize(), "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n");
}

TEST(HttpResponse, HeaderValuesCannotInjectLines) {
    HttpResponse r = text_response(400, "bad");
    r.headers.emplace_back("X-Echo", "a\r\nSet-Cookie: x=1");
    const std::string wire = r.serialize();
    EXPECT_EQ(wire.find("\r\nSet-Cookie"), std::string::npos) << wire;
    EXPECT_NE(wire.find("X-Echo: aSet-Cookie: x=1\r\n"), std::string::npos) << wire;
}

TEST(HttpResponse, ReasonPhrases) {
    const std::pair<int, std::string_view> cases[] = {
        {101, "Switching Protocols"}, {200, "OK"}, {400, "Bad Request"}, {401, "Unauthorized"},
        {404, "Not Found"}, {405, "Method Not Allowed"}, {411, "Length Required"}, {413, "Content Too Large"},
        {426, "Upgrade Required"}, {431, "Request Header Fields Too Large"}, {501, "Not Implemented"},
        {503, "Service Unavailable"}, {505, "HTTP Version Not Supported"}, {299, "Unknown"},
    };
    for (const auto& [status, phrase] : cases) EXPECT_EQ(http_reason_phrase(status), phrase) << "status " << status;
}

}  // namespace
}  // namespace herald
