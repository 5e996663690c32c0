// Fuzz target for protocol/jwt.cpp and protocol/capabilities.cpp: tokens verified against fixed test keys (an HS
// secret, an RSA-2048 and an EC P-256 public key, below; their private halves are in jwt_keys/ for make_corpus.py).
// A fuzzer cannot forge signatures, so besides raw tokens the target signs what the input gives it with the HS
// secret, which takes the claim checks and the "caps" parser within reach.
//
// Input: [mode][policy][rest...]
//   mode   bits 0-1: 0 rest is a raw token; 1 rest is "<header JSON>\n<claims JSON>", signed here with the HS secret;
//                    2 the same, but signed with a public key's PEM text as the HMAC secret (RS/HS confusion);
//                    3 rest is capabilities JSON for Capabilities::parse_text;
//          bits 2-3: keys: HS only, RSA only, EC only, HS + RSA with key id "k1";
//          bits 4-5: the HMAC for modes 1-2: HS256, HS384, HS512, HS256; bit 4 also picks the PEM in mode 2;
//          bits 6-7: now: 1700000000, 0, INT64_MAX, INT64_MIN.
//   policy bit 0 audience "herald", bit 1 issuer "https://issuer.example", bits 2-3 leeway 30, 0, -5, INT64_MAX.
// Invariants beyond the sanitizers: deterministic; an accepted token has a signature that checks out independently
// under a configured key of the header's algorithm type (no alg confusion), a subject of 1-256 bytes, an expiry not
// passed (with the leeway), nbf reached, the audience and issuer the policy asks for, and caps that match like the
// reference matcher; a correctly HS-signed token is never BadSignature; a token keyed with the public PEM never
// passes; parsed capabilities match patterns exactly as documented in capabilities.h.
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_support.h"
#include "protocol/capabilities.h"
#include "protocol/jwt.h"

namespace {

using herald::Capabilities;
using herald::JwtAlgorithm;
using herald::JwtError;
using herald::JwtKeys;
using herald::JwtPolicy;
using Json = nlohmann::json;

// TEST KEYS, for fuzzing only (jwt_keys/*.pem). Never configure them anywhere.
constexpr std::string_view kSecret = "herald-fuzz-hs-secret-0123456789abcdef";
constexpr std::string_view kRsaPublicPem =
    "-----BEGIN PUBLIC KEY-----\n"
    "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAvpvPcfW0g+BfqQOBkHak\n"
    "YCdi7ttsXJt34szY760fCaEklGkSOPlDPbuwQMQ10f0HhhqJ770QDe8tvkFHMccR\n"
    "9+3dyr4ZEFNlvYcORmOEqKag1tQE1TShwkrOxB2cPvYQyBDsIKA5sRTdnMUlYbDP\n"
    "7r/Cb43rEUbcwjAv8DrP6rrdl3CMc5laBH6wHuUe52UgCqxRZI+1UDHjxYHSJVpQ\n"
    "zP1Omb5ArfP4de0qjVuyDny3/W/IrbMLcKlQ9iEHEKM/9vJT/mptc03NrQ8k3GGk\n"
    "GBG1mxp6hNadH1Icy02Pwri8u05l+v/0iwPaGXT93PLXoxwtE4X2j1NOx+pNhV+y\n"
    "bQIDAQAB\n"
    "-----END PUBLIC KEY-----\n";
constexpr std::string_view kEcPublicPem =
    "-----BEGIN PUBLIC KEY-----\n"
    "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEZFBWqRGKU8ub7oaqjgLz/csRnQjy\n"
    "tsXYaVbJafrBSheXXi5CA16MeyDNNpKnFdwDPEszYoyJfJP/TMHgxTWLTg==\n"
    "-----END PUBLIC KEY-----\n";
constexpr std::string_view kKeyId = "k1";

constexpr int64_t kNows[4] = {1'700'000'000, 0, std::numeric_limits<int64_t>::max(),
                              std::numeric_limits<int64_t>::min()};
constexpr int64_t kLeeways[4] = {30, 0, -5, std::numeric_limits<int64_t>::max()};
constexpr std::string_view kAudience = "herald";
constexpr std::string_view kIssuer = "https://issuer.example";

struct KeySet {
    JwtKeys keys;
    bool hs = false, rsa = false, ec = false;
    std::optional<std::string> kid;
};

// Loaded once per process (the keys are constants, so this stays deterministic).
const std::array<KeySet, 4>& key_sets() {
    static const std::array<KeySet, 4> sets = [] {
        auto load = [](bool hs, bool rsa, bool ec, bool kid) {
            std::optional<std::string> pem;
            if (rsa) pem = std::string(kRsaPublicPem);
            if (ec) pem = std::string(kEcPublicPem);
            auto loaded = JwtKeys::load(hs ? std::optional<std::string>(kSecret) : std::nullopt, pem,
                                        kid ? std::optional<std::string>(kKeyId) : std::nullopt);
            FUZZ_CHECK(loaded.ok(), "the fixed test keys load");
            (void)loaded->describe();
            return KeySet{*loaded, hs, rsa, ec, kid ? std::optional<std::string>(kKeyId) : std::nullopt};
        };
        return std::array<KeySet, 4>{load(true, false, false, false), load(false, true, false, false),
                                     load(false, false, true, false), load(true, true, false, true)};
    }();
    return sets;
}

// ---- independent helpers ----

std::string b64url_encode(std::string_view bytes) {
    static constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    std::string out;
    uint32_t buffer = 0;
    int bits = 0;
    for (char c : bytes) {
        buffer = (buffer << 8) | static_cast<uint8_t>(c);
        bits += 8;
        while (bits >= 6) {
            bits -= 6;
            out += kAlphabet[(buffer >> bits) & 63];
        }
    }
    if (bits > 0) out += kAlphabet[(buffer << (6 - bits)) & 63];
    return out;
}

std::optional<std::string> b64url_decode(std::string_view text) {
    constexpr std::string_view kAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    std::string out;
    uint32_t buffer = 0;
    int bits = 0;
    for (char c : text) {
        const size_t value = kAlphabet.find(c);
        if (value == std::string_view::npos) return std::nullopt;
        buffer = (buffer << 6) | static_cast<uint32_t>(value);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out += static_cast<char>((buffer >> bits) & 0xFF);
        }
    }
    return out;
}

const EVP_MD* digest_for(std::string_view alg) {
    if (alg.ends_with("384")) return EVP_sha384();
    if (alg.ends_with("512")) return EVP_sha512();
    return EVP_sha256();
}

std::string hmac(std::string_view alg, std::string_view key, std::string_view data) {
    unsigned char out[EVP_MAX_MD_SIZE];
    unsigned int length = 0;
    if (HMAC(digest_for(alg), key.data(), static_cast<int>(key.size()),
             reinterpret_cast<const unsigned char*>(data.data()), data.size(), out, &length) == nullptr) {
        return {};
    }
    return std::string(reinterpret_cast<const char*>(out), length);
}

bool digest_verify(std::string_view alg, EVP_PKEY* key, std::string_view data, std::string_view signature) {
    std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
    const bool ok = ctx && EVP_DigestVerifyInit(ctx.get(), nullptr, digest_for(alg), nullptr, key) == 1 &&
                    EVP_DigestVerify(ctx.get(), reinterpret_cast<const unsigned char*>(signature.data()),
                                     signature.size(), reinterpret_cast<const unsigned char*>(data.data()),
                                     data.size()) == 1;
    ERR_clear_error();
    return ok;
}

// The signature checked without protocol/jwt.cpp: HMAC recomputed, RSA PKCS#1 v1.5, ECDSA from R || S.
bool reference_signature(std::string_view alg, const KeySet& set, std::string_view input, std::string_view sig) {
    if (alg == "HS256" || alg == "HS384" || alg == "HS512") return set.hs && hmac(alg, kSecret, input) == sig;
    if (alg == "RS256" || alg == "RS384" || alg == "RS512") {
        return set.rsa && digest_verify(alg, set.keys.public_key.get(), input, sig);
    }
    if (alg == "ES256") {
        if (!set.ec || sig.size() != 64) return false;
        const auto* raw = reinterpret_cast<const unsigned char*>(sig.data());
        ECDSA_SIG* ecdsa = ECDSA_SIG_new();
        if (ecdsa == nullptr) return false;
        ECDSA_SIG_set0(ecdsa, BN_bin2bn(raw, 32, nullptr), BN_bin2bn(raw + 32, 32, nullptr));
        unsigned char* der = nullptr;
        const int der_length = i2d_ECDSA_SIG(ecdsa, &der);
        ECDSA_SIG_free(ecdsa);
        if (der_length <= 0) return false;
        const bool ok = digest_verify(alg, set.keys.public_key.get(), input,
                                      std::string_view(reinterpret_cast<const char*>(der), der_length));
        OPENSSL_free(der);
        return ok;
    }
    return false;
}

int64_t saturating_add(int64_t a, int64_t b) {
    int64_t sum = 0;
    if (!__builtin_add_overflow(a, b, &sum)) return sum;
    return b > 0 ? std::numeric_limits<int64_t>::max() : std::numeric_limits<int64_t>::min();
}

// ---- capabilities: the documented matching rules, restated ----

bool reference_channel(std::string_view name) {
    if (name.empty() || name.size() > 255) return false;
    for (char c : name) {
        const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                        std::string_view("_.:@/=-").find(c) != std::string_view::npos;
        if (!ok) return false;
    }
    return true;
}

std::string expand(std::string_view pattern, std::string_view subject) {
    std::string out;
    for (size_t i = 0; i < pattern.size();) {
        if (pattern.substr(i, 5) == "{sub}") {
            out += subject;
            i += 5;
        } else {
            out += pattern[i++];
        }
    }
    return out;
}

// A pattern is an exact name, a prefix ending in '*', or '*'; "{sub}" stands for the subject, and a pattern that
// uses it matches nothing when the subject is empty or not made of channel-name characters.
bool reference_match(std::string_view pattern, std::string_view channel, std::string_view subject) {
    const bool uses_subject = pattern.find("{sub}") != std::string_view::npos;
    if (uses_subject && !reference_channel(subject)) return false;
    const std::string expanded = expand(pattern, subject);
    if (!expanded.empty() && expanded.back() == '*') {
        const std::string_view prefix = std::string_view(expanded).substr(0, expanded.size() - 1);
        return channel.substr(0, prefix.size()) == prefix;
    }
    return channel == expanded;
}

uint8_t reference_operations(const Json& list) {
    uint8_t bits = 0;
    for (const Json& op : list) {
        const auto& name = op.get_ref<const std::string&>();
        if (name == "subscribe") bits |= 1;
        if (name == "publish") bits |= 2;
        if (name == "history") bits |= 4;
        if (name == "*") bits |= 7;
    }
    return bits;
}

// `object` was accepted by Capabilities::parse into `caps`: its matching must follow the reference rules.
void check_capabilities(const Capabilities& caps, const Json& object, std::string_view token_subject) {
    FUZZ_CHECK(object.is_object(), "capabilities come from an object");
    // Bounded work per input: channels derived from the first patterns, and the reference only for small sets.
    if (object.size() > 64) {
        (void)caps.allows("a", herald::Operation::Subscribe, "alice");
        return;
    }
    std::vector<std::string> channels = {"a", "chat:room1", "user.alice", "user.alice.inbox", "alice", "x"};
    size_t derived = 0;
    for (const auto& [pattern, ops] : object.items()) {
        if (++derived > 8) break;
        for (std::string_view subject : {std::string_view("alice"), token_subject}) {
            std::string name = expand(pattern, subject);
            if (!name.empty() && name.back() == '*') name.pop_back();
            channels.push_back(name);
            channels.push_back(name + "x");
        }
    }
    const std::string_view subjects[] = {"alice", "", "a*b", "{sub}", "a b", token_subject};
    constexpr herald::Operation kOps[] = {herald::Operation::Subscribe, herald::Operation::Publish,
                                          herald::Operation::History};
    bool any = false;
    for (const std::string& channel : channels) {
        if (!reference_channel(channel)) continue;  // allows() takes validated names only
        for (std::string_view subject : subjects) {
            for (herald::Operation op : kOps) {
                bool expected = false;
                for (const auto& [pattern, ops] : object.items()) {
                    if ((reference_operations(ops) & static_cast<uint8_t>(op)) != 0 &&
                        reference_match(pattern, channel, subject)) {
                        expected = true;
                    }
                }
                const bool allowed = caps.allows(channel, op, subject);
                FUZZ_CHECK(allowed == expected, "capabilities match as documented");
                any = any || allowed;
            }
        }
    }
    if (caps.empty()) FUZZ_CHECK(!any, "empty capabilities allow nothing");
}

void fuzz_capabilities(std::string_view text) {
    const auto parsed = Capabilities::parse_text(text);
    const auto again = Capabilities::parse_text(text);
    FUZZ_CHECK(parsed.ok() == again.ok(), "capabilities parsing is deterministic");
    if (!parsed.ok()) {
        FUZZ_CHECK(!parsed.error().empty() && parsed.error() == again.error(), "a capabilities error says why");
        for (char c : parsed.error()) {
            FUZZ_CHECK(static_cast<uint8_t>(c) >= 0x20 && static_cast<uint8_t>(c) < 0x7F,
                       "a capabilities error is printable ASCII");
        }
        return;
    }
    FUZZ_CHECK(*parsed == *again, "capabilities parsing is deterministic (value)");
    const Json object = Json::parse(text, nullptr, /*allow_exceptions=*/false);
    FUZZ_CHECK(!object.is_discarded(), "accepted capabilities are JSON");
    check_capabilities(*parsed, object, "bob");
}

// ---- tokens ----

struct Split {
    std::string_view header, payload, signature, signing_input;
};

std::optional<Split> split_token(std::string_view token) {
    const size_t a = token.find('.');
    if (a == std::string_view::npos) return std::nullopt;
    const size_t b = token.find('.', a + 1);
    if (b == std::string_view::npos || token.find('.', b + 1) != std::string_view::npos) return std::nullopt;
    return Split{token.substr(0, a), token.substr(a + 1, b - a - 1), token.substr(b + 1), token.substr(0, b)};
}

// What an accepted token must satisfy, read from the token by this file's own code.
void check_accepted(std::string_view token, const herald::VerifiedToken& verified, const KeySet& set,
                    const JwtPolicy& policy, int64_t now) {
    FUZZ_CHECK(token.size() <= herald::kMaxJwtLength, "an accepted token is at most 8 KiB");
    const auto parts = split_token(token);
    FUZZ_CHECK(parts.has_value(), "an accepted token has three segments");
    const auto header_bytes = b64url_decode(parts->header);
    const auto payload_bytes = b64url_decode(parts->payload);
    const auto signature = b64url_decode(parts->signature);
    FUZZ_CHECK(header_bytes && payload_bytes && signature, "an accepted token is base64url");
    FUZZ_CHECK(b64url_encode(*header_bytes) == parts->header && b64url_encode(*payload_bytes) == parts->payload &&
                   b64url_encode(*signature) == parts->signature,
               "an accepted token is canonical base64url without padding");
    const Json header = Json::parse(*header_bytes, nullptr, false);
    FUZZ_CHECK(header.is_object() && header.contains("alg") && header["alg"].is_string(), "a header with alg");
    FUZZ_CHECK(!header.contains("crit"), "no crit in an accepted header");
    const std::string alg = header["alg"].get<std::string>();
    FUZZ_CHECK(reference_signature(alg, set, parts->signing_input, *signature),
               "an accepted signature checks out under a configured key of the alg's type");
    if (header.contains("kid")) {
        FUZZ_CHECK(set.kid && header["kid"].is_string() && header["kid"].get<std::string>() == *set.kid,
                   "an accepted kid is the configured one");
    }

    const Json claims = Json::parse(*payload_bytes, nullptr, false);
    FUZZ_CHECK(claims.is_object(), "accepted claims are an object");
    FUZZ_CHECK(claims.contains("sub") && claims["sub"].is_string() && claims["sub"].get<std::string>() == verified.subject,
               "the subject is the sub claim");
    FUZZ_CHECK(!verified.subject.empty() && verified.subject.size() <= 256, "a subject of 1-256 bytes");
    FUZZ_CHECK(claims.contains("exp") && claims["exp"].is_number(), "an accepted token has a numeric exp");
    const int64_t leeway = policy.leeway_s > 0 ? policy.leeway_s : 0;
    FUZZ_CHECK(now < saturating_add(verified.expires_at, leeway), "an accepted token has not expired");
    if (claims.contains("exp") && claims["exp"].is_number_integer() && !claims["exp"].is_number_unsigned()) {
        FUZZ_CHECK(verified.expires_at == claims["exp"].get<int64_t>(), "an integer exp is kept exactly");
    }
    if (claims.contains("nbf")) {
        FUZZ_CHECK(verified.not_before.has_value(), "nbf is reported");
        FUZZ_CHECK(saturating_add(now, leeway) >= *verified.not_before, "an accepted token is valid already");
    } else {
        FUZZ_CHECK(!verified.not_before.has_value(), "no nbf reported without the claim");
    }
    if (policy.audience) {
        const Json* aud = claims.contains("aud") ? &claims["aud"] : nullptr;
        bool found = aud != nullptr && aud->is_string() && aud->get<std::string>() == *policy.audience;
        if (aud != nullptr && aud->is_array()) {
            for (const Json& entry : *aud) found = found || (entry.is_string() && entry.get<std::string>() == *policy.audience);
        }
        FUZZ_CHECK(found, "an accepted token names the audience");
    }
    if (policy.issuer) {
        FUZZ_CHECK(claims.contains("iss") && claims["iss"].is_string() &&
                       claims["iss"].get<std::string>() == *policy.issuer,
                   "an accepted token names the issuer");
    }
    FUZZ_CHECK(verified.caps.has_value() == claims.contains("caps"), "caps reported exactly when claimed");
    if (verified.caps) check_capabilities(*verified.caps, claims["caps"], verified.subject);
}

std::optional<std::string> header_alg(std::string_view header_json) {
    const Json header = Json::parse(header_json, nullptr, false);
    if (!header.is_object() || !header.contains("alg") || !header["alg"].is_string()) return std::nullopt;
    return header["alg"].get<std::string>();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size < 2) return 0;
    const uint8_t mode_byte = data[0];
    const uint8_t policy_byte = data[1];
    const std::string_view rest(reinterpret_cast<const char*>(data + 2), size - 2);
    const unsigned mode = mode_byte & 3u;
    if (mode == 3) {
        fuzz_capabilities(rest);
        return 0;
    }

    const KeySet& set = key_sets()[(mode_byte >> 2) & 3u];
    constexpr std::string_view kHmacs[4] = {"HS256", "HS384", "HS512", "HS256"};
    const std::string_view sign_alg = kHmacs[(mode_byte >> 4) & 3u];
    const int64_t now = kNows[(mode_byte >> 6) & 3u];
    JwtPolicy policy;
    if (policy_byte & 1u) policy.audience = std::string(kAudience);
    if (policy_byte & 2u) policy.issuer = std::string(kIssuer);
    policy.leeway_s = kLeeways[(policy_byte >> 2) & 3u];

    std::string token;
    std::optional<std::string> signed_header;  // modes 1-2: the header JSON the token carries
    if (mode == 0) {
        token.assign(rest);
    } else {
        const size_t newline = rest.find('\n');
        const std::string_view header = rest.substr(0, newline);
        const std::string_view claims = newline == std::string_view::npos ? std::string_view() : rest.substr(newline + 1);
        token = b64url_encode(header) + "." + b64url_encode(claims);
        const std::string_view secret = mode == 1 ? kSecret : ((mode_byte >> 4) & 1u) ? kEcPublicPem : kRsaPublicPem;
        token += "." + b64url_encode(hmac(sign_alg, secret, token));
        signed_header.emplace(header);
    }

    const auto result = herald::verify_jwt(token, set.keys, policy, now);
    const auto again = herald::verify_jwt(token, set.keys, policy, now);
    FUZZ_CHECK(result.ok() == again.ok(), "verification is deterministic");
    if (!result.ok()) {
        FUZZ_CHECK(result.error() == again.error(), "verification is deterministic (error)");
        FUZZ_CHECK(static_cast<uint8_t>(result.error()) <= static_cast<uint8_t>(JwtError::BadCapabilities),
                   "a known error");
        FUZZ_CHECK(!herald::jwt_error_text(result.error()).empty(), "every error has a text");
        if (mode == 1 && set.hs && result.error() == JwtError::BadSignature) {
            FUZZ_CHECK(header_alg(*signed_header) != std::string(sign_alg),
                       "a token HS-signed with the configured secret is not BadSignature");
        }
    } else {
        FUZZ_CHECK(mode != 2, "a token keyed with the public key's PEM never passes (alg confusion)");
        FUZZ_CHECK(again->subject == result->subject && again->expires_at == result->expires_at,
                   "verification is deterministic (claims)");
        check_accepted(token, *result, set, policy, now);
    }
    return 0;
}
