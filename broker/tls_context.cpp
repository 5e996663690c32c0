// Builds the SSL_CTX from the configured files: TLS 1.2+ (or 1.3 only), ECDHE with AEAD suites, server cipher
// preference, no compression, no renegotiation, ALPN http/1.1, record buffers released while idle.
#include "broker/tls_context.h"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/x509.h>

namespace herald {
namespace {

// TLS 1.2 suites: ephemeral ECDH key exchange with an AEAD cipher, nothing else. TLS 1.3 suites are all AEAD with
// (EC)DHE; the groups below keep the key exchange elliptic-curve only for both versions.
constexpr const char* kTls12Ciphers = "ECDHE+AESGCM:ECDHE+CHACHA20";
constexpr const char* kGroups = "X25519:P-256:P-384";
constexpr unsigned char kAlpnHttp11[] = {8, 'h', 't', 't', 'p', '/', '1', '.', '1'};

// The most specific reason in OpenSSL's error queue, which is then emptied for the next operation.
std::string openssl_reason() {
    unsigned long code = ERR_peek_last_error();
    std::string reason;
    if (code != 0) {
        char text[256];
        ERR_error_string_n(code, text, sizeof text);
        reason = text;
    } else {
        reason = "unknown error";
    }
    ERR_clear_error();
    return reason;
}

// A client that offers ALPN must offer http/1.1 (WebSocket upgrades and the HTTP API are HTTP/1.1); one that offers
// none is served HTTP/1.1 anyway.
int select_alpn(SSL*, const unsigned char** out, unsigned char* out_len, const unsigned char* offered,
                unsigned int offered_len, void*) {
    unsigned char* chosen = nullptr;
    if (SSL_select_next_proto(&chosen, out_len, kAlpnHttp11, sizeof kAlpnHttp11, offered, offered_len) !=
        OPENSSL_NPN_NEGOTIATED)
        return SSL_TLSEXT_ERR_ALERT_FATAL;  // no_application_protocol
    *out = chosen;
    return SSL_TLSEXT_ERR_OK;
}

// An encrypted key would make OpenSSL prompt on the terminal; refuse it instead.
int no_passphrase(char*, int, int, void*) { return 0; }

std::string describe_leaf(SSL_CTX* ctx) {
    X509* leaf = SSL_CTX_get0_certificate(ctx);
    if (!leaf) return "";
    char subject[256] = {};
    X509_NAME_oneline(X509_get_subject_name(leaf), subject, sizeof subject);
    std::string serial;
    if (BIGNUM* bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(leaf), nullptr)) {
        if (char* hex = BN_bn2hex(bn)) {
            serial = hex;
            OPENSSL_free(hex);
        }
        BN_free(bn);
    }
    std::string not_after;
    if (BIO* mem = BIO_new(BIO_s_mem())) {
        if (ASN1_TIME_print(mem, X509_get0_notAfter(leaf)) == 1) {
            char* data = nullptr;
            long n = BIO_get_mem_data(mem, &data);
            not_after.assign(data, static_cast<size_t>(n));
        }
        BIO_free(mem);
    }
    STACK_OF(X509)* chain = nullptr;
    SSL_CTX_get0_chain_certs(ctx, &chain);
    int intermediates = chain ? sk_X509_num(chain) : 0;
    ERR_clear_error();
    return std::string("subject=") + subject + " serial=" + serial + " not_after=" + not_after +
           " chain=" + std::to_string(intermediates + 1);
}

}  // namespace

Result<std::shared_ptr<TlsContext>, std::string> TlsContext::load(const std::string& cert_file,
                                                                  const std::string& key_file,
                                                                  std::string_view min_version) {
    ERR_clear_error();
    std::shared_ptr<SSL_CTX> ctx(SSL_CTX_new(TLS_server_method()), SSL_CTX_free);
    if (!ctx) return fail("cannot create a TLS context: " + openssl_reason());
    SSL_CTX* c = ctx.get();

    int min = min_version == "1.3" ? TLS1_3_VERSION : TLS1_2_VERSION;
    if (min_version != "1.2" && min_version != "1.3")
        return fail("TLS minimum version must be 1.2 or 1.3, got '" + std::string(min_version) + "'");
    if (SSL_CTX_set_min_proto_version(c, min) != 1) return fail("cannot set the TLS minimum version: " + openssl_reason());
    if (SSL_CTX_set_cipher_list(c, kTls12Ciphers) != 1) return fail("cannot set TLS 1.2 ciphers: " + openssl_reason());
    if (SSL_CTX_set1_groups_list(c, kGroups) != 1) return fail("cannot set TLS groups: " + openssl_reason());
    SSL_CTX_set_options(c, SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
    // Record buffers are freed whenever they are empty, so an idle connection holds no 16 KiB buffers; sessions
    // resume through stateless tickets only (no server-side cache that grows with the number of clients).
    SSL_CTX_set_mode(c, SSL_MODE_RELEASE_BUFFERS);
    SSL_CTX_set_session_cache_mode(c, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_alpn_select_cb(c, select_alpn, nullptr);
    SSL_CTX_set_default_passwd_cb(c, no_passphrase);

    if (SSL_CTX_use_certificate_chain_file(c, cert_file.c_str()) != 1)
        return fail("cannot load TLS certificate chain '" + cert_file + "': " + openssl_reason());
    if (SSL_CTX_use_PrivateKey_file(c, key_file.c_str(), SSL_FILETYPE_PEM) != 1)
        return fail("cannot load TLS private key '" + key_file + "': " + openssl_reason());
    if (SSL_CTX_check_private_key(c) != 1)
        return fail("TLS private key '" + key_file + "' does not match certificate '" + cert_file +
                    "': " + openssl_reason());
    std::string description = describe_leaf(c);
    return std::shared_ptr<TlsContext>(new TlsContext(std::move(ctx), std::move(description)));
}

}  // namespace herald
