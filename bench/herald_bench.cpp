// bench/herald_bench.cpp — load generator for Herald over loopback: memory per idle subscribed connection (`idle`)
// and one-channel fan-out throughput, latency and server CPU per delivery (`fanout`), over ws:// or (`--tls 1`) wss://.
// It is an independent WebSocket client: it masks what it sends and parses the server's unmasked frames itself, so
// a bug in the broker's own framing cannot hide behind a shared parser. It connects only to 127.0.0.1 and every run
// ends by itself within --timeout.
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <uv.h>

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace {

using Json = nlohmann::json;

constexpr std::string_view kSubprotocol = "herald.v1.json";
constexpr size_t kMaxHandshakeHead = 16 * 1024;
constexpr int kCloseAbnormal = 1006;  // no close frame: EOF, reset or connect failure

uint64_t now_us() {
    return static_cast<uint64_t>(
        std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now().time_since_epoch())
            .count());
}

// ---------------------------------------------------------------------------------------------------------------
// Options

struct Options {
    std::string mode;  // "idle" or "fanout"
    int port = 0;
    long server_pid = 0;
    int connections = 10000;     // idle: connections to open
    int channels = 100;          // idle: connection i subscribes to idle.<i % channels>
    double connect_rate = 5000;  // new TCP connections started per second
    int handshake_window = 256;  // connections between TCP connect and `subscribed` at once
    double settle_s = 2;         // idle: wait after the last `subscribed` before reading RSS
    int subscribers = 1000;      // fanout
    int messages = 20000;        // fanout: publishes
    int payload = 100;           // fanout: bytes of the `data` JSON of each publish
    int window = 64;             // fanout: publishes awaiting `published` at once
    double publish_rate = 0;     // fanout: publishes per second; 0 = as fast as acknowledged
    double timeout_s = 90;       // whole run, including setup
    std::string label;           // copied into the JSON result
    bool tls = false;            // wss://: OpenSSL client over memory BIOs (the certificate is not verified)
};

void print_usage() {
    std::fputs(
        "usage: herald_bench idle|fanout --port PORT [--server-pid PID] [options]\n"
        "Connects to ws://127.0.0.1:PORT/ws only. Prints human-readable lines, then one JSON line.\n"
        "common:  --server-pid PID (RSS and CPU from /proc/PID)  --timeout S (90)  --connect-rate N/s (5000)\n"
        "         --handshake-window N (256)  --label TEXT\n"
        "idle:    --connections N (10000)  --channels N (100)  --settle S (2)\n"
        "fanout:  --subscribers N (1000)  --messages N (20000)  --payload BYTES (100)  --window N (64)\n"
        "         --publish-rate N/s (0 = as fast as acknowledged)\n"
        "tls:     --tls 1 (wss://: the node must run with --tls-cert/--tls-key; certificates are not verified)\n"
        "exit status: 0 clean, 1 errors (failed connections, closes, gaps, duplicates), 2 timed out, 64 usage\n",
        stderr);
}

std::optional<Options> parse_options(int argc, char** argv) {
    if (argc < 2) return std::nullopt;
    Options opt;
    opt.mode = argv[1];
    if (opt.mode != "idle" && opt.mode != "fanout") return std::nullopt;
    for (int i = 2; i < argc; ++i) {
        const std::string_view flag = argv[i];
        if (i + 1 >= argc) {
            std::fprintf(stderr, "herald_bench: %s needs a value\n", argv[i]);
            return std::nullopt;
        }
        const char* value = argv[++i];
        char* end = nullptr;
        const double number = std::strtod(value, &end);
        const bool numeric = end != value && *end == '\0' && number >= 0;
        auto as_int = [&](int& out) { out = static_cast<int>(number); };
        if (flag == "--label") {
            opt.label = value;
            continue;
        }
        if (!numeric) {
            std::fprintf(stderr, "herald_bench: %s wants a non-negative number, got '%s'\n", argv[i - 1], value);
            return std::nullopt;
        }
        if (flag == "--port")
            as_int(opt.port);
        else if (flag == "--server-pid")
            opt.server_pid = static_cast<long>(number);
        else if (flag == "--connections")
            as_int(opt.connections);
        else if (flag == "--channels")
            as_int(opt.channels);
        else if (flag == "--connect-rate")
            opt.connect_rate = number;
        else if (flag == "--handshake-window")
            as_int(opt.handshake_window);
        else if (flag == "--settle")
            opt.settle_s = number;
        else if (flag == "--subscribers")
            as_int(opt.subscribers);
        else if (flag == "--messages")
            as_int(opt.messages);
        else if (flag == "--payload")
            as_int(opt.payload);
        else if (flag == "--window")
            as_int(opt.window);
        else if (flag == "--publish-rate")
            opt.publish_rate = number;
        else if (flag == "--timeout")
            opt.timeout_s = number;
        else if (flag == "--tls")
            opt.tls = number != 0;
        else {
            std::fprintf(stderr, "herald_bench: unknown option %s\n", argv[i - 1]);
            return std::nullopt;
        }
    }
    if (opt.port <= 0 || opt.port > 65535 || opt.connect_rate <= 0 || opt.handshake_window < 1 || opt.channels < 1 ||
        opt.window < 1 || opt.timeout_s <= 0 || opt.timeout_s > 600) {
        std::fputs("herald_bench: need --port 1..65535, positive rates/windows/channels, --timeout in (0, 600]\n",
                   stderr);
        return std::nullopt;
    }
    return opt;
}

// ---------------------------------------------------------------------------------------------------------------
// The server process, seen through /proc

std::optional<long> read_rss_kib(long pid) {
    if (pid <= 0) return std::nullopt;
    std::ifstream status("/proc/" + std::to_string(pid) + "/status");
    std::string line;
    while (std::getline(status, line)) {
        if (line.rfind("VmRSS:", 0) == 0) return std::strtol(line.c_str() + 6, nullptr, 10);
    }
    return std::nullopt;
}

// utime + stime of the process, in seconds.
std::optional<double> read_cpu_seconds(long pid) {
    if (pid <= 0) return std::nullopt;
    std::ifstream stat_file("/proc/" + std::to_string(pid) + "/stat");
    std::string text((std::istreambuf_iterator<char>(stat_file)), std::istreambuf_iterator<char>());
    const size_t paren = text.rfind(')');  // the command name may contain spaces and parentheses
    if (paren == std::string::npos) return std::nullopt;
    std::istringstream fields(text.substr(paren + 1));
    std::string field;
    unsigned long long utime = 0, stime = 0;
    for (int index = 3; fields >> field; ++index) {  // field 3 is the state; utime is 14, stime 15
        if (index == 14) utime = std::strtoull(field.c_str(), nullptr, 10);
        if (index == 15) {
            stime = std::strtoull(field.c_str(), nullptr, 10);
            return static_cast<double>(utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
        }
    }
    return std::nullopt;
}

// ---------------------------------------------------------------------------------------------------------------
// Latency histogram: exact below 256 µs, then 128 buckets per power of two (< 1 % relative error).

class LatencyHistogram {
public:
    void record(uint64_t us) {
        ++counts_[index_of(us)];
        ++count_;
        max_ = std::max(max_, us);
    }
    uint64_t count() const { return count_; }
    uint64_t max() const { return max_; }
    // Upper bound of the bucket holding the value at quantile q (0 < q <= 1).
    uint64_t quantile(double q) const {
        if (count_ == 0) return 0;
        const auto rank = static_cast<uint64_t>(std::ceil(q * static_cast<double>(count_)));
        uint64_t seen = 0;
        for (size_t i = 0; i < counts_.size(); ++i) {
            seen += counts_[i];
            if (seen >= rank) return std::min(upper_bound_of(i), max_);
        }
        return max_;
    }

private:
    static constexpr unsigned kSubBits = 7;
    static constexpr uint64_t kSub = uint64_t{1} << kSubBits;

    static size_t index_of(uint64_t v) {
        if (v < 2 * kSub) return static_cast<size_t>(v);
        const unsigned msb = 63u - static_cast<unsigned>(__builtin_clzll(v));
        const unsigned shift = msb - kSubBits;
        return static_cast<size_t>((shift + 1) * kSub + ((v >> shift) - kSub));
    }
    static uint64_t upper_bound_of(size_t index) {
        if (index < 2 * kSub) return index;
        const uint64_t shift = index / kSub - 1;
        const uint64_t top = index % kSub + kSub;
        return ((top + 1) << shift) - 1;
    }

    std::array<uint64_t, 64 * kSub> counts_{};
    uint64_t count_ = 0;
    uint64_t max_ = 0;
};

// ---------------------------------------------------------------------------------------------------------------
// Client side of RFC 6455: masked frames out, unmasked frames in.

enum class Opcode : uint8_t { Continuation = 0, Text = 1, Binary = 2, Close = 8, Ping = 9, Pong = 10 };

// xorshift64: masking keys only need to be unpredictable to proxies, not to an attacker; none is on loopback.
uint64_t next_random() {
    static uint64_t state = now_us() ^ (static_cast<uint64_t>(getpid()) << 32) ^ 0x9e3779b97f4a7c15ull;
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return state;
}

std::string encode_client_frame(Opcode opcode, std::string_view payload) {
    std::string out;
    out.reserve(payload.size() + 14);
    out += static_cast<char>(0x80 | static_cast<uint8_t>(opcode));
    const size_t n = payload.size();
    if (n < 126) {
        out += static_cast<char>(0x80 | n);
    } else if (n <= 0xffff) {
        out += static_cast<char>(0x80 | 126);
        out += static_cast<char>(n >> 8);
        out += static_cast<char>(n & 0xff);
    } else {
        out += static_cast<char>(0x80 | 127);
        for (int shift = 56; shift >= 0; shift -= 8) out += static_cast<char>((n >> shift) & 0xff);
    }
    const uint32_t key = static_cast<uint32_t>(next_random());
    const std::array<char, 4> mask{static_cast<char>(key >> 24), static_cast<char>(key >> 16),
                                   static_cast<char>(key >> 8), static_cast<char>(key)};
    out.append(mask.data(), mask.size());
    const size_t start = out.size();
    out.append(payload);
    for (size_t i = 0; i < n; ++i) out[start + i] = static_cast<char>(out[start + i] ^ mask[i & 3]);
    return out;
}

enum class ParseStatus { Complete, NeedMore, Invalid };

struct ServerFrame {
    Opcode opcode = Opcode::Text;
    bool fin = true;
    std::string_view payload;
    size_t size = 0;  // header + payload bytes consumed
};

// Parses one frame from the front of `in`. A server frame must be unmasked and use no reserved bits.
ParseStatus parse_server_frame(std::string_view in, ServerFrame& frame) {
    if (in.size() < 2) return ParseStatus::NeedMore;
    const auto b0 = static_cast<uint8_t>(in[0]);
    const auto b1 = static_cast<uint8_t>(in[1]);
    if ((b0 & 0x70) != 0 || (b1 & 0x80) != 0) return ParseStatus::Invalid;
    uint64_t length = b1 & 0x7f;
    size_t header = 2;
    if (length == 126 || length == 127) {
        const size_t extra = length == 126 ? 2 : 8;
        if (in.size() < 2 + extra) return ParseStatus::NeedMore;
        length = 0;
        for (size_t i = 0; i < extra; ++i) length = (length << 8) | static_cast<uint8_t>(in[2 + i]);
        header += extra;
    }
    if (length > (uint64_t{1} << 32)) return ParseStatus::Invalid;
    if (in.size() - header < length) return ParseStatus::NeedMore;
    frame.fin = (b0 & 0x80) != 0;
    frame.opcode = static_cast<Opcode>(b0 & 0x0f);
    frame.payload = in.substr(header, static_cast<size_t>(length));
    frame.size = header + static_cast<size_t>(length);
    return ParseStatus::Complete;
}

std::string base64_encode(const uint8_t* data, size_t n) {
    static constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::string out;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t chunk = static_cast<uint32_t>(data[i]) << 16;
        if (i + 1 < n) chunk |= static_cast<uint32_t>(data[i + 1]) << 8;
        if (i + 2 < n) chunk |= data[i + 2];
        out += kAlphabet[(chunk >> 18) & 63];
        out += kAlphabet[(chunk >> 12) & 63];
        out += i + 1 < n ? kAlphabet[(chunk >> 6) & 63] : '=';
        out += i + 2 < n ? kAlphabet[chunk & 63] : '=';
    }
    return out;
}

std::string handshake_request(int port) {
    std::array<uint8_t, 16> nonce{};
    for (size_t i = 0; i < nonce.size(); i += 8) {
        const uint64_t r = next_random();
        std::memcpy(nonce.data() + i, &r, 8);
    }
    return "GET /ws HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(port) +
           "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: " +
           base64_encode(nonce.data(), nonce.size()) +
           "\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: " + std::string(kSubprotocol) + "\r\n\r\n";
}

// Finds `"key":` in `text` from `from` and parses the unsigned integer after it.
std::optional<uint64_t> find_uint_field(std::string_view text, std::string_view quoted_key, size_t from = 0) {
    const size_t at = text.find(quoted_key, from);
    if (at == std::string_view::npos) return std::nullopt;
    size_t pos = at + quoted_key.size();
    while (pos < text.size() && text[pos] == ' ') ++pos;
    uint64_t value = 0;
    const auto [end, ec] = std::from_chars(text.data() + pos, text.data() + text.size(), value);
    if (ec != std::errc{} || end == text.data() + pos) return std::nullopt;
    return value;
}

// ---------------------------------------------------------------------------------------------------------------
// One client connection.

enum class Role { IdleSubscriber, Subscriber, Publisher };
enum class ClientState { Connecting, Handshake, AwaitConnected, AwaitSubscribed, Ready, Closed };

class Bench;

struct Client {
    uv_tcp_t tcp{};
    uv_connect_t connect_req{};
    Bench* bench = nullptr;
    Role role = Role::IdleSubscriber;
    ClientState state = ClientState::Connecting;
    std::string channel;
    std::string pending;       // the unfinished handshake head or frame
    std::string fragments;     // a fragmented text message being reassembled
    uint64_t next_serial = 0;  // subscriber: the serial the next delivery must carry
    uint64_t last_serial = 0;  // subscriber: the serial this run must end at
    uint64_t received = 0;
    bool done = false;     // subscriber received every message of the run
    bool closing = false;  // uv_close called
    SSL* ssl = nullptr;    // --tls: the client session; its BIOs are memory BIOs
    BIO* tls_in = nullptr;   // ciphertext from the socket (owned by ssl)
    BIO* tls_out = nullptr;  // ciphertext to the socket (owned by ssl)
    ~Client() { SSL_free(ssl); }
};

struct WriteRequest {
    uv_write_t req{};
    std::string bytes;
    Client* client = nullptr;
    bool close_after = false;
};

// Everything one run counts; printed at the end.
struct Counters {
    int started = 0;  // TCP connects issued
    int ready = 0;    // reached `subscribed` (publisher: `connected`)
    int subscribers_ready = 0;
    int setup_failed = 0;  // failed before ready
    int closed_after_ready = 0;
    std::map<std::string, int> failure_reasons;  // "close 4008", "eof", "handshake: ...", ...
    uint64_t gaps = 0;                           // serials skipped
    uint64_t duplicates = 0;                     // serials at or below one already received
    uint64_t unexpected = 0;                     // other text messages on a ready subscriber (e.g. discontinuity)
    uint64_t deliveries = 0;
    uint64_t publishes_sent = 0;
    uint64_t publishes_acked = 0;
    uint64_t publish_errors = 0;
};

class Bench {
public:
    explicit Bench(Options options) : opt_(std::move(options)) {
        uv_loop_init(&loop_);
        for (uv_timer_t* timer : {&open_timer_, &deadline_timer_, &settle_timer_, &pace_timer_}) {
            uv_timer_init(&loop_, timer);
            timer->data = this;
        }
        channel_ = "bench.fanout." + std::to_string(getpid());
        publish_template_prefix_ = R"({"op":"publish","id":)";
        publish_template_middle_ = R"(,"channel":")" + channel_ + R"(","data":)";
        if (opt_.tls) {
            tls_ctx_ = SSL_CTX_new(TLS_client_method());
            SSL_CTX_set_verify(tls_ctx_, SSL_VERIFY_NONE, nullptr);  // loopback measurement, not a security test
            SSL_CTX_set_mode(tls_ctx_, SSL_MODE_RELEASE_BUFFERS);
            static constexpr unsigned char kAlpn[] = {8, 'h', 't', 't', 'p', '/', '1', '.', '1'};
            SSL_CTX_set_alpn_protos(tls_ctx_, kAlpn, sizeof kAlpn);
        }
    }
    ~Bench() {
        clients_.clear();
        SSL_CTX_free(tls_ctx_);
        uv_loop_close(&loop_);
    }

    int run();

    // Called by the client callbacks.
    void on_connected(Client& c, int status);
    void on_read(Client& c, ssize_t nread, const uv_buf_t* buf);
    void on_write_done(WriteRequest* w, int status);
    static char* read_buffer() { return read_buffer_.data(); }
    static size_t read_buffer_size() { return read_buffer_.size(); }

private:
    size_t target_connections() const {
        return static_cast<size_t>(opt_.mode == "idle" ? opt_.connections : opt_.subscribers + 1);
    }
    void open_more();
    void open_one();
    void send_text(Client& c, std::string_view text) { send_frame(c, Opcode::Text, text, false); }
    void send_frame(Client& c, Opcode opcode, std::string_view payload, bool close_after);
    void send_bytes(Client& c, std::string bytes, bool close_after);  // encrypts first with --tls
    void flush_tls(Client& c, bool close_after = false);               // writes what the client's SSL produced
    void send_upgrade(Client& c);
    void on_ciphertext(Client& c, std::string_view bytes);
    void consume(Client& c, std::string_view bytes);
    size_t process_frames(Client& c, std::string_view bytes);
    bool handle_handshake(Client& c);
    void on_frame(Client& c, const ServerFrame& frame);
    void on_text(Client& c, std::string_view text);
    void on_delivery(Client& c, std::string_view text);
    void on_publish_reply(std::string_view text);
    void on_ready(Client& c);
    void fail(Client& c, const std::string& reason);
    void close_client(Client& c);
    void setup_settled();
    void start_publishing();
    void publish_one();
    void pace_publishes();
    void check_fanout_done();
    void finish(bool timed_out);
    void report_idle(bool timed_out);
    void report_fanout(bool timed_out);
    void emit(Json result);

    Options opt_;
    uv_loop_t loop_{};
    uv_timer_t open_timer_{}, deadline_timer_{}, settle_timer_{}, pace_timer_{};
    std::vector<std::unique_ptr<Client>> clients_;
    Client* publisher_ = nullptr;
    std::string channel_;
    std::string publish_template_prefix_, publish_template_middle_;
    std::string padding_;
    Counters counters_;
    LatencyHistogram latency_;
    int in_handshake_ = 0;
    uint64_t open_started_us_ = 0;
    uint64_t all_ready_us_ = 0;
    uint64_t publish_started_us_ = 0;
    uint64_t last_ack_us_ = 0;
    uint64_t last_delivery_us_ = 0;
    int subscribers_running_ = 0;  // ready subscribers that have not finished or failed
    std::optional<long> rss_before_kib_, rss_after_kib_;
    std::optional<double> cpu_before_s_, cpu_after_s_;
    bool setup_done_ = false;
    bool finished_ = false;
    int exit_status_ = 0;

    static std::array<char, 256 * 1024> read_buffer_;
    static std::array<char, 256 * 1024> plaintext_buffer_;  // --tls: decrypted input, parsed in place
    SSL_CTX* tls_ctx_ = nullptr;
};

std::array<char, 256 * 1024> Bench::read_buffer_{};
std::array<char, 256 * 1024> Bench::plaintext_buffer_{};

// --- libuv trampolines: a callback's `data` is its owner.

void on_alloc(uv_handle_t*, size_t, uv_buf_t* buf) {
    *buf = uv_buf_init(Bench::read_buffer(), static_cast<unsigned>(Bench::read_buffer_size()));
}
void on_read_cb(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf) {
    auto* c = static_cast<Client*>(stream->data);
    c->bench->on_read(*c, nread, buf);
}
void on_connect_cb(uv_connect_t* req, int status) {
    auto* c = static_cast<Client*>(req->data);
    c->bench->on_connected(*c, status);
}
void on_write_cb(uv_write_t* req, int status) {
    auto* w = static_cast<WriteRequest*>(req->data);
    w->client->bench->on_write_done(w, status);
}

// --- connection set-up

void Bench::open_more() {
    // Called every 10 ms: start up to rate/100 connections, never more than the handshake window at once.
    const auto per_tick = std::max<int>(1, static_cast<int>(opt_.connect_rate / 100));
    for (int i = 0; i < per_tick; ++i) {
        if (clients_.size() >= target_connections()) {
            uv_timer_stop(&open_timer_);
            return;
        }
        if (in_handshake_ >= opt_.handshake_window) return;
        open_one();
    }
}

void Bench::open_one() {
    const size_t index = clients_.size();
    auto client = std::make_unique<Client>();
    Client& c = *client;
    clients_.push_back(std::move(client));
    c.bench = this;
    if (opt_.mode == "idle") {
        c.role = Role::IdleSubscriber;
        c.channel = "idle." + std::to_string(index % static_cast<size_t>(opt_.channels));
    } else {
        // The publisher connects last so that the subscribers' set-up does not delay it.
        c.role = index + 1 == target_connections() ? Role::Publisher : Role::Subscriber;
        c.channel = channel_;
        if (c.role == Role::Publisher) publisher_ = &c;
    }
    ++in_handshake_;
    ++counters_.started;
    uv_tcp_init(&loop_, &c.tcp);
    c.tcp.data = &c;
    c.connect_req.data = &c;
    uv_tcp_nodelay(&c.tcp, 1);
    sockaddr_in addr{};
    uv_ip4_addr("127.0.0.1", opt_.port, &addr);
    const int rc = uv_tcp_connect(&c.connect_req, &c.tcp, reinterpret_cast<const sockaddr*>(&addr), on_connect_cb);
    if (rc != 0) fail(c, std::string("connect: ") + uv_err_name(rc));
}

void Bench::on_connected(Client& c, int status) {
    if (c.closing || finished_) return;
    if (status != 0) {
        fail(c, std::string("connect: ") + uv_err_name(status));
        return;
    }
    c.state = ClientState::Handshake;
    uv_read_start(reinterpret_cast<uv_stream_t*>(&c.tcp), on_alloc, on_read_cb);
    if (!opt_.tls) {
        send_upgrade(c);
        return;
    }
    c.ssl = SSL_new(tls_ctx_);
    c.tls_in = BIO_new(BIO_s_mem());
    c.tls_out = BIO_new(BIO_s_mem());
    SSL_set_bio(c.ssl, c.tls_in, c.tls_out);
    SSL_set_connect_state(c.ssl);
    SSL_do_handshake(c.ssl);  // writes the ClientHello; the upgrade follows once the handshake completes
    ERR_clear_error();
    flush_tls(c);
}

void Bench::send_upgrade(Client& c) { send_bytes(c, handshake_request(opt_.port), false); }

void Bench::send_frame(Client& c, Opcode opcode, std::string_view payload, bool close_after) {
    send_bytes(c, encode_client_frame(opcode, payload), close_after);
}

void Bench::flush_tls(Client& c, bool close_after) {
    const size_t pending = BIO_ctrl_pending(c.tls_out);
    if (pending == 0 && !close_after) return;
    std::string bytes(pending, '\0');
    if (pending > 0) BIO_read(c.tls_out, bytes.data(), static_cast<int>(pending));
    auto* w = new WriteRequest;
    w->bytes = std::move(bytes);
    w->client = &c;
    w->close_after = close_after;
    w->req.data = w;
    uv_buf_t buf = uv_buf_init(w->bytes.data(), static_cast<unsigned>(w->bytes.size()));
    const int rc = uv_write(&w->req, reinterpret_cast<uv_stream_t*>(&c.tcp), &buf, 1, on_write_cb);
    if (rc != 0) {
        delete w;
        fail(c, std::string("write: ") + uv_err_name(rc));
    }
}

void Bench::on_ciphertext(Client& c, std::string_view bytes) {
    BIO_write(c.tls_in, bytes.data(), static_cast<int>(bytes.size()));
    if (!SSL_is_init_finished(c.ssl)) {
        const int rc = SSL_do_handshake(c.ssl);
        if (rc != 1 && SSL_get_error(c.ssl, rc) != SSL_ERROR_WANT_READ) {
            ERR_clear_error();
            flush_tls(c);
            fail(c, "tls handshake failed");
            return;
        }
        ERR_clear_error();
        flush_tls(c);
        if (rc != 1) return;
        send_upgrade(c);
    }
    while (!c.closing) {
        size_t got = 0;
        if (SSL_read_ex(c.ssl, plaintext_buffer_.data(), plaintext_buffer_.size(), &got) != 1) {
            const int error = SSL_get_error(c.ssl, 0);
            ERR_clear_error();
            if (error != SSL_ERROR_WANT_READ) fail(c, error == SSL_ERROR_ZERO_RETURN ? "tls close_notify" : "tls error");
            break;
        }
        consume(c, std::string_view(plaintext_buffer_.data(), got));
    }
    if (!c.closing) flush_tls(c);  // e.g. a key update
}

void Bench::send_bytes(Client& c, std::string bytes, bool close_after) {
    if (c.closing) return;
    if (c.ssl) {
        SSL_write(c.ssl, bytes.data(), static_cast<int>(bytes.size()));  // memory BIO: never blocks
        ERR_clear_error();
        flush_tls(c, close_after);
        return;
    }
    auto* w = new WriteRequest;
    w->bytes = std::move(bytes);
    w->client = &c;
    w->close_after = close_after;
    w->req.data = w;
    uv_buf_t buf = uv_buf_init(w->bytes.data(), static_cast<unsigned>(w->bytes.size()));
    const int rc = uv_write(&w->req, reinterpret_cast<uv_stream_t*>(&c.tcp), &buf, 1, on_write_cb);
    if (rc != 0) {
        delete w;
        fail(c, std::string("write: ") + uv_err_name(rc));
    }
}

void Bench::on_write_done(WriteRequest* w, int status) {
    Client& c = *w->client;
    const bool close_after = w->close_after;
    delete w;
    if (c.closing || finished_) return;
    if (status != 0)
        fail(c, std::string("write: ") + uv_err_name(status));
    else if (close_after)
        close_client(c);
}

void Bench::on_read(Client& c, ssize_t nread, const uv_buf_t* buf) {
    if (c.closing || finished_) return;
    if (nread < 0) {
        fail(c, nread == UV_EOF ? "eof without close frame"
                                : std::string("read: ") + uv_err_name(static_cast<int>(nread)));
        return;
    }
    if (c.ssl)
        on_ciphertext(c, std::string_view(buf->base, static_cast<size_t>(nread)));
    else
        consume(c, std::string_view(buf->base, static_cast<size_t>(nread)));
}

// Parses in place from the loop-wide read buffer; only an unfinished frame is copied into the client.
void Bench::consume(Client& c, std::string_view bytes) {
    if (c.state == ClientState::Handshake) {
        c.pending.append(bytes);
        if (!handle_handshake(c)) return;
        std::string rest = std::move(c.pending);
        c.pending.clear();
        const size_t used = process_frames(c, rest);
        if (!c.closing) c.pending.assign(rest, used);
        return;
    }
    if (c.pending.empty()) {
        const size_t used = process_frames(c, bytes);
        if (!c.closing && used < bytes.size()) c.pending.assign(bytes.substr(used));
        return;
    }
    c.pending.append(bytes);
    const size_t used = process_frames(c, c.pending);
    if (!c.closing) c.pending.erase(0, used);
}

// Returns true once the 101 response has been read; leaves the bytes after it in `pending`.
bool Bench::handle_handshake(Client& c) {
    const size_t end = c.pending.find("\r\n\r\n");
    if (end == std::string::npos) {
        if (c.pending.size() > kMaxHandshakeHead) fail(c, "handshake: response head too large");
        return false;
    }
    const std::string head = c.pending.substr(0, end);
    if (head.rfind("HTTP/1.1 101", 0) != 0) {
        fail(c, "handshake: " + head.substr(0, head.find("\r\n")));
        return false;
    }
    std::string lower = head;
    std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char ch) { return std::tolower(ch); });
    if (lower.find("sec-websocket-protocol: herald.v1.json") == std::string::npos) {
        fail(c, "handshake: subprotocol herald.v1.json not selected");
        return false;
    }
    // Sec-WebSocket-Accept is not checked: this tool measures, the integration tests check conformance.
    c.pending.erase(0, end + 4);
    c.state = ClientState::AwaitConnected;
    send_text(c, R"({"op":"connect","id":1})");
    return true;
}

size_t Bench::process_frames(Client& c, std::string_view bytes) {
    size_t used = 0;
    while (!c.closing && used < bytes.size()) {
        ServerFrame frame;
        const ParseStatus status = parse_server_frame(bytes.substr(used), frame);
        if (status == ParseStatus::NeedMore) break;
        if (status == ParseStatus::Invalid) {
            fail(c, "invalid server frame");
            break;
        }
        used += frame.size;
        on_frame(c, frame);
    }
    return used;
}

void Bench::on_frame(Client& c, const ServerFrame& frame) {
    switch (frame.opcode) {
    case Opcode::Text:
        if (frame.fin)
            on_text(c, frame.payload);
        else
            c.fragments.assign(frame.payload);
        return;
    case Opcode::Continuation:
        c.fragments.append(frame.payload);
        if (frame.fin) {
            const std::string whole = std::move(c.fragments);
            c.fragments.clear();
            on_text(c, whole);
        }
        return;
    case Opcode::Ping:
        send_frame(c, Opcode::Pong, frame.payload, false);
        return;
    case Opcode::Pong:
        return;
    case Opcode::Close: {
        int code = 1005;
        if (frame.payload.size() >= 2) {
            code = (static_cast<uint8_t>(frame.payload[0]) << 8) | static_cast<uint8_t>(frame.payload[1]);
        }
        std::string reason = "close " + std::to_string(code);
        if (frame.payload.size() > 2) reason += " " + std::string(frame.payload.substr(2));
        const std::string echo(frame.payload.substr(0, std::min<size_t>(2, frame.payload.size())));
        send_frame(c, Opcode::Close, echo, true);
        fail(c, reason);
        return;
    }
    default:
        fail(c, "unexpected opcode " + std::to_string(static_cast<int>(frame.opcode)));
        return;
    }
}

void Bench::on_text(Client& c, std::string_view text) {
    if (c.state == ClientState::Ready) {
        if (c.role == Role::Publisher)
            on_publish_reply(text);
        else
            on_delivery(c, text);
        return;
    }
    // Set-up replies are rare: parse them properly.
    const Json reply = Json::parse(text, nullptr, false);
    const std::string op = reply.is_object() && reply.contains("op") && reply["op"].is_string()
                               ? reply["op"].get<std::string>()
                               : std::string("unparseable");
    if (c.state == ClientState::AwaitConnected && op == "connected") {
        if (c.role == Role::Publisher) {
            on_ready(c);
            return;
        }
        c.state = ClientState::AwaitSubscribed;
        send_text(c, R"({"op":"subscribe","id":2,"channel":")" + c.channel + "\"}");
        return;
    }
    if (c.state == ClientState::AwaitSubscribed && op == "subscribed" && reply.contains("serial") &&
        reply["serial"].is_number_unsigned()) {
        c.next_serial = reply["serial"].get<uint64_t>() + 1;
        on_ready(c);
        return;
    }
    fail(c, "set-up: unexpected " + op + (op == "error" ? " " + reply.value("code", std::string()) : ""));
}

// Hot path: {"op":"message","channel":"...","serial":N,"data":{"t":T,"p":"..."}} — fixed key order (server_messages).
void Bench::on_delivery(Client& c, std::string_view text) {
    static constexpr std::string_view kMessage = R"({"op":"message","channel":")";
    if (text.rfind(kMessage, 0) != 0) {
        ++counters_.unexpected;
        if (counters_.unexpected <= 5)
            std::fprintf(stderr, "unexpected on subscriber: %.*s\n",
                         static_cast<int>(std::min<size_t>(text.size(), 200)), text.data());
        return;
    }
    const uint64_t now = now_us();
    const auto serial = find_uint_field(text, R"("serial":)", kMessage.size());
    const auto sent_at = find_uint_field(text, R"("t":)", kMessage.size());
    if (!serial || !sent_at) {
        ++counters_.unexpected;
        return;
    }
    ++counters_.deliveries;
    ++c.received;
    last_delivery_us_ = now;
    latency_.record(now >= *sent_at ? now - *sent_at : 0);
    if (*serial < c.next_serial) {
        ++counters_.duplicates;
        return;
    }
    if (*serial > c.next_serial) counters_.gaps += *serial - c.next_serial;
    c.next_serial = *serial + 1;
    if (!c.done && c.last_serial != 0 && *serial >= c.last_serial) {
        c.done = true;
        --subscribers_running_;
        check_fanout_done();
    }
}

void Bench::on_publish_reply(std::string_view text) {
    if (text.rfind(R"({"op":"published")", 0) == 0) {
        // ok
    } else if (text.rfind(R"({"op":"error")", 0) == 0) {
        ++counters_.publish_errors;
        if (counters_.publish_errors <= 5)
            std::fprintf(stderr, "publish error: %.*s\n", static_cast<int>(text.size()), text.data());
    } else {
        ++counters_.unexpected;
        return;
    }
    ++counters_.publishes_acked;
    last_ack_us_ = now_us();
    if (opt_.publish_rate <= 0 && counters_.publishes_sent < static_cast<uint64_t>(opt_.messages)) publish_one();
    check_fanout_done();
}

void Bench::on_ready(Client& c) {
    c.state = ClientState::Ready;
    --in_handshake_;
    ++counters_.ready;
    if (c.role == Role::Subscriber) ++counters_.subscribers_ready;
    setup_settled();
}

void Bench::fail(Client& c, const std::string& reason) {
    if (c.closing || finished_) return;  // after finish, cancelled requests are not failures
    ++counters_.failure_reasons[reason];
    if (c.state == ClientState::Ready) {
        ++counters_.closed_after_ready;
        if (c.role == Role::Subscriber && !c.done && setup_done_) {
            --subscribers_running_;
        }
        if (c.role == Role::Publisher && setup_done_ && !finished_) {
            std::fprintf(stderr, "publisher failed: %s\n", reason.c_str());
            close_client(c);
            finish(false);
            return;
        }
    } else {
        --in_handshake_;
        ++counters_.setup_failed;
    }
    close_client(c);
    if (!setup_done_)
        setup_settled();
    else if (opt_.mode == "fanout")
        check_fanout_done();
}

void Bench::close_client(Client& c) {
    if (c.closing) return;
    c.closing = true;
    c.state = ClientState::Closed;
    if (!uv_is_closing(reinterpret_cast<uv_handle_t*>(&c.tcp)))
        uv_close(reinterpret_cast<uv_handle_t*>(&c.tcp), nullptr);
}

// --- phases

// Set-up ends when every connection is ready or has failed.
void Bench::setup_settled() {
    if (setup_done_ || finished_) return;
    if (static_cast<size_t>(counters_.ready + counters_.setup_failed) < target_connections()) return;
    setup_done_ = true;
    all_ready_us_ = now_us();
    const double seconds = static_cast<double>(all_ready_us_ - open_started_us_) / 1e6;
    std::printf("%s: %d/%zu connections ready in %.2f s (%.0f/s), %d failed during set-up\n", opt_.mode.c_str(),
                counters_.ready, target_connections(), seconds, counters_.ready / seconds, counters_.setup_failed);
    std::fflush(stdout);
    if (opt_.mode == "idle") {
        uv_timer_start(
            &settle_timer_, [](uv_timer_t* t) { static_cast<Bench*>(t->data)->finish(false); },
            static_cast<uint64_t>(opt_.settle_s * 1000), 0);
        return;
    }
    if (publisher_ == nullptr || publisher_->state != ClientState::Ready) {
        std::fputs("fanout: publisher could not connect\n", stderr);
        finish(false);
        return;
    }
    start_publishing();
}

void Bench::start_publishing() {
    // The publisher is not subscribed: its connection only carries publishes and acknowledgements.
    // A fresh channel starts at serial 0 in the subscribers' `subscribed`; every subscriber saw the same top.
    for (auto& c : clients_) {
        if (c->role != Role::Subscriber || c->state != ClientState::Ready) continue;
        c->last_serial = c->next_serial - 1 + static_cast<uint64_t>(opt_.messages);
        ++subscribers_running_;
    }
    const int payload_overhead = 13;  // {"t":,"p":""} around the timestamp digits and the padding
    padding_.assign(static_cast<size_t>(std::max(0, opt_.payload - payload_overhead)), 'x');
    cpu_before_s_ = read_cpu_seconds(opt_.server_pid);
    rss_before_kib_ = read_rss_kib(opt_.server_pid);
    publish_started_us_ = now_us();
    if (opt_.messages == 0) {
        check_fanout_done();
        return;
    }
    if (opt_.publish_rate > 0) {
        uv_timer_start(
            &pace_timer_, [](uv_timer_t* t) { static_cast<Bench*>(t->data)->pace_publishes(); }, 1, 1);
        return;
    }
    for (int i = 0; i < opt_.window && counters_.publishes_sent < static_cast<uint64_t>(opt_.messages); ++i) {
        publish_one();
    }
}

void Bench::pace_publishes() {
    const double elapsed_s = static_cast<double>(now_us() - publish_started_us_) / 1e6;
    const auto due = std::min<uint64_t>(static_cast<uint64_t>(opt_.messages),
                                        static_cast<uint64_t>(elapsed_s * opt_.publish_rate) + 1);
    while (counters_.publishes_sent < due &&
           counters_.publishes_sent - counters_.publishes_acked < static_cast<uint64_t>(opt_.window)) {
        publish_one();
    }
    if (counters_.publishes_sent >= static_cast<uint64_t>(opt_.messages)) uv_timer_stop(&pace_timer_);
}

void Bench::publish_one() {
    const uint64_t id = ++counters_.publishes_sent;
    const std::string stamp = std::to_string(now_us());
    std::string text;
    text.reserve(publish_template_prefix_.size() + publish_template_middle_.size() + padding_.size() + 64);
    text += publish_template_prefix_;
    text += std::to_string(id);
    text += publish_template_middle_;
    text += R"({"t":)";
    text += stamp;
    text += R"(,"p":")";
    // Pad so that the data JSON is exactly --payload bytes (when that is larger than its fixed part).
    text.append(padding_, 0, padding_.size() > stamp.size() ? padding_.size() - stamp.size() : 0);
    text += "\"}}";
    send_text(*publisher_, text);
}

void Bench::check_fanout_done() {
    if (finished_ || !setup_done_ || opt_.mode != "fanout") return;
    if (subscribers_running_ > 0) return;
    if (counters_.publishes_acked < static_cast<uint64_t>(opt_.messages)) return;
    finish(false);
}

void Bench::finish(bool timed_out) {
    if (finished_) return;
    finished_ = true;
    rss_after_kib_ = read_rss_kib(opt_.server_pid);
    cpu_after_s_ = read_cpu_seconds(opt_.server_pid);
    if (opt_.mode == "idle")
        report_idle(timed_out);
    else
        report_fanout(timed_out);
    // Close every handle; uv_run returns once their callbacks have run.
    uv_walk(
        &loop_,
        [](uv_handle_t* h, void*) {
            if (!uv_is_closing(h)) uv_close(h, nullptr);
        },
        nullptr);
}

Json failures_json(const Counters& counters) {
    Json out = Json::object();
    for (const auto& [reason, count] : counters.failure_reasons) out[reason] = count;
    return out;
}

void print_failures(const Counters& counters) {
    for (const auto& [reason, count] : counters.failure_reasons)
        std::printf("  failure x%d: %s\n", count, reason.c_str());
}

void Bench::report_idle(bool timed_out) {
    const int open = counters_.ready - counters_.closed_after_ready;
    const double establish_s = setup_done_ ? static_cast<double>(all_ready_us_ - open_started_us_) / 1e6 : 0;
    Json result = {{"scenario", "idle"},
                   {"connections", opt_.connections},
                   {"ready", counters_.ready},
                   {"open_at_measure", open},
                   {"setup_failed", counters_.setup_failed},
                   {"closed_after_ready", counters_.closed_after_ready},
                   {"establish_s", establish_s},
                   {"establish_per_s", establish_s > 0 ? counters_.ready / establish_s : 0.0},
                   {"settle_s", opt_.settle_s},
                   {"failures", failures_json(counters_)},
                   {"timed_out", timed_out}};
    if (rss_before_kib_ && rss_after_kib_ && open > 0) {
        const double per_conn = static_cast<double>(*rss_after_kib_ - *rss_before_kib_) / open;
        result["rss_before_kib"] = *rss_before_kib_;
        result["rss_after_kib"] = *rss_after_kib_;
        result["rss_per_connection_kib"] = per_conn;
        std::printf("idle: server RSS %ld KiB before, %ld KiB with %d open subscribed connections -> %.2f KiB each\n",
                    *rss_before_kib_, *rss_after_kib_, open, per_conn);
    }
    print_failures(counters_);
    exit_status_ = timed_out ? 2 : (counters_.setup_failed + counters_.closed_after_ready > 0 ? 1 : 0);
    emit(std::move(result));
}

void Bench::report_fanout(bool timed_out) {
    const uint64_t start = publish_started_us_;
    const double publish_s = last_ack_us_ > start ? static_cast<double>(last_ack_us_ - start) / 1e6 : 0;
    const double deliver_s = last_delivery_us_ > start ? static_cast<double>(last_delivery_us_ - start) / 1e6 : 0;
    const double pubs_per_s = publish_s > 0 ? static_cast<double>(counters_.publishes_acked) / publish_s : 0;
    const double dels_per_s = deliver_s > 0 ? static_cast<double>(counters_.deliveries) / deliver_s : 0;
    const int subscribers_ready = counters_.subscribers_ready;
    const uint64_t expected =
        static_cast<uint64_t>(std::max(0, subscribers_ready)) * static_cast<uint64_t>(opt_.messages);
    const uint64_t missing = expected > counters_.deliveries ? expected - counters_.deliveries : 0;
    Json result = {{"scenario", "fanout"},
                   {"subscribers", opt_.subscribers},
                   {"subscribers_ready", subscribers_ready},
                   {"messages", opt_.messages},
                   {"payload_bytes", opt_.payload},
                   {"window", opt_.window},
                   {"publish_rate_limit", opt_.publish_rate},
                   {"setup_s", static_cast<double>(all_ready_us_ - open_started_us_) / 1e6},
                   {"publishes_acked", counters_.publishes_acked},
                   {"publish_errors", counters_.publish_errors},
                   {"publish_s", publish_s},
                   {"publishes_per_s", pubs_per_s},
                   {"deliveries", counters_.deliveries},
                   {"deliveries_expected", expected},
                   {"deliveries_missing", missing},
                   {"deliver_s", deliver_s},
                   {"deliveries_per_s", dels_per_s},
                   {"latency_us",
                    {{"p50", latency_.quantile(0.50)},
                     {"p90", latency_.quantile(0.90)},
                     {"p99", latency_.quantile(0.99)},
                     {"max", latency_.max()}}},
                   {"gaps", counters_.gaps},
                   {"duplicates", counters_.duplicates},
                   {"unexpected", counters_.unexpected},
                   {"setup_failed", counters_.setup_failed},
                   {"closed_after_ready", counters_.closed_after_ready},
                   {"failures", failures_json(counters_)},
                   {"timed_out", timed_out}};
    std::printf(
        "fanout: %llu publishes acknowledged in %.2f s -> %.0f publishes/s (window %d, data %d B, %llu errors)\n",
        static_cast<unsigned long long>(counters_.publishes_acked), publish_s, pubs_per_s, opt_.window, opt_.payload,
        static_cast<unsigned long long>(counters_.publish_errors));
    std::printf("fanout: %llu/%llu deliveries to %d subscribers in %.2f s -> %.0f deliveries/s\n",
                static_cast<unsigned long long>(counters_.deliveries), static_cast<unsigned long long>(expected),
                subscribers_ready, deliver_s, dels_per_s);
    std::printf("fanout: latency publish->delivery us: p50 %llu  p90 %llu  p99 %llu  max %llu\n",
                static_cast<unsigned long long>(latency_.quantile(0.50)),
                static_cast<unsigned long long>(latency_.quantile(0.90)),
                static_cast<unsigned long long>(latency_.quantile(0.99)),
                static_cast<unsigned long long>(latency_.max()));
    if (cpu_before_s_ && cpu_after_s_) {
        const double cpu_s = *cpu_after_s_ - *cpu_before_s_;
        const double us_per_delivery =
            counters_.deliveries > 0 ? cpu_s * 1e6 / static_cast<double>(counters_.deliveries) : 0;
        result["server_cpu_s"] = cpu_s;
        result["server_cpu_us_per_delivery"] = us_per_delivery;
        std::printf("fanout: server CPU %.2f s -> %.3f us per delivery\n", cpu_s, us_per_delivery);
    }
    if (rss_before_kib_ && rss_after_kib_) {
        result["rss_before_kib"] = *rss_before_kib_;
        result["rss_after_kib"] = *rss_after_kib_;
    }
    std::printf(
        "fanout: gaps %llu, duplicates %llu, unexpected messages %llu, subscriber closes %d, set-up failures %d\n",
        static_cast<unsigned long long>(counters_.gaps), static_cast<unsigned long long>(counters_.duplicates),
        static_cast<unsigned long long>(counters_.unexpected), counters_.closed_after_ready, counters_.setup_failed);
    print_failures(counters_);
    const bool errors =
        counters_.gaps + counters_.duplicates + counters_.unexpected + counters_.publish_errors + missing > 0 ||
        counters_.setup_failed + counters_.closed_after_ready > 0;
    exit_status_ = timed_out ? 2 : (errors ? 1 : 0);
    emit(std::move(result));
}

void Bench::emit(Json result) {
    if (!opt_.label.empty()) result["label"] = opt_.label;
    if (opt_.server_pid > 0) result["server_pid"] = opt_.server_pid;
    std::printf("%s\n", result.dump().c_str());
    std::fflush(stdout);
}

int Bench::run() {
    if (opt_.mode == "idle") rss_before_kib_ = read_rss_kib(opt_.server_pid);
    if (opt_.server_pid > 0 && !read_rss_kib(opt_.server_pid)) {
        std::fprintf(stderr, "herald_bench: cannot read /proc/%ld/status\n", opt_.server_pid);
        return 64;
    }
    open_started_us_ = now_us();
    uv_timer_start(
        &open_timer_, [](uv_timer_t* t) { static_cast<Bench*>(t->data)->open_more(); }, 0, 10);
    uv_timer_start(
        &deadline_timer_,
        [](uv_timer_t* t) {
            std::fputs("herald_bench: --timeout reached, reporting what was measured\n", stderr);
            static_cast<Bench*>(t->data)->finish(true);
        },
        static_cast<uint64_t>(opt_.timeout_s * 1000), 0);
    uv_run(&loop_, UV_RUN_DEFAULT);
    return exit_status_;
}

void raise_fd_limit() {
    rlimit limit{};
    if (getrlimit(RLIMIT_NOFILE, &limit) != 0) return;
    limit.rlim_cur = limit.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &limit) != 0) std::perror("herald_bench: setrlimit(RLIMIT_NOFILE)");
}

}  // namespace

int main(int argc, char** argv) {
    const std::optional<Options> options = parse_options(argc, argv);
    if (!options) {
        print_usage();
        return 64;
    }
    raise_fd_limit();
    std::signal(SIGPIPE, SIG_IGN);
    Bench bench(*options);
    return bench.run();
}
