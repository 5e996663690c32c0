// Who a WebSocket client is and what it may do: the one place where tokens are verified. Built once from the
// configuration (keys, policy, default and anonymous capabilities); the hub asks it on `connect` and `refresh`.
#pragma once
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "broker/config.h"
#include "protocol/capabilities.h"
#include "protocol/jwt.h"
#include "protocol/result.h"

namespace herald {

struct Identity {
    std::string subject;                        // the token's `sub`; empty for anonymous and open-mode clients
    std::shared_ptr<const Capabilities> caps;   // never null
    std::optional<int64_t> expires_at;          // the token's `exp` (unix seconds); none without a token
};

struct AuthFailure {
    std::string_view reason;  // metrics label (bounded set): missing_token, expired, bad_signature, ...
    std::string message;      // safe to send to the client: never any part of the token
};

class Authenticator {
public:
    // Fails with a message naming the option at fault: a bad key, or capabilities that are not valid JSON.
    static Result<Authenticator, std::string> from_config(const Config& config);
    // Refuses every client: the hub's fallback should it be built from a configuration that failed validation.
    static Authenticator deny_all();

    // No JWT key configured: every client is admitted with every capability.
    bool open() const { return !keys_; }
    // "HS256,HS384,HS512" or "none" — for the startup log line.
    std::string describe() const;

    // `connect`: with a key, a valid token → its identity; no token → anonymous capabilities when
    // --allow-anonymous is set, else missing_token. In open mode the token is ignored.
    Result<Identity, AuthFailure> authenticate(const std::optional<std::string>& token, int64_t now_unix) const;
    // `refresh`: the token must be valid and name `subject`.
    Result<Identity, AuthFailure> refresh(std::string_view token, std::string_view subject, int64_t now_unix) const;

    static std::string_view reason_label(JwtError error);

private:
    Result<Identity, AuthFailure> verify(std::string_view token, int64_t now_unix) const;

    std::optional<JwtKeys> keys_;
    JwtPolicy policy_;
    bool deny_all_ = false;
    bool allow_anonymous_ = false;
    std::shared_ptr<const Capabilities> default_caps_;    // tokens without `caps`
    std::shared_ptr<const Capabilities> anonymous_caps_;  // token-less clients with --allow-anonymous
    std::shared_ptr<const Capabilities> all_caps_;        // open mode
};

}  // namespace herald
