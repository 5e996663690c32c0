// TlsContext and TlsSession without sockets: a server session against an OpenSSL client over memory BIOs, with
// keys and certificates made in the test (written to a temporary directory, since the context loads files).
#include "broker/tls_session.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace herald {
namespace {

namespace fs = std::filesystem;

// ---------------------------------------------------------------------------------------------------------------
// Fixture files

struct KeyDeleter {
    void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
struct CertDeleter {
    void operator()(X509* c) const { X509_free(c); }
};
using Key = std::unique_ptr<EVP_PKEY, KeyDeleter>;
using Cert = std::unique_ptr<X509, CertDeleter>;

Key ec_key() { return Key(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256")); }
Key rsa_key() { return Key(EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", static_cast<size_t>(2048))); }

Cert self_signed(EVP_PKEY* key, const std::string& cn, long serial) {
    Cert cert(X509_new());
    X509_set_version(cert.get(), 2);
    ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), serial);
    X509_gmtime_adj(X509_getm_notBefore(cert.get()), -60);
    X509_gmtime_adj(X509_getm_notAfter(cert.get()), 3600);
    X509_NAME* name = X509_get_subject_name(cert.get());
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1, 0);
    X509_set_issuer_name(cert.get(), name);
    X509_set_pubkey(cert.get(), key);
    X509_sign(cert.get(), key, EVP_sha256());
    return cert;
}

void write_pem(const fs::path& path, const std::vector<X509*>& certs) {
    FILE* f = std::fopen(path.c_str(), "w");
    ASSERT_NE(f, nullptr) << path;
    for (X509* c : certs) PEM_write_X509(f, c);
    std::fclose(f);
}

void write_key(const fs::path& path, EVP_PKEY* key) {
    FILE* f = std::fopen(path.c_str(), "w");
    ASSERT_NE(f, nullptr) << path;
    PEM_write_PrivateKey(f, key, nullptr, nullptr, 0, nullptr, nullptr);
    std::fclose(f);
}

std::string serial_of(X509* cert) {
    return std::to_string(ASN1_INTEGER_get(X509_get0_serialNumber(cert)));
}

// ---------------------------------------------------------------------------------------------------------------
// An OpenSSL client over two memory BIOs, and a pump between it and the server session.

struct CtxDeleter {
    void operator()(SSL_CTX* c) const { SSL_CTX_free(c); }
};
using ClientCtx = std::unique_ptr<SSL_CTX, CtxDeleter>;

struct ClientOptions {
    int min_version = TLS1_2_VERSION;
    int max_version = 0;  // 0: the highest
    const char* ciphers = nullptr;
    std::vector<std::string> alpn = {"http/1.1"};
    bool legacy = false;  // security level 0, so OpenSSL agrees to speak TLS 1.1 at all
};

ClientCtx client_context(const ClientOptions& o) {
    ClientCtx ctx(SSL_CTX_new(TLS_client_method()));
    if (o.legacy) {
        SSL_CTX_set_security_level(ctx.get(), 0);
        SSL_CTX_set_cipher_list(ctx.get(), "DEFAULT:@SECLEVEL=0");
    }
    SSL_CTX_set_min_proto_version(ctx.get(), o.min_version);
    SSL_CTX_set_max_proto_version(ctx.get(), o.max_version);
    if (o.ciphers) SSL_CTX_set_cipher_list(ctx.get(), o.ciphers);
    if (!o.alpn.empty()) {
        std::string wire;
        for (const auto& p : o.alpn) wire += static_cast<char>(p.size()) + p;
        SSL_CTX_set_alpn_protos(ctx.get(), reinterpret_cast<const unsigned char*>(wire.data()),
                                static_cast<unsigned>(wire.size()));
    }
    return ctx;
}

struct StringSink final : PlaintextSink {
    std::string received;
    size_t calls = 0;
    bool on_plaintext(std::span<char> bytes) override {
        received.append(bytes.data(), bytes.size());
        ++calls;
        return true;
    }
};

class Pair {
public:
    Pair(const TlsContext& server_context, const ClientOptions& options, size_t split = 0, size_t scratch = 64 * 1024)
        : server_(TlsSession::accept(server_context)),
          ctx_(client_context(options)),
          client_(SSL_new(ctx_.get())),
          split_(split),
          scratch_(scratch),
          staging_(16 * 1024) {
        to_client_ = BIO_new(BIO_s_mem());
        from_client_ = BIO_new(BIO_s_mem());
        SSL_set_bio(client_, to_client_, from_client_);
        SSL_set_connect_state(client_);
    }
    ~Pair() { SSL_free(client_); }

    TlsSession& server() { return *server_; }
    SSL* client() { return client_; }
    const std::optional<TlsError>& server_error() const { return error_; }
    StringSink& at_server() { return sink_; }
    std::string& at_client() { return client_received_; }

    // Moves bytes both ways until neither side has anything more to say.
    void pump() {
        for (int round = 0; round < 1000; ++round) {
            bool moved = false;
            if (!SSL_is_init_finished(client_)) {
                SSL_do_handshake(client_);
                ERR_clear_error();
            } else {
                char buf[16384];
                int n;
                while ((n = SSL_read(client_, buf, sizeof buf)) > 0) {
                    client_received_.append(buf, static_cast<size_t>(n));
                    moved = true;
                }
                if (SSL_get_error(client_, n) == SSL_ERROR_ZERO_RETURN) client_saw_close_notify_ = true;
                ERR_clear_error();
            }
            std::string ciphertext = drain(from_client_);
            if (!ciphertext.empty()) {
                moved = true;
                feed_server(ciphertext);
            }
            std::string out;
            server_->take_output(out);
            if (!out.empty()) {
                moved = true;
                BIO_write(to_client_, out.data(), static_cast<int>(out.size()));
            }
            if (!moved && (SSL_is_init_finished(client_) || error_)) return;
            if (!moved && round > 5) return;
        }
    }

    void feed_server(const std::string& ciphertext) {
        size_t step = split_ ? split_ : ciphertext.size();
        for (size_t at = 0; at < ciphertext.size(); at += step) {
            size_t n = std::min(step, ciphertext.size() - at);
            auto r = server_->feed(std::span<const char>(ciphertext.data() + at, n), scratch_, sink_);
            if (!r.ok()) {
                error_ = r.error();
                return;
            }
        }
    }

    void client_send(const std::string& plaintext) {
        ASSERT_EQ(SSL_write(client_, plaintext.data(), static_cast<int>(plaintext.size())),
                  static_cast<int>(plaintext.size()));
    }

    void server_send(const std::vector<std::string_view>& pieces) {
        auto r = server_->encrypt(pieces, staging_);
        ASSERT_TRUE(r.ok()) << r.error().detail;
    }

    bool client_saw_close_notify() const { return client_saw_close_notify_; }

private:
    static std::string drain(BIO* bio) {
        std::string out;
        char buf[16384];
        int n;
        while ((n = BIO_read(bio, buf, sizeof buf)) > 0) out.append(buf, static_cast<size_t>(n));
        return out;
    }

    std::unique_ptr<TlsSession> server_;
    ClientCtx ctx_;
    SSL* client_;
    BIO* to_client_ = nullptr;
    BIO* from_client_ = nullptr;
    size_t split_;
    std::vector<char> scratch_;
    std::vector<char> staging_;
    StringSink sink_;
    std::string client_received_;
    std::optional<TlsError> error_;
    bool client_saw_close_notify_ = false;
};

std::string random_bytes(size_t n, unsigned seed) {
    std::mt19937 rng(seed);
    std::string s(n, '\0');
    for (auto& c : s) c = static_cast<char>(rng());
    return s;
}

// ---------------------------------------------------------------------------------------------------------------

class TlsSessionTest : public ::testing::Test {
protected:
    void SetUp() override {
        char pattern[] = "/tmp/herald-tls-test-XXXXXX";
        ASSERT_NE(mkdtemp(pattern), nullptr);
        dir_ = pattern;
        key_ = ec_key();
        cert_ = self_signed(key_.get(), "herald-test-a", 1001);
        write_pem(dir_ / "a.crt", {cert_.get()});
        write_key(dir_ / "a.key", key_.get());
    }
    void TearDown() override { fs::remove_all(dir_); }

    std::shared_ptr<TlsContext> load(std::string_view min_version = "1.2", const std::string& name = "a") {
        auto loaded = TlsContext::load(path(name + ".crt"), path(name + ".key"), min_version);
        EXPECT_TRUE(loaded.ok()) << (loaded.ok() ? "" : loaded.error());
        return loaded.ok() ? loaded.value() : nullptr;
    }
    std::string path(const std::string& name) const { return (dir_ / name).string(); }

    fs::path dir_;
    Key key_;
    Cert cert_;
};

TEST_F(TlsSessionTest, HandshakeThenDataBothWaysInAnySplit) {
    auto context = load();
    ASSERT_TRUE(context);
    for (size_t split : {size_t{0}, size_t{1}, size_t{7}, size_t{1000}}) {
        SCOPED_TRACE("ciphertext fed in pieces of " + std::to_string(split) + " bytes (0: whole)");
        Pair pair(*context, {}, split, /*scratch=*/split == 7 ? 100 : 64 * 1024);
        pair.pump();
        ASSERT_FALSE(pair.server_error()) << pair.server_error()->detail;
        ASSERT_TRUE(pair.server().handshake_done());
        EXPECT_EQ(pair.server().version(), "TLSv1.3");
        EXPECT_EQ(pair.server().alpn(), "http/1.1");
        EXPECT_FALSE(pair.server().cipher().empty());

        std::string up = random_bytes(100'000, 1);
        pair.client_send(up);
        pair.pump();
        ASSERT_FALSE(pair.server_error()) << pair.server_error()->detail;
        EXPECT_EQ(pair.at_server().received.size(), up.size());
        EXPECT_TRUE(pair.at_server().received == up) << "plaintext at the server differs from what the client sent";

        std::string down = random_bytes(70'000, 2);
        std::vector<std::string_view> pieces;
        std::mt19937 rng(3);
        for (size_t at = 0; at < down.size();) {
            size_t n = std::min<size_t>(down.size() - at, 1 + rng() % (split == 1000 ? 40'000 : 300));
            pieces.emplace_back(down.data() + at, n);
            at += n;
        }
        pair.server_send(pieces);
        pair.pump();
        EXPECT_EQ(pair.at_client().size(), down.size());
        EXPECT_TRUE(pair.at_client() == down) << "plaintext at the client differs from what the server encrypted";
    }
}

TEST_F(TlsSessionTest, SmallPiecesAreGatheredIntoFewRecords) {
    auto context = load();
    Pair pair(*context, {});
    pair.pump();
    ASSERT_TRUE(pair.server().handshake_done());
    std::string out;
    pair.server().take_output(out);  // tickets, if any are still pending
    std::string frame(50, 'f');
    std::vector<std::string_view> pieces(100, frame);
    pair.server_send(pieces);
    EXPECT_TRUE(pair.server().has_output());
    pair.server().take_output(out);
    // One record per piece would add 100 × 22 bytes of record overhead; gathered, it is one record.
    EXPECT_LT(out.size(), 5000u + 100u) << "ciphertext of 100 × 50 bytes was " << out.size() << " bytes";
}

TEST_F(TlsSessionTest, ClientWithoutAlpnIsServed) {
    auto context = load();
    ClientOptions options;
    options.alpn.clear();
    Pair pair(*context, options);
    pair.pump();
    ASSERT_FALSE(pair.server_error()) << pair.server_error()->detail;
    EXPECT_TRUE(pair.server().handshake_done());
    EXPECT_EQ(pair.server().alpn(), "");
}

TEST_F(TlsSessionTest, AlpnWithoutHttp11IsRefused) {
    auto context = load();
    ClientOptions options;
    options.alpn = {"h2"};
    Pair pair(*context, options);
    pair.pump();
    ASSERT_TRUE(pair.server_error()) << "a client offering only h2 was accepted";
    EXPECT_TRUE(pair.server_error()->during_handshake);
    EXPECT_FALSE(pair.server().handshake_done());
}

TEST_F(TlsSessionTest, AlpnPrefersHttp11AmongOthers) {
    auto context = load();
    ClientOptions options;
    options.alpn = {"h2", "http/1.1"};
    Pair pair(*context, options);
    pair.pump();
    ASSERT_FALSE(pair.server_error()) << pair.server_error()->detail;
    EXPECT_EQ(pair.server().alpn(), "http/1.1");
}

TEST_F(TlsSessionTest, Tls11ClientIsRefused) {
    auto context = load();
    ClientOptions options;
    options.min_version = TLS1_1_VERSION;
    options.max_version = TLS1_1_VERSION;
    options.legacy = true;
    Pair pair(*context, options);
    pair.pump();
    ASSERT_TRUE(pair.server_error()) << "a TLS 1.1 client completed a handshake";
    EXPECT_TRUE(pair.server_error()->during_handshake);
    EXPECT_EQ(pair.server_error()->detail, "unsupported protocol");
    EXPECT_NE(SSL_is_init_finished(pair.client()), 1);
}

TEST_F(TlsSessionTest, MinimumTls13RefusesTls12Client) {
    auto context = load("1.3");
    ClientOptions options;
    options.max_version = TLS1_2_VERSION;
    Pair pair(*context, options);
    pair.pump();
    ASSERT_TRUE(pair.server_error()) << "a TLS 1.2 client was accepted with minimum 1.3";
    EXPECT_TRUE(pair.server_error()->during_handshake);

    Pair modern(*context, {});
    modern.pump();
    ASSERT_FALSE(modern.server_error()) << modern.server_error()->detail;
    EXPECT_EQ(modern.server().version(), "TLSv1.3");
}

TEST_F(TlsSessionTest, Tls12NegotiatesEcdheWithAead) {
    auto context = load();
    ClientOptions options;
    options.max_version = TLS1_2_VERSION;
    Pair pair(*context, options);
    pair.pump();
    ASSERT_FALSE(pair.server_error()) << pair.server_error()->detail;
    EXPECT_EQ(pair.server().version(), "TLSv1.2");
    std::string cipher(pair.server().cipher());
    EXPECT_EQ(cipher.rfind("ECDHE-", 0), 0u) << cipher;
    EXPECT_TRUE(cipher.find("GCM") != std::string::npos || cipher.find("CHACHA20") != std::string::npos) << cipher;
}

TEST_F(TlsSessionTest, Tls12WithoutEcdheIsRefused) {
    // An RSA certificate, so that static-RSA and DHE suites would be possible if the server allowed them.
    Key rsa = rsa_key();
    Cert cert = self_signed(rsa.get(), "herald-test-rsa", 7);
    write_pem(dir_ / "rsa.crt", {cert.get()});
    write_key(dir_ / "rsa.key", rsa.get());
    auto context = load("1.2", "rsa");
    for (const char* ciphers : {"AES128-GCM-SHA256", "DHE-RSA-AES128-GCM-SHA256", "ECDHE-RSA-AES128-SHA"}) {
        SCOPED_TRACE(ciphers);
        ClientOptions options;
        options.max_version = TLS1_2_VERSION;
        options.ciphers = ciphers;
        Pair pair(*context, options);
        pair.pump();
        ASSERT_TRUE(pair.server_error()) << "negotiated " << pair.server().cipher();
        EXPECT_TRUE(pair.server_error()->during_handshake);
    }
    ClientOptions good;
    good.max_version = TLS1_2_VERSION;
    Pair pair(*context, good);
    pair.pump();
    ASSERT_FALSE(pair.server_error()) << pair.server_error()->detail;
    EXPECT_EQ(std::string(pair.server().cipher()).rfind("ECDHE-RSA-", 0), 0u) << pair.server().cipher();
}

TEST_F(TlsSessionTest, GarbageIsAStickyError) {
    auto context = load();
    auto session = TlsSession::accept(*context);
    StringSink sink;
    std::vector<char> scratch(1024);
    // A handshake record holding a ClientHello of length zero.
    std::string garbage("\x16\x03\x01\x00\x04\x01\x00\x00\x00", 9);
    auto first = session->feed(garbage, scratch, sink);
    ASSERT_FALSE(first.ok());
    EXPECT_TRUE(first.error().during_handshake);
    EXPECT_FALSE(first.error().detail.empty());
    auto again = session->feed(std::string_view("\x16\x03\x01"), scratch, sink);
    ASSERT_FALSE(again.ok()) << "a failed session accepted more input";
    EXPECT_EQ(again.error().detail, first.error().detail);
    EXPECT_TRUE(sink.received.empty());
}

TEST_F(TlsSessionTest, PlainHttpIsAnError) {
    auto context = load();
    auto session = TlsSession::accept(*context);
    StringSink sink;
    std::vector<char> scratch(1024);
    auto r = session->feed(std::string_view("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), scratch, sink);
    ASSERT_FALSE(r.ok());
    EXPECT_TRUE(r.error().during_handshake);
}

TEST_F(TlsSessionTest, EncryptBeforeHandshakeIsAnError) {
    auto context = load();
    auto session = TlsSession::accept(*context);
    std::vector<char> staging(16 * 1024);
    std::vector<std::string_view> pieces{"hello"};
    EXPECT_FALSE(session->encrypt(pieces, staging).ok());
}

TEST_F(TlsSessionTest, CloseNotifyBothWays) {
    auto context = load();
    Pair pair(*context, {});
    pair.pump();
    ASSERT_TRUE(pair.server().handshake_done());
    pair.server().close_notify();
    EXPECT_TRUE(pair.server().close_notify_sent());
    pair.pump();
    EXPECT_TRUE(pair.client_saw_close_notify());

    Pair other(*context, {});
    other.pump();
    SSL_shutdown(other.client());
    other.pump();
    EXPECT_TRUE(other.server().peer_closed());
    EXPECT_FALSE(other.server_error());
}

TEST_F(TlsSessionTest, ReloadLeavesOpenSessionsOnTheOldPair) {
    auto old_context = load();
    Pair before(*old_context, {});
    before.pump();
    ASSERT_TRUE(before.server().handshake_done());

    Key key_b = ec_key();
    Cert cert_b = self_signed(key_b.get(), "herald-test-b", 2002);
    write_pem(dir_ / "b.crt", {cert_b.get()});
    write_key(dir_ / "b.key", key_b.get());
    auto new_context = load("1.2", "b");
    ASSERT_TRUE(new_context);
    old_context.reset();  // the server drops its pointer; the open session still holds the SSL_CTX

    before.client_send("still here");
    before.pump();
    EXPECT_EQ(before.at_server().received, "still here");
    std::vector<std::string_view> reply{"and so am I"};
    before.server_send(reply);
    before.pump();
    EXPECT_EQ(before.at_client(), "and so am I");

    Pair after(*new_context, {});
    after.pump();
    ASSERT_TRUE(after.server().handshake_done());
    X509* seen = SSL_get0_peer_certificate(after.client());
    ASSERT_NE(seen, nullptr);
    EXPECT_EQ(serial_of(seen), "2002");
    EXPECT_EQ(serial_of(SSL_get0_peer_certificate(before.client())), "1001");
}

TEST_F(TlsSessionTest, TheWholeChainIsServed) {
    Key other = ec_key();
    Cert intermediate = self_signed(other.get(), "herald-test-intermediate", 5);
    write_pem(dir_ / "chain.crt", {cert_.get(), intermediate.get()});
    write_key(dir_ / "chain.key", key_.get());
    auto context = load("1.2", "chain");
    ASSERT_TRUE(context);
    EXPECT_NE(context->description().find("chain=2"), std::string::npos) << context->description();
    Pair pair(*context, {});
    pair.pump();
    ASSERT_TRUE(pair.server().handshake_done());
    STACK_OF(X509)* chain = SSL_get_peer_cert_chain(pair.client());
    ASSERT_NE(chain, nullptr);
    EXPECT_EQ(sk_X509_num(chain), 2);
}

TEST_F(TlsSessionTest, LoadErrorsNameTheFile) {
    auto missing = TlsContext::load(path("nope.crt"), path("a.key"), "1.2");
    ASSERT_FALSE(missing.ok());
    EXPECT_NE(missing.error().find("nope.crt"), std::string::npos) << missing.error();

    Key other = ec_key();
    write_key(dir_ / "other.key", other.get());
    auto mismatch = TlsContext::load(path("a.crt"), path("other.key"), "1.2");
    ASSERT_FALSE(mismatch.ok());
    EXPECT_TRUE(mismatch.error().find("mismatch") != std::string::npos ||
                mismatch.error().find("does not match") != std::string::npos)
        << mismatch.error();

    {
        FILE* f = std::fopen((dir_ / "junk.key").c_str(), "w");
        std::fputs("-----BEGIN PRIVATE KEY-----\nnot base64 at all\n-----END PRIVATE KEY-----\n", f);
        std::fclose(f);
    }
    auto junk = TlsContext::load(path("a.crt"), path("junk.key"), "1.2");
    ASSERT_FALSE(junk.ok());
    EXPECT_NE(junk.error().find("junk.key"), std::string::npos) << junk.error();

    auto version = TlsContext::load(path("a.crt"), path("a.key"), "1.1");
    EXPECT_FALSE(version.ok());

    // A certificate file given as the key (and the reverse) is refused, not half-loaded.
    EXPECT_FALSE(TlsContext::load(path("a.key"), path("a.crt"), "1.2").ok());
    EXPECT_EQ(ERR_peek_error(), 0u) << "load leaves OpenSSL's error queue empty";
}

}  // namespace
}  // namespace herald
