// Tests for protocol/jwt.cpp. Tokens are minted here with OpenSSL directly (HMAC, EVP_DigestSign), independently
// of the code under test; keys are generated per run. The clock is the constant kNow.
#include "protocol/jwt.h"

#include <gtest/gtest.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/encoder.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>

#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

namespace herald {
namespace {

using Json = nlohmann::json;
using Key = std::shared_ptr<EVP_PKEY>;

constexpr int64_t kNow = 1'700'000'000;
const std::string kSecret = "0123456789abcdef0123456789abcdef-test-secret";

// ---- independent minting helpers ----

std::string b64url(std::string_view bytes) {
    static constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    std::string out;
    size_t i = 0;
    for (; i + 3 <= bytes.size(); i += 3) {
        const uint32_t n = (uint32_t(uint8_t(bytes[i])) << 16) | (uint32_t(uint8_t(bytes[i + 1])) << 8) |
                           uint32_t(uint8_t(bytes[i + 2]));
        for (int shift : {18, 12, 6, 0}) out += kAlphabet[(n >> shift) & 63];
    }
    if (bytes.size() - i == 1) {
        const uint32_t n = uint32_t(uint8_t(bytes[i])) << 16;
        out += kAlphabet[(n >> 18) & 63];
        out += kAlphabet[(n >> 12) & 63];
    } else if (bytes.size() - i == 2) {
        const uint32_t n = (uint32_t(uint8_t(bytes[i])) << 16) | (uint32_t(uint8_t(bytes[i + 1])) << 8);
        for (int shift : {18, 12, 6}) out += kAlphabet[(n >> shift) & 63];
    }
    return out;
}

std::string unb64url(std::string_view text) {
    std::string out;
    uint32_t buffer = 0;
    int bits = 0;
    for (char c : text) {
        const std::string_view alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        buffer = (buffer << 6) | uint32_t(alphabet.find(c));
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out += char((buffer >> bits) & 0xFF);
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
    if (!HMAC(digest_for(alg), key.data(), int(key.size()), reinterpret_cast<const unsigned char*>(data.data()),
              data.size(), out, &length)) {
        throw std::runtime_error("HMAC failed");
    }
    return std::string(reinterpret_cast<char*>(out), length);
}

std::string digest_sign(EVP_PKEY* key, std::string_view alg, std::string_view data) {
    std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
    size_t length = 0;
    const auto* in = reinterpret_cast<const unsigned char*>(data.data());
    if (EVP_DigestSignInit(ctx.get(), nullptr, digest_for(alg), nullptr, key) != 1 ||
        EVP_DigestSign(ctx.get(), nullptr, &length, in, data.size()) != 1) {
        throw std::runtime_error("EVP_DigestSign failed");
    }
    std::string sig(length, '\0');
    if (EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(sig.data()), &length, in, data.size()) != 1) {
        throw std::runtime_error("EVP_DigestSign failed");
    }
    sig.resize(length);
    return sig;
}

// JWS ES256 wants R || S (32 bytes each), not the DER that OpenSSL produces.
std::string der_to_raw(std::string_view der) {
    const auto* p = reinterpret_cast<const unsigned char*>(der.data());
    std::unique_ptr<ECDSA_SIG, decltype(&ECDSA_SIG_free)> sig(d2i_ECDSA_SIG(nullptr, &p, long(der.size())),
                                                              ECDSA_SIG_free);
    if (!sig) throw std::runtime_error("d2i_ECDSA_SIG failed");
    std::string raw(64, '\0');
    BN_bn2binpad(ECDSA_SIG_get0_r(sig.get()), reinterpret_cast<unsigned char*>(raw.data()), 32);
    BN_bn2binpad(ECDSA_SIG_get0_s(sig.get()), reinterpret_cast<unsigned char*>(raw.data()) + 32, 32);
    return raw;
}

Key rsa_key(unsigned bits) {
    Key key(EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", size_t{bits}), EVP_PKEY_free);
    if (!key) throw std::runtime_error("RSA keygen failed");
    return key;
}
Key ec_key(const char* curve) {
    Key key(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", curve), EVP_PKEY_free);
    if (!key) throw std::runtime_error("EC keygen failed");
    return key;
}

// Generated once per run: RSA keygen is slow under the sanitizers.
const Key& rsa() {
    static const Key key = rsa_key(2048);
    return key;
}
const Key& ec() {
    static const Key key = ec_key("P-256");
    return key;
}

std::string encode_key(EVP_PKEY* key, int selection, const char* structure) {
    std::unique_ptr<OSSL_ENCODER_CTX, decltype(&OSSL_ENCODER_CTX_free)> ctx(
        OSSL_ENCODER_CTX_new_for_pkey(key, selection, "PEM", structure, nullptr), OSSL_ENCODER_CTX_free);
    unsigned char* data = nullptr;
    size_t length = 0;
    if (!ctx || OSSL_ENCODER_to_data(ctx.get(), &data, &length) != 1) throw std::runtime_error("encode failed");
    std::string pem(reinterpret_cast<char*>(data), length);
    OPENSSL_free(data);
    return pem;
}
std::string public_pem(const Key& key) { return encode_key(key.get(), EVP_PKEY_PUBLIC_KEY, "SubjectPublicKeyInfo"); }

std::string sign_with(std::string_view alg, std::string_view input, const Key& rsa_signer = rsa(),
                      const Key& ec_signer = ec()) {
    if (alg.starts_with("HS")) return hmac(alg, kSecret, input);
    if (alg.starts_with("RS")) return digest_sign(rsa_signer.get(), alg, input);
    if (alg == "ES256") return der_to_raw(digest_sign(ec_signer.get(), alg, input));
    return "";
}

Json claims() { return Json{{"sub", "alice"}, {"exp", kNow + 3600}, {"iat", kNow - 10}}; }

std::string signing_input(const Json& header, const Json& payload) {
    return b64url(header.dump()) + "." + b64url(payload.dump());
}

// A correctly signed token; `extra_header` fields are merged over {"alg", "typ"}.
std::string mint(std::string_view alg, const Json& payload = claims(), const Json& extra_header = Json::object()) {
    Json header{{"alg", alg}, {"typ", "JWT"}};
    header.update(extra_header);
    const std::string input = signing_input(header, payload);
    return input + "." + b64url(sign_with(alg, input));
}

std::string with_signature(const Json& header, const Json& payload, std::string_view signature) {
    return signing_input(header, payload) + "." + b64url(signature);
}

// Flips `mask` in byte `index` of the decoded segment, re-encoding it.
std::string flip_bit(const std::string& token, int segment, size_t index, unsigned char mask) {
    std::vector<std::string> parts;
    size_t start = 0;
    for (size_t dot = token.find('.'); dot != std::string::npos; dot = token.find('.', start)) {
        parts.push_back(token.substr(start, dot - start));
        start = dot + 1;
    }
    parts.push_back(token.substr(start));
    std::string bytes = unb64url(parts.at(size_t(segment)));
    bytes.at(index) = char(uint8_t(bytes.at(index)) ^ mask);
    parts.at(size_t(segment)) = b64url(bytes);
    return parts[0] + "." + parts[1] + "." + parts[2];
}

// ---- keys under test ----

JwtKeys load_or_die(std::optional<std::string> secret, std::optional<std::string> pem,
                    std::optional<std::string> kid = std::nullopt) {
    auto keys = JwtKeys::load(std::move(secret), std::move(pem), std::move(kid));
    if (!keys.ok()) throw std::runtime_error("JwtKeys::load: " + keys.error());
    return *keys;
}
JwtKeys secret_keys() { return load_or_die(kSecret, std::nullopt); }
JwtKeys rsa_keys() { return load_or_die(std::nullopt, public_pem(rsa())); }
JwtKeys ec_keys() { return load_or_die(std::nullopt, public_pem(ec())); }
JwtKeys all_keys() { return load_or_die(kSecret, public_pem(rsa())); }
JwtKeys keys_for(std::string_view alg) {
    if (alg.starts_with("HS")) return secret_keys();
    if (alg.starts_with("RS")) return rsa_keys();
    return ec_keys();
}

using Verified = Result<VerifiedToken, JwtError>;

Verified verify(std::string_view token, const JwtKeys& keys, const JwtPolicy& policy = {}, int64_t now = kNow) {
    return verify_jwt(token, keys, policy, now);
}

std::string describe(const Verified& r) {
    return r.ok() ? "ok (sub " + r->subject + ")" : "error: " + std::string(jwt_error_text(r.error()));
}

JwtPolicy with_leeway(int64_t leeway_s) {
    JwtPolicy policy;
    policy.leeway_s = leeway_s;
    return policy;
}

::testing::AssertionResult accepted(const Verified& r) {
    if (r.ok()) return ::testing::AssertionSuccess();
    return ::testing::AssertionFailure() << "expected ok, got " << describe(r);
}
::testing::AssertionResult refused_with(const Verified& r, JwtError expected) {
    if (!r.ok() && r.error() == expected) return ::testing::AssertionSuccess();
    return ::testing::AssertionFailure() << "expected error: " << jwt_error_text(expected) << ", got " << describe(r);
}

#define EXPECT_JWT_OK(expr) EXPECT_TRUE(accepted(expr)) << #expr
#define EXPECT_JWT_ERROR(expr, expected) EXPECT_TRUE(refused_with(expr, expected)) << #expr

// ---- valid tokens ----

TEST(Jwt, AcceptsEveryConfiguredAlgorithm) {
    for (const char* alg : {"HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "ES256"}) {
        const auto r = verify(mint(alg), keys_for(alg));
        ASSERT_TRUE(r.ok()) << alg << " → " << describe(r);
        EXPECT_EQ(r->subject, "alice") << alg;
        EXPECT_EQ(r->expires_at, kNow + 3600) << alg;
        EXPECT_FALSE(r->not_before.has_value()) << alg;
        EXPECT_FALSE(r->caps.has_value()) << alg;
    }
}

TEST(Jwt, SecretAndPublicKeyTogetherAcceptBothFamilies) {
    const JwtKeys keys = all_keys();
    EXPECT_EQ(keys.describe(), "HS256,HS384,HS512,RS256,RS384,RS512");
    EXPECT_JWT_OK(verify(mint("HS512"), keys));
    EXPECT_JWT_OK(verify(mint("RS384"), keys));
    EXPECT_JWT_ERROR(verify(mint("ES256"), keys), JwtError::UnsupportedAlgorithm);
}

TEST(Jwt, KeysAreCopyable) {
    JwtKeys copy;
    {
        const JwtKeys original = rsa_keys();
        copy = original;
    }
    EXPECT_JWT_OK(verify(mint("RS256"), copy));
}

// ---- the algorithm comes from the keys, never from the header ----

TEST(Jwt, RefusesAlgNone) {
    const Json payload = claims();
    for (const char* none : {"none", "None", "NONE", "nOnE"}) {
        const Json header{{"alg", none}, {"typ", "JWT"}};
        for (const JwtKeys& keys : {secret_keys(), rsa_keys(), all_keys()}) {
            EXPECT_JWT_ERROR(verify(signing_input(header, payload) + ".", keys), JwtError::UnsupportedAlgorithm);
            EXPECT_JWT_ERROR(verify(with_signature(header, payload, "signature"), keys),
                             JwtError::UnsupportedAlgorithm);
            EXPECT_JWT_ERROR(verify(with_signature(header, payload, hmac("HS256", kSecret,
                                                                         signing_input(header, payload))),
                                    keys),
                             JwtError::UnsupportedAlgorithm);
        }
    }
}

TEST(Jwt, RefusesHmacTokenKeyedWithThePublicKey) {
    // The RS/HS confusion attack: sign HS256 with the public key's PEM text as the HMAC secret.
    for (const Key& key : {rsa(), ec()}) {
        const std::string pem = public_pem(key);
        const JwtKeys keys = load_or_die(std::nullopt, pem);
        for (const char* alg : {"HS256", "HS384", "HS512"}) {
            const Json header{{"alg", alg}, {"typ", "JWT"}};
            const std::string input = signing_input(header, claims());
            EXPECT_JWT_ERROR(verify(input + "." + b64url(hmac(alg, pem, input)), keys),
                             JwtError::UnsupportedAlgorithm);
        }
    }
}

TEST(Jwt, RefusesAlgorithmsTheKeysDoNotProvide) {
    EXPECT_JWT_ERROR(verify(mint("RS256"), secret_keys()), JwtError::UnsupportedAlgorithm);
    EXPECT_JWT_ERROR(verify(mint("ES256"), secret_keys()), JwtError::UnsupportedAlgorithm);
    EXPECT_JWT_ERROR(verify(mint("ES256"), rsa_keys()), JwtError::UnsupportedAlgorithm);
    EXPECT_JWT_ERROR(verify(mint("RS256"), ec_keys()), JwtError::UnsupportedAlgorithm);
    EXPECT_JWT_ERROR(verify(mint("HS256"), ec_keys()), JwtError::UnsupportedAlgorithm);
}

TEST(Jwt, RefusesUnknownAlgorithms) {
    for (const char* alg : {"PS256", "ES384", "ES512", "EdDSA", "HS1", "hs256", "HS256 ", "RSA", ""}) {
        const Json header{{"alg", alg}};
        const std::string input = signing_input(header, claims());
        EXPECT_JWT_ERROR(verify(input + "." + b64url(hmac("HS256", kSecret, input)), all_keys()),
                         JwtError::UnsupportedAlgorithm)
            << "alg " << alg;
    }
}

// ---- kid ----

TEST(Jwt, KeyIdMustMatchTheConfiguredOne) {
    const JwtKeys plain = secret_keys();
    const JwtKeys with_kid = load_or_die(kSecret, std::nullopt, "k1");
    EXPECT_JWT_ERROR(verify(mint("HS256", claims(), {{"kid", "k1"}}), plain), JwtError::UnknownKeyId);
    EXPECT_JWT_ERROR(verify(mint("HS256", claims(), {{"kid", "k2"}}), with_kid), JwtError::UnknownKeyId);
    EXPECT_JWT_ERROR(verify(mint("HS256", claims(), {{"kid", ""}}), with_kid), JwtError::UnknownKeyId);
    EXPECT_JWT_OK(verify(mint("HS256", claims(), {{"kid", "k1"}}), with_kid));
    EXPECT_JWT_OK(verify(mint("HS256"), with_kid));
    EXPECT_JWT_ERROR(verify(mint("HS256", claims(), {{"kid", 1}}), with_kid), JwtError::Malformed);
}

// ---- signatures ----

TEST(Jwt, OneFlippedBitInAnySegmentBreaksTheSignature) {
    for (const char* alg : {"HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "ES256"}) {
        const std::string token = mint(alg);
        const JwtKeys keys = keys_for(alg);
        // Header {"alg":"..","typ":"JWT"}: the 'J' of JWT → 'j', still an accepted typ.
        const size_t j = unb64url(token.substr(0, token.find('.'))).find("\"JWT\"") + 1;
        EXPECT_JWT_ERROR(verify(flip_bit(token, 0, j, 0x20), keys), JwtError::BadSignature) << alg;
        // Payload {"exp":..,"iat":..,"sub":"alice"}: 'a' → 'A'.
        const std::string payload = claims().dump();
        EXPECT_JWT_ERROR(verify(flip_bit(token, 1, payload.find("alice"), 0x20), keys), JwtError::BadSignature)
            << alg;
        // Signature: first and last byte, lowest bit.
        const size_t signature_length = unb64url(token.substr(token.rfind('.') + 1)).size();
        EXPECT_JWT_ERROR(verify(flip_bit(token, 2, 0, 0x01), keys), JwtError::BadSignature) << alg;
        EXPECT_JWT_ERROR(verify(flip_bit(token, 2, signature_length - 1, 0x01), keys), JwtError::BadSignature)
            << alg;
    }
}

TEST(Jwt, RefusesSignaturesFromOtherKeys) {
    const Json header{{"alg", "HS256"}};
    const std::string input = signing_input(header, claims());
    const std::string other_secret(40, 'z');
    EXPECT_JWT_ERROR(verify(input + "." + b64url(hmac("HS256", other_secret, input)), secret_keys()),
                     JwtError::BadSignature);

    const Key other_rsa = rsa_key(2048);
    const Json rs_header{{"alg", "RS256"}};
    const std::string rs_input = signing_input(rs_header, claims());
    EXPECT_JWT_ERROR(verify(rs_input + "." + b64url(digest_sign(other_rsa.get(), "RS256", rs_input)), rsa_keys()),
                     JwtError::BadSignature);

    const Key other_ec = ec_key("P-256");
    const Json es_header{{"alg", "ES256"}};
    const std::string es_input = signing_input(es_header, claims());
    EXPECT_JWT_ERROR(
        verify(es_input + "." + b64url(der_to_raw(digest_sign(other_ec.get(), "ES256", es_input))), ec_keys()),
        JwtError::BadSignature);
}

TEST(Jwt, RefusesSignaturesOfTheWrongShape) {
    const Json es_header{{"alg", "ES256"}};
    const std::string es_input = signing_input(es_header, claims());
    const std::string der = digest_sign(ec().get(), "ES256", es_input);
    const std::string raw = der_to_raw(der);
    EXPECT_JWT_OK(verify(es_input + "." + b64url(raw), ec_keys()));
    EXPECT_JWT_ERROR(verify(es_input + "." + b64url(der), ec_keys()), JwtError::BadSignature);
    EXPECT_JWT_ERROR(verify(es_input + "." + b64url(raw.substr(0, 63)), ec_keys()), JwtError::BadSignature);
    EXPECT_JWT_ERROR(verify(es_input + "." + b64url(raw + '\0'), ec_keys()), JwtError::BadSignature);
    EXPECT_JWT_ERROR(verify(es_input + "." + b64url(std::string(64, '\0')), ec_keys()), JwtError::BadSignature);
    EXPECT_JWT_ERROR(verify(es_input + ".", ec_keys()), JwtError::BadSignature);

    for (const char* alg : {"HS256", "RS256"}) {
        const std::string token = mint(alg);
        const std::string input = token.substr(0, token.rfind('.'));
        const std::string sig = unb64url(token.substr(token.rfind('.') + 1));
        EXPECT_JWT_ERROR(verify(input + ".", keys_for(alg)), JwtError::BadSignature) << alg;
        EXPECT_JWT_ERROR(verify(input + "." + b64url(sig.substr(1)), keys_for(alg)), JwtError::BadSignature) << alg;
        EXPECT_JWT_ERROR(verify(input + "." + b64url(sig + 'x'), keys_for(alg)), JwtError::BadSignature) << alg;
    }
}

// ---- malformed tokens ----

TEST(Jwt, RefusesMalformedStructure) {
    const std::string token = mint("HS256");
    const size_t first = token.find('.');
    const size_t second = token.rfind('.');
    const std::string header = token.substr(0, first);
    const std::string payload = token.substr(first + 1, second - first - 1);
    const std::string signature = token.substr(second + 1);
    std::vector<std::string> cases = {
        "",
        ".",
        "..",
        header,
        header + "." + payload,
        token + ".",
        token + "." + signature,
        "." + payload + "." + signature,
        header + ".." + signature,
        header + "+" + "." + payload + "." + signature,
        header + "." + payload + "/" + "." + signature,
        header + "." + payload + "." + signature + "!",
        header + " ." + payload + "." + signature,
        header + "." + payload + "." + signature + "\n",
        header + "." + payload + "." + signature + "=",
        header + "==." + payload + "." + signature,
    };
    // 4n+1 characters can encode nothing.
    std::string signature_4n1 = signature;
    while (signature_4n1.size() % 4 != 1) signature_4n1 += 'A';
    cases.push_back(header + "." + payload + "." + signature_4n1);
    for (const auto& c : cases) EXPECT_JWT_ERROR(verify(c, secret_keys()), JwtError::Malformed) << "token: " << c;
}

TEST(Jwt, RefusesPaddedAndNonCanonicalBase64url) {
    // A one-byte segment "x" is "eA"; "eB" decodes to the same byte with a stray low bit.
    const std::string input = signing_input(Json{{"alg", "HS256"}}, claims());
    const std::string sig = b64url(hmac("HS256", kSecret, input));
    ASSERT_EQ(sig.size(), 43u);
    EXPECT_JWT_OK(verify(input + "." + sig, secret_keys()));
    EXPECT_JWT_ERROR(verify(input + "." + sig + "=", secret_keys()), JwtError::Malformed);
    // 43 characters carry 258 bits: the last character's two low bits must be zero.
    std::string stray = sig;
    stray.back() = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
        [(std::string_view("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_").find(sig.back())) | 1];
    ASSERT_NE(stray, sig);
    EXPECT_JWT_ERROR(verify(input + "." + stray, secret_keys()), JwtError::Malformed);
}

TEST(Jwt, RefusesHeadersAndPayloadsThatAreNotJsonObjects) {
    const auto signed_raw = [](std::string_view header_text, std::string_view payload_text) {
        const std::string input = b64url(header_text) + "." + b64url(payload_text);
        return input + "." + b64url(hmac("HS256", kSecret, input));
    };
    const std::string good_payload = claims().dump();
    EXPECT_JWT_OK(verify(signed_raw(R"({"alg":"HS256"})", good_payload), secret_keys()));
    for (const char* header : {"not json", R"(["alg","HS256"])", R"("HS256")", R"({"alg":"HS256")", "{}",
                               R"({"alg":256})", R"({"alg":null})", R"({"alg":"HS256","typ":"JWS"})",
                               R"({"alg":"HS256","typ":1})", R"({"alg":"HS256","crit":["exp"]})",
                               "{\"alg\":\"HS256\",\"x\":\"\xff\"}"}) {
        EXPECT_JWT_ERROR(verify(signed_raw(header, good_payload), secret_keys()), JwtError::Malformed)
            << "header: " << header;
    }
    EXPECT_JWT_OK(verify(signed_raw(R"({"alg":"HS256","typ":"jwt"})", good_payload), secret_keys()));
    for (const char* payload : {"not json", "[]", R"(["sub","alice"])", "null", "42", R"({"sub":"alice")", ""}) {
        EXPECT_JWT_ERROR(verify(signed_raw(R"({"alg":"HS256"})", payload), secret_keys()), JwtError::Malformed)
            << "payload: " << payload;
    }
}

TEST(Jwt, RefusesTokensOver8KiB) {
    Json payload = claims();
    payload["pad"] = std::string(9 * 1024, 'p');
    EXPECT_JWT_ERROR(verify(mint("HS256", payload), secret_keys()), JwtError::Malformed);

    // Just at the limit is still read.
    const std::string base = mint("HS256", claims());
    payload["pad"] = "";
    const size_t overhead = mint("HS256", payload).size();
    payload["pad"] = std::string((kMaxJwtLength - overhead) * 3 / 4, 'p');
    const std::string near = mint("HS256", payload);
    ASSERT_LE(near.size(), kMaxJwtLength);
    ASSERT_GT(near.size(), kMaxJwtLength - 8);
    EXPECT_JWT_OK(verify(near, secret_keys()));
}

TEST(Jwt, EveryPrefixAndMutationIsRefusedWithoutCrashing) {
    for (const char* alg : {"HS256", "RS256", "ES256"}) {
        const std::string token = mint(alg);
        const JwtKeys keys = keys_for(alg);
        for (size_t n = 0; n < token.size(); ++n) {
            EXPECT_FALSE(verify(token.substr(0, n), keys).ok()) << alg << " prefix " << n;
        }
        for (size_t i = 0; i < token.size(); ++i) {
            std::string mutated = token;
            mutated[i] = char(mutated[i] ^ 0x01);
            EXPECT_FALSE(verify(mutated, keys).ok()) << alg << " mutated at " << i;
        }
    }
}

// ---- claims ----

TEST(Jwt, SubjectIsRequired) {
    Json payload = claims();
    payload.erase("sub");
    EXPECT_JWT_ERROR(verify(mint("HS256", payload), secret_keys()), JwtError::MissingSubject);
    for (const Json& bad : {Json(""), Json(42), Json(nullptr), Json::array({"alice"}), Json(std::string(257, 's'))}) {
        payload["sub"] = bad;
        EXPECT_JWT_ERROR(verify(mint("HS256", payload), secret_keys()), JwtError::MissingSubject) << bad.dump();
    }
    payload["sub"] = std::string(256, 's');
    EXPECT_JWT_OK(verify(mint("HS256", payload), secret_keys()));
}

TEST(Jwt, ExpiryIsRequiredAndMayBeAFloat) {
    Json payload = claims();
    payload.erase("exp");
    EXPECT_JWT_ERROR(verify(mint("HS256", payload), secret_keys()), JwtError::MissingExpiry);
    for (const Json& bad : {Json("1700003600"), Json(nullptr), Json(true), Json::array({kNow + 10})}) {
        payload["exp"] = bad;
        EXPECT_JWT_ERROR(verify(mint("HS256", payload), secret_keys()), JwtError::MissingExpiry) << bad.dump();
    }
    payload["exp"] = double(kNow + 100) + 0.75;
    const auto r = verify(mint("HS256", payload), secret_keys());
    ASSERT_TRUE(r.ok()) << describe(r);
    EXPECT_EQ(r->expires_at, kNow + 100);

    payload["exp"] = 1e300;  // saturates instead of overflowing
    EXPECT_JWT_OK(verify(mint("HS256", payload), secret_keys()));
    payload["exp"] = 18446744073709551615u;
    EXPECT_JWT_OK(verify(mint("HS256", payload), secret_keys()));
    payload["exp"] = -1e300;
    EXPECT_JWT_ERROR(verify(mint("HS256", payload), secret_keys()), JwtError::Expired);
}

TEST(Jwt, ExpiryHonoursLeeway) {
    Json payload = claims();
    const auto at = [&](int64_t exp, int64_t leeway) {
        payload["exp"] = exp;
        return verify(mint("HS256", payload), secret_keys(), with_leeway(leeway));
    };
    EXPECT_JWT_OK(at(kNow + 1, 30));
    EXPECT_JWT_OK(at(kNow - 29, 30));  // expired, but within the leeway
    EXPECT_JWT_ERROR(at(kNow - 30, 30), JwtError::Expired);
    EXPECT_JWT_ERROR(at(kNow - 3600, 30), JwtError::Expired);
    EXPECT_JWT_OK(at(kNow + 1, 0));
    EXPECT_JWT_ERROR(at(kNow, 0), JwtError::Expired);
    EXPECT_JWT_ERROR(at(kNow, -100), JwtError::Expired);  // a negative leeway counts as none
    EXPECT_JWT_OK(at(kNow - 29, JwtPolicy{}.leeway_s));   // default is 30 s
}

TEST(Jwt, NotBeforeHonoursLeeway) {
    Json payload = claims();
    payload["nbf"] = kNow + 31;
    EXPECT_JWT_ERROR(verify(mint("HS256", payload), secret_keys()), JwtError::NotYetValid);
    payload["nbf"] = kNow + 30;
    auto r = verify(mint("HS256", payload), secret_keys());
    ASSERT_TRUE(r.ok()) << describe(r);
    EXPECT_EQ(r->not_before, kNow + 30);
    payload["nbf"] = kNow + 1;
    EXPECT_JWT_ERROR(verify(mint("HS256", payload), secret_keys(), with_leeway(0)), JwtError::NotYetValid);
    payload["nbf"] = kNow;
    EXPECT_JWT_OK(verify(mint("HS256", payload), secret_keys(), with_leeway(0)));
    payload["nbf"] = "soon";
    EXPECT_JWT_ERROR(verify(mint("HS256", payload), secret_keys()), JwtError::Malformed);
}

TEST(Jwt, IssuedAtInTheFutureIsRefused) {
    Json payload = claims();
    payload["iat"] = kNow + 31;
    EXPECT_JWT_ERROR(verify(mint("HS256", payload), secret_keys()), JwtError::IssuedInFuture);
    payload["iat"] = kNow + 30;
    EXPECT_JWT_OK(verify(mint("HS256", payload), secret_keys()));
    payload["iat"] = double(kNow) + 30.9;  // floored to kNow + 30
    EXPECT_JWT_OK(verify(mint("HS256", payload), secret_keys()));
    payload["iat"] = nullptr;
    EXPECT_JWT_ERROR(verify(mint("HS256", payload), secret_keys()), JwtError::Malformed);
}

TEST(Jwt, AudienceIsCheckedWhenConfigured) {
    JwtPolicy policy;
    policy.audience = "herald";
    Json payload = claims();
    for (const Json& good : {Json("herald"), Json::array({"other", "herald"}), Json::array({"herald"})}) {
        payload["aud"] = good;
        EXPECT_JWT_OK(verify(mint("HS256", payload), secret_keys(), policy)) << good.dump();
    }
    for (const Json& bad : {Json("other"), Json("Herald"), Json::array({"other"}), Json::array(), Json(1),
                            Json::array({1, nullptr}), Json::object({{"herald", true}})}) {
        payload["aud"] = bad;
        EXPECT_JWT_ERROR(verify(mint("HS256", payload), secret_keys(), policy), JwtError::WrongAudience) << bad.dump();
    }
    payload.erase("aud");
    EXPECT_JWT_ERROR(verify(mint("HS256", payload), secret_keys(), policy), JwtError::WrongAudience);
    payload["aud"] = "other";
    EXPECT_JWT_OK(verify(mint("HS256", payload), secret_keys()));  // not configured: not checked
}

TEST(Jwt, IssuerIsCheckedWhenConfigured) {
    JwtPolicy policy;
    policy.issuer = "https://auth.example";
    Json payload = claims();
    payload["iss"] = "https://auth.example";
    EXPECT_JWT_OK(verify(mint("HS256", payload), secret_keys(), policy));
    for (const Json& bad : {Json("https://auth.example/"), Json("evil"), Json(1), Json::array({"https://auth.example"})}) {
        payload["iss"] = bad;
        EXPECT_JWT_ERROR(verify(mint("HS256", payload), secret_keys(), policy), JwtError::WrongIssuer) << bad.dump();
    }
    payload.erase("iss");
    EXPECT_JWT_ERROR(verify(mint("HS256", payload), secret_keys(), policy), JwtError::WrongIssuer);
    payload["iss"] = "evil";
    EXPECT_JWT_OK(verify(mint("HS256", payload), secret_keys()));
}

TEST(Jwt, CapabilitiesClaimIsParsed) {
    Json payload = claims();
    payload["caps"] = Json::parse(R"({"news":["subscribe","history"],"user:{sub}":["*"]})");
    auto r = verify(mint("ES256", payload), ec_keys());
    ASSERT_TRUE(r.ok()) << describe(r);
    ASSERT_TRUE(r->caps.has_value());
    EXPECT_TRUE(r->caps->allows("news", Operation::History, r->subject));
    EXPECT_FALSE(r->caps->allows("news", Operation::Publish, r->subject));
    EXPECT_TRUE(r->caps->allows("user:alice", Operation::Publish, r->subject));

    payload["caps"] = Json::object();
    r = verify(mint("HS256", payload), secret_keys());
    ASSERT_TRUE(r.ok()) << describe(r);
    ASSERT_TRUE(r->caps.has_value());
    EXPECT_TRUE(r->caps->empty());

    for (const char* bad : {R"({"news":["delete"]})", R"({"a*b":["subscribe"]})", R"(["news"])", "null",
                            R"({"news":"subscribe"})"}) {
        payload["caps"] = Json::parse(bad);
        EXPECT_JWT_ERROR(verify(mint("HS256", payload), secret_keys()), JwtError::BadCapabilities) << bad;
    }
}

// ---- key loading ----

TEST(JwtKeys, SecretMustBeAtLeast32Bytes) {
    const auto short_secret = JwtKeys::load(std::string(31, 'k'), std::nullopt, std::nullopt);
    ASSERT_FALSE(short_secret.ok());
    EXPECT_NE(short_secret.error().find("32"), std::string::npos) << short_secret.error();
    EXPECT_FALSE(JwtKeys::load(std::string(), std::nullopt, std::nullopt).ok());
    const auto ok = JwtKeys::load(std::string(32, 'k'), std::nullopt, std::nullopt);
    ASSERT_TRUE(ok.ok()) << ok.error();
    EXPECT_EQ(ok->describe(), "HS256,HS384,HS512");
}

TEST(JwtKeys, SomethingMustBeConfigured) {
    EXPECT_FALSE(JwtKeys::load(std::nullopt, std::nullopt, std::nullopt).ok());
    EXPECT_FALSE(JwtKeys::load(kSecret, std::nullopt, std::string()).ok());  // an empty kid
}

TEST(JwtKeys, AlgorithmsFollowTheKeyType) {
    EXPECT_EQ(rsa_keys().describe(), "RS256,RS384,RS512");
    EXPECT_EQ(ec_keys().describe(), "ES256");
    EXPECT_TRUE(rsa_keys().allows(JwtAlgorithm::RS512));
    EXPECT_FALSE(rsa_keys().allows(JwtAlgorithm::HS256));
    EXPECT_EQ(jwt_algorithm_name(JwtAlgorithm::ES256), "ES256");
}

TEST(JwtKeys, AcceptsPkcs1RsaPublicKey) {
    const std::string pem = encode_key(rsa().get(), EVP_PKEY_PUBLIC_KEY, "type-specific");
    ASSERT_NE(pem.find("BEGIN RSA PUBLIC KEY"), std::string::npos) << pem;
    const auto keys = JwtKeys::load(std::nullopt, pem, std::nullopt);
    ASSERT_TRUE(keys.ok()) << keys.error();
    EXPECT_JWT_OK(verify(mint("RS256"), *keys));
}

TEST(JwtKeys, RejectsUnsuitableKeys) {
    struct Case {
        std::string name;
        std::string pem;
        std::string error_fragment;
    };
    const std::vector<Case> cases = {
        {"RSA 1024", public_pem(rsa_key(1024)), "2048"},
        {"EC P-384", public_pem(ec_key("P-384")), "P-256"},
        {"Ed25519", public_pem(Key(EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519"), EVP_PKEY_free)),
         "neither RSA nor EC"},
        {"private key", encode_key(ec().get(), EVP_PKEY_KEYPAIR, "PrivateKeyInfo"), "private key"},
        {"garbage", "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n", "not a PEM public key"},
        {"empty", "", "not a PEM public key"},
        {"a path", "/etc/herald/jwt.pem", "not a PEM public key"},
    };
    for (const auto& c : cases) {
        const auto keys = JwtKeys::load(std::nullopt, c.pem, std::nullopt);
        ASSERT_FALSE(keys.ok()) << c.name << " was accepted";
        EXPECT_NE(keys.error().find(c.error_fragment), std::string::npos)
            << c.name << "\n  expected fragment: " << c.error_fragment << "\n  error: " << keys.error();
    }
}

TEST(JwtErrors, TextsAreShortAndDistinct) {
    std::set<std::string_view> seen;
    for (auto e : {JwtError::Malformed, JwtError::UnsupportedAlgorithm, JwtError::UnknownKeyId,
                   JwtError::BadSignature, JwtError::Expired, JwtError::NotYetValid, JwtError::IssuedInFuture,
                   JwtError::WrongAudience, JwtError::WrongIssuer, JwtError::MissingSubject, JwtError::MissingExpiry,
                   JwtError::BadCapabilities}) {
        const std::string_view text = jwt_error_text(e);
        EXPECT_FALSE(text.empty());
        EXPECT_LT(text.size(), 64u) << text;
        EXPECT_TRUE(seen.insert(text).second) << "duplicate: " << text;
    }
}

}  // namespace
}  // namespace herald
