// Option table, parsing and validation of the node's configuration (flags > HERALD_* env > JSON file > defaults).
#include "broker/config.h"

#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <sstream>

#include "backplane/redis_url.h"
#include "protocol/channel_name.h"

namespace herald {
namespace {

using Setter = std::function<std::string(Config&, const std::string&)>;  // returns an error text or ""

struct Option {
    std::string_view name;      // flag without "--"
    std::string_view value;     // placeholder shown in --help; empty for a boolean flag
    std::string_view help;
    Setter set;
    bool repeatable = false;
};

std::string parse_u64(const std::string& text, uint64_t& out, bool allow_suffix) {
    if (text.empty()) return "expects a number";
    size_t pos = 0;
    unsigned long long value = 0;
    try {
        if (text[0] == '-') return "must not be negative";
        value = std::stoull(text, &pos, 10);
    } catch (...) {
        return "expects a number, got '" + text + "'";
    }
    std::string suffix = text.substr(pos);
    uint64_t multiplier = 1;
    if (!suffix.empty()) {
        if (!allow_suffix) return "expects a whole number, got '" + text + "'";
        if (suffix == "K" || suffix == "k" || suffix == "KiB") multiplier = 1024;
        else if (suffix == "M" || suffix == "m" || suffix == "MiB") multiplier = 1024 * 1024;
        else return "has an unknown size suffix '" + suffix + "' (use K, KiB, M or MiB)";
    }
    if (value > UINT64_MAX / multiplier) return "is too large: '" + text + "'";
    out = value * multiplier;
    return "";
}

std::string parse_seconds(const std::string& text, double& out) {
    try {
        size_t pos = 0;
        double value = std::stod(text, &pos);
        if (pos != text.size() || !std::isfinite(value) || value < 0) return "expects seconds ≥ 0, got '" + text + "'";
        out = value;
        return "";
    } catch (...) {
        return "expects seconds, got '" + text + "'";
    }
}

Setter size_option(uint64_t Config::*field, uint64_t min) {
    return [field, min](Config& c, const std::string& v) {
        uint64_t n = 0;
        if (auto e = parse_u64(v, n, true); !e.empty()) return e;
        if (n < min) return "must be at least " + std::to_string(min);
        c.*field = n;
        return std::string();
    };
}

Setter seconds_option(double Config::*field, double min) {
    return [field, min](Config& c, const std::string& v) {
        double s = 0;
        if (auto e = parse_seconds(v, s); !e.empty()) return e;
        if (s < min) return "must be at least " + std::to_string(min) + " s";
        c.*field = s;
        return std::string();
    };
}

std::string set_listen(Config& c, const std::string& v) {
    auto colon = v.rfind(':');
    if (colon == std::string::npos || colon == 0) return "expects HOST:PORT, got '" + v + "'";
    uint64_t port = 0;
    if (auto e = parse_u64(v.substr(colon + 1), port, false); !e.empty() || port > 65535)
        return "has an invalid port in '" + v + "'";
    std::string host = v.substr(0, colon);
    if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
    c.listen_host = host;
    c.listen_port = static_cast<uint16_t>(port);
    return "";
}

std::string set_namespace(Config& c, const std::string& v) {
    // NAME:SIZE:TTL
    auto first = v.find(':');
    auto last = v.rfind(':');
    if (first == std::string::npos || first == last) return "expects NAME:SIZE:TTL, got '" + v + "'";
    std::string name = v.substr(0, first);
    if (name.empty() || !is_valid_channel_name(name) || name.find(':') != std::string::npos)
        return "has an invalid namespace name '" + name + "'";
    RetentionPolicy policy;
    double ttl = 0;
    if (auto e = parse_u64(v.substr(first + 1, last - first - 1), policy.max_messages, false); !e.empty())
        return "size " + e;
    if (auto e = parse_seconds(v.substr(last + 1), ttl); !e.empty()) return "ttl " + e;
    policy.ttl_ms = static_cast<uint64_t>(ttl * 1000);
    c.namespaces[name] = policy;
    return "";
}

std::string read_file(const std::string& path, std::string& out) {
    std::ifstream in(path, std::ios::binary);
    if (!in) return "cannot read '" + path + "'";
    std::ostringstream text;
    text << in.rdbuf();
    out = text.str();
    return "";
}

std::vector<std::string> split_list(const std::string& v) {
    std::vector<std::string> items;
    std::string item;
    std::istringstream in(v);
    while (std::getline(in, item, ',')) {
        auto b = item.find_first_not_of(" \t");
        auto e = item.find_last_not_of(" \t");
        if (b != std::string::npos) items.push_back(item.substr(b, e - b + 1));
    }
    return items;
}

std::string set_json_object(std::string& field, const std::string& v) {
    auto doc = nlohmann::json::parse(v, nullptr, false);
    if (doc.is_discarded() || !doc.is_object()) return "expects a JSON object, e.g. {\"chat:*\":[\"subscribe\"]}";
    field = v;
    return "";
}

Setter string_option(std::string Config::*field) {
    return [field](Config& c, const std::string& v) {
        if (v.empty()) return std::string("must not be empty");
        c.*field = v;
        return std::string();
    };
}

Setter rate_option(double Config::*field) {
    return [field](Config& c, const std::string& v) {
        double n = 0;
        if (auto e = parse_seconds(v, n); !e.empty()) return std::string("expects a number ≥ 0, got '" + v + "'");
        c.*field = n;
        return std::string();
    };
}

std::string set_log_level(Config& c, const std::string& v) {
    if (v == "debug") c.log_level = LogLevel::Debug;
    else if (v == "info") c.log_level = LogLevel::Info;
    else if (v == "warn") c.log_level = LogLevel::Warn;
    else if (v == "error") c.log_level = LogLevel::Error;
    else return "expects debug, info, warn or error, got '" + v + "'";
    return "";
}

const std::vector<Option>& options() {
    static const std::vector<Option> table = {
        {"listen", "HOST:PORT", "Address to listen on; port 0 picks a free port (default 0.0.0.0:8080)", set_listen},
        {"node-name", "NAME", "Node name reported to clients in `connected` (default: host name)",
         [](Config& c, const std::string& v) {
             if (v.empty() || v.size() > 128) return std::string("must be 1-128 characters");
             c.node_name = v;
             return std::string();
         }},
        {"api-key", "KEY", "Bearer key required by /api/* (default: none, the API is open)",
         [](Config& c, const std::string& v) { c.api_key = v; return std::string(); }},
        {"redis", "URL",
         "Cluster mode: keep serials, history, sessions and delivery in Redis, redis://[:password@]host:port[/db] "
         "(default: embedded in-memory backplane, one node)",
         [](Config& c, const std::string& v) {
             if (auto parsed = parse_redis_url(v); !parsed.ok()) return parsed.error();
             c.redis_url = v;
             return std::string();
         }},
        {"max-message-size", "BYTES", "Largest WebSocket message and /api/publish body (default 64KiB)",
         size_option(&Config::max_message_size, 128)},
        {"max-connections", "N", "Open connections beyond which new ones get HTTP 503 (default 10000)",
         size_option(&Config::max_connections, 1)},
        {"handshake-timeout", "SECONDS", "Time allowed for the HTTP request / upgrade (default 10)",
         seconds_option(&Config::handshake_timeout_s, 0.1)},
        {"connect-timeout", "SECONDS", "Time allowed before the `connect` command; then close 1008 (default 10)",
         seconds_option(&Config::connect_timeout_s, 0.1)},
        {"heartbeat", "SECONDS", "Ping idle connections this often; close after two silent intervals (default 25)",
         seconds_option(&Config::heartbeat_s, 0.1)},
        {"outbound-limit", "BYTES", "Queued outbound bytes per connection before close 4008 (default 1MiB)",
         size_option(&Config::outbound_limit, 1024)},
        {"history-size", "N", "Messages kept per channel (default 1000)", size_option(&Config::history_size, 0)},
        {"history-ttl", "SECONDS", "Age limit of history and idempotency keys (default 300)",
         seconds_option(&Config::history_ttl_s, 0.001)},
        {"session-ttl", "SECONDS", "How long a session outlives its connection (default 120)",
         seconds_option(&Config::session_ttl_s, 0.001)},
        {"session-sync-interval", "SECONDS",
         "How often live sessions save their positions while messages flow (default 1)",
         seconds_option(&Config::session_sync_interval_s, 0.05)},
        {"namespace", "NAME:SIZE:TTL", "History size and TTL for channels named NAME:*; repeatable", set_namespace,
         true},
        {"max-history-limit", "N", "Largest `limit` a history request may ask for (default 1000)",
         size_option(&Config::max_history_limit, 1)},
        {"no-client-publish", "", "Refuse the `publish` command from WebSocket clients (HTTP API still publishes)",
         [](Config& c, const std::string&) { c.client_publish = false; return std::string(); }},
        {"no-demo", "", "Do not serve the demo page at /demo/ (the SDK at /sdk/herald-client.js stays)",
         [](Config& c, const std::string&) { c.demo = false; return std::string(); }},
        {"close-timeout", "SECONDS", "Wait for the peer's close frame before dropping TCP (default 2)",
         seconds_option(&Config::close_timeout_s, 0.01)},
        {"drain-timeout", "SECONDS", "On SIGTERM/SIGINT, longest wait for connections to close (default 10)",
         seconds_option(&Config::drain_timeout_s, 0)},
        {"log-level", "LEVEL", "debug, info, warn or error (default info)", set_log_level},
        {"tls-cert", "FILE", "PEM certificate (chain) — with --tls-key the listener speaks TLS only (wss://, https://)",
         string_option(&Config::tls_cert_file)},
        {"tls-key", "FILE", "PEM private key for --tls-cert; SIGHUP reloads both", string_option(&Config::tls_key_file)},
        {"tls-min-version", "1.2|1.3", "Lowest TLS version accepted (default 1.2)",
         [](Config& c, const std::string& v) {
             if (v != "1.2" && v != "1.3") return std::string("expects 1.2 or 1.3");
             c.tls_min_version = v;
             return std::string();
         }},
        {"jwt-secret", "SECRET", "HMAC secret (≥ 32 bytes) for HS256/HS384/HS512 tokens in connect.token",
         string_option(&Config::jwt_secret)},
        {"jwt-secret-file", "FILE", "File holding the HMAC secret (trailing newline removed)",
         [](Config& c, const std::string& v) {
             std::string text;
             if (auto e = read_file(v, text); !e.empty()) return e;
             while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
             if (text.empty()) return std::string("'" + v + "' is empty");
             c.jwt_secret = text;
             return std::string();
         }},
        {"jwt-public-key", "FILE", "PEM public key: RSA (RS256/384/512) or EC P-256 (ES256)",
         [](Config& c, const std::string& v) {
             c.jwt_public_key_file = v;
             return read_file(v, c.jwt_public_key_pem);
         }},
        {"jwt-key-id", "KID", "Accept tokens whose header names this kid (default: refuse any kid)",
         string_option(&Config::jwt_key_id)},
        {"jwt-audience", "AUD", "Require this `aud` claim", string_option(&Config::jwt_audience)},
        {"jwt-issuer", "ISS", "Require this `iss` claim", string_option(&Config::jwt_issuer)},
        {"jwt-leeway", "SECONDS", "Clock skew allowed for exp, nbf and iat (default 30)",
         seconds_option(&Config::jwt_leeway_s, 0)},
        {"jwt-refresh-grace", "SECONDS", "Time to send `refresh` after token_expired before close 4001 (default 30)",
         seconds_option(&Config::jwt_refresh_grace_s, 0)},
        {"default-capabilities", "JSON", "Capabilities of tokens without a `caps` claim (default {}: nothing)",
         [](Config& c, const std::string& v) { return set_json_object(c.default_capabilities, v); }},
        {"allow-anonymous", "", "With a JWT key configured, admit clients without a token",
         [](Config& c, const std::string&) { c.allow_anonymous = true; return std::string(); }},
        {"anonymous-capabilities", "JSON", "Capabilities of token-less clients with --allow-anonymous (default {})",
         [](Config& c, const std::string& v) { return set_json_object(c.anonymous_capabilities, v); }},
        {"api-key-file", "FILE", "File holding the /api/* bearer key (trailing newline removed)",
         [](Config& c, const std::string& v) {
             std::string text;
             if (auto e = read_file(v, text); !e.empty()) return e;
             while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
             if (text.empty()) return std::string("'" + v + "' is empty");
             c.api_key = text;
             return std::string();
         }},
        {"allowed-origins", "LIST",
         "Comma list of browser origins allowed to open WebSockets: https://app.example.com, https://*.example.com, "
         "or * (default: Origin must match Host)",
         [](Config& c, const std::string& v) {
             c.allowed_origins = split_list(v);
             if (c.allowed_origins.empty()) return std::string("expects at least one origin");
             return std::string();
         }},
        {"client-rate", "N", "Commands per second per connection (token bucket; 0 turns it off; default 50)",
         rate_option(&Config::client_rate)},
        {"client-burst", "N", "Token bucket size for --client-rate (default 100)", rate_option(&Config::client_burst)},
        {"connect-rate", "N", "WebSocket handshakes per second per client IP, burst 2.5×N (default 0: off)",
         rate_option(&Config::connect_rate)},
        {"trusted-proxies", "CIDRS", "Comma list of proxy CIDRs whose X-Forwarded-For names the client IP",
         [](Config& c, const std::string& v) {
             c.trusted_proxies = split_list(v);
             return std::string();
         }},
        {"max-subscriptions", "N", "Subscriptions per connection (default 1000)",
         size_option(&Config::max_subscriptions, 1)},
    };
    return table;
}

const Option* find_option(std::string_view name) {
    for (const auto& o : options())
        if (o.name == name) return &o;
    return nullptr;
}

std::string env_name(std::string_view flag) {
    std::string out = "HERALD_";
    for (char ch : flag) out += ch == '-' ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
    return out;
}

std::string apply(Config& c, const Option& o, const std::string& value, const std::string& origin) {
    std::string e = o.set(c, value);
    return e.empty() ? e : origin + " " + e;
}

std::string apply_file(Config& c, const std::string& path) {
    std::ifstream in(path);
    if (!in) return "--config: cannot read '" + path + "'";
    nlohmann::json doc = nlohmann::json::parse(in, nullptr, false);
    if (doc.is_discarded() || !doc.is_object()) return "--config: '" + path + "' is not a JSON object";
    for (auto& [key, value] : doc.items()) {
        if (key == "namespaces") {
            if (!value.is_object()) return "config 'namespaces' must be an object";
            for (auto& [name, spec] : value.items()) {
                if (!spec.is_object()) return "config namespaces." + name + " must be an object";
                auto size_field = spec.find("history_size");
                auto ttl_field = spec.find("history_ttl");
                if ((size_field != spec.end() && !size_field->is_number_unsigned()) ||
                    (ttl_field != spec.end() && !ttl_field->is_number()))
                    return "config namespaces." + name + " needs a whole history_size and a numeric history_ttl";
                uint64_t size = size_field != spec.end() ? size_field->get<uint64_t>() : c.history_size;
                double ttl = ttl_field != spec.end() ? ttl_field->get<double>() : c.history_ttl_s;
                std::string text = name + ":" + std::to_string(size) + ":" + std::to_string(ttl);
                if (auto e = set_namespace(c, text); !e.empty()) return "config namespaces." + name + " " + e;
            }
            continue;
        }
        std::string flag = key;
        for (auto& ch : flag)
            if (ch == '_') ch = '-';
        const Option* o = find_option(flag);
        if (!o) return "config: unknown key '" + key + "'";
        std::string text;
        if (o->value.empty()) {
            if (!value.is_boolean()) return "config '" + key + "' must be true or false";
            if (!value.get<bool>()) continue;
        } else if (value.is_string()) {
            text = value.get<std::string>();
        } else if (value.is_number()) {
            text = value.dump();
        } else {
            return "config '" + key + "' must be a string or number";
        }
        if (auto e = apply(c, *o, text, "config '" + key + "'"); !e.empty()) return e;
    }
    return "";
}

std::string default_node_name() {
    char host[256] = {};
    if (gethostname(host, sizeof host - 1) != 0 || host[0] == 0) return "herald";
    return host;
}

}  // namespace

RetentionPolicy Config::retention_for(std::string_view channel) const {
    auto ns = channel_namespace(channel);
    if (!ns.empty()) {
        auto it = namespaces.find(std::string(ns));
        if (it != namespaces.end()) return it->second;
    }
    return RetentionPolicy{history_size, static_cast<uint64_t>(history_ttl_s * 1000)};
}

Result<ConfigRequest, std::string> parse_config(int argc, const char* const* argv, const char* const* environ) {
    ConfigRequest request;
    Config& c = request.config;
    // Pass 1: find --config and --help/--version, and collect flags in order.
    std::vector<std::pair<const Option*, std::string>> flags;
    std::string config_file;
    for (int i = 1; i < argc; ++i) {
        std::string arg = argv[i];
        if (arg == "--help" || arg == "-h") { request.action = ConfigRequest::Action::Help; return request; }
        if (arg == "--version") { request.action = ConfigRequest::Action::Version; return request; }
        if (arg.rfind("--", 0) != 0) return fail("unexpected argument '" + arg + "' (see --help)");
        std::string name = arg.substr(2), value;
        bool has_value = false;
        if (auto eq = name.find('='); eq != std::string::npos) {
            value = name.substr(eq + 1);
            name = name.substr(0, eq);
            has_value = true;
        }
        if (name == "config") {
            if (!has_value) {
                if (i + 1 >= argc) return fail(std::string("--config needs a FILE"));
                value = argv[++i];
            }
            config_file = value;
            continue;
        }
        const Option* o = find_option(name);
        if (!o) return fail("unknown option --" + name + " (see --help)");
        if (o->value.empty()) {
            if (has_value) return fail("--" + name + " takes no value");
        } else if (!has_value) {
            if (i + 1 >= argc) return fail("--" + name + " needs a value (" + std::string(o->value) + ")");
            value = argv[++i];
        }
        flags.emplace_back(o, value);
    }
    if (config_file.empty()) {
        for (auto e = environ; e && *e; ++e)
            if (std::string_view(*e).rfind("HERALD_CONFIG=", 0) == 0) config_file = *e + 14;
    }
    if (!config_file.empty())
        if (auto e = apply_file(c, config_file); !e.empty()) return fail(e);
    // Environment, then flags.
    for (auto e = environ; e && *e; ++e) {
        std::string_view entry(*e);
        if (entry.rfind("HERALD_", 0) != 0) continue;
        auto eq = entry.find('=');
        if (eq == std::string_view::npos) continue;
        std::string key(entry.substr(0, eq)), value(entry.substr(eq + 1));
        if (key == "HERALD_CONFIG" || key == "HERALD_BINARY") continue;
        const Option* match = nullptr;
        for (const auto& o : options())
            if (env_name(o.name) == key) match = &o;
        if (!match) continue;  // other tools may share the prefix; unknown names are ignored
        if (match->value.empty() && (value == "0" || value == "false" || value.empty())) continue;
        if (auto err = apply(c, *match, value, key); !err.empty()) return fail(err);
    }
    for (auto& [o, value] : flags)
        if (auto e = apply(c, *o, value, "--" + std::string(o->name)); !e.empty()) return fail(e);
    if (c.node_name.empty()) c.node_name = default_node_name();
    if (c.tls_cert_file.empty() != c.tls_key_file.empty())
        return fail(std::string("--tls-cert and --tls-key go together"));
    if (c.outbound_limit < c.max_message_size)
        return fail(std::string("--outbound-limit must be at least --max-message-size"));
    return request;
}

std::string config_help_text() {
    std::ostringstream out;
    out << "Usage: herald [OPTIONS]\n\n"
           "Herald is a WebSocket pub/sub broker (subprotocol herald.v1.json at /ws) with serial-numbered\n"
           "channels, history and resume. HTTP on the same port: /healthz, /readyz, /metrics, /api/publish,\n"
           "/api/history, the JavaScript SDK at /sdk/herald-client.js and a demo page at /demo/.\n\n"
           "Options (each also settable as HERALD_<NAME> in the environment, or as <name> in the\n"
           "JSON file given to --config; precedence: flag > environment > file > default):\n";
    auto line = [&](std::string left, std::string_view help) {
        out << "  " << left;
        if (left.size() < 30) out << std::string(30 - left.size(), ' ');
        else out << "\n" << std::string(32, ' ');
        out << help << "\n";
    };
    line("--config FILE", "JSON configuration file (also HERALD_CONFIG); \"namespaces\": {\"chat\": "
                          "{\"history_size\": 100, \"history_ttl\": 60}}");
    for (const auto& o : options()) {
        std::string left = "--" + std::string(o.name);
        if (!o.value.empty()) left += " " + std::string(o.value);
        line(left, o.help);
    }
    line("--help", "Show this help and exit");
    line("--version", "Show the version and exit");
    out << "\nDurations are in seconds and may be fractional; sizes are bytes with an optional K/KiB/M/MiB "
           "suffix.\n";
    return out.str();
}

}  // namespace herald
