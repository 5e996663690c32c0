// Listener, signals, periodic sweep, per-turn flush and graceful drain.
#include "broker/server.h"

#include <sys/time.h>

#include <algorithm>

#include "broker/connection.h"
#include "broker/process_metrics.h"
#include "protocol/frame_writer.h"
#include "protocol/websocket_handshake.h"

namespace herald {
namespace {

constexpr uint64_t kSweepIntervalMs = 250;
constexpr size_t kReadBufferSize = 64 * 1024;

Server* owner(uv_handle_t* handle) { return static_cast<Server*>(handle->data); }

}  // namespace

Server::Server(uv_loop_t* loop, const Config& config, const Logger& log, Backplane& backplane, Metrics& metrics)
    : loop_(loop),
      config_(config),
      log_(log),
      backplane_(backplane),
      metrics_(metrics),
      hub_(config, log, metrics_, backplane, *this),
      http_(*this, hub_),
      read_buffer_(kReadBufferSize),
      ping_frame_(make_frame(encode_frame(Opcode::Ping, {}))) {
    for (auto* h : {reinterpret_cast<uv_handle_t*>(&listener_), reinterpret_cast<uv_handle_t*>(&sigterm_),
                    reinterpret_cast<uv_handle_t*>(&sigint_), reinterpret_cast<uv_handle_t*>(&sweep_timer_),
                    reinterpret_cast<uv_handle_t*>(&drain_timer_), reinterpret_cast<uv_handle_t*>(&flush_check_),
                    reinterpret_cast<uv_handle_t*>(&flush_prepare_), reinterpret_cast<uv_handle_t*>(&sighup_),
                    reinterpret_cast<uv_handle_t*>(&flush_idle_)})
        h->data = this;
    metrics_.max_connections.Set(static_cast<double>(config_.max_connections));
}

uint64_t Server::wall_clock_us() const {
    timeval tv{};
    gettimeofday(&tv, nullptr);
    return static_cast<uint64_t>(tv.tv_sec) * 1'000'000 + static_cast<uint64_t>(tv.tv_usec);
}

std::optional<std::string> Server::start() {
    if (config_.tls_enabled()) {
        auto loaded = TlsContext::load(config_.tls_cert_file, config_.tls_key_file, config_.tls_min_version);
        if (!loaded.ok()) {
            finish_shutdown();
            return loaded.error();
        }
        tls_ = std::move(loaded.value());
        tls_plaintext_.resize(kReadBufferSize);
        tls_staging_.resize(16 * 1024);  // one full TLS record
        log_.info("tls", {{"certificate", tls_->description()}, {"min_version", config_.tls_min_version}});
    }
    sockaddr_storage addr{};
    if (uv_ip4_addr(config_.listen_host.c_str(), config_.listen_port, reinterpret_cast<sockaddr_in*>(&addr)) != 0 &&
        uv_ip6_addr(config_.listen_host.c_str(), config_.listen_port, reinterpret_cast<sockaddr_in6*>(&addr)) != 0)
        return "invalid listen host '" + config_.listen_host + "'";
    uv_tcp_init(loop_, &listener_);
    int rc = uv_tcp_bind(&listener_, reinterpret_cast<sockaddr*>(&addr), 0);
    if (rc == 0) rc = uv_listen(reinterpret_cast<uv_stream_t*>(&listener_), 1024, on_connection);
    if (rc != 0) {
        std::string error = std::string("cannot listen on ") + config_.listen_host + ":" +
                            std::to_string(config_.listen_port) + ": " + uv_strerror(rc);
        finish_shutdown();
        return error;
    }
    sockaddr_storage bound{};
    int len = sizeof bound;
    uv_tcp_getsockname(&listener_, reinterpret_cast<sockaddr*>(&bound), &len);
    char host[INET6_ADDRSTRLEN] = {};
    int port = 0;
    if (bound.ss_family == AF_INET6) {
        uv_ip6_name(reinterpret_cast<sockaddr_in6*>(&bound), host, sizeof host);
        port = ntohs(reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port);
    } else {
        uv_ip4_name(reinterpret_cast<sockaddr_in*>(&bound), host, sizeof host);
        port = ntohs(reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
    }

    uv_signal_init(loop_, &sigterm_);
    uv_signal_start(&sigterm_, on_signal, SIGTERM);
    uv_signal_init(loop_, &sigint_);
    uv_signal_start(&sigint_, on_signal, SIGINT);
    uv_signal_init(loop_, &sighup_);
    uv_signal_start(&sighup_, on_reload_signal, SIGHUP);
    uv_timer_init(loop_, &sweep_timer_);
    uv_timer_start(&sweep_timer_, on_sweep, kSweepIntervalMs, kSweepIntervalMs);
    uv_timer_init(loop_, &drain_timer_);
    uv_check_init(loop_, &flush_check_);
    uv_check_start(&flush_check_, on_check);
    uv_idle_init(loop_, &flush_idle_);
    uv_prepare_init(loop_, &flush_prepare_);
    uv_prepare_start(&flush_prepare_, on_prepare);

    std::string where = (bound.ss_family == AF_INET6 ? "[" + std::string(host) + "]" : std::string(host)) + ":" +
                        std::to_string(port);
    log_.info("listening", {{"addr", where}, {"node", config_.node_name}, {"backplane", backplane_.kind()},
                            {"ws", (tls_ ? "wss://" : "ws://") + where + "/ws"}});
    if (config_.demo) {
        // A wildcard bind is not an address a browser can open; the same machine's name for it is.
        std::string_view shown = host;
        if (shown == "0.0.0.0" || shown == "::") shown = "localhost";
        std::string origin = (tls_ ? "https://" : "http://") +
                             (bound.ss_family == AF_INET6 && shown != "localhost" ? "[" + std::string(shown) + "]"
                                                                                   : std::string(shown)) +
                             ":" + std::to_string(port);
        log_.info("demo", {{"url", origin + "/demo/"}});
    }
    return std::nullopt;
}

void Server::on_connection(uv_stream_t* listener, int status) {
    Server& self = *owner(reinterpret_cast<uv_handle_t*>(listener));
    if (status < 0) {
        self.log_.warn("accept_failed", {{"error", uv_strerror(status)}});
        return;
    }
    auto* connection = new Connection(self, self.next_connection_id_++);  // freed in its close callback
    connection->next = self.connections_;
    if (self.connections_) self.connections_->prev = connection;
    self.connections_ = connection;
    self.by_id_.emplace(connection->id(), connection);
    ++self.connection_count_;
    self.metrics_.connections.Increment();
    if (!connection->accept(listener)) return;
    self.metrics_.connections_accepted.Increment();
    if (self.connection_count_ > self.config_.max_connections) {
        self.metrics_.handshake_failures.increment("max_connections");
        HttpResponse response = text_response(503, "too many connections");
        response.headers.emplace_back("Retry-After", "1");
        connection->respond_http(response);
    }
}

std::optional<std::string> Server::on_request(Connection& connection, HttpRequest request) {
    // Anything at the WebSocket path is judged as a handshake, so a broken upgrade gets 400, not "not found".
    if (!is_websocket_upgrade(request) && request.path != kWebSocketPath) {
        http_.handle(connection, request);
        return std::nullopt;
    }
    if (draining_) {
        metrics_.handshake_failures.increment("draining");
        HttpResponse response = text_response(503, "node is shutting down");
        response.headers.emplace_back("Retry-After", "1");
        connection.respond_http(response);
        return std::nullopt;
    }
    HandshakeOutcome outcome = decide_websocket_handshake(request);
    if (!outcome.accepted) {
        metrics_.handshake_failures.increment(outcome.reason);
        connection.respond_http(outcome.response);
        return std::nullopt;
    }
    if (auto refusal = handshake_gate_.check(request, connection.peer(), now_ms())) {
        metrics_.handshake_failures.increment(refusal->reason);
        connection.respond_http(refusal->response);
        return std::nullopt;
    }
    return outcome.response.serialize();
}

ClientState* Server::on_websocket_open(Connection& connection) {
    ++websocket_count_;
    return hub_.attach(connection);
}

void Server::on_text(Connection& connection, std::string_view text) {
    if (auto* client = connection.client()) hub_.on_text(*client, text);
}

void Server::on_writable(Connection& connection) {
    if (auto* client = connection.client()) hub_.on_writable(*client);
}

void Server::on_connection_closed(Connection& connection, uint16_t close_code) {
    if (auto* client = connection.client()) {
        hub_.detach(*client);
        --websocket_count_;
    }
    if (connection.flush_scheduled) std::erase(flush_list_, &connection);
    if (connection.prev) connection.prev->next = connection.next;
    else connections_ = connection.next;
    if (connection.next) connection.next->prev = connection.prev;
    by_id_.erase(connection.id());
    --connection_count_;
    metrics_.connections.Decrement();
    metrics_.connections_closed.increment(std::to_string(close_code));
    if (draining_ && websocket_count_ == 0) finish_shutdown();
}

void Server::schedule_flush(Connection& connection) {
    if (connection.flush_scheduled) return;
    connection.flush_scheduled = true;
    // While frames wait, an active idle handle keeps the loop from blocking in poll before they are written.
    if (flush_list_.empty() && !uv_is_active(reinterpret_cast<uv_handle_t*>(&flush_idle_)) && flush_idle_.loop)
        uv_idle_start(&flush_idle_, [](uv_idle_t* handle) { owner(reinterpret_cast<uv_handle_t*>(handle))->flush_all(); });
    flush_list_.push_back(&connection);
}

void Server::flush_all() {
    // Cork per loop turn: everything queued during this turn leaves in one vectored write per connection.
    flush_batch_.swap(flush_list_);
    for (Connection* c : flush_batch_) c->flush();
    flush_batch_.clear();
    if (flush_list_.empty() && flush_idle_.loop) uv_idle_stop(&flush_idle_);
}

// Check runs after I/O callbacks; prepare runs before the loop blocks, catching what timers and deferred write
// callbacks queued — without it those frames would wait for the next wake-up.
void Server::on_check(uv_check_t* handle) { owner(reinterpret_cast<uv_handle_t*>(handle))->flush_all(); }
void Server::on_prepare(uv_prepare_t* handle) { owner(reinterpret_cast<uv_handle_t*>(handle))->flush_all(); }

void Server::observe_publish_to_write(uint64_t published_at_us) {
    uint64_t now = wall_clock_us();
    double seconds = now > published_at_us ? static_cast<double>(now - published_at_us) / 1e6 : 0.0;
    metrics_.publish_to_write.Observe(seconds);
}

Connection* Server::find_connection(uint64_t id) {
    auto it = by_id_.find(id);
    return it == by_id_.end() ? nullptr : it->second;
}

template <typename F>
void Server::for_each_connection(F&& f) {
    for (Connection* c = connections_; c;) {
        Connection* next = c->next;  // f may close c; the close callback runs later, so next stays valid
        f(*c);
        c = next;
    }
}

void Server::on_sweep(uv_timer_t* handle) {
    Server& self = *owner(reinterpret_cast<uv_handle_t*>(handle));
    uint64_t now = self.now_ms();
    self.for_each_connection([now](Connection& c) { c.sweep(now); });
    self.hub_.sweep();
}

std::string Server::metrics_text() {
    metrics_.channels.Set(static_cast<double>(hub_.channel_count()));
    metrics_.record_process(read_process_sample());
    return metrics_.serialize();
}

std::optional<std::string> Server::not_ready_reason() const {
    if (draining_) return std::string("draining");
    if (!backplane_.available()) return std::string("backplane unavailable");
    return std::nullopt;
}

void Server::on_signal(uv_signal_t* handle, int signum) {
    Server& self = *owner(reinterpret_cast<uv_handle_t*>(handle));
    if (self.draining_) {
        self.log_.warn("shutdown_forced", {{"signal", signum}});
        self.finish_shutdown();
        return;
    }
    self.log_.info("shutdown", {{"signal", signum}, {"connections", self.websocket_count_}});
    self.begin_shutdown();
}

// New handshakes use the new pair; open connections keep the SSL_CTX they began with. A bad file keeps the old pair.
void Server::on_reload_signal(uv_signal_t* handle, int) {
    Server& self = *owner(reinterpret_cast<uv_handle_t*>(handle));
    if (!self.tls_) {
        self.log_.info("sighup", {{"detail", "nothing to reload: TLS is off"}});
        return;
    }
    const Config& c = self.config_;
    auto loaded = TlsContext::load(c.tls_cert_file, c.tls_key_file, c.tls_min_version);
    if (!loaded.ok()) {
        self.log_.error("tls_reload_failed", {{"error", loaded.error()}, {"kept", self.tls_->description()}});
        return;
    }
    self.tls_ = std::move(loaded.value());
    self.log_.info("tls_reloaded", {{"certificate", self.tls_->description()}});
}

void Server::begin_shutdown() {
    if (draining_) return;
    draining_ = true;
    for_each_connection([](Connection& c) {
        if (c.state() == ConnectionState::Open) c.close(CloseCode::GoingAway, "server shutting down");
    });
    if (websocket_count_ == 0) {
        finish_shutdown();
        return;
    }
    uv_timer_start(&drain_timer_, on_drain_timeout, static_cast<uint64_t>(config_.drain_timeout_s * 1000), 0);
}

void Server::on_drain_timeout(uv_timer_t* handle) {
    Server& self = *owner(reinterpret_cast<uv_handle_t*>(handle));
    self.log_.warn("drain_timeout", {{"connections", self.websocket_count_}});
    self.finish_shutdown();
}

void Server::finish_shutdown() {
    if (stopped_) return;
    stopped_ = true;
    for_each_connection([](Connection& c) {
        c.flush();  // best effort: queued close frames go out before the handle closes
        c.abort();
    });
    auto close = [](auto* handle) {
        auto* h = reinterpret_cast<uv_handle_t*>(handle);
        if (h->loop && !uv_is_closing(h)) uv_close(h, nullptr);  // only handles that were initialised
    };
    close(&listener_);
    close(&sweep_timer_);
    close(&drain_timer_);
    close(&sigterm_);
    close(&sigint_);
    close(&sighup_);
    close(&flush_check_);
    close(&flush_prepare_);
    close(&flush_idle_);
    backplane_.close([log = &log_] { log->info("stopped"); });
}

}  // namespace herald
