// Origin parsing and matching. Comparisons are on normalised parts (lowercase scheme and host, default port
// dropped), so "https://App.Example.com:443" and "https://app.example.com" are the same origin.
#include "broker/origin.h"

#include <algorithm>
#include <cctype>

namespace herald {
namespace {

std::string lower(std::string_view s) {
    std::string out(s);
    std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return std::tolower(c); });
    return out;
}

std::string_view default_port(std::string_view scheme) {
    if (scheme == "http" || scheme == "ws") return "80";
    if (scheme == "https" || scheme == "wss") return "443";
    return {};
}

bool valid_scheme(std::string_view s) {
    if (s.empty() || !std::isalpha(static_cast<unsigned char>(s[0]))) return false;
    return std::all_of(s.begin(), s.end(), [](unsigned char c) {
        return std::isalnum(c) || c == '+' || c == '-' || c == '.';
    });
}

bool valid_port(std::string_view s) {
    return !s.empty() && s.size() <= 5 && std::all_of(s.begin(), s.end(), [](unsigned char c) { return std::isdigit(c); });
}

bool valid_host(std::string_view h) {
    if (h.empty()) return false;
    if (h.front() == '[') {
        return h.size() > 2 && h.back() == ']' && std::all_of(h.begin() + 1, h.end() - 1, [](unsigned char c) {
                   return std::isxdigit(c) || c == ':' || c == '.';
               });
    }
    return std::all_of(h.begin(), h.end(), [](unsigned char c) { return std::isalnum(c) || c == '-' || c == '.' || c == '_'; });
}

// "host[:port]" or "[v6][:port]" → (host, port); false when malformed.
bool split_authority(std::string_view authority, std::string_view& host, std::string_view& port) {
    if (!authority.empty() && authority.front() == '[') {
        const size_t close = authority.find(']');
        if (close == std::string_view::npos) return false;
        host = authority.substr(0, close + 1);
        std::string_view rest = authority.substr(close + 1);
        if (rest.empty()) {
            port = {};
            return true;
        }
        if (rest.front() != ':') return false;
        port = rest.substr(1);
        return valid_port(port);
    }
    const size_t colon = authority.find(':');
    host = authority.substr(0, colon);
    port = colon == std::string_view::npos ? std::string_view{} : authority.substr(colon + 1);
    return colon == std::string_view::npos || valid_port(port);
}

std::string normalised_port(std::string_view port, std::string_view scheme) {
    std::string_view p = port;
    while (p.size() > 1 && p.front() == '0') p.remove_prefix(1);
    return p == default_port(scheme) ? std::string() : std::string(p);
}

}  // namespace

std::optional<Origin> Origin::parse(std::string_view text) {
    const size_t sep = text.find("://");
    if (sep == std::string_view::npos) return std::nullopt;
    const std::string_view scheme = text.substr(0, sep);
    const std::string_view authority = text.substr(sep + 3);
    if (!valid_scheme(scheme) || authority.find_first_of("/?#@ ") != std::string_view::npos) return std::nullopt;
    std::string_view host, port;
    if (!split_authority(authority, host, port) || !valid_host(host)) return std::nullopt;
    Origin out;
    out.scheme = lower(scheme);
    out.host = lower(host);
    out.port = normalised_port(port, out.scheme);
    return out;
}

Result<OriginPolicy, std::string> OriginPolicy::parse(const std::vector<std::string>& allowed) {
    OriginPolicy policy;
    for (const std::string& raw : allowed) {
        std::string_view entry = raw;
        if (entry == "*") {
            policy.any_ = true;
            continue;
        }
        if (!entry.empty() && entry.back() == '/') entry.remove_suffix(1);  // "https://a.example/" is a common slip
        Rule rule;
        const size_t sep = entry.find("://");
        std::string rewritten(entry);
        if (sep != std::string_view::npos && entry.substr(sep + 3, 2) == "*.") {
            rule.subdomains = true;
            rewritten.erase(sep + 3, 2);
        }
        auto origin = Origin::parse(rewritten);
        if (!origin || origin->host.find('*') != std::string::npos)
            return fail("--allowed-origins: '" + raw + "' is not an origin (scheme://host[:port], "
                        "scheme://*.domain[:port] or *)");
        if (rule.subdomains && origin->host.front() == '[')
            return fail("--allowed-origins: '" + raw + "': a wildcard needs a domain name");
        rule.origin = std::move(*origin);
        policy.rules_.push_back(std::move(rule));
    }
    return policy;
}

bool OriginPolicy::allows(std::string_view origin_text, std::string_view host_text) const {
    if (any_) return true;
    auto origin = Origin::parse(origin_text);
    if (!origin) return false;  // "null" (sandboxed or file: pages) and anything malformed
    if (rules_.empty()) {
        std::string_view host, port;
        if (!split_authority(host_text, host, port) || host.empty()) return false;
        return lower(host) == origin->host && normalised_port(port, origin->scheme) == origin->port;
    }
    for (const Rule& rule : rules_) {
        if (rule.origin.scheme != origin->scheme || rule.origin.port != origin->port) continue;
        if (!rule.subdomains) {
            if (rule.origin.host == origin->host) return true;
            continue;
        }
        const std::string& domain = rule.origin.host;
        if (origin->host.size() > domain.size() + 1 && origin->host.ends_with(domain) &&
            origin->host[origin->host.size() - domain.size() - 1] == '.')
            return true;
    }
    return false;
}

}  // namespace herald
