// RFC 6455 4.2 server side of the opening handshake: decides 101 or a complete rejection from a parsed request.
// Rejection reasons are a fixed small set because they label the handshake_failures metric.
#include "protocol/websocket_handshake.h"

#include <algorithm>

#include "protocol/base64.h"

namespace herald {
namespace {

bool iequals(std::string_view a, std::string_view b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
               auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; };
               return lower(x) == lower(y);
           });
}

bool has_token(const HttpRequest& request, std::string_view header, std::string_view token) {
    const auto tokens = request.header_tokens(header);
    return std::any_of(tokens.begin(), tokens.end(), [&](const std::string& t) { return iequals(t, token); });
}

size_t header_count(const HttpRequest& request, std::string_view name) {
    return static_cast<size_t>(std::count_if(request.headers.begin(), request.headers.end(),
                                             [&](const HttpHeader& h) { return iequals(h.name, name); }));
}

HandshakeOutcome reject(int status, std::string_view reason, std::string_view body) {
    HandshakeOutcome outcome;
    outcome.response = text_response(status, body);
    outcome.reason.assign(reason);
    return outcome;
}

}  // namespace

bool is_websocket_upgrade(const HttpRequest& request) { return has_token(request, "Upgrade", "websocket"); }

HandshakeOutcome decide_websocket_handshake(const HttpRequest& request) {
    // A fixed order of checks, so a request with several faults always gets the same status and reason.
    if (request.method != "GET") {
        HandshakeOutcome outcome = reject(405, "method", "method not allowed");
        outcome.response.headers.emplace_back("Allow", "GET");
        return outcome;
    }
    if (request.version_minor < 1) return reject(400, "version", "WebSocket requires HTTP/1.1");
    if (request.header("Host") == nullptr) return reject(400, "no_host", "missing Host header");
    if (!is_websocket_upgrade(request) || !has_token(request, "Connection", "upgrade")) {
        return reject(400, "not_upgrade", "expected Upgrade: websocket and Connection: Upgrade");
    }
    const std::string* version = request.header("Sec-WebSocket-Version");
    if (version == nullptr || *version != "13" || header_count(request, "Sec-WebSocket-Version") != 1) {
        HandshakeOutcome outcome = reject(426, "ws_version", "unsupported WebSocket version");
        outcome.response.headers.emplace_back("Sec-WebSocket-Version", "13");
        return outcome;
    }
    const std::string* key = request.header("Sec-WebSocket-Key");
    if (key == nullptr || header_count(request, "Sec-WebSocket-Key") != 1) {
        return reject(400, "bad_key", "missing or repeated Sec-WebSocket-Key");
    }
    const auto decoded_key = base64_decode(*key);
    if (!decoded_key || decoded_key->size() != 16) return reject(400, "bad_key", "invalid Sec-WebSocket-Key");
    if (request.path != kWebSocketPath) return reject(404, "path", "not found");
    // Offering nothing still gets herald.v1.json: it is the only protocol spoken here.
    const auto offered = request.header_tokens("Sec-WebSocket-Protocol");
    if (!offered.empty() && std::find(offered.begin(), offered.end(), kSubprotocol) == offered.end()) {
        return reject(400, "subprotocol", "unsupported subprotocol; offer herald.v1.json");
    }

    HandshakeOutcome outcome;
    outcome.accepted = true;
    outcome.response.status = 101;
    outcome.response.close = false;
    outcome.response.content_type.clear();
    outcome.response.headers = {
        {"Upgrade", "websocket"},
        {"Connection", "Upgrade"},
        {"Sec-WebSocket-Accept", websocket_accept_key(*key)},
        {"Sec-WebSocket-Protocol", std::string(kSubprotocol)},
    };
    return outcome;
}

}  // namespace herald
