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
