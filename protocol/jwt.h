// JWT (RFC 7519, JWS compact form) verification for the connect command: HS256/384/512, RS256/384/512, ES256.
// Sans-IO and clock-free: keys arrive as text, the current time as a parameter; every failure is a JwtError value.
#pragma once
#include <cstdint>
#include <memory>
#include <openssl/types.h>
#include <optional>
#include <string>
#include <string_view>

#include "protocol/capabilities.h"
#include "protocol/result.h"

namespace herald {

enum class JwtAlgorithm : uint8_t { HS256, HS384, HS512, RS256, RS384, RS512, ES256 };

// "HS256", ...
std::string_view jwt_algorithm_name(JwtAlgorithm alg);

// The configured verification keys. The algorithms a token may use follow from these keys alone — a token's
// header never chooses the key type. Copyable and cheap: the public key is shared.
struct JwtKeys {
    // `hmac_secret`: raw secret bytes, at least 32 (→ HS256/384/512). `public_key_pem`: PEM text, not a path
    // ("BEGIN PUBLIC KEY", or "BEGIN RSA PUBLIC KEY"): RSA ≥ 2048 bits (→ RS256/384/512) or EC P-256 (→ ES256).
    // Both may be given. `key_id`: when set, a token's "kid" must equal it; a token without "kid" is accepted.
    static Result<JwtKeys, std::string> load(std::optional<std::string> hmac_secret,
                                             std::optional<std::string> public_key_pem,
                                             std::optional<std::string> key_id);

    bool allows(JwtAlgorithm alg) const { return (allowed_algorithms & (1u << static_cast<unsigned>(alg))) != 0; }
    // "HS256,HS384,HS512" — for the startup log line.
    std::string describe() const;

    std::optional<std::string> hmac_secret;
    std::shared_ptr<EVP_PKEY> public_key;  // null when no PEM is configured
    std::optional<std::string> key_id;
    uint32_t allowed_algorithms = 0;       // bit (1 << JwtAlgorithm)
};

struct JwtPolicy {
    std::optional<std::string> audience;  // when set, "aud" (string or array of strings) must contain it
    std::optional<std::string> issuer;    // when set, "iss" must equal it
    int64_t leeway_s = 30;                // clock skew allowed on exp, nbf and iat
};

struct VerifiedToken {
    std::string subject;                 // "sub": 1–256 bytes
    int64_t expires_at = 0;              // "exp", unix seconds (floored)
    std::optional<int64_t> not_before;   // "nbf"
    std::optional<Capabilities> caps;    // nullopt when the claim is absent: the broker applies its defaults
};

enum class JwtError : uint8_t {
    Malformed,             // not three base64url segments, over 8 KiB, bad JSON, bad header fields, "crit"
    UnsupportedAlgorithm,  // alg none, unknown, or not allowed by the configured keys (RS/HS confusion)
    UnknownKeyId,          // "kid" present and not the configured key id
    BadSignature,
    Expired,
    NotYetValid,
    IssuedInFuture,
    WrongAudience,
    WrongIssuer,
    MissingSubject,
    MissingExpiry,
    BadCapabilities,
};

// Short text safe to send to a client; never contains any part of the token.
std::string_view jwt_error_text(JwtError error);

inline constexpr size_t kMaxJwtLength = 8192;

// Checks the signature before reading any claim. `now_unix` is the current time in seconds.
Result<VerifiedToken, JwtError> verify_jwt(std::string_view token, const JwtKeys& keys, const JwtPolicy& policy,
                                           int64_t now_unix);

}  // namespace herald
