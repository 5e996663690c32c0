// Verifies compact-form JWS tokens with OpenSSL and reads their claims with nlohmann_json. The configured keys
// decide the algorithm; nothing in a token is trusted before its signature checks out. No exception leaves here.
#include "protocol/jwt.h"

#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/decoder.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/obj_mac.h>
#include <openssl/pem.h>

#include <array>
#include <cmath>
#include <exception>
#include <limits>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>

namespace herald {
namespace {

using Json = nlohmann::json;

constexpr size_t kMinHmacSecretLength = 32;  // RFC 7518 §3.2: HS256 needs a key of at least 256 bits
constexpr int kMinRsaBits = 2048;
constexpr size_t kMaxSubjectLength = 256;
constexpr size_t kEs256SignatureLength = 64;  // JWS ECDSA: R || S, 32 bytes each (RFC 7518 §3.4)

constexpr std::array<std::pair<std::string_view, JwtAlgorithm>, 7> kAlgorithmNames = {{
    {"HS256", JwtAlgorithm::HS256},
    {"HS384", JwtAlgorithm::HS384},
    {"HS512", JwtAlgorithm::HS512},
    {"RS256", JwtAlgorithm::RS256},
    {"RS384", JwtAlgorithm::RS384},
    {"RS512", JwtAlgorithm::RS512},
    {"ES256", JwtAlgorithm::ES256},
}};

uint32_t algorithm_bit(JwtAlgorithm alg) { return 1u << static_cast<unsigned>(alg); }

// Exact, case-sensitive: "none", "None" and "hs256" all name no algorithm we accept.
std::optional<JwtAlgorithm> algorithm_from_name(std::string_view name) {
    for (const auto& [text, alg] : kAlgorithmNames) {
        if (text == name) return alg;
    }
    return std::nullopt;
}

const EVP_MD* algorithm_digest(JwtAlgorithm alg) {
    switch (alg) {
        case JwtAlgorithm::HS256:
        case JwtAlgorithm::RS256:
        case JwtAlgorithm::ES256:
            return EVP_sha256();
        case JwtAlgorithm::HS384:
        case JwtAlgorithm::RS384:
            return EVP_sha384();
        case JwtAlgorithm::HS512:
        case JwtAlgorithm::RS512:
            return EVP_sha512();
    }
    return nullptr;
}

// ---- base64url (RFC 4648 §5) without padding, strict: canonical encodings only ----

int base64url_value(char c) {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '-') return 62;
    if (c == '_') return 63;
    return -1;
}

// Rejects '=', characters outside the alphabet, a length of 4n+1, and non-zero bits left over in the last
// character (so that each byte string has exactly one accepted encoding).
std::optional<std::string> base64url_decode(std::string_view text) {
    if (text.size() % 4 == 1) return std::nullopt;
    std::string out;
    out.reserve(text.size() * 3 / 4);
    uint32_t buffer = 0;
    int bits = 0;
    for (char c : text) {
        const int value = base64url_value(c);
        if (value < 0) return std::nullopt;
        buffer = (buffer << 6) | static_cast<uint32_t>(value);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out += static_cast<char>((buffer >> bits) & 0xFF);
        }
    }
    if ((buffer & ((1u << bits) - 1)) != 0) return std::nullopt;
    return out;
}

// ---- OpenSSL helpers ----

using PkeyPtr = std::shared_ptr<EVP_PKEY>;

struct MdCtxDeleter {
    void operator()(EVP_MD_CTX* ctx) const { EVP_MD_CTX_free(ctx); }
};
struct PkeyCtxDeleter {
    void operator()(EVP_PKEY_CTX* ctx) const { EVP_PKEY_CTX_free(ctx); }
};
struct BioDeleter {
    void operator()(BIO* bio) const { BIO_free(bio); }
};
struct EcdsaSigDeleter {
    void operator()(ECDSA_SIG* sig) const { ECDSA_SIG_free(sig); }
};
struct DecoderCtxDeleter {
    void operator()(OSSL_DECODER_CTX* ctx) const { OSSL_DECODER_CTX_free(ctx); }
};

// Public keys are never encrypted; refuse any passphrase prompt rather than reading the terminal.
int no_passphrase(char*, int, int, void*) { return 0; }

// "BEGIN PUBLIC KEY" (SubjectPublicKeyInfo) or "BEGIN RSA PUBLIC KEY" (PKCS#1).
EVP_PKEY* read_public_key(const std::string& pem) {
    std::unique_ptr<BIO, BioDeleter> bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
    if (!bio) return nullptr;
    if (EVP_PKEY* key = PEM_read_bio_PUBKEY(bio.get(), nullptr, no_passphrase, nullptr)) return key;

    EVP_PKEY* key = nullptr;
    std::unique_ptr<OSSL_DECODER_CTX, DecoderCtxDeleter> decoder(OSSL_DECODER_CTX_new_for_pkey(
        &key, "PEM", "type-specific", "RSA", EVP_PKEY_PUBLIC_KEY, nullptr, nullptr));
    if (!decoder) return nullptr;
    const auto* data = reinterpret_cast<const unsigned char*>(pem.data());
    size_t length = pem.size();
    if (OSSL_DECODER_from_data(decoder.get(), &data, &length) != 1) return nullptr;
    return key;
}

bool public_key_checks_out(EVP_PKEY* key) {
    std::unique_ptr<EVP_PKEY_CTX, PkeyCtxDeleter> ctx(EVP_PKEY_CTX_new_from_pkey(nullptr, key, nullptr));
    return ctx && EVP_PKEY_public_check(ctx.get()) == 1;
}

bool verify_hmac(JwtAlgorithm alg, const std::string& secret, std::string_view signing_input,
                 std::string_view signature) {
    std::array<unsigned char, EVP_MAX_MD_SIZE> mac{};
    unsigned int mac_length = 0;
    if (HMAC(algorithm_digest(alg), secret.data(), static_cast<int>(secret.size()),
             reinterpret_cast<const unsigned char*>(signing_input.data()), signing_input.size(), mac.data(),
             &mac_length) == nullptr) {
        return false;
    }
    return signature.size() == mac_length && CRYPTO_memcmp(mac.data(), signature.data(), mac_length) == 0;
}

bool verify_digest_signature(JwtAlgorithm alg, EVP_PKEY* key, std::string_view signing_input,
                             std::string_view signature) {
    std::unique_ptr<EVP_MD_CTX, MdCtxDeleter> ctx(EVP_MD_CTX_new());
    if (!ctx) return false;
    // An RSA key's default padding is PKCS#1 v1.5, which is what RS256/384/512 mean.
    if (EVP_DigestVerifyInit(ctx.get(), nullptr, algorithm_digest(alg), nullptr, key) != 1) return false;
    return EVP_DigestVerify(ctx.get(), reinterpret_cast<const unsigned char*>(signature.data()), signature.size(),
                            reinterpret_cast<const unsigned char*>(signing_input.data()), signing_input.size()) == 1;
}

// JWS carries ECDSA as raw R || S; OpenSSL verifies the DER form of ECDSA-Sig-Value.
bool verify_es256(EVP_PKEY* key, std::string_view signing_input, std::string_view signature) {
    if (signature.size() != kEs256SignatureLength) return false;
    const auto* raw = reinterpret_cast<const unsigned char*>(signature.data());
    std::unique_ptr<ECDSA_SIG, EcdsaSigDeleter> sig(ECDSA_SIG_new());
    if (!sig) return false;
    BIGNUM* r = BN_bin2bn(raw, kEs256SignatureLength / 2, nullptr);
    BIGNUM* s = BN_bin2bn(raw + kEs256SignatureLength / 2, kEs256SignatureLength / 2, nullptr);
    if (r == nullptr || s == nullptr || ECDSA_SIG_set0(sig.get(), r, s) != 1) {
        BN_free(r);
        BN_free(s);
        return false;
    }
    unsigned char* der = nullptr;
    const int der_length = i2d_ECDSA_SIG(sig.get(), &der);
    if (der_length <= 0) return false;
    const bool ok = verify_digest_signature(
        JwtAlgorithm::ES256, key, signing_input,
        std::string_view(reinterpret_cast<const char*>(der), static_cast<size_t>(der_length)));
    OPENSSL_free(der);
    return ok;
}

bool signature_valid(JwtAlgorithm alg, const JwtKeys& keys, std::string_view signing_input,
                     std::string_view signature) {
    switch (alg) {
        case JwtAlgorithm::HS256:
        case JwtAlgorithm::HS384:
        case JwtAlgorithm::HS512:
            return keys.hmac_secret && verify_hmac(alg, *keys.hmac_secret, signing_input, signature);
        case JwtAlgorithm::RS256:
        case JwtAlgorithm::RS384:
        case JwtAlgorithm::RS512:
            return keys.public_key && EVP_PKEY_get_base_id(keys.public_key.get()) == EVP_PKEY_RSA &&
                   verify_digest_signature(alg, keys.public_key.get(), signing_input, signature);
        case JwtAlgorithm::ES256:
            return keys.public_key && EVP_PKEY_get_base_id(keys.public_key.get()) == EVP_PKEY_EC &&
                   verify_es256(keys.public_key.get(), signing_input, signature);
    }
    return false;
}

// ---- claims ----

const Json* find(const Json& object, const char* name) {
    const auto it = object.find(name);
    return it == object.end() ? nullptr : &*it;
}

// A NumericDate: integer or float seconds, floored, saturating at the int64 range. nullopt when not a number.
std::optional<int64_t> numeric_date(const Json& value) {
    if (value.is_number_unsigned()) {
        const auto u = value.get<uint64_t>();
        return u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) ? std::numeric_limits<int64_t>::max()
                                                                               : static_cast<int64_t>(u);
    }
    if (value.is_number_integer()) return value.get<int64_t>();
    if (value.is_number_float()) {
        const double d = std::floor(value.get<double>());
        if (std::isnan(d)) return std::nullopt;
        constexpr double kTwoTo63 = 9223372036854775808.0;
        if (d >= kTwoTo63) return std::numeric_limits<int64_t>::max();
        if (d < -kTwoTo63) return std::numeric_limits<int64_t>::min();
        return static_cast<int64_t>(d);
    }
    return std::nullopt;
}

int64_t saturating_add(int64_t a, int64_t b) {
    int64_t sum = 0;
    if (!__builtin_add_overflow(a, b, &sum)) return sum;
    return b > 0 ? std::numeric_limits<int64_t>::max() : std::numeric_limits<int64_t>::min();
}

bool ascii_iequals(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (size_t i = 0; i < a.size(); ++i) {
        const auto lower = [](char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; };
        if (lower(a[i]) != lower(b[i])) return false;
    }
    return true;
}

bool audience_contains(const Json* aud, const std::string& expected) {
    if (aud == nullptr) return false;
    if (aud->is_string()) return aud->get_ref<const std::string&>() == expected;
    if (!aud->is_array()) return false;
    for (const Json& entry : *aud) {
        if (entry.is_string() && entry.get_ref<const std::string&>() == expected) return true;
    }
    return false;
}

// The parsed JSON object in `bytes`, or a discarded/non-object value.
Json parse_object(const std::string& bytes) {
    Json value = Json::parse(bytes, nullptr, /*allow_exceptions=*/false);
    if (!value.is_object()) return Json(nlohmann::json::value_t::discarded);
    return value;
}

struct Segments {
    std::string_view header;
    std::string_view payload;
    std::string_view signature;
    std::string_view signing_input;  // header "." payload, exactly as sent
};

std::optional<Segments> split_token(std::string_view token) {
    const size_t first = token.find('.');
    if (first == std::string_view::npos) return std::nullopt;
    const size_t second = token.find('.', first + 1);
    if (second == std::string_view::npos || token.find('.', second + 1) != std::string_view::npos) {
        return std::nullopt;
    }
    Segments s{token.substr(0, first), token.substr(first + 1, second - first - 1), token.substr(second + 1),
               token.substr(0, second)};
    if (s.header.empty() || s.payload.empty()) return std::nullopt;
    return s;
}

Result<VerifiedToken, JwtError> verify(std::string_view token, const JwtKeys& keys, const JwtPolicy& policy,
                                       int64_t now) {
    if (token.empty() || token.size() > kMaxJwtLength) return fail(JwtError::Malformed);
    const auto segments = split_token(token);
    if (!segments) return fail(JwtError::Malformed);
    const auto header_bytes = base64url_decode(segments->header);
    const auto payload_bytes = base64url_decode(segments->payload);
    const auto signature = base64url_decode(segments->signature);
    if (!header_bytes || !payload_bytes || !signature) return fail(JwtError::Malformed);

    // Header: only what is needed to pick the check. The key type comes from the configuration, never from here.
    const Json header = parse_object(*header_bytes);
    if (header.is_discarded()) return fail(JwtError::Malformed);
    const Json* alg_name = find(header, "alg");
    if (alg_name == nullptr || !alg_name->is_string()) return fail(JwtError::Malformed);
    if (const Json* typ = find(header, "typ")) {
        if (!typ->is_string() || !ascii_iequals(typ->get_ref<const std::string&>(), "JWT")) {
            return fail(JwtError::Malformed);
        }
    }
    // RFC 7515 §4.1.11: extensions we do not understand make the token invalid; we understand none.
    if (find(header, "crit") != nullptr) return fail(JwtError::Malformed);
    const auto alg = algorithm_from_name(alg_name->get_ref<const std::string&>());
    if (!alg || !keys.allows(*alg)) return fail(JwtError::UnsupportedAlgorithm);
    if (const Json* kid = find(header, "kid")) {
        if (!kid->is_string()) return fail(JwtError::Malformed);
        if (!keys.key_id || *keys.key_id != kid->get_ref<const std::string&>()) return fail(JwtError::UnknownKeyId);
    }

    const bool signed_ok = signature_valid(*alg, keys, segments->signing_input, *signature);
    ERR_clear_error();  // a failed verification leaves entries on this thread's OpenSSL error queue
    if (!signed_ok) return fail(JwtError::BadSignature);

    // Claims: trusted from here on, but still only as well formed as the issuer made them.
    const Json claims = parse_object(*payload_bytes);
    if (claims.is_discarded()) return fail(JwtError::Malformed);

    VerifiedToken out;
    const Json* sub = find(claims, "sub");
    if (sub == nullptr || !sub->is_string()) return fail(JwtError::MissingSubject);
    out.subject = sub->get<std::string>();
    if (out.subject.empty() || out.subject.size() > kMaxSubjectLength) return fail(JwtError::MissingSubject);

    const Json* exp = find(claims, "exp");
    const auto expires_at = exp ? numeric_date(*exp) : std::nullopt;
    if (!expires_at) return fail(JwtError::MissingExpiry);
    out.expires_at = *expires_at;

    std::optional<int64_t> issued_at;
    if (const Json* nbf = find(claims, "nbf")) {
        out.not_before = numeric_date(*nbf);
        if (!out.not_before) return fail(JwtError::Malformed);
    }
    if (const Json* iat = find(claims, "iat")) {
        issued_at = numeric_date(*iat);
        if (!issued_at) return fail(JwtError::Malformed);
    }

    const int64_t leeway = policy.leeway_s > 0 ? policy.leeway_s : 0;
    const int64_t now_plus_leeway = saturating_add(now, leeway);
    if (now >= saturating_add(out.expires_at, leeway)) return fail(JwtError::Expired);
    if (out.not_before && now_plus_leeway < *out.not_before) return fail(JwtError::NotYetValid);
    if (issued_at && *issued_at > now_plus_leeway) return fail(JwtError::IssuedInFuture);

    if (policy.audience && !audience_contains(find(claims, "aud"), *policy.audience)) {
        return fail(JwtError::WrongAudience);
    }
    if (policy.issuer) {
        const Json* iss = find(claims, "iss");
        if (iss == nullptr || !iss->is_string() || iss->get_ref<const std::string&>() != *policy.issuer) {
            return fail(JwtError::WrongIssuer);
        }
    }

    if (const Json* caps = find(claims, "caps")) {
        auto parsed = Capabilities::parse(*caps);
        if (!parsed) return fail(JwtError::BadCapabilities);
        out.caps = std::move(*parsed);
    }
    return out;
}

}  // namespace

std::string_view jwt_algorithm_name(JwtAlgorithm alg) {
    for (const auto& [text, value] : kAlgorithmNames) {
        if (value == alg) return text;
    }
    return "unknown";
}

Result<JwtKeys, std::string> JwtKeys::load(std::optional<std::string> hmac_secret,
                                           std::optional<std::string> public_key_pem,
                                           std::optional<std::string> key_id) {
    try {
        JwtKeys keys;
        if (!hmac_secret && !public_key_pem) return fail(std::string("no JWT secret or public key configured"));
        if (key_id && key_id->empty()) return fail(std::string("the JWT key id must not be empty"));
        keys.key_id = std::move(key_id);

        if (hmac_secret) {
            if (hmac_secret->size() < kMinHmacSecretLength) {
                return fail("the JWT secret is " + std::to_string(hmac_secret->size()) +
                            " bytes; HS256/HS384/HS512 need at least 32 bytes (256 bits)");
            }
            keys.hmac_secret = std::move(hmac_secret);
            keys.allowed_algorithms |= algorithm_bit(JwtAlgorithm::HS256) | algorithm_bit(JwtAlgorithm::HS384) |
                                       algorithm_bit(JwtAlgorithm::HS512);
        }

        if (public_key_pem) {
            if (public_key_pem->find("PRIVATE KEY") != std::string::npos) {
                return fail(std::string("the JWT public key file holds a private key; configure its public half "
                                        "(openssl pkey -pubout)"));
            }
            EVP_PKEY* raw = read_public_key(*public_key_pem);
            ERR_clear_error();
            if (raw == nullptr) {
                return fail(std::string("the JWT public key is not a PEM public key (BEGIN PUBLIC KEY)"));
            }
            keys.public_key = PkeyPtr(raw, EVP_PKEY_free);
            const bool checks_out = public_key_checks_out(raw);
            ERR_clear_error();
            if (!checks_out) return fail(std::string("the JWT public key fails OpenSSL's public-key check"));

            switch (EVP_PKEY_get_base_id(raw)) {
                case EVP_PKEY_RSA: {
                    const int bits = EVP_PKEY_get_bits(raw);
                    if (bits < kMinRsaBits) {
                        return fail("the JWT RSA public key has " + std::to_string(bits) +
                                    " bits; at least 2048 are required");
                    }
                    keys.allowed_algorithms |= algorithm_bit(JwtAlgorithm::RS256) |
                                               algorithm_bit(JwtAlgorithm::RS384) |
                                               algorithm_bit(JwtAlgorithm::RS512);
                    break;
                }
                case EVP_PKEY_EC: {
                    std::array<char, 64> group{};
                    size_t group_length = 0;
                    const bool named = EVP_PKEY_get_group_name(raw, group.data(), group.size(), &group_length) == 1;
                    ERR_clear_error();
                    const std::string_view name(group.data(), named ? group_length : 0);
                    if (name != SN_X9_62_prime256v1) {
                        return fail("the JWT EC public key is on curve \"" + std::string(name) +
                                    "\"; only P-256 (ES256) is supported");
                    }
                    keys.allowed_algorithms |= algorithm_bit(JwtAlgorithm::ES256);
                    break;
                }
                default:
                    return fail(std::string("the JWT public key is neither RSA nor EC P-256"));
            }
        }
        return keys;
    } catch (const std::exception&) {
        return fail(std::string("the JWT keys could not be loaded"));
    }
}

std::string JwtKeys::describe() const {
    std::string out;
    for (const auto& [text, alg] : kAlgorithmNames) {
        if (!allows(alg)) continue;
        if (!out.empty()) out += ',';
        out += text;
    }
    return out;
}

std::string_view jwt_error_text(JwtError error) {
    switch (error) {
        case JwtError::Malformed:
            return "token is malformed";
        case JwtError::UnsupportedAlgorithm:
            return "token algorithm is not accepted";
        case JwtError::UnknownKeyId:
            return "token key id is unknown";
        case JwtError::BadSignature:
            return "token signature is invalid";
        case JwtError::Expired:
            return "token has expired";
        case JwtError::NotYetValid:
            return "token is not valid yet";
        case JwtError::IssuedInFuture:
            return "token is issued in the future";
        case JwtError::WrongAudience:
            return "token audience does not match";
        case JwtError::WrongIssuer:
            return "token issuer does not match";
        case JwtError::MissingSubject:
            return "token has no valid subject";
        case JwtError::MissingExpiry:
            return "token has no expiry";
        case JwtError::BadCapabilities:
            return "token capabilities are invalid";
    }
    return "token is invalid";
}

Result<VerifiedToken, JwtError> verify_jwt(std::string_view token, const JwtKeys& keys, const JwtPolicy& policy,
                                           int64_t now_unix) {
    try {
        return verify(token, keys, policy, now_unix);
    } catch (const std::exception&) {
        return fail(JwtError::Malformed);
    }
}

}  // namespace herald
