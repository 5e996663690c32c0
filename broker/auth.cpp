// Token verification for connect and refresh. Failures become AuthFailure values whose text is fixed per reason:
// nothing a client sent, and no secret, ever appears in a reply or a log line.
#include "broker/auth.h"

#include <cmath>

namespace herald {
namespace {

std::optional<std::string> non_empty(const std::string& s) {
    return s.empty() ? std::nullopt : std::optional<std::string>(s);
}

int64_t whole_seconds(double seconds) { return static_cast<int64_t>(std::llround(std::max(seconds, 0.0))); }

}  // namespace

Result<Authenticator, std::string> Authenticator::from_config(const Config& config) {
    Authenticator auth;
    auth.all_caps_ = std::make_shared<const Capabilities>(Capabilities::all());
    auth.allow_anonymous_ = config.allow_anonymous;
    auto defaults = Capabilities::parse_text(config.default_capabilities);
    if (!defaults) return fail("--default-capabilities: " + defaults.error());
    auth.default_caps_ = std::make_shared<const Capabilities>(std::move(*defaults));
    auto anonymous = Capabilities::parse_text(config.anonymous_capabilities);
    if (!anonymous) return fail("--anonymous-capabilities: " + anonymous.error());
    auth.anonymous_caps_ = std::make_shared<const Capabilities>(std::move(*anonymous));
    if (!config.jwt_configured()) return auth;

    auto keys = JwtKeys::load(non_empty(config.jwt_secret), non_empty(config.jwt_public_key_pem),
                              non_empty(config.jwt_key_id));
    if (!keys) {
        const char* option = config.jwt_public_key_pem.empty() ? "--jwt-secret" : "--jwt-secret / --jwt-public-key";
        return fail(std::string(option) + ": " + keys.error());
    }
    auth.keys_ = std::move(*keys);
    auth.policy_.audience = non_empty(config.jwt_audience);
    auth.policy_.issuer = non_empty(config.jwt_issuer);
    auth.policy_.leeway_s = whole_seconds(config.jwt_leeway_s);
    return auth;
}

Authenticator Authenticator::deny_all() {
    Authenticator auth;
    auth.deny_all_ = true;
    auth.keys_ = JwtKeys{};  // not open; verifies nothing
    auth.all_caps_ = auth.default_caps_ = auth.anonymous_caps_ = std::make_shared<const Capabilities>();
    return auth;
}

std::string Authenticator::describe() const {
    if (deny_all_) return "deny-all";
    return keys_ ? keys_->describe() : "none";
}

std::string_view Authenticator::reason_label(JwtError error) {
    switch (error) {
        case JwtError::Malformed: return "malformed";
        case JwtError::UnsupportedAlgorithm: return "algorithm";
        case JwtError::UnknownKeyId: return "key_id";
        case JwtError::BadSignature: return "bad_signature";
        case JwtError::Expired: return "expired";
        case JwtError::NotYetValid: return "not_yet_valid";
        case JwtError::IssuedInFuture: return "issued_in_future";
        case JwtError::WrongAudience: return "audience";
        case JwtError::WrongIssuer: return "issuer";
        case JwtError::MissingSubject: return "subject";
        case JwtError::MissingExpiry: return "no_expiry";
        case JwtError::BadCapabilities: return "capabilities";
    }
    return "invalid";
}

Result<Identity, AuthFailure> Authenticator::verify(std::string_view token, int64_t now_unix) const {
    if (deny_all_) return fail(AuthFailure{"misconfigured", "authentication is misconfigured on this node"});
    auto verified = verify_jwt(token, *keys_, policy_, now_unix);
    if (!verified) return fail(AuthFailure{reason_label(verified.error()), std::string(jwt_error_text(verified.error()))});
    Identity identity;
    identity.subject = std::move(verified->subject);
    identity.expires_at = verified->expires_at;
    identity.caps = verified->caps ? std::make_shared<const Capabilities>(std::move(*verified->caps)) : default_caps_;
    return identity;
}

Result<Identity, AuthFailure> Authenticator::authenticate(const std::optional<std::string>& token,
                                                          int64_t now_unix) const {
    if (open()) return Identity{std::string(), all_caps_, std::nullopt};
    // An empty token is no token: clients often send "" when they have none.
    if (!token || token->empty()) {
        if (allow_anonymous_ && !deny_all_) return Identity{std::string(), anonymous_caps_, std::nullopt};
        return fail(AuthFailure{"missing_token", "a token is required"});
    }
    return verify(*token, now_unix);
}

Result<Identity, AuthFailure> Authenticator::refresh(std::string_view token, std::string_view subject,
                                                     int64_t now_unix) const {
    if (open()) return Identity{std::string(subject), all_caps_, std::nullopt};
    auto identity = verify(token, now_unix);
    if (!identity) return identity;
    if (identity->subject != subject)
        return fail(AuthFailure{"subject_changed", "the new token must name the same subject"});
    return identity;
}

}  // namespace herald
