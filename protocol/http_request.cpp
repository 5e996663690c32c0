// Incremental HTTP/1.1 request parser (RFC 9112) for the WebSocket handshake and the small HTTP API.
// Strict where leniency enables smuggling or header injection (obs-fold, bare CR, conflicting lengths, chunked).
#include "protocol/http_request.h"

#include <algorithm>
#include <cstdint>
#include <cstring>

namespace herald {
namespace {

bool is_tchar(char c) {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
    return std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

bool is_token(std::string_view s) { return !s.empty() && std::all_of(s.begin(), s.end(), is_tchar); }

bool is_ows(char c) { return c == ' ' || c == '\t'; }

bool is_digit(char c) { return c >= '0' && c <= '9'; }

std::string_view trim_ows(std::string_view s) {
    while (!s.empty() && is_ows(s.front())) s.remove_prefix(1);
    while (!s.empty() && is_ows(s.back())) s.remove_suffix(1);
    return s;
}

bool iequals(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (size_t i = 0; i < a.size(); ++i) {
        char x = a[i], y = b[i];
        if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
        if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
        if (x != y) return false;
    }
    return true;
}

// field-value = *( VCHAR / obs-text / SP / HTAB ); anything else is a control character smuggled into a header.
bool is_valid_field_value(std::string_view v) {
    return std::all_of(v.begin(), v.end(), [](char ch) {
        auto c = static_cast<uint8_t>(ch);
        return c == '\t' || (c >= 0x20 && c != 0x7F);
    });
}

// The head ends at the first empty line; CRLF is the norm but a bare LF is tolerated (RFC 9112 2.2).
// Returns the offset just past the empty line, or npos. Starts at `from` to avoid rescanning earlier reads.
size_t find_head_end(std::string_view buffer, size_t from) {
    while (from < buffer.size()) {
        const void* hit = std::memchr(buffer.data() + from, '\n', buffer.size() - from);
        if (hit == nullptr) return std::string_view::npos;
        size_t i = static_cast<size_t>(static_cast<const char*>(hit) - buffer.data());
        if (i + 1 < buffer.size() && buffer[i + 1] == '\n') return i + 2;
        if (i + 2 < buffer.size() && buffer[i + 1] == '\r' && buffer[i + 2] == '\n') return i + 3;
        from = i + 1;
    }
    return std::string_view::npos;
}

enum class VersionCheck { Ok, Malformed, Unsupported };

// HTTP-version = "HTTP/" DIGIT "." DIGIT; well-formed versions other than 1.x (0.9, 2, 2.0, 3) are 505.
VersionCheck parse_version(std::string_view v, int& minor) {
    constexpr std::string_view kPrefix = "HTTP/";
    if (v.substr(0, kPrefix.size()) != kPrefix) return VersionCheck::Malformed;
    v.remove_prefix(kPrefix.size());
    const size_t dot = v.find('.');
    const std::string_view major_text = v.substr(0, dot);
    const std::string_view minor_text = dot == std::string_view::npos ? std::string_view{} : v.substr(dot + 1);
    auto all_digits = [](std::string_view s) { return !s.empty() && s.size() <= 3 && std::all_of(s.begin(), s.end(), is_digit); };
    if (!all_digits(major_text)) return VersionCheck::Malformed;
    if (dot != std::string_view::npos && !all_digits(minor_text)) return VersionCheck::Malformed;
    if (major_text != "1") return VersionCheck::Unsupported;
    if (dot == std::string_view::npos) return VersionCheck::Malformed;
    minor = 0;
    for (char c : minor_text) minor = minor * 10 + (c - '0');
    return VersionCheck::Ok;
}

// The path part of a request target: origin-form "/p?q", absolute-form "http://h/p?q" or asterisk-form "*".
bool split_target(std::string_view target, std::string& path, std::string& query) {
    if (target.empty()) return false;
    for (char ch : target) {
        auto c = static_cast<uint8_t>(ch);
        if (c <= 0x20 || c >= 0x7F) return false;
    }
    std::string_view rest = target;
    if (target == "*") {
        path = "*";
        return true;
    }
    if (target.front() != '/') {
        const size_t scheme_end = target.find("://");
        if (scheme_end == std::string_view::npos || scheme_end == 0) return false;
        const std::string_view after = target.substr(scheme_end + 3);
        const size_t path_start = after.find_first_of("/?");
        rest = path_start == std::string_view::npos ? std::string_view{} : after.substr(path_start);
    }
    const size_t q = rest.find('?');
    path.assign(rest.substr(0, q));
    if (path.empty()) path = "/";
    query.assign(q == std::string_view::npos ? std::string_view{} : rest.substr(q + 1));
    return true;
}

int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

// application/x-www-form-urlencoded decoding. A malformed escape is kept literally rather than dropping the
// parameter, so "since=%zz" reaches the caller's validation as a bad value instead of looking absent.
std::string form_decode(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    for (size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '+') {
            out += ' ';
        } else if (s[i] == '%' && i + 2 < s.size() && hex_value(s[i + 1]) >= 0 && hex_value(s[i + 2]) >= 0) {
            out += static_cast<char>(hex_value(s[i + 1]) * 16 + hex_value(s[i + 2]));
            i += 2;
        } else {
            out += s[i];
        }
    }
    return out;
}

}  // namespace

const std::string* HttpRequest::header(std::string_view name) const {
    for (const auto& h : headers) {
        if (iequals(h.name, name)) return &h.value;
    }
    return nullptr;
}

std::vector<std::string> HttpRequest::header_tokens(std::string_view name) const {
    std::vector<std::string> tokens;
    for (const auto& h : headers) {
        if (!iequals(h.name, name)) continue;
        std::string_view rest = h.value;
        while (true) {
            const size_t comma = rest.find(',');
            const std::string_view item = trim_ows(rest.substr(0, comma));
            if (!item.empty()) tokens.emplace_back(item);
            if (comma == std::string_view::npos) break;
            rest.remove_prefix(comma + 1);
        }
    }
    return tokens;
}

std::optional<std::string> HttpRequest::query_param(std::string_view name) const {
    std::string_view rest = query;
    while (!rest.empty()) {
        const size_t amp = rest.find('&');
        const std::string_view pair = rest.substr(0, amp);
        const size_t eq = pair.find('=');
        const std::string_view key = pair.substr(0, eq);
        if (!pair.empty() && form_decode(key) == name) {
            return eq == std::string_view::npos ? std::string{} : form_decode(pair.substr(eq + 1));
        }
        if (amp == std::string_view::npos) break;
        rest.remove_prefix(amp + 1);
    }
    return std::nullopt;
}

HttpRequestParser::HttpRequestParser(HttpParseLimits limits) : limits_(limits) {}

void HttpRequestParser::fail(int status, std::string reason) {
    status_ = HttpParseStatus::Failed;
    error_status_ = status;
    error_reason_ = std::move(reason);
    buffer_ = std::string{};
}

size_t HttpRequestParser::feed(std::string_view bytes) {
    if (status_ != HttpParseStatus::NeedMore) return 0;
    size_t consumed = 0;
    if (!head_done_) {
        const size_t old_size = buffer_.size();
        // Hold at most one byte past the limit: enough to prove a head without an end is too large.
        const size_t take = std::min(bytes.size(), limits_.max_head_bytes + 1 - old_size);
        buffer_.append(bytes.substr(0, take));
        const size_t head_end = find_head_end(buffer_, old_size >= 2 ? old_size - 2 : 0);
        if (head_end == std::string_view::npos || head_end > limits_.max_head_bytes) {
            if (buffer_.size() > limits_.max_head_bytes) fail(431, "request head too large");
            return take;
        }
        consumed = head_end - old_size;
        std::string head = std::move(buffer_);
        buffer_ = std::string{};
        head.resize(head_end);
        if (!parse_head(head)) return consumed;
        head_done_ = true;
    }
    const size_t take = std::min(body_expected_ - request_.body.size(), bytes.size() - consumed);
    request_.body.append(bytes.substr(consumed, take));
    consumed += take;
    if (request_.body.size() == body_expected_) status_ = HttpParseStatus::Complete;
    return consumed;
}

bool HttpRequestParser::parse_head(std::string_view head) {
    std::vector<std::string_view> lines;
    while (!head.empty()) {
        const size_t lf = head.find('\n');
        std::string_view line = head.substr(0, lf);
        head.remove_prefix(lf == std::string_view::npos ? head.size() : lf + 1);
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
        if (line.find('\r') != std::string_view::npos) {
            fail(400, "bare CR in request head");
            return false;
        }
        lines.push_back(line);
    }
    // A client may send an empty line before the request line (RFC 9112 2.2); the head ends at the next one.
    size_t first = 0;
    if (lines.size() > 1 && lines[0].empty()) first = 1;
    if (first >= lines.size() || lines[first].empty()) {
        fail(400, "missing request line");
        return false;
    }

    const std::string_view request_line = lines[first];
    const size_t sp1 = request_line.find(' ');
    const size_t sp2 = request_line.rfind(' ');
    if (sp1 == std::string_view::npos || sp1 == sp2) {
        fail(400, "malformed request line");
        return false;
    }
    const std::string_view method = request_line.substr(0, sp1);
    const std::string_view target = request_line.substr(sp1 + 1, sp2 - sp1 - 1);
    const std::string_view version = request_line.substr(sp2 + 1);
    if (!is_token(method)) {
        fail(400, "malformed request method");
        return false;
    }
    switch (parse_version(version, request_.version_minor)) {
        case VersionCheck::Ok:
            break;
        case VersionCheck::Malformed:
            fail(400, "malformed HTTP version");
            return false;
        case VersionCheck::Unsupported:
            fail(505, "only HTTP/1.x is supported");
            return false;
    }
    if (!split_target(target, request_.path, request_.query)) {
        fail(400, "malformed request target");
        return false;
    }
    request_.method.assign(method);
    request_.target.assign(target);

    for (size_t i = first + 1; i < lines.size(); ++i) {
        const std::string_view line = lines[i];
        if (line.empty()) break;
        if (is_ows(line.front())) {
            fail(400, "obsolete line folding in header");
            return false;
        }
        if (request_.headers.size() >= limits_.max_header_count) {
            fail(431, "too many header fields");
            return false;
        }
        const size_t colon = line.find(':');
        if (colon == std::string_view::npos || !is_token(line.substr(0, colon))) {
            fail(400, "malformed header field");
            return false;
        }
        const std::string_view value = trim_ows(line.substr(colon + 1));
        if (!is_valid_field_value(value)) {
            fail(400, "control character in header value");
            return false;
        }
        request_.headers.push_back(HttpHeader{std::string(line.substr(0, colon)), std::string(value)});
    }

    size_t host_count = 0;
    bool has_transfer_encoding = false;
    bool has_content_length = false;
    bool chunked = false;
    std::optional<uint64_t> content_length;
    bool length_over_limit = false;
    for (const auto& h : request_.headers) {
        if (iequals(h.name, "Host")) ++host_count;
        if (iequals(h.name, "Transfer-Encoding")) has_transfer_encoding = true;
        if (!iequals(h.name, "Content-Length")) continue;
        has_content_length = true;
        // Repeated or list-valued Content-Length is allowed only when every value is the same (RFC 9110 8.6).
        std::string_view rest = h.value;
        while (true) {
            const size_t comma = rest.find(',');
            const std::string_view item = trim_ows(rest.substr(0, comma));
            if (item.empty() || !std::all_of(item.begin(), item.end(), is_digit)) {
                fail(400, "invalid Content-Length");
                return false;
            }
            uint64_t value = 0;
            bool overflow = false;
            for (char c : item) {
                const auto digit = static_cast<uint64_t>(c - '0');
                if (value > (UINT64_MAX - digit) / 10) {
                    overflow = true;
                    break;
                }
                value = value * 10 + digit;
            }
            if (overflow) {
                length_over_limit = true;
                value = UINT64_MAX;
            }
            if (content_length && *content_length != value) {
                fail(400, "conflicting Content-Length values");
                return false;
            }
            content_length = value;
            if (comma == std::string_view::npos) break;
            rest.remove_prefix(comma + 1);
        }
    }
    if (host_count > 1) {
        fail(400, "more than one Host header");
        return false;
    }
    if (has_transfer_encoding) {
        for (const auto& coding : request_.header_tokens("Transfer-Encoding")) {
            if (iequals(coding, "chunked")) chunked = true;
        }
        // Both framings at once is the classic request-smuggling shape: refuse rather than pick one.
        if (has_content_length) {
            fail(400, "both Transfer-Encoding and Content-Length");
        } else if (chunked) {
            fail(411, "chunked request bodies are not supported; send Content-Length");
        } else {
            fail(501, "transfer coding not implemented");
        }
        return false;
    }
    if (content_length && (length_over_limit || *content_length > limits_.max_body_bytes)) {
        fail(413, "request body too large");
        return false;
    }
    body_expected_ = content_length ? static_cast<size_t>(*content_length) : 0;
    return true;
}

}  // namespace herald
