// Incremental HTTP/1.1 request parser for the opening handshake and the node's small HTTP API.
// Bytes in, a complete request (head and Content-Length body) out; never touches a socket.
#pragma once
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace herald {

struct HttpHeader {
    std::string name;   // as received
    std::string value;  // leading/trailing whitespace trimmed
};

struct HttpRequest {
    std::string method;
    std::string target;  // as received, e.g. "/api/history?channel=a&since=3"
    std::string path;    // target before '?', not percent-decoded
    std::string query;   // target after '?', without it; empty when absent
    int version_minor = 1;  // HTTP/1.<minor>; only HTTP/1.x is accepted
    std::vector<HttpHeader> headers;
    std::string body;

    // Case-insensitive lookup of the first header with that name.
    const std::string* header(std::string_view name) const;
    // All values of a header joined as the RFC allows (comma list), for Connection / Sec-WebSocket-Protocol.
    std::vector<std::string> header_tokens(std::string_view name) const;
    // Percent-decoded value of a query parameter (first occurrence).
    std::optional<std::string> query_param(std::string_view name) const;
};

struct HttpParseLimits {
    size_t max_head_bytes = 16 * 1024;  // request line + headers; over it → 431
    size_t max_header_count = 100;      // over it → 431
    size_t max_body_bytes = 64 * 1024;  // Content-Length over it → 413
};

// What the parser says after feed(): keep reading, a request is complete, or a failure with its HTTP status.
enum class HttpParseStatus { NeedMore, Complete, Failed };

class HttpRequestParser {
public:
    explicit HttpRequestParser(HttpParseLimits limits);

    // Consumes bytes up to the end of one request; returns how many were consumed (the rest belongs to whatever
    // follows, e.g. the first WebSocket frame). Once Complete or Failed, further feeds consume nothing.
    size_t feed(std::string_view bytes);

    HttpParseStatus status() const { return status_; }
    const HttpRequest& request() const { return request_; }
    HttpRequest take_request() { return std::move(request_); }
    // When Failed: the status to answer with (400, 405, 411, 413, 431, 501, 505) and a short reason.
    int error_status() const { return error_status_; }
    const std::string& error_reason() const { return error_reason_; }
    // Bytes held while the head is incomplete: the only per-connection memory of a handshaking client.
    size_t buffered_bytes() const { return buffer_.size(); }

private:
    void fail(int status, std::string reason);
    bool parse_head(std::string_view head);

    HttpParseLimits limits_;
    HttpParseStatus status_ = HttpParseStatus::NeedMore;
    std::string buffer_;
    size_t body_expected_ = 0;
    bool head_done_ = false;
    HttpRequest request_;
    int error_status_ = 0;
    std::string error_reason_;
};

}  // namespace herald
