// The node: owns the loop's handles (listener, signals, sweep timer, flush check/prepare), every connection, the hub and
// the HTTP endpoints. Handles are members and the server outlives uv_run, so each is freed after its close
// callback has run.
#pragma once
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <uv.h>

#include "backplane/backplane.h"
#include "broker/config.h"
#include "broker/handshake_gate.h"
#include "broker/http_endpoints.h"
#include "broker/hub.h"
#include "broker/log.h"
#include "broker/metrics.h"
#include "broker/outbound_queue.h"
#include "broker/tls_context.h"

namespace herald {

class Connection;
struct ClientState;

class Server final : public HubHost {
public:
    // `metrics` is the node's registry, shared with whatever measures the backplane (main wraps it).
    Server(uv_loop_t* loop, const Config& config, const Logger& log, Backplane& backplane, Metrics& metrics);
    Server(const Server&) = delete;
    Server& operator=(const Server&) = delete;

    // Binds, listens and installs signal handlers. Returns an error text on failure.
    std::optional<std::string> start();
    // SIGTERM/SIGINT: refuse new WebSocket upgrades, /readyz → 503, close WebSockets with 1001, and stop the loop
    // once they are gone or the drain timeout passes.
    void begin_shutdown();

    uv_loop_t* loop() const { return loop_; }
    const Config& config() const { return config_; }
    const Logger& log() const { return log_; }
    Metrics& metrics() { return metrics_; }
    uint64_t now_ms() const override { return uv_now(loop_); }
    uint64_t wall_clock_us() const override;
    std::vector<char>& read_buffer() { return read_buffer_; }
    // TLS (--tls-cert): the pair new handshakes use (nullptr without TLS), and the loop-wide buffers every TLS
    // connection borrows for decrypted input and for gathering small frames into records.
    const TlsContext* tls_context() const { return tls_.get(); }
    std::span<char> tls_plaintext_buffer() { return tls_plaintext_; }
    std::span<char> tls_staging_buffer() { return tls_staging_; }
    const Frame& ping_frame() const { return ping_frame_; }
    std::string metrics_text();
    std::optional<std::string> not_ready_reason() const;

    // From connections.
    std::optional<std::string> on_request(Connection& connection, HttpRequest request);
    ClientState* on_websocket_open(Connection& connection);
    void on_text(Connection& connection, std::string_view text);
    void on_writable(Connection& connection);
    void on_connection_closed(Connection& connection, uint16_t close_code);
    void schedule_flush(Connection& connection);
    void observe_publish_to_write(uint64_t published_at_us);
    Connection* find_connection(uint64_t id);

private:
    static void on_connection(uv_stream_t* listener, int status);
    static void on_signal(uv_signal_t* handle, int signum);
    static void on_reload_signal(uv_signal_t* handle, int signum);  // SIGHUP: reload the TLS pair
    static void on_sweep(uv_timer_t* handle);
    static void on_drain_timeout(uv_timer_t* handle);
    static void on_check(uv_check_t* handle);
    static void on_prepare(uv_prepare_t* handle);
    void flush_all();
    void finish_shutdown();
    template <typename F>
    void for_each_connection(F&& f);

    uv_loop_t* loop_;
    const Config& config_;
    const Logger& log_;
    Backplane& backplane_;
    Metrics& metrics_;
    Hub hub_;
    HttpEndpoints http_;
    HandshakeGate handshake_gate_{config_, log_, metrics_};  // --connect-rate, --allowed-origins (security.md)

    uv_tcp_t listener_{};
    uv_signal_t sigterm_{};
    uv_signal_t sigint_{};
    uv_signal_t sighup_{};
    uv_timer_t sweep_timer_{};
    uv_timer_t drain_timer_{};
    uv_check_t flush_check_{};
    uv_prepare_t flush_prepare_{};
    uv_idle_t flush_idle_{};  // active only while connections wait to be flushed

    std::vector<char> read_buffer_;  // one per loop: connections keep only unfinished frames
    std::shared_ptr<TlsContext> tls_;  // swapped by a successful reload; connections keep the SSL_CTX they began with
    std::vector<char> tls_plaintext_;
    std::vector<char> tls_staging_;
    Frame ping_frame_;
    std::vector<Connection*> flush_list_;
    std::vector<Connection*> flush_batch_;  // the list being flushed; kept to reuse its capacity
    Connection* connections_ = nullptr;  // intrusive list head
    std::unordered_map<uint64_t, Connection*> by_id_;
    uint64_t connection_count_ = 0;
    uint64_t websocket_count_ = 0;
    uint64_t next_connection_id_ = 1;
    bool draining_ = false;
    bool stopped_ = false;
};

}  // namespace herald
