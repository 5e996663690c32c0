// Parses the --redis / HERALD_REDIS URL into RedisOptions: redis://[[user]:password@]host[:port][/db].
// host may be a name, an IPv4 address or a bracketed IPv6 address; port defaults to 6379; user and password may be
// percent-encoded. TLS (rediss://), query parameters and fragments are refused with a message that says so.
#pragma once
#include <string>
#include <string_view>

#include "backplane/redis_options.h"
#include "protocol/result.h"

namespace herald {

// Fills host, port, db, username and password of `defaults`; every other field is kept.
Result<RedisOptions, std::string> parse_redis_url(std::string_view url, RedisOptions defaults = {});

// The URL without its password ("redis://:***@host:6379/1"), for logs.
std::string redacted_redis_url(const RedisOptions& options);

}  // namespace herald
