// What a WebSocket handshake must pass besides RFC 6455 before the node upgrades it: the per-IP handshake rate
// (--connect-rate, the client IP found through --trusted-proxies) and the Origin check (--allowed-origins).
// Owns the per-IP buckets; the server asks it once per valid upgrade request.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "broker/client_address.h"
#include "broker/config.h"
#include "broker/log.h"
#include "broker/metrics.h"
#include "broker/origin.h"
#include "broker/rate_limiter.h"
#include "protocol/http_request.h"
#include "protocol/http_response.h"

namespace herald {

class HandshakeGate {
public:
    HandshakeGate(const Config& config, const Logger& log, Metrics& metrics);

    struct Refusal {
        HttpResponse response;   // 429 with Retry-After, or 403
        std::string_view reason;  // handshake_failures label: connect_rate or origin
    };
    // `peer`: Connection::peer(). nullopt when the handshake may proceed. Counts refusals in the metrics.
    std::optional<Refusal> check(const HttpRequest& request, std::string_view peer, uint64_t now_ms);

    // The client IP used for the per-IP limit.
    std::string client_ip(const HttpRequest& request, std::string_view peer) const;

private:
    const Logger& log_;
    Metrics& metrics_;
    OriginPolicy origins_;
    TrustedProxies proxies_;
    ConnectRateLimiter connect_rate_;
};

}  // namespace herald
