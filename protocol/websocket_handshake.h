// RFC 6455 opening handshake decision: a parsed HTTP request in, either the 101 response or a rejection out.
#pragma once
#include <string>
#include <string_view>

#include "protocol/http_request.h"
#include "protocol/http_response.h"

namespace herald {

inline constexpr std::string_view kSubprotocol = "herald.v1.json";
inline constexpr std::string_view kWebSocketPath = "/ws";

// True when the request asks for a WebSocket upgrade at all (Upgrade: websocket), whatever its other faults;
// the broker uses it to route between the HTTP endpoints and the handshake.
bool is_websocket_upgrade(const HttpRequest& request);

struct HandshakeOutcome {
    bool accepted = false;
    // accepted: the 101 Switching Protocols response; otherwise the complete rejection (400/404/405/426/505...).
    HttpResponse response;
    std::string reason;  // rejection reason for logs and the handshake_failures metric label (bounded set)
};

HandshakeOutcome decide_websocket_handshake(const HttpRequest& request);

}  // namespace herald
