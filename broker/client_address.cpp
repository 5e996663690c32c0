// IP parsing and CIDR matching with inet_pton; X-Forwarded-For is split by hand so that a hostile header costs one
// pass and no allocation per entry.
#include "broker/client_address.h"

#include <arpa/inet.h>

#include <charconv>
#include <cstring>

namespace herald {
namespace {

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return s;
}

constexpr uint8_t kMappedPrefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

// An X-Forwarded-For entry: a bare address, or one with a port ("1.2.3.4:80", "[::1]:80"), or a bracketed IPv6.
std::optional<IpAddress> parse_forwarded_entry(std::string_view entry) {
    entry = trim(entry);
    if (auto ip = IpAddress::parse(entry)) return ip;
    if (!entry.empty() && entry.front() == '[') {
        const size_t close = entry.find(']');
        if (close == std::string_view::npos) return std::nullopt;
        return IpAddress::parse(entry.substr(1, close - 1));
    }
    const size_t colon = entry.find(':');
    if (colon != std::string_view::npos && entry.find(':', colon + 1) == std::string_view::npos)
        return IpAddress::parse(entry.substr(0, colon));  // IPv4 with a port
    return std::nullopt;
}

}  // namespace

std::optional<IpAddress> IpAddress::parse(std::string_view text) {
    if (text.empty() || text.size() >= INET6_ADDRSTRLEN) return std::nullopt;
    char buffer[INET6_ADDRSTRLEN] = {};
    std::memcpy(buffer, text.data(), text.size());
    IpAddress out;
    if (inet_pton(AF_INET, buffer, out.bytes.data()) == 1) return out;
    if (inet_pton(AF_INET6, buffer, out.bytes.data()) != 1) return std::nullopt;
    if (std::memcmp(out.bytes.data(), kMappedPrefix, sizeof kMappedPrefix) == 0) {
        // ::ffff:a.b.c.d is how a dual-stack listener reports an IPv4 peer; match it against IPv4 ranges.
        IpAddress v4;
        std::memcpy(v4.bytes.data(), out.bytes.data() + 12, 4);
        return v4;
    }
    out.v6 = true;
    return out;
}

std::string IpAddress::to_string() const {
    char buffer[INET6_ADDRSTRLEN] = {};
    inet_ntop(v6 ? AF_INET6 : AF_INET, bytes.data(), buffer, sizeof buffer);
    return buffer;
}

Result<Cidr, std::string> Cidr::parse(std::string_view text) {
    const std::string_view original = text;
    text = trim(text);
    const size_t slash = text.find('/');
    auto address = IpAddress::parse(text.substr(0, slash));
    if (!address) return fail("'" + std::string(original) + "' is not an IP address or CIDR");
    const unsigned bits = address->v6 ? 128 : 32;
    unsigned prefix = bits;
    if (slash != std::string_view::npos) {
        const std::string_view digits = text.substr(slash + 1);
        auto [end, error] = std::from_chars(digits.data(), digits.data() + digits.size(), prefix);
        if (digits.empty() || error != std::errc() || end != digits.data() + digits.size() || prefix > bits)
            return fail("'" + std::string(original) + "': the prefix length must be 0-" + std::to_string(bits));
    }
    Cidr cidr{*address, prefix};
    for (unsigned i = 0; i < 16; ++i) {
        const unsigned first_bit = i * 8;
        if (first_bit >= prefix) cidr.network.bytes[i] = 0;
        else if (prefix - first_bit < 8) cidr.network.bytes[i] &= static_cast<uint8_t>(0xff << (8 - (prefix - first_bit)));
    }
    return cidr;
}

bool Cidr::contains(const IpAddress& address) const {
    if (address.v6 != network.v6) return false;
    const unsigned whole = prefix / 8, rest = prefix % 8;
    if (std::memcmp(address.bytes.data(), network.bytes.data(), whole) != 0) return false;
    if (rest == 0) return true;
    const auto mask = static_cast<uint8_t>(0xff << (8 - rest));
    return (address.bytes[whole] & mask) == network.bytes[whole];
}

Result<TrustedProxies, std::string> TrustedProxies::parse(const std::vector<std::string>& entries) {
    TrustedProxies out;
    for (const std::string& entry : entries) {
        auto cidr = Cidr::parse(entry);
        if (!cidr) return fail("--trusted-proxies: " + cidr.error());
        out.ranges_.push_back(*cidr);
    }
    return out;
}

bool TrustedProxies::contains(const IpAddress& address) const {
    for (const Cidr& range : ranges_)
        if (range.contains(address)) return true;
    return false;
}

std::string_view peer_host(std::string_view peer) {
    if (!peer.empty() && peer.front() == '[') {
        const size_t close = peer.find(']');
        return close == std::string_view::npos ? peer : peer.substr(1, close - 1);
    }
    const size_t colon = peer.rfind(':');
    return colon == std::string_view::npos ? peer : peer.substr(0, colon);
}

std::string client_address(std::string_view peer, const std::vector<std::string_view>& forwarded_for,
                           const TrustedProxies& trusted) {
    auto current = IpAddress::parse(peer);
    if (!current) return std::string(peer);
    if (!trusted.contains(*current)) return current->to_string();
    // Right to left: each trusted hop vouches for the entry before it; the first untrusted one is the client.
    for (auto header = forwarded_for.rbegin(); header != forwarded_for.rend(); ++header) {
        std::string_view list = *header;
        while (!list.empty()) {
            const size_t comma = list.rfind(',');
            const std::string_view entry = comma == std::string_view::npos ? list : list.substr(comma + 1);
            list = comma == std::string_view::npos ? std::string_view{} : list.substr(0, comma);
            if (trim(entry).empty()) continue;
            auto address = parse_forwarded_entry(entry);
            if (!address) return current->to_string();
            current = address;
            if (!trusted.contains(*current)) return current->to_string();
        }
    }
    return current->to_string();
}

}  // namespace herald
