// Handshake admission: rate first (cheapest, and a refused client learns nothing about the Origin rules), then Origin.
#include "broker/handshake_gate.h"

#include <cctype>
#include <vector>

namespace herald {
namespace {

// Configuration that failed validation (main() validates first) falls back to the strict choice: same-host
// Origin rule, no trusted proxies.
OriginPolicy origin_policy(const Config& config, const Logger& log) {
    auto policy = OriginPolicy::parse(config.allowed_origins);
    if (policy) return std::move(*policy);
    log.error("origin_policy_invalid", {{"detail", policy.error()}});
    return OriginPolicy();
}

TrustedProxies trusted_proxies(const Config& config, const Logger& log) {
    auto proxies = TrustedProxies::parse(config.trusted_proxies);
    if (proxies) return std::move(*proxies);
    log.error("trusted_proxies_invalid", {{"detail", proxies.error()}});
    return TrustedProxies();
}

bool header_is(const HttpHeader& header, std::string_view name) {
    if (header.name.size() != name.size()) return false;
    for (size_t i = 0; i < name.size(); ++i)
        if (std::tolower(static_cast<unsigned char>(header.name[i])) != std::tolower(static_cast<unsigned char>(name[i])))
            return false;
    return true;
}

}  // namespace

HandshakeGate::HandshakeGate(const Config& config, const Logger& log, Metrics& metrics)
    : log_(log),
      metrics_(metrics),
      origins_(origin_policy(config, log)),
      proxies_(trusted_proxies(config, log)),
      connect_rate_(config.connect_rate) {}

std::string HandshakeGate::client_ip(const HttpRequest& request, std::string_view peer) const {
    std::vector<std::string_view> forwarded;
    if (!proxies_.empty())
        for (const HttpHeader& h : request.headers)
            if (header_is(h, "X-Forwarded-For")) forwarded.push_back(h.value);
    return client_address(peer_host(peer), forwarded, proxies_);
}

std::optional<HandshakeGate::Refusal> HandshakeGate::check(const HttpRequest& request, std::string_view peer,
                                                           uint64_t now_ms) {
    if (connect_rate_.enabled()) {
        const std::string ip = client_ip(request, peer);
        auto decision = connect_rate_.admit(ip, now_ms);
        if (!decision.allowed) {
            metrics_.rate_limited.increment("connect");
            log_.debug("connect_rate_refused", {{"ip", ip}, {"retry_after", decision.retry_after_s}});
            HttpResponse response = text_response(429, "too many handshakes from this address");
            response.headers.emplace_back("Retry-After", std::to_string(decision.retry_after_s));
            return Refusal{std::move(response), "connect_rate"};
        }
    }
    // No Origin: not a browser, so no ambient credentials to hijack; the token decides.
    if (const std::string* origin = request.header("Origin")) {
        const std::string* host = request.header("Host");
        if (!origins_.allows(*origin, host ? std::string_view(*host) : std::string_view())) {
            log_.debug("origin_refused", {{"origin", origin->substr(0, 128)}});
            return Refusal{text_response(403, "origin not allowed"), "origin"};
        }
    }
    return std::nullopt;
}

}  // namespace herald
