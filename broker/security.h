// Startup validation of every security option, so that a typo fails the start with a message naming the option
// rather than surfacing as refused clients later. main() calls it right after parsing the configuration.
#pragma once
#include <string>

#include "broker/config.h"
#include "protocol/result.h"

namespace herald {

struct SecuritySummary {
    std::string jwt_algorithms;  // "HS256,HS384,HS512", or "none": the node runs open (every client may do anything)
    bool open = true;
};

// Checks the JWT keys (size, type, PEM), the capability JSON (--default-capabilities, --anonymous-capabilities),
// --allowed-origins, --trusted-proxies and the rate options. The error text never contains a secret.
Result<SecuritySummary, std::string> validate_security(const Config& config);

}  // namespace herald
