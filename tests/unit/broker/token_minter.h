// HS256 tokens for broker tests, minted with OpenSSL's HMAC directly (not with protocol/jwt.cpp), so a test of the
// hub's authentication does not trust the verifier it exercises.
#pragma once
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <cstdint>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace herald::testing {

inline const std::string kTestJwtSecret = "broker-test-secret-0123456789abcdef-0123456789";

inline std::string base64url(std::string_view bytes) {
    static constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    std::string out;
    uint32_t buffer = 0;
    int bits = 0;
    for (unsigned char c : bytes) {
        buffer = (buffer << 8) | c;
        bits += 8;
        while (bits >= 6) {
            bits -= 6;
            out += kAlphabet[(buffer >> bits) & 63];
        }
    }
    if (bits > 0) out += kAlphabet[(buffer << (6 - bits)) & 63];
    return out;
}

// `claims` as given; the header is {"alg":"HS256","typ":"JWT"} unless `header` says otherwise.
inline std::string mint_hs256(const nlohmann::json& claims, std::string_view secret = kTestJwtSecret,
                              const nlohmann::json& header = {{"alg", "HS256"}, {"typ", "JWT"}}) {
    const std::string signing_input = base64url(header.dump()) + "." + base64url(claims.dump());
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int length = 0;
    HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
         reinterpret_cast<const unsigned char*>(signing_input.data()), signing_input.size(), mac, &length);
    return signing_input + "." + base64url(std::string_view(reinterpret_cast<const char*>(mac), length));
}

// A token for `subject` valid until `exp` (unix seconds), with `caps` when it is not null.
inline std::string token_for(const std::string& subject, int64_t exp, const nlohmann::json& caps = nullptr) {
    nlohmann::json claims = {{"sub", subject}, {"exp", exp}};
    if (!caps.is_null()) claims["caps"] = caps;
    return mint_hs256(claims);
}

}  // namespace herald::testing
