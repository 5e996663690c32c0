// The Origin check against cross-site WebSocket hijacking: a browser always sends Origin with a WebSocket
// handshake, and a page on another site must not open a socket that carries this site's cookies or tokens.
// Without --allowed-origins the Origin's host[:port] must equal the request's Host (scheme aside); with it, the
// Origin must match one entry. A handshake without Origin is not from a browser and is judged by its token alone.
#pragma once
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/result.h"

namespace herald {

// "https://app.example.com:8443" → {"https", "app.example.com", "8443"}; lowercase, default port left out.
struct Origin {
    std::string scheme;
    std::string host;  // a bracketed IPv6 literal keeps its brackets
    std::string port;  // empty: the scheme's default (80 for http/ws, 443 for https/wss)

    // nullopt for anything that is not scheme://host[:port] (e.g. "null", a path, userinfo).
    static std::optional<Origin> parse(std::string_view text);
};

class OriginPolicy {
public:
    OriginPolicy() = default;  // same-host rule
    // Entries: "*", "https://app.example.com", "https://app.example.com:8443", "https://*.example.com".
    static Result<OriginPolicy, std::string> parse(const std::vector<std::string>& allowed);

    // `origin`: the Origin header's value; `host`: the Host header's value (may be empty).
    bool allows(std::string_view origin, std::string_view host) const;

private:
    struct Rule {
        Origin origin;
        bool subdomains = false;  // "*.example.com": any name ending in ".example.com", not the apex itself
    };
    bool any_ = false;
    std::vector<Rule> rules_;
};

}  // namespace herald
