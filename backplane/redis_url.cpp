// redis:// URL parsing; see redis_url.h. Strict: anything the grammar does not name is an error, not ignored.
#include "backplane/redis_url.h"

#include <charconv>
#include <cstdint>
#include <optional>

namespace herald {
namespace {

constexpr std::string_view kScheme = "redis://";

Failure<std::string> url_error(std::string_view url, std::string_view why) {
    // Never echo the password back: the URL is quoted only up to its userinfo.
    std::string shown(url);
    if (const size_t at = shown.rfind('@'); at != std::string::npos) shown = "redis://***" + shown.substr(at);
    return fail(std::string(why) + " (in '" + shown + "'; expected redis://[[user]:password@]host[:port][/db])");
}

int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

std::optional<std::string> percent_decode(std::string_view in) {
    std::string out;
    out.reserve(in.size());
    for (size_t i = 0; i < in.size(); ++i) {
        if (in[i] != '%') {
            out.push_back(in[i]);
            continue;
        }
        if (i + 2 >= in.size()) return std::nullopt;  // "%" needs two hex digits after it
        const int hi = hex_value(in[i + 1]);
        const int lo = hex_value(in[i + 2]);
        if (hi < 0 || lo < 0) return std::nullopt;
        out.push_back(static_cast<char>(hi * 16 + lo));
        i += 2;
    }
    return out;
}

template <typename N>
std::optional<N> parse_decimal(std::string_view text) {
    N value{};
    if (text.empty()) return std::nullopt;
    for (char c : text) {
        if (c < '0' || c > '9') return std::nullopt;  // from_chars would accept nothing else anyway; no '+', no '-'
    }
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
    return value;
}

}  // namespace

Result<RedisOptions, std::string> parse_redis_url(std::string_view url, RedisOptions options) {
    if (url.rfind("rediss://", 0) == 0) return url_error(url, "TLS (rediss://) is not supported");
    if (url.rfind(kScheme, 0) != 0) return url_error(url, "the URL must start with redis://");
    std::string_view rest = url.substr(kScheme.size());
    if (rest.find_first_of("?#") != std::string_view::npos) {
        return url_error(url, "query parameters and fragments are not supported");
    }

    // authority = [userinfo@]host[:port]; the path, if any, is the database number.
    const size_t slash = rest.find('/');
    std::string_view authority = rest.substr(0, slash);
    std::optional<std::string_view> path;
    if (slash != std::string_view::npos) path = rest.substr(slash + 1);

    options.username.reset();
    options.password.reset();
    options.db.reset();
    if (const size_t at = authority.rfind('@'); at != std::string_view::npos) {
        const std::string_view userinfo = authority.substr(0, at);
        authority = authority.substr(at + 1);
        const size_t colon = userinfo.find(':');
        if (colon == std::string_view::npos) {
            return url_error(url, "the part before '@' must be [user]:password");
        }
        auto user = percent_decode(userinfo.substr(0, colon));
        auto password = percent_decode(userinfo.substr(colon + 1));
        if (!user || !password) return url_error(url, "bad percent-encoding in user or password");
        if (password->empty()) return url_error(url, "the password after ':' is empty");
        if (!user->empty()) options.username = std::move(*user);
        options.password = std::move(*password);
    }

    std::string_view host;
    std::string_view port_text;
    bool has_port = false;
    if (!authority.empty() && authority.front() == '[') {
        const size_t close = authority.find(']');
        if (close == std::string_view::npos) return url_error(url, "an IPv6 address needs its closing ']'");
        host = authority.substr(1, close - 1);
        const std::string_view after = authority.substr(close + 1);
        if (!after.empty()) {
            if (after.front() != ':') return url_error(url, "unexpected text after the IPv6 address");
            port_text = after.substr(1);
            has_port = true;
        }
    } else {
        const size_t colon = authority.find(':');
        host = authority.substr(0, colon);
        if (colon != std::string_view::npos) {
            port_text = authority.substr(colon + 1);
            has_port = true;
        }
    }
    if (host.empty()) return url_error(url, "the host is missing");
    if (host.find_first_of(" \t[]@") != std::string_view::npos) return url_error(url, "the host is not valid");
    options.host = std::string(host);

    options.port = 6379;
    if (has_port) {
        const auto port = parse_decimal<uint32_t>(port_text);
        if (!port || *port == 0 || *port > 65535) return url_error(url, "the port must be a number from 1 to 65535");
        options.port = static_cast<uint16_t>(*port);
    }

    if (path && !path->empty()) {
        const auto db = parse_decimal<uint32_t>(*path);
        if (!db || *db > 0x7fffffffu) return url_error(url, "the path must be a database number, e.g. /0");
        options.db = *db;
    }
    return options;
}

std::string redacted_redis_url(const RedisOptions& options) {
    std::string out(kScheme);
    if (options.password) out += (options.username ? *options.username : std::string()) + ":***@";
    const bool ipv6 = options.host.find(':') != std::string::npos;
    out += ipv6 ? "[" + options.host + "]" : options.host;
    out += ":" + std::to_string(options.port);
    if (options.db) out += "/" + std::to_string(*options.db);
    return out;
}

}  // namespace herald
