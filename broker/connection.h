// One client connection: its TCP handle, its state (handshake → open → closing → closed), the frame parser, the
// outbound queue and, on a TLS listener, its TLS session. Owns its uv_tcp_t and is deleted only from that handle's
// close callback.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include <uv.h>

#include "broker/client_link.h"
#include "broker/outbound_queue.h"
#include "broker/tls_session.h"
#include "protocol/close_code.h"
#include "protocol/errors.h"
#include "protocol/frame_parser.h"
#include "protocol/http_request.h"
#include "protocol/http_response.h"

namespace herald {

class Server;
struct ClientState;

enum class ConnectionState {
    Handshake,     // reading an HTTP request (WebSocket upgrade or API call)
    HttpResponse,  // an HTTP response is queued; the connection ends once it is written
    Open,          // WebSocket open
    Closing,       // a close frame was sent; waiting for the peer's close, the write to finish, or the deadline
    Closed,        // uv_close called; the object dies in the close callback
};

class Connection final : public ClientLink, private FrameSink, private PlaintextSink {
public:
    Connection(Server& server, uint64_t id);
    Connection(const Connection&) = delete;
    Connection& operator=(const Connection&) = delete;

    // Accepts from the listener and starts reading; false if accept failed (the handle is then closing).
    bool accept(uv_stream_t* listener);

    uint64_t id() const { return id_; }
    ConnectionState state() const { return state_; }
    bool is_websocket() const { return client_ != nullptr; }
    ClientState* client() const { return client_; }
    const std::string& peer() const { return peer_; }

    // Queues a frame (or HTTP bytes) for the next flush. Over the outbound limit, a WebSocket connection is closed
    // as a slow consumer instead. Returns false when the item was not queued.
    bool enqueue(OutboundItem item) override;
    bool send_text(std::string_view json) override;  // frames one text message (replies: not shared)
    void respond_http(const HttpResponse& response);  // then the connection ends
    // Sends a close frame and ends the connection once the peer answers or close-timeout passes.
    void close(CloseCode code, std::string_view reason);
    void close_for(ProtocolError error, std::string_view detail = {}) override;
    // Drops the TCP connection now (timeouts, fatal errors).
    void abort();

    // The client sent `connect`: the connect deadline no longer applies.
    void mark_connected() override { connect_received_ = true; }

    // Stops delivering incoming messages until resume_reading() (e.g. while a session loads).
    void pause_reading() override { paused_ = true; }
    void resume_reading() override;

    // Queued plaintext plus what is in flight: with TLS, the in-flight part is counted as its ciphertext.
    uint64_t queued_bytes() const override {
        return tls_ ? out_.queued_bytes() - in_flight_plaintext_ + wire_.size() : out_.queued_bytes();
    }
    bool is_open() const override { return state_ == ConnectionState::Open; }
    void forget(const WriteObserver* observer) override { out_.forget(observer); }

    // Called by the server's periodic sweep.
    void sweep(uint64_t now_ms);
    // Called once per loop turn when frames were queued: one vectored write for everything queued.
    void flush();
    bool flush_scheduled = false;

    // Intrusive list of the server's connections.
    Connection* prev = nullptr;
    Connection* next = nullptr;

private:
    static void on_alloc(uv_handle_t* handle, size_t suggested, uv_buf_t* buf);
    static void on_read(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf);
    static void on_write(uv_write_t* req, int status);
    static void on_closed(uv_handle_t* handle);

    void handle_bytes(char* data, size_t size);
    void handle_ciphertext(char* data, size_t size);
    bool on_plaintext(std::span<char> bytes) override;
    void refuse_plaintext();
    void tls_failed(const TlsError& error);
    void flush_tls();
    bool writing() const { return out_.writing() || !wire_.empty(); }
    // TLS: the last flush still has to carry close_notify.
    bool owes_close_notify() const {
        return tls_ && tls_->handshake_done() && !tls_->close_notify_sent() && !tls_->failed();
    }
    void handle_http(char* data, size_t size);
    void handle_frames(char* data, size_t size);
    void begin_websocket(std::string_view response_bytes, char* rest, size_t rest_size);
    void finish_after_flush();
    void write_done(int status);
    void start_close(CloseCode code, std::string_view reason, bool wait_for_peer);

    SinkResult on_text(std::string_view message) override;
    SinkResult on_ping(std::string_view payload) override;
    SinkResult on_pong(std::string_view payload) override;
    SinkResult on_close(CloseCode code, std::string_view reason) override;

    Server& server_;
    uint64_t id_;
    uv_tcp_t tcp_{};
    uv_write_t write_req_{};
    ConnectionState state_ = ConnectionState::Handshake;
    std::unique_ptr<HttpRequestParser> http_;  // only while in Handshake
    FrameParser frames_;
    OutboundQueue out_;
    ClientState* client_ = nullptr;  // owned by the hub while the WebSocket is open
    std::string peer_;
    std::string deferred_input_;  // bytes read while paused
    std::unique_ptr<TlsSession> tls_;  // only on a TLS listener
    std::string wire_;                 // TLS: the ciphertext being written (its buffers stay valid until write_done)
    uint64_t in_flight_plaintext_ = 0; // TLS: the frames' bytes that wire_ carries
    uint64_t opened_ms_ = 0;
    uint64_t last_read_ms_ = 0;
    uint64_t last_ping_ms_ = 0;
    uint64_t deadline_ms_ = 0;  // Closing / HttpResponse: hard end
    uint16_t close_code_ = 0;   // for the closed-connections metric
    bool paused_ = false;
    bool finish_after_flush_ = false;
    bool reading_ = false;
    bool connect_received_ = false;
    bool tls_first_byte_seen_ = false;
    bool tls_established_ = false;
};

}  // namespace herald
