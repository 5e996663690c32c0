// The node's TLS configuration: one OpenSSL SSL_CTX holding the certificate chain, the key, the accepted versions,
// the ECDHE-only suites and the ALPN choice. A SIGHUP reload builds a new TlsContext and swaps the server's pointer;
// every SSL made from the old one holds a reference to its SSL_CTX, so open connections keep the old pair.
#pragma once
#include <memory>
#include <string>
#include <string_view>

#include <openssl/ssl.h>

#include "protocol/result.h"

namespace herald {

class TlsContext {
public:
    // Reads a PEM certificate chain (leaf first; the whole chain is served) and its PEM private key.
    // min_version is "1.2" or "1.3". The error names the file and OpenSSL's reason, never key material.
    static Result<std::shared_ptr<TlsContext>, std::string> load(const std::string& cert_file,
                                                                 const std::string& key_file,
                                                                 std::string_view min_version);

    SSL_CTX* native() const { return ctx_.get(); }
    // The leaf certificate for logs: `subject=… serial=… not_after=…`.
    const std::string& description() const { return description_; }

private:
    explicit TlsContext(std::shared_ptr<SSL_CTX> ctx, std::string description)
        : ctx_(std::move(ctx)), description_(std::move(description)) {}

    std::shared_ptr<SSL_CTX> ctx_;
    std::string description_;
};

}  // namespace herald
