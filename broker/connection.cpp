// Connection state machine: (TLS handshake) → HTTP request → (upgrade) → WebSocket frames → close; reads go through
// the server's loop-wide buffers (ciphertext, then plaintext), so an idle connection holds no read buffer of its own.
#include "broker/connection.h"

#include <array>
#include <cstring>

#include "broker/server.h"
#include "protocol/frame_writer.h"

namespace herald {
namespace {

Connection* owner(uv_handle_t* handle) { return static_cast<Connection*>(handle->data); }

std::string peer_name(uv_tcp_t* tcp) {
    sockaddr_storage addr{};
    int len = sizeof addr;
    if (uv_tcp_getpeername(tcp, reinterpret_cast<sockaddr*>(&addr), &len) != 0) return "?";
    char host[INET6_ADDRSTRLEN] = {};
    int port = 0;
    if (addr.ss_family == AF_INET) {
        auto* in = reinterpret_cast<sockaddr_in*>(&addr);
        uv_ip4_name(in, host, sizeof host);
        port = ntohs(in->sin_port);
    } else if (addr.ss_family == AF_INET6) {
        auto* in6 = reinterpret_cast<sockaddr_in6*>(&addr);
        uv_ip6_name(in6, host, sizeof host);
        port = ntohs(in6->sin6_port);
    }
    return std::string(host) + ":" + std::to_string(port);
}

}  // namespace

Connection::Connection(Server& server, uint64_t id)
    : server_(server),
      id_(id),
      http_(std::make_unique<HttpRequestParser>(HttpParseLimits{16 * 1024, 100, server.config().max_message_size})),
      frames_(FrameLimits{server.config().max_message_size}) {
    tcp_.data = this;
    write_req_.data = this;
}

bool Connection::accept(uv_stream_t* listener) {
    uv_tcp_init(server_.loop(), &tcp_);
    opened_ms_ = last_read_ms_ = server_.now_ms();
    if (uv_accept(listener, reinterpret_cast<uv_stream_t*>(&tcp_)) != 0) {
        state_ = ConnectionState::Closed;
        uv_close(reinterpret_cast<uv_handle_t*>(&tcp_), on_closed);
        return false;
    }
    uv_tcp_nodelay(&tcp_, 1);
    peer_ = peer_name(&tcp_);
    if (const TlsContext* context = server_.tls_context()) {
        tls_ = TlsSession::accept(*context);  // with the pair current now: a later reload does not change it
        if (!tls_) {
            server_.log().warn("tls_session_failed", {{"conn", id_}, {"peer", peer_}});
            abort();
            return false;
        }
    }
    reading_ = uv_read_start(reinterpret_cast<uv_stream_t*>(&tcp_), on_alloc, on_read) == 0;
    if (!reading_) abort();
    return reading_;
}

void Connection::on_alloc(uv_handle_t* handle, size_t, uv_buf_t* buf) {
    auto& buffer = owner(handle)->server_.read_buffer();
    *buf = uv_buf_init(buffer.data(), static_cast<unsigned>(buffer.size()));
}

void Connection::on_read(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf) {
    auto* self = owner(reinterpret_cast<uv_handle_t*>(stream));
    if (nread < 0) {
        self->abort();  // EOF or error: the peer is gone; nothing more can be sent reliably
        return;
    }
    if (nread == 0) return;
    self->server_.metrics().bytes_received.Increment(static_cast<double>(nread));
    self->last_read_ms_ = self->server_.now_ms();
    if (self->tls_) self->handle_ciphertext(buf->base, static_cast<size_t>(nread));
    else self->handle_bytes(buf->base, static_cast<size_t>(nread));
}

void Connection::handle_ciphertext(char* data, size_t size) {
    if (!tls_first_byte_seen_) {
        tls_first_byte_seen_ = true;
        if (static_cast<unsigned char>(data[0]) != 0x16) {  // not a TLS handshake record: plain HTTP, most likely
            refuse_plaintext();
            return;
        }
    }
    auto fed = tls_->feed(std::span<const char>(data, size), server_.tls_plaintext_buffer(), *this);
    if (!fed.ok()) {
        tls_failed(fed.error());
        return;
    }
    if (state_ == ConnectionState::Closed) return;
    if (tls_->peer_closed()) {  // close_notify: like EOF, nothing more will come
        abort();
        return;
    }
    if (!tls_established_ && tls_->handshake_done()) {
        tls_established_ = true;
        server_.log().debug("tls_established", {{"conn", id_}, {"peer", peer_}, {"version", tls_->version()},
                                                {"cipher", tls_->cipher()}, {"alpn", tls_->alpn()}});
        if (out_.has_pending()) server_.schedule_flush(*this);  // e.g. a 503 queued at accept
    }
    if (tls_->has_output()) server_.schedule_flush(*this);  // handshake messages, tickets, alerts
}

bool Connection::on_plaintext(std::span<char> bytes) {
    handle_bytes(bytes.data(), bytes.size());
    return state_ != ConnectionState::Closed;
}

void Connection::refuse_plaintext() {
    server_.metrics().handshake_failures.increment("tls_plain_http");
    server_.log().debug("tls_plain_http", {{"conn", id_}, {"peer", peer_}});
    tls_.reset();  // the answer goes out in the clear, then the connection ends
    out_.drop_pending();  // e.g. a 503 queued at accept for a TLS client: this one gets only the 400
    respond_http(text_response(400, "this port speaks TLS: use https:// or wss://"));
}

void Connection::tls_failed(const TlsError& error) {
    if (error.during_handshake) {
        server_.metrics().handshake_failures.increment("tls");
        server_.log().debug("tls_handshake_failed", {{"conn", id_}, {"peer", peer_}, {"error", error.detail}});
    } else {
        server_.log().debug("tls_error", {{"conn", id_}, {"peer", peer_}, {"error", error.detail}});
    }
    // Best effort and without waiting: the alert OpenSSL queued tells the client why.
    if (!writing() && tls_->has_output()) {
        tls_->take_output(wire_);
        uv_buf_t buf = uv_buf_init(wire_.data(), static_cast<unsigned>(wire_.size()));
        uv_try_write(reinterpret_cast<uv_stream_t*>(&tcp_), &buf, 1);
        wire_.clear();
    }
    abort();
}

void Connection::handle_bytes(char* data, size_t size) {
    if (state_ == ConnectionState::Handshake) handle_http(data, size);
    else if (state_ == ConnectionState::Open || state_ == ConnectionState::Closing) handle_frames(data, size);
    // HttpResponse / Closed: input is ignored.
}

void Connection::handle_http(char* data, size_t size) {
    size_t used = http_->feed(std::string_view(data, size));
    switch (http_->status()) {
        case HttpParseStatus::NeedMore:
            return;
        case HttpParseStatus::Failed: {
            server_.metrics().handshake_failures.increment("http_" + std::to_string(http_->error_status()));
            respond_http(text_response(http_->error_status(), http_->error_reason()));
            return;
        }
        case HttpParseStatus::Complete: {
            HttpRequest request = http_->take_request();
            http_.reset();
            state_ = ConnectionState::HttpResponse;  // until the server upgrades or answers
            auto upgrade = server_.on_request(*this, std::move(request));
            if (upgrade) begin_websocket(*upgrade, data + used, size - used);
            return;
        }
    }
}

void Connection::begin_websocket(std::string_view response_bytes, char* rest, size_t rest_size) {
    state_ = ConnectionState::Open;
    opened_ms_ = server_.now_ms();  // the connect deadline runs from the upgrade
    enqueue(OutboundItem{make_frame(std::string(response_bytes))});
    client_ = server_.on_websocket_open(*this);
    if (rest_size > 0) handle_frames(rest, rest_size);
}

void Connection::handle_frames(char* data, size_t size) {
    if (paused_) {
        deferred_input_.append(data, size);
        if (deferred_input_.size() > server_.config().max_message_size + 14 && reading_) {
            // Bounded: stop reading until the pause ends; TCP flow control holds the rest.
            uv_read_stop(reinterpret_cast<uv_stream_t*>(&tcp_));
            reading_ = false;
        }
        return;
    }
    auto result = frames_.feed(std::span<char>(data, size), *this);
    if (!result.ok()) {
        close_for(result.error().error, result.error().detail);
        return;
    }
    size_t consumed = result.value();
    if (consumed < size && paused_ && state_ == ConnectionState::Open) deferred_input_.append(data + consumed, size - consumed);
    if (!paused_) frames_.shrink_idle();
}

void Connection::resume_reading() {
    if (!paused_) return;
    paused_ = false;
    if (!deferred_input_.empty()) {
        std::string pending;
        pending.swap(deferred_input_);
        handle_frames(pending.data(), pending.size());
    }
    if (!paused_ && !reading_ && state_ == ConnectionState::Open) {
        reading_ = uv_read_start(reinterpret_cast<uv_stream_t*>(&tcp_), on_alloc, on_read) == 0;
    }
}

SinkResult Connection::on_text(std::string_view message) {
    if (state_ != ConnectionState::Open) return SinkResult::Continue;  // closing: data frames are ignored
    server_.on_text(*this, message);
    return (paused_ || state_ != ConnectionState::Open) ? SinkResult::Stop : SinkResult::Continue;
}

SinkResult Connection::on_ping(std::string_view payload) {
    if (state_ == ConnectionState::Open) enqueue(OutboundItem{make_frame(encode_frame(Opcode::Pong, payload))});
    return SinkResult::Continue;
}

SinkResult Connection::on_pong(std::string_view) { return SinkResult::Continue; }

SinkResult Connection::on_close(CloseCode code, std::string_view) {
    close_code_ = static_cast<uint16_t>(code);
    if (state_ == ConnectionState::Open) {
        // Echo the peer's code (an empty close is answered with an empty close), then end after the write.
        out_.drop_pending();
        enqueue(OutboundItem{make_frame(encode_close_frame(code))});
        state_ = ConnectionState::Closing;
        deadline_ms_ = server_.now_ms() + static_cast<uint64_t>(server_.config().close_timeout_s * 1000);
        finish_after_flush();
    } else if (state_ == ConnectionState::Closing) {
        finish_after_flush();  // the answer to our close
    }
    return SinkResult::Stop;
}

bool Connection::enqueue(OutboundItem item) {
    if (state_ == ConnectionState::Closed || finish_after_flush_) return false;
    if (state_ == ConnectionState::Open && queued_bytes() + item.frame->size() > server_.config().outbound_limit) {
        server_.metrics().slow_consumer_closes.Increment();
        server_.log().info("slow_consumer", {{"conn", id_}, {"peer", peer_}, {"queued", queued_bytes()}});
        out_.drop_pending();
        start_close(CloseCode::SlowConsumer, error_info(ProtocolError::SlowConsumer).message, false);
        return false;
    }
    out_.push(std::move(item));
    server_.schedule_flush(*this);
    return true;
}

bool Connection::send_text(std::string_view json) {
    if (state_ != ConnectionState::Open) return false;
    return enqueue(OutboundItem{make_frame(encode_text_frame(json))});
}

void Connection::respond_http(const HttpResponse& response) {
    if (state_ == ConnectionState::Closed) return;
    state_ = ConnectionState::HttpResponse;
    http_.reset();
    out_.push(OutboundItem{make_frame(response.serialize())});
    server_.schedule_flush(*this);
    deadline_ms_ = server_.now_ms() + static_cast<uint64_t>(server_.config().close_timeout_s * 1000);
    finish_after_flush();
}

void Connection::close(CloseCode code, std::string_view reason) { start_close(code, reason, true); }

void Connection::close_for(ProtocolError error, std::string_view detail) {
    const auto& info = error_info(error);
    CloseCode code = info.close_code.value_or(CloseCode::PolicyViolation);
    server_.log().debug("close", {{"conn", id_}, {"code", static_cast<int>(code)}, {"error", info.code},
                                  {"detail", detail}});
    // A peer that broke the protocol gets the close frame, but we do not wait for its answer.
    start_close(code, detail.empty() ? info.message : detail, false);
}

void Connection::start_close(CloseCode code, std::string_view reason, bool wait_for_peer) {
    if (state_ != ConnectionState::Open) {
        if (state_ == ConnectionState::Handshake) abort();
        return;
    }
    close_code_ = static_cast<uint16_t>(code);
    state_ = ConnectionState::Closing;
    out_.push(OutboundItem{make_frame(encode_close_frame(code, reason))});
    server_.schedule_flush(*this);
    deadline_ms_ = server_.now_ms() + static_cast<uint64_t>(server_.config().close_timeout_s * 1000);
    if (!wait_for_peer) finish_after_flush();
}

void Connection::finish_after_flush() {
    finish_after_flush_ = true;
    if (writing() || out_.has_pending()) return;
    if (owes_close_notify()) {
        server_.schedule_flush(*this);  // the last flush carries close_notify, its write_done ends the connection
        return;
    }
    abort();
}

void Connection::abort() {
    if (state_ == ConnectionState::Closed) return;
    state_ = ConnectionState::Closed;
    uv_close(reinterpret_cast<uv_handle_t*>(&tcp_), on_closed);
}

void Connection::flush() {
    flush_scheduled = false;
    if (tls_) {
        flush_tls();
        return;
    }
    if (state_ == ConnectionState::Closed || out_.writing() || !out_.has_pending()) return;
    auto* stream = reinterpret_cast<uv_stream_t*>(&tcp_);
    auto& bufs = out_.begin_write();
    const uint64_t total = out_.queued_bytes();
    // Most batches fit in the socket buffer: write synchronously first and arm a uv_write only for the rest,
    // which saves the poll re-arm per write that dominates the cost of small deliveries.
    int written = uv_try_write(stream, bufs.data(), static_cast<unsigned>(bufs.size()));
    if (written == UV_EAGAIN) written = 0;
    if (written < 0) {
        out_.complete_write();
        abort();
        return;
    }
    if (static_cast<uint64_t>(written) == total) {
        write_done(0);
        return;
    }
    out_.advance(static_cast<size_t>(written));
    int rc = uv_write(&write_req_, stream, bufs.data(), static_cast<unsigned>(bufs.size()), on_write);
    if (rc != 0) {
        out_.complete_write();
        abort();
    }
}

// TLS: the queued frames stay shared and are encrypted here, once per connection, into wire_ — one buffer, written
// like the plain batch (uv_try_write first), and completed through the same write_done.
void Connection::flush_tls() {
    if (state_ == ConnectionState::Closed || writing()) return;
    if (out_.has_pending() && tls_->handshake_done()) {
        auto& bufs = out_.begin_write();
        in_flight_plaintext_ = out_.queued_bytes();  // nothing is pending right after begin_write
        std::array<std::string_view, 128> pieces;
        bool ok = true;
        for (size_t at = 0; ok && at < bufs.size(); at += pieces.size()) {
            size_t n = std::min(pieces.size(), bufs.size() - at);
            for (size_t i = 0; i < n; ++i) pieces[i] = std::string_view(bufs[at + i].base, bufs[at + i].len);
            ok = tls_->encrypt(std::span(pieces.data(), n), server_.tls_staging_buffer()).ok();
        }
        if (!ok) {
            in_flight_plaintext_ = 0;
            out_.complete_write();
            abort();
            return;
        }
    }
    if (finish_after_flush_ && !out_.has_pending()) tls_->close_notify();
    if (!tls_->has_output()) return;
    tls_->take_output(wire_);
    auto* stream = reinterpret_cast<uv_stream_t*>(&tcp_);
    uv_buf_t buf = uv_buf_init(wire_.data(), static_cast<unsigned>(wire_.size()));
    int written = uv_try_write(stream, &buf, 1);
    if (written == UV_EAGAIN) written = 0;
    if (written < 0) {
        write_done(written);
        return;
    }
    if (static_cast<size_t>(written) == wire_.size()) {
        write_done(0);
        return;
    }
    buf = uv_buf_init(wire_.data() + written, static_cast<unsigned>(wire_.size() - static_cast<size_t>(written)));
    int rc = uv_write(&write_req_, stream, &buf, 1, on_write);
    if (rc != 0) write_done(rc);
}

void Connection::on_write(uv_write_t* req, int status) { static_cast<Connection*>(req->data)->write_done(status); }

void Connection::write_done(int status) {
    uint64_t wire_bytes = wire_.size();  // TLS: what went on the wire is the ciphertext
    wire_.clear();  // keeps its capacity for the next batch; an idle sweep releases it
    in_flight_plaintext_ = 0;  // before the observers run, so queued_bytes() is right during their callbacks
    WriteCompletion done = out_.complete_write();
    uint64_t sent = tls_ ? wire_bytes : done.bytes;
    if (status < 0 || state_ == ConnectionState::Closed) {
        abort();
        return;
    }
    server_.metrics().bytes_sent.Increment(static_cast<double>(sent));
    if (done.oldest_published_at_us) server_.observe_publish_to_write(done.oldest_published_at_us);
    if (finish_after_flush_ && !out_.has_pending()) {
        if (owes_close_notify()) server_.schedule_flush(*this);
        else abort();
        return;
    }
    if (client_ && state_ == ConnectionState::Open && queued_bytes() < server_.config().outbound_limit / 2)
        server_.on_writable(*this);
    // Written at the next prepare/check, corked with the rest.
    if (out_.has_pending() || (tls_ && tls_->has_output())) server_.schedule_flush(*this);
}

void Connection::sweep(uint64_t now_ms) {
    const Config& config = server_.config();
    switch (state_) {
        case ConnectionState::Handshake:
            if (now_ms - opened_ms_ >= static_cast<uint64_t>(config.handshake_timeout_s * 1000)) {
                server_.metrics().handshake_failures.increment("timeout");
                abort();
            }
            return;
        case ConnectionState::HttpResponse:
        case ConnectionState::Closing:
            if (deadline_ms_ && now_ms >= deadline_ms_) abort();
            return;
        case ConnectionState::Closed:
            return;
        case ConnectionState::Open:
            break;
    }
    if (!connect_received_ && now_ms - opened_ms_ >= static_cast<uint64_t>(config.connect_timeout_s * 1000)) {
        close_for(ProtocolError::ConnectTimeout);
        return;
    }
    auto heartbeat_ms = static_cast<uint64_t>(config.heartbeat_s * 1000);
    uint64_t silent = now_ms - last_read_ms_;
    if (silent >= 2 * heartbeat_ms) {
        close_for(ProtocolError::HeartbeatTimeout);
        return;
    }
    if (silent >= heartbeat_ms && now_ms - last_ping_ms_ >= heartbeat_ms) {
        last_ping_ms_ = now_ms;
        enqueue(OutboundItem{server_.ping_frame()});
    }
    if (!writing() && !out_.has_pending()) {
        out_.shrink_idle();
        if (tls_) {
            std::string().swap(wire_);
            tls_->shrink_idle();
        }
    }
}

void Connection::on_closed(uv_handle_t* handle) {
    auto* self = owner(handle);
    self->server_.on_connection_closed(*self, self->close_code_);
    delete self;
}

}  // namespace herald
