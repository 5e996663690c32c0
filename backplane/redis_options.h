// How a node reaches Redis and how long Redis keeps a channel's lineage: the settings of RedisBackplane, filled from
// a redis:// URL (backplane/redis_url.h) plus defaults. Plain data, no I/O.
#pragma once
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace herald {

struct RedisOptions {
    std::string host = "127.0.0.1";  // a name is resolved with uv_getaddrinfo, off the loop
    uint16_t port = 6379;
    std::optional<uint32_t> db;            // SELECT on the command connection when set
    std::optional<std::string> username;   // Redis 6 ACL user; AUTH <username> <password>
    std::optional<std::string> password;   // AUTH when set

    // Resolve + connect + handshake must finish within this, or the attempt counts as failed.
    uint64_t connect_timeout_ms = 2000;
    // A command (or subscribe confirmation) unanswered this long drops the connection, failing what is pending
    // with Unavailable, and reconnects: a hung or partitioned server fails fast instead of queueing without bound.
    uint64_t command_timeout_ms = 5000;
    // Reconnect delay: uniformly random in [0, min(cap, base * 2^attempt)] ("full jitter"); attempt resets on success.
    uint64_t backoff_base_ms = 100;
    uint64_t backoff_cap_ms = 5000;

    // Every key and pub/sub channel starts with "<key_prefix>:". Must not contain '{' or '}'.
    std::string key_prefix = "herald";
    // A channel's lineage (epoch and top serial) expires after this long without a publish or history read (never
    // sooner than the request's history TTL). Once it has expired, the next touch creates a new epoch.
    uint64_t channel_ttl_ms = 24ull * 60 * 60 * 1000;
};

// Where the backplane reports connection events (e.g. "redis_connected", "redis_disconnected"); the broker plugs its
// logger in here so backplane/ does not depend on broker/. Called on the loop; must not call back into the backplane.
using RedisLogHook = std::function<void(std::string_view event, std::string_view detail)>;

}  // namespace herald
