// One server-side TLS session, sans-IO: ciphertext in → plaintext to a sink; plaintext in → ciphertext out. It owns no
// socket and no buffer of its own beyond OpenSSL's (released while idle): its BIO reads straight from the span given
// to feed() and appends to one output string, so a Connection — or a test — moves the bytes.
#pragma once
#include <cstddef>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include <openssl/ssl.h>

#include "broker/tls_context.h"
#include "protocol/result.h"

namespace herald {

// Receives decrypted bytes: a view into the caller's scratch buffer, writable so parsers can unmask in place.
class PlaintextSink {
public:
    // Returns false to stop: the receiver is gone and wants no more of this input.
    virtual bool on_plaintext(std::span<char> bytes) = 0;

protected:
    ~PlaintextSink() = default;
};

struct TlsError {
    bool during_handshake = false;  // the session never got established (version, cipher, ALPN, garbage)
    std::string detail;             // OpenSSL's reason, e.g. "unsupported protocol"
};

class TlsSession {
public:
    // nullptr when OpenSSL cannot allocate the session.
    static std::unique_ptr<TlsSession> accept(const TlsContext& context);
    ~TlsSession();
    TlsSession(const TlsSession&) = delete;
    TlsSession& operator=(const TlsSession&) = delete;

    // Consumes all of `ciphertext` (OpenSSL keeps an unfinished record), drives the handshake, and hands the
    // plaintext to `sink` in chunks of at most `scratch.size()` bytes. A failure is sticky: later calls return it.
    Result<Unit, TlsError> feed(std::span<const char> ciphertext, std::span<char> scratch, PlaintextSink& sink);
    // Encrypts `pieces` in order (after the handshake only). Small pieces are gathered in `staging` so that a batch
    // of small frames becomes full records rather than one record each.
    Result<Unit, TlsError> encrypt(std::span<const std::string_view> pieces, std::span<char> staging);
    // Queues close_notify (once); what follows is the end of the connection.
    void close_notify();

    // Bytes to send: handshake messages, records, alerts, tickets, in order.
    bool has_output() const { return !output_.empty(); }
    // Swaps the pending output into `into` (whose old contents are dropped; its capacity is reused).
    void take_output(std::string& into);
    void shrink_idle();

    bool handshake_done() const { return handshake_done_; }
    bool peer_closed() const { return peer_closed_; }
    bool close_notify_sent() const { return close_notify_sent_; }
    bool failed() const { return failed_; }
    std::string_view version() const;  // "TLSv1.3"
    std::string_view cipher() const;   // "TLS_AES_256_GCM_SHA384"
    std::string_view alpn() const;     // "http/1.1", or empty when the client offered none

private:
    explicit TlsSession(SSL* ssl);
    Result<Unit, TlsError> failure(bool during_handshake);
    Result<Unit, TlsError> write_record(const char* data, size_t size);

    friend struct TlsSessionBio;
    SSL* ssl_;
    std::span<const char> input_;  // what the BIO may read during feed()
    std::string output_;           // what the BIO wrote
    TlsError error_;
    bool handshake_done_ = false;
    bool peer_closed_ = false;
    bool close_notify_sent_ = false;
    bool failed_ = false;
};

}  // namespace herald
