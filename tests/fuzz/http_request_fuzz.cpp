// Fuzz target for protocol/http_request.cpp and protocol/websocket_handshake.cpp: arbitrary bytes as the start of a
// connection, fed whole and again in reads the first input byte chooses; a complete request then goes through the
// handshake decision and the response serialiser, as the broker does.
//
// Input: [split control][options][stream...]
//   split control — see Splitter (fuzz_support.h);
//   options       — bits 0-1 max_head_bytes, bits 2-3 max_header_count, bits 4-5 max_body_bytes (0 = default),
//                   small values so the 431/413 paths are reached without megabyte inputs.
// Invariants beyond the sanitizers: consumed <= bytes given, and everything while the parser still needs more;
// after Complete/Failed nothing more is consumed; the held head never exceeds its limit by more than one byte;
// a failure carries one of the documented statuses; any split gives the same request or the same failure after
// the same number of bytes; an accepted upgrade is a GET of /ws with version 13 and the RFC 6455 accept key; no
// serialised response lets a header value break the head.
#include <openssl/evp.h>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "fuzz_support.h"
#include "protocol/http_request.h"
#include "protocol/http_response.h"
#include "protocol/websocket_handshake.h"

namespace {

using herald::HttpParseLimits;
using herald::HttpParseStatus;
using herald::HttpRequest;
using herald::HttpRequestParser;
using herald::fuzz::Splitter;

constexpr size_t kHeadLimits[4] = {16 * 1024, 32, 200, 1024};
constexpr size_t kHeaderCounts[4] = {100, 0, 1, 4};
constexpr size_t kBodyLimits[4] = {64 * 1024, 0, 10, 1000};

struct Outcome {
    HttpParseStatus status = HttpParseStatus::NeedMore;
    size_t consumed = 0;
    int error_status = 0;
    std::string error_reason;
    HttpRequest request;
};

bool same_request(const HttpRequest& a, const HttpRequest& b) {
    if (a.method != b.method || a.target != b.target || a.path != b.path || a.query != b.query ||
        a.version_minor != b.version_minor || a.body != b.body || a.headers.size() != b.headers.size()) {
        return false;
    }
    for (size_t i = 0; i < a.headers.size(); ++i) {
        if (a.headers[i].name != b.headers[i].name || a.headers[i].value != b.headers[i].value) return false;
    }
    return true;
}

// Each read is copied to a buffer of exactly its size, so that reading past it is an ASan report.
Outcome run(std::string_view stream, const HttpParseLimits& limits, std::optional<Splitter> splitter) {
    HttpRequestParser parser(limits);
    Outcome out;
    size_t pos = 0;
    size_t reads = 0;
    while (parser.status() == HttpParseStatus::NeedMore && (pos < stream.size() || reads == 0)) {
        const size_t piece = splitter ? splitter->next(stream.size() - pos) : stream.size() - pos;
        const std::string buffer(stream.substr(pos, piece));
        const size_t consumed = parser.feed(buffer);
        FUZZ_CHECK(consumed <= buffer.size(), "consumed <= bytes given");
        FUZZ_CHECK(parser.buffered_bytes() <= limits.max_head_bytes + 1, "the held head stays within its limit");
        if (parser.status() == HttpParseStatus::NeedMore) {
            FUZZ_CHECK(consumed == buffer.size(), "everything is consumed while more is needed");
        }
        out.consumed += consumed;
        pos += piece;
        ++reads;
    }
    if (parser.status() != HttpParseStatus::NeedMore) {
        const HttpParseStatus status = parser.status();
        FUZZ_CHECK(parser.feed("GET / HTTP/1.1\r\n\r\n") == 0, "nothing is consumed once done");
        FUZZ_CHECK(parser.feed({}) == 0, "nothing is consumed once done (empty read)");
        FUZZ_CHECK(parser.status() == status, "the status is final");
    }
    out.status = parser.status();
    out.error_status = parser.error_status();
    out.error_reason = parser.error_reason();
    if (out.status == HttpParseStatus::Complete) {
        out.request = parser.take_request();
    }
    return out;
}

// base64(SHA-1(key + GUID)) computed with OpenSSL, independently of protocol/base64.cpp.
std::string reference_accept(std::string_view key) {
    const std::string input = std::string(key) + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int digest_size = 0;
    if (EVP_Digest(input.data(), input.size(), digest, &digest_size, EVP_sha1(), nullptr) != 1) return {};
    unsigned char encoded[64];
    const int n = EVP_EncodeBlock(encoded, digest, static_cast<int>(digest_size));
    return std::string(reinterpret_cast<const char*>(encoded), static_cast<size_t>(n));
}

// A serialised response whose head is well-formed: status line, CRLF-terminated lines, no bare CR/LF or NUL.
void check_response(const herald::HttpResponse& response) {
    const std::string wire = response.serialize();
    const std::string status_line = "HTTP/1.1 " + std::to_string(response.status) + " ";
    FUZZ_CHECK(wire.compare(0, status_line.size(), status_line) == 0, "a response starts with its status line");
    const size_t head_end = wire.find("\r\n\r\n");
    FUZZ_CHECK(head_end != std::string::npos, "a response head ends with an empty line");
    const std::string_view head = std::string_view(wire).substr(0, head_end + 2);
    for (size_t i = 0; i < head.size(); ++i) {
        const char c = head[i];
        FUZZ_CHECK(c != '\0', "no NUL in a response head");
        if (c == '\r') FUZZ_CHECK(i + 1 < head.size() && head[i + 1] == '\n', "no bare CR in a response head");
        if (c == '\n') FUZZ_CHECK(i > 0 && head[i - 1] == '\r', "no bare LF in a response head");
    }
    FUZZ_CHECK(!herald::http_reason_phrase(response.status).empty(), "every status has a reason phrase");
}

void check_request(const HttpRequest& request, const HttpParseLimits& limits) {
    FUZZ_CHECK(!request.method.empty(), "a complete request has a method");
    FUZZ_CHECK(!request.path.empty(), "a complete request has a path");
    FUZZ_CHECK(request.headers.size() <= limits.max_header_count, "no more headers than the limit");
    FUZZ_CHECK(request.body.size() <= limits.max_body_bytes, "no larger body than the limit");
    for (const auto& header : request.headers) {
        FUZZ_CHECK(!header.name.empty(), "a header has a name");
        for (char c : header.name + header.value) {
            FUZZ_CHECK(c != '\r' && c != '\n' && c != '\0', "no CR, LF or NUL in a header");
        }
    }
    const std::string* length = request.header("Content-Length");
    if (length == nullptr) FUZZ_CHECK(request.body.empty(), "no body without Content-Length");

    // The accessors the endpoints use.
    (void)request.header_tokens("Connection");
    (void)request.header_tokens("Sec-WebSocket-Protocol");
    for (const char* name : {"channel", "since", "limit", ""}) (void)request.query_param(name);

    const bool upgrade = herald::is_websocket_upgrade(request);
    const herald::HandshakeOutcome outcome = herald::decide_websocket_handshake(request);
    check_response(outcome.response);
    if (outcome.accepted) {
        FUZZ_CHECK(upgrade, "an accepted handshake is an upgrade");
        FUZZ_CHECK(request.method == "GET", "an accepted handshake is a GET");
        FUZZ_CHECK(request.path == herald::kWebSocketPath, "an accepted handshake is at /ws");
        FUZZ_CHECK(request.version_minor >= 1, "an accepted handshake is HTTP/1.1");
        const std::string* version = request.header("Sec-WebSocket-Version");
        FUZZ_CHECK(version != nullptr && *version == "13", "an accepted handshake has version 13");
        const std::string* key = request.header("Sec-WebSocket-Key");
        FUZZ_CHECK(key != nullptr && key->size() == 24, "an accepted key is 24 base64 characters");
        FUZZ_CHECK(outcome.response.status == 101, "an accepted handshake answers 101");
        bool accept_ok = false;
        for (const auto& [name, value] : outcome.response.headers) {
            if (name == "Sec-WebSocket-Accept") accept_ok = value == reference_accept(*key);
        }
        FUZZ_CHECK(accept_ok, "Sec-WebSocket-Accept is base64(SHA-1(key + GUID))");
    } else {
        const int s = outcome.response.status;
        FUZZ_CHECK(s == 400 || s == 404 || s == 405 || s == 426 || s == 505, "a documented rejection status");
        FUZZ_CHECK(!outcome.reason.empty(), "a rejection has a reason");
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size < 2) return 0;
    const uint8_t split_control = data[0];
    const uint8_t options = data[1];
    const std::string_view stream(reinterpret_cast<const char*>(data + 2), size - 2);
    HttpParseLimits limits;
    limits.max_head_bytes = kHeadLimits[options & 3u];
    limits.max_header_count = kHeaderCounts[(options >> 2) & 3u];
    limits.max_body_bytes = kBodyLimits[(options >> 4) & 3u];

    const Outcome whole = run(stream, limits, std::nullopt);
    const Outcome split = run(stream, limits, Splitter(split_control));
    FUZZ_CHECK(whole.status == split.status, "the same status under any split");
    FUZZ_CHECK(whole.consumed == split.consumed, "the same bytes consumed under any split");
    FUZZ_CHECK(whole.error_status == split.error_status, "the same error status under any split");
    FUZZ_CHECK(whole.error_reason == split.error_reason, "the same error reason under any split");

    switch (whole.status) {
        case HttpParseStatus::NeedMore:
            FUZZ_CHECK(whole.consumed == stream.size(), "an incomplete request consumed everything");
            break;
        case HttpParseStatus::Complete:
            FUZZ_CHECK(same_request(whole.request, split.request), "the same request under any split");
            check_request(whole.request, limits);
            break;
        case HttpParseStatus::Failed: {
            const int s = whole.error_status;
            FUZZ_CHECK(s == 400 || s == 405 || s == 411 || s == 413 || s == 431 || s == 501 || s == 505,
                       "a documented parse failure status");
            FUZZ_CHECK(!whole.error_reason.empty(), "a failure has a reason");
            check_response(herald::text_response(s, whole.error_reason));
            break;
        }
    }
    return 0;
}
