// Builds each security component once from the configuration and reports the first failure.
#include "broker/security.h"

#include "broker/auth.h"
#include "broker/client_address.h"
#include "broker/origin.h"
#include "broker/rate_limiter.h"

namespace herald {

Result<SecuritySummary, std::string> validate_security(const Config& config) {
    auto auth = Authenticator::from_config(config);
    if (!auth) return fail(auth.error());
    if (auto origins = OriginPolicy::parse(config.allowed_origins); !origins) return fail(origins.error());
    if (auto proxies = TrustedProxies::parse(config.trusted_proxies); !proxies) return fail(proxies.error());
    if (config.client_rate > 0 && config.client_burst < 1)
        return fail(std::string("--client-burst must be at least 1 while --client-rate is on"));
    if (config.connect_rate > 0 && config.connect_rate * ConnectRateLimiter::kBurstFactor < 1)
        return fail(std::string("--connect-rate must be 0 (off) or at least 0.4: its burst (2.5 x N) must hold one "
                                "handshake"));
    if (config.allow_anonymous && !config.jwt_configured())
        return fail(std::string("--allow-anonymous needs a JWT key (--jwt-secret or --jwt-public-key); without one "
                                "every client is admitted anyway"));
    return SecuritySummary{auth->describe(), auth->open()};
}

}  // namespace herald
