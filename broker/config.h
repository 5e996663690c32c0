// Node configuration: every limit and knob, filled from defaults, an optional JSON file, HERALD_* environment
// variables and command-line flags (in rising precedence). Passed by reference; there are no globals.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "backplane/backplane.h"
#include "protocol/result.h"

namespace herald {

enum class LogLevel { Debug, Info, Warn, Error };

struct Config {
    std::string listen_host = "0.0.0.0";
    uint16_t listen_port = 8080;
    std::string node_name;  // default: the host name
    std::string api_key;    // empty: /api/* is open
    std::string redis_url;  // empty: embedded in-memory backplane (single node)
    uint64_t max_message_size = 64 * 1024;
    uint64_t max_connections = 10'000;
    double handshake_timeout_s = 10;
    double connect_timeout_s = 10;
    double heartbeat_s = 25;
    uint64_t outbound_limit = 1024 * 1024;
    uint64_t history_size = 1000;
    double history_ttl_s = 300;
    double session_ttl_s = 120;
    double session_sync_interval_s = 1;
    double close_timeout_s = 2;
    double drain_timeout_s = 10;
    uint64_t max_history_limit = 1000;  // cap on one history request's `limit`
    bool client_publish = true;
    bool demo = true;  // serve the demo page at /demo/

    // Security (docs/security.md). Secrets are never logged or shown by --help.
    std::string tls_cert_file;      // PEM chain; with tls_key_file the listener speaks TLS only
    std::string tls_key_file;
    std::string tls_min_version = "1.2";  // "1.2" or "1.3"
    std::string jwt_secret;         // HS256/384/512 (from --jwt-secret or the contents of --jwt-secret-file)
    std::string jwt_public_key_pem; // contents of --jwt-public-key (RSA → RS*, EC P-256 → ES256)
    std::string jwt_public_key_file;
    std::string jwt_key_id;         // accepted `kid`; unset: tokens carrying a kid are refused
    std::string jwt_audience;
    std::string jwt_issuer;
    double jwt_leeway_s = 30;
    double jwt_refresh_grace_s = 30;
    std::string default_capabilities = "{}";    // for tokens without `caps`
    bool allow_anonymous = false;                // with a JWT key: admit token-less clients
    std::string anonymous_capabilities = "{}";
    std::vector<std::string> allowed_origins;    // empty: Origin must match Host
    double client_rate = 50;                     // commands per second per connection; 0 = off
    double client_burst = 100;
    double connect_rate = 0;                     // handshakes per second per client IP; 0 = off
    std::vector<std::string> trusted_proxies;    // CIDRs whose X-Forwarded-For is believed
    uint64_t max_subscriptions = 1000;           // per connection
    bool jwt_configured() const { return !jwt_secret.empty() || !jwt_public_key_pem.empty(); }
    bool tls_enabled() const { return !tls_cert_file.empty(); }
    LogLevel log_level = LogLevel::Info;
    std::map<std::string, RetentionPolicy> namespaces;  // namespace → override

    RetentionPolicy retention_for(std::string_view channel) const;
};

struct ConfigRequest {
    enum class Action { Run, Help, Version } action = Action::Run;
    Config config;
};

// argv/environ as given to main. Errors name the option and what was wrong with it.
Result<ConfigRequest, std::string> parse_config(int argc, const char* const* argv, const char* const* environ);
std::string config_help_text();

}  // namespace herald
