// TLS over caller-owned buffers: a minimal BIO reads from the span being fed and appends to the session's output
// string, so nothing is copied into an intermediate memory BIO and an idle session holds no BIO buffer.
#include "broker/tls_session.h"

#include <algorithm>
#include <cstring>

#include <openssl/err.h>

namespace herald {

// The BIO callbacks; a friend of TlsSession.
struct TlsSessionBio {
    static TlsSession& session(BIO* bio) { return *static_cast<TlsSession*>(BIO_get_data(bio)); }

    static int write(BIO* bio, const char* data, int size) {
        BIO_clear_retry_flags(bio);
        session(bio).output_.append(data, static_cast<size_t>(size));
        return size;
    }

    static int read(BIO* bio, char* data, int size) {
        BIO_clear_retry_flags(bio);
        auto& input = session(bio).input_;
        if (input.empty()) {
            BIO_set_retry_read(bio);  // "would block": feed() returns and waits for the next read
            return -1;
        }
        size_t n = std::min(input.size(), static_cast<size_t>(size));
        std::memcpy(data, input.data(), n);
        input = input.subspan(n);
        return static_cast<int>(n);
    }

    static long ctrl(BIO* bio, int cmd, long, void*) {
        switch (cmd) {
            case BIO_CTRL_FLUSH: return 1;  // output is complete as soon as it is appended
            case BIO_CTRL_PENDING: return static_cast<long>(session(bio).input_.size());
            case BIO_CTRL_WPENDING: return 0;
            default: return 0;
        }
    }

    static int create(BIO* bio) {
        BIO_set_init(bio, 1);
        return 1;
    }

    static const BIO_METHOD* method() {
        static BIO_METHOD* m = [] {
            BIO_METHOD* made = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "herald-tls");
            if (made) {
                BIO_meth_set_write(made, write);
                BIO_meth_set_read(made, read);
                BIO_meth_set_ctrl(made, ctrl);
                BIO_meth_set_create(made, create);
            }
            return made;
        }();
        return m;
    }
};

std::unique_ptr<TlsSession> TlsSession::accept(const TlsContext& context) {
    const BIO_METHOD* method = TlsSessionBio::method();
    if (!method) return nullptr;
    SSL* ssl = SSL_new(context.native());  // holds its own reference to the SSL_CTX: a reload does not affect it
    if (!ssl) {
        ERR_clear_error();
        return nullptr;
    }
    BIO* bio = BIO_new(method);
    if (!bio) {
        SSL_free(ssl);
        ERR_clear_error();
        return nullptr;
    }
    std::unique_ptr<TlsSession> session(new TlsSession(ssl));
    BIO_set_data(bio, session.get());
    SSL_set_bio(ssl, bio, bio);  // the SSL owns the BIO from here
    SSL_set_accept_state(ssl);
    return session;
}

TlsSession::TlsSession(SSL* ssl) : ssl_(ssl) {}

TlsSession::~TlsSession() { SSL_free(ssl_); }

Result<Unit, TlsError> TlsSession::failure(bool during_handshake) {
    failed_ = true;
    error_.during_handshake = during_handshake;
    unsigned long code = ERR_peek_last_error();
    const char* reason = code ? ERR_reason_error_string(code) : nullptr;
    error_.detail = reason ? reason : "protocol error";
    ERR_clear_error();
    return fail(error_);
}

Result<Unit, TlsError> TlsSession::feed(std::span<const char> ciphertext, std::span<char> scratch,
                                        PlaintextSink& sink) {
    if (failed_) return fail(error_);
    ERR_clear_error();  // SSL_get_error reads this thread's queue: nothing left by other code may show up here
    input_ = ciphertext;
    if (!handshake_done_) {
        int rc = SSL_do_handshake(ssl_);
        if (rc != 1) {
            int error = SSL_get_error(ssl_, rc);
            input_ = {};
            if (error == SSL_ERROR_WANT_READ) return Unit{};
            return failure(true);
        }
        handshake_done_ = true;
    }
    size_t used = 0;
    bool stopped = false;
    while (!stopped) {
        size_t got = 0;
        if (SSL_read_ex(ssl_, scratch.data() + used, scratch.size() - used, &got) == 1) {
            used += got;
            if (used == scratch.size()) {
                stopped = !sink.on_plaintext(scratch.first(used));
                used = 0;
                ERR_clear_error();  // the receiver may have used OpenSSL (tokens, random ids) in between
            }
            continue;
        }
        int error = SSL_get_error(ssl_, 0);
        if (error == SSL_ERROR_WANT_READ) break;
        if (error == SSL_ERROR_ZERO_RETURN) {  // close_notify: the peer sends nothing more
            peer_closed_ = true;
            break;
        }
        input_ = {};
        return failure(false);  // a forged or broken record: the connection ends, undelivered plaintext with it
    }
    input_ = {};
    if (used > 0 && !stopped) sink.on_plaintext(scratch.first(used));
    ERR_clear_error();
    return Unit{};
}

Result<Unit, TlsError> TlsSession::write_record(const char* data, size_t size) {
    size_t written = 0;
    // The BIO never blocks, so a write completes whole (OpenSSL splits it into records of at most 16 KiB).
    if (SSL_write_ex(ssl_, data, size, &written) != 1 || written != size) return failure(false);
    return Unit{};
}

Result<Unit, TlsError> TlsSession::encrypt(std::span<const std::string_view> pieces, std::span<char> staging) {
    if (failed_) return fail(error_);
    if (!handshake_done_) {
        failed_ = true;
        error_ = TlsError{false, "write before the handshake completed"};
        return fail(error_);
    }
    ERR_clear_error();
    size_t staged = 0;
    for (std::string_view piece : pieces) {
        if (piece.empty()) continue;
        if (staged + piece.size() > staging.size()) {
            if (staged > 0) {
                if (auto r = write_record(staging.data(), staged); !r.ok()) return r;
                staged = 0;
            }
            if (piece.size() >= staging.size()) {  // large: encrypted from where it is
                if (auto r = write_record(piece.data(), piece.size()); !r.ok()) return r;
                continue;
            }
        }
        std::memcpy(staging.data() + staged, piece.data(), piece.size());
        staged += piece.size();
    }
    if (staged > 0) return write_record(staging.data(), staged);
    return Unit{};
}

void TlsSession::close_notify() {
    if (close_notify_sent_ || failed_ || !handshake_done_) return;
    close_notify_sent_ = true;
    ERR_clear_error();
    SSL_shutdown(ssl_);  // writes close_notify; the peer's answer is not awaited
    ERR_clear_error();
}

void TlsSession::take_output(std::string& into) {
    into.clear();
    into.swap(output_);
}

void TlsSession::shrink_idle() {
    if (output_.empty()) std::string().swap(output_);
}

std::string_view TlsSession::version() const { return SSL_get_version(ssl_); }

std::string_view TlsSession::cipher() const {
    const char* name = SSL_get_cipher_name(ssl_);
    return name ? name : "";
}

std::string_view TlsSession::alpn() const {
    const unsigned char* data = nullptr;
    unsigned int size = 0;
    SSL_get0_alpn_selected(ssl_, &data, &size);
    return data ? std::string_view(reinterpret_cast<const char*>(data), size) : std::string_view();
}

}  // namespace herald
