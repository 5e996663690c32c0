// The client's IP address for per-IP limits: the socket peer, or — when the peer is a trusted proxy
// (--trusted-proxies) — the nearest untrusted address in X-Forwarded-For, read right to left.
#pragma once
#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/result.h"

namespace herald {

struct IpAddress {
    bool v6 = false;
    std::array<uint8_t, 16> bytes{};  // IPv4 in the first 4 bytes

    // Dotted IPv4 or textual IPv6 (an IPv4-mapped IPv6 address becomes IPv4). No brackets, no port, no zone.
    static std::optional<IpAddress> parse(std::string_view text);
    std::string to_string() const;
    bool operator==(const IpAddress&) const = default;
};

struct Cidr {
    IpAddress network;  // host bits cleared
    unsigned prefix = 0;

    // "10.0.0.0/8", "fd00::/8", or a bare address (a single host). Host bits set in the address are cleared.
    static Result<Cidr, std::string> parse(std::string_view text);
    bool contains(const IpAddress& address) const;
};

class TrustedProxies {
public:
    TrustedProxies() = default;
    // Every entry must be a CIDR or address; the error names the first bad one.
    static Result<TrustedProxies, std::string> parse(const std::vector<std::string>& entries);

    bool empty() const { return ranges_.empty(); }
    bool contains(const IpAddress& address) const;

private:
    std::vector<Cidr> ranges_;
};

// The address part of Connection::peer() ("1.2.3.4:5678", "::1:5678" or "[::1]:5678").
std::string_view peer_host(std::string_view peer);

// `peer`: the socket peer's address. `forwarded_for`: every X-Forwarded-For header value, in order. Returns the
// peer itself unless it is trusted; otherwise walks the list from the right, skipping trusted addresses, and
// returns the first untrusted one (a list of trusted addresses only yields its leftmost). An entry that is not an
// address stops the walk at the hop that wrote it.
std::string client_address(std::string_view peer, const std::vector<std::string_view>& forwarded_for,
                           const TrustedProxies& trusted);

}  // namespace herald
