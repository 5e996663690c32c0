// One hiredis async connection on a libuv loop; see redis_connection.h for the lifetime rules.
#include "backplane/redis_connection.h"

#include <algorithm>
#include <exception>
#include <utility>

#include <sys/socket.h>

#include <hiredis/async.h>
#include <hiredis/hiredis.h>

namespace herald {

namespace {
constexpr unsigned kMaxBackoffDoublings = 20;
}  // namespace

// ---- the libuv adapter ----------------------------------------------------------------------------------------
// One Link per hiredis context: the uv_poll_t that watches its socket. hiredis drives it through the ev hooks; the
// cleanup hook (called by hiredis whenever it frees the context) closes the poll handle, and the close callback frees
// the Link. `owner` is cleared when the RedisConnection is destroyed without a finished close().

struct RedisConnection::Link {
    RedisConnection* owner = nullptr;
    redisAsyncContext* context = nullptr;  // nullptr once hiredis has freed it
    uv_poll_t poll{};
    int events = 0;
    bool freeing = false;  // redisAsyncFree was called (hiredis may defer it to the end of its callback)
    std::string drop_reason;

    static void update(void* privdata, int add, int remove) {
        auto* link = static_cast<Link*>(privdata);
        link->events = (link->events | add) & ~remove;
        if (link->events != 0) {
            uv_poll_start(&link->poll, link->events, &Link::on_poll);
        } else {
            uv_poll_stop(&link->poll);
        }
    }
    static void add_read(void* privdata) { update(privdata, UV_READABLE, 0); }
    static void del_read(void* privdata) { update(privdata, 0, UV_READABLE); }
    static void add_write(void* privdata) { update(privdata, UV_WRITABLE, 0); }
    static void del_write(void* privdata) { update(privdata, 0, UV_WRITABLE); }

    static void cleanup(void* privdata) {
        auto* link = static_cast<Link*>(privdata);
        redisAsyncContext* context = std::exchange(link->context, nullptr);
        std::string reason = link->drop_reason;
        if (reason.empty()) reason = context && context->err ? std::string(context->errstr) : "connection closed";
        if (link->owner) link->owner->on_context_gone(link, std::move(reason));
        uv_close(reinterpret_cast<uv_handle_t*>(&link->poll), &Link::on_closed);
    }

    static void on_closed(uv_handle_t* handle) {
        auto* link = static_cast<Link*>(handle->data);
        RedisConnection* owner = link->owner;
        if (owner) owner->on_link_freed(link);
        delete link;
    }

    static void on_poll(uv_poll_t* handle, int status, int events) {
        auto* link = static_cast<Link*>(handle->data);
        if (link->context == nullptr) return;
        if (status < 0) {
            // libuv reports a socket error (POLLERR) as UV_EBADF and stops the handle; hiredis would never hear of
            // it and the connection would hang. The socket is broken: free the context (pending callbacks get NULL).
            if (!link->freeing) {
                // UV_EBADF only says "POLLERR"; the socket knows the real error (e.g. ECONNREFUSED).
                int error = 0;
                socklen_t size = sizeof error;
                if (getsockopt(link->context->c.fd, SOL_SOCKET, SO_ERROR, &error, &size) != 0 || error == 0) {
                    error = -status;
                }
                link->freeing = true;
                link->drop_reason = std::string("socket error: ") + uv_strerror(-error);
                redisAsyncFree(link->context);
            }
            return;
        }
        if (events & UV_READABLE) redisAsyncHandleRead(link->context);
        if (link->context != nullptr && (events & UV_WRITABLE)) redisAsyncHandleWrite(link->context);
    }
};

struct RedisConnection::Resolve {
    RedisConnection* owner = nullptr;
    uint64_t generation = 0;
    uv_getaddrinfo_t req{};
};

struct RedisConnection::Pending {
    ReplyHandler handler;
};

// ---- lifecycle --------------------------------------------------------------------------------------------------

RedisConnection::RedisConnection(uv_loop_t* loop, const RedisOptions& options, std::string role, RedisLogHook log,
                                 Hooks hooks, bool select_db, std::vector<Command> handshake)
    : loop_(loop),
      options_(options),
      role_(std::move(role)),
      log_(std::move(log)),
      hooks_(std::move(hooks)),
      select_db_(select_db),
      handshake_(std::move(handshake)),
      timer_(new uv_timer_t{}),
      jitter_(std::random_device{}()) {
    uv_timer_init(loop_, timer_);
    timer_->data = this;
}

RedisConnection::~RedisConnection() {
    if (close_finished_) return;
    // Never closed (or destroyed mid-close): nothing may call back into this object from here on.
    for (Resolve* resolve : resolves_) resolve->owner = nullptr;
    for (Link* link : links_) link->owner = nullptr;
    if (context_ != nullptr && !link_->freeing) {
        link_->freeing = true;
        redisAsyncFree(context_);
    }
    if (!timer_closed_) {
        timer_->data = nullptr;
        if (!uv_is_closing(reinterpret_cast<uv_handle_t*>(timer_))) {
            uv_close(reinterpret_cast<uv_handle_t*>(timer_), [](uv_handle_t* h) { delete reinterpret_cast<uv_timer_t*>(h); });
        }
    }
}

void RedisConnection::start() {
    if (state_ == State::Idle) connect();
}

void RedisConnection::close(std::function<void()> done) {
    if (state_ == State::Closing) return;
    state_ = State::Closing;
    close_done_ = std::move(done);
    uv_timer_stop(timer_);
    uv_close(reinterpret_cast<uv_handle_t*>(timer_), [](uv_handle_t* handle) {
        auto* self = static_cast<RedisConnection*>(handle->data);
        delete reinterpret_cast<uv_timer_t*>(handle);
        if (self == nullptr) return;
        self->timer_closed_ = true;
        self->finish_close_if_done();
    });
    // Best effort: a request already running on the threadpool still calls back, and close waits for it.
    for (Resolve* resolve : resolves_) uv_cancel(reinterpret_cast<uv_req_t*>(&resolve->req));
    if (context_ != nullptr && !link_->freeing) {
        link_->freeing = true;
        redisAsyncFree(context_);  // pending callbacks run with NULL and are dropped (state_ is Closing)
    }
}

void RedisConnection::finish_close_if_done() {
    if (state_ != State::Closing || close_finished_ || !timer_closed_ || !links_.empty() || !resolves_.empty()) return;
    close_finished_ = true;
    auto done = std::move(close_done_);
    if (done) done();  // last: it may destroy this object
}

void RedisConnection::log(std::string_view event, std::string_view detail) const {
    if (!log_) return;
    try {
        log_(event, detail);
    } catch (...) {
        // A logger that throws must not unwind through hiredis or libuv.
    }
}

// ---- connecting -------------------------------------------------------------------------------------------------

void RedisConnection::connect() {
    ++connect_generation_;
    arm_timer(options_.connect_timeout_ms);
    unsigned char address[sizeof(struct in6_addr)];
    if (uv_inet_pton(AF_INET, options_.host.c_str(), address) == 0 ||
        uv_inet_pton(AF_INET6, options_.host.c_str(), address) == 0) {
        state_ = State::Connecting;
        open_context(options_.host);
        return;
    }
    // A name: hiredis would resolve it with a blocking getaddrinfo, so resolve it on the threadpool first.
    state_ = State::Resolving;
    auto* resolve = new Resolve{this, connect_generation_, {}};
    resolve->req.data = resolve;
    struct addrinfo hints {};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    const int rc = uv_getaddrinfo(loop_, &resolve->req, &RedisConnection::on_resolved, options_.host.c_str(),
                                  nullptr, &hints);
    if (rc != 0) {
        delete resolve;
        attempt_failed(std::string("cannot resolve ") + options_.host + ": " + uv_strerror(rc));
        return;
    }
    resolves_.insert(resolve);
}

void RedisConnection::on_resolved(uv_getaddrinfo_t* req, int status, struct addrinfo* result) {
    std::unique_ptr<Resolve> resolve(static_cast<Resolve*>(req->data));
    std::string address;
    for (struct addrinfo* ai = result; ai != nullptr && address.empty(); ai = ai->ai_next) {
        char text[64] = {};
        if (ai->ai_family == AF_INET &&
            uv_ip4_name(reinterpret_cast<const struct sockaddr_in*>(ai->ai_addr), text, sizeof text) == 0) {
            address = text;
        } else if (ai->ai_family == AF_INET6 &&
                   uv_ip6_name(reinterpret_cast<const struct sockaddr_in6*>(ai->ai_addr), text, sizeof text) == 0) {
            address = text;
        }
    }
    uv_freeaddrinfo(result);
    RedisConnection* self = resolve->owner;
    if (self == nullptr) return;
    self->resolves_.erase(resolve.get());
    if (self->state_ == State::Closing) {
        self->finish_close_if_done();
        return;
    }
    if (resolve->generation != self->connect_generation_ || self->state_ != State::Resolving) return;  // abandoned
    if (status < 0 || address.empty()) {
        self->attempt_failed("cannot resolve " + self->options_.host + ": " +
                             (status < 0 ? uv_strerror(status) : "no address"));
        return;
    }
    self->state_ = State::Connecting;
    self->open_context(address);
}

void RedisConnection::open_context(const std::string& address) {
    redisAsyncContext* context = redisAsyncConnect(address.c_str(), options_.port);
    if (context == nullptr) {
        attempt_failed("cannot allocate a hiredis context");
        return;
    }
    if (context->err != 0) {
        std::string why = context->errstr;
        redisAsyncFree(context);  // not attached yet: no callback, no handle
        attempt_failed(why);
        return;
    }
    auto* link = new Link{};
    link->owner = this;
    link->context = context;
    link->poll.data = link;
    if (uv_poll_init_socket(loop_, &link->poll, context->c.fd) != 0) {
        delete link;
        redisAsyncFree(context);
        attempt_failed("cannot watch the socket");
        return;
    }
    context->data = link;
    context->ev.data = link;
    context->ev.addRead = &Link::add_read;
    context->ev.delRead = &Link::del_read;
    context->ev.addWrite = &Link::add_write;
    context->ev.delWrite = &Link::del_write;
    context->ev.cleanup = &Link::cleanup;
    context_ = context;
    link_ = link;
    links_.insert(link);
    redisEnableKeepAlive(&context->c);  // a silently dead peer is noticed even on an idle pub/sub connection

    // The handshake is pipelined now and written as soon as the socket connects (hiredis watches for writability).
    std::vector<Command> steps;
    if (options_.password) {
        if (options_.username) {
            steps.push_back({"AUTH", *options_.username, *options_.password});
        } else {
            steps.push_back({"AUTH", *options_.password});
        }
    }
    if (select_db_ && options_.db) steps.push_back({"SELECT", std::to_string(*options_.db)});
    steps.push_back({"CLIENT", "SETNAME", "herald-" + role_});
    steps.insert(steps.end(), handshake_.begin(), handshake_.end());
    handshake_left_ = steps.size();
    for (const Command& step : steps) {
        const bool sent = send(step, [this, name = step[0]](const redisReply* reply) {
            if (reply == nullptr) return;  // the context is going away; its cleanup hook reports it
            if (reply->type == REDIS_REPLY_ERROR) {
                drop(name + " failed: " + std::string(reply->str, reply->len));
                return;
            }
            if (--handshake_left_ == 0) handshake_done();
        });
        if (!sent) {
            drop("cannot queue the handshake");
            return;
        }
    }
}

void RedisConnection::handshake_done() {
    state_ = State::Ready;
    attempt_ = 0;
    uv_timer_stop(timer_);
    if (!awaiting_since_.empty()) arm_timer(options_.command_timeout_ms);
    log("redis_connected", role_ + " " + options_.host + ":" + std::to_string(options_.port));
    if (hooks_.up) hooks_.up();
}

void RedisConnection::attempt_failed(std::string_view reason) {
    log("redis_connect_failed", role_ + ": " + std::string(reason));
    schedule_retry();
}

void RedisConnection::schedule_retry() {
    state_ = State::Waiting;
    const uint64_t base = std::max<uint64_t>(options_.backoff_base_ms, 1);
    const unsigned doublings = std::min(attempt_, kMaxBackoffDoublings);
    const uint64_t ceiling = std::min<uint64_t>(std::max<uint64_t>(options_.backoff_cap_ms, 1), base << doublings);
    std::uniform_int_distribution<uint64_t> delay(0, ceiling);
    if (attempt_ < kMaxBackoffDoublings) ++attempt_;
    arm_timer(delay(jitter_));
}

void RedisConnection::on_context_gone(Link* link, std::string reason) {
    if (link != link_) return;  // (links_ keeps it until its poll handle is closed)
    context_ = nullptr;
    link_ = nullptr;
    awaiting_since_.clear();
    if (state_ == State::Closing) return;
    const bool was_ready = state_ == State::Ready;
    log(was_ready ? "redis_disconnected" : "redis_connect_failed", role_ + ": " + reason);
    schedule_retry();
    if (was_ready && hooks_.down) hooks_.down();
}

void RedisConnection::on_link_freed(Link* link) {
    links_.erase(link);
    finish_close_if_done();
}

// ---- commands ---------------------------------------------------------------------------------------------------

bool RedisConnection::command(const Command& argv, ReplyHandler handler) {
    if (state_ != State::Ready) return false;
    return send(argv, std::move(handler));
}

bool RedisConnection::send(const Command& argv, ReplyHandler handler) {
    if (context_ == nullptr || link_->freeing || argv.empty()) return false;
    std::vector<const char*> args;
    std::vector<size_t> lengths;
    args.reserve(argv.size());
    lengths.reserve(argv.size());
    for (const std::string& arg : argv) {
        args.push_back(arg.data());
        lengths.push_back(arg.size());
    }
    auto pending = std::make_unique<Pending>(Pending{std::move(handler)});
    if (redisAsyncCommandArgv(context_, &RedisConnection::on_reply, pending.get(), static_cast<int>(args.size()),
                              args.data(), lengths.data()) != REDIS_OK) {
        return false;
    }
    pending.release();  // on_reply owns it now: hiredis calls it exactly once
    awaiting_since_.push_back(uv_now(loop_));
    if (state_ == State::Ready && !uv_is_active(reinterpret_cast<uv_handle_t*>(timer_))) {
        arm_timer(options_.command_timeout_ms);
    }
    return true;
}

bool RedisConnection::pubsub_command(const Command& argv, size_t expected_replies) {
    if (state_ != State::Ready || context_ == nullptr || link_->freeing || argv.size() < 2) return false;
    std::vector<const char*> args;
    std::vector<size_t> lengths;
    for (const std::string& arg : argv) {
        args.push_back(arg.data());
        lengths.push_back(arg.size());
    }
    // hiredis keeps on_push per channel and calls it for the confirmations and every message of that channel.
    if (redisAsyncCommandArgv(context_, &RedisConnection::on_push, nullptr, static_cast<int>(args.size()),
                              args.data(), lengths.data()) != REDIS_OK) {
        return false;
    }
    const uint64_t now = uv_now(loop_);
    for (size_t i = 0; i < expected_replies; ++i) awaiting_since_.push_back(now);
    if (!uv_is_active(reinterpret_cast<uv_handle_t*>(timer_))) arm_timer(options_.command_timeout_ms);
    return true;
}

void RedisConnection::note_pubsub_reply() {
    if (!awaiting_since_.empty()) awaiting_since_.pop_front();
}

void RedisConnection::drop(std::string_view reason) {
    if (context_ == nullptr || link_->freeing) return;
    link_->freeing = true;
    link_->drop_reason = std::string(reason);
    redisAsyncFree(context_);  // inside a hiredis callback this is deferred until the callback returns
}

void RedisConnection::on_reply(redisAsyncContext* context, void* reply, void* privdata) {
    std::unique_ptr<Pending> pending(static_cast<Pending*>(privdata));
    auto* link = static_cast<Link*>(context->data);
    RedisConnection* self = link != nullptr ? link->owner : nullptr;
    if (self == nullptr || self->state_ == State::Closing) return;
    if (reply != nullptr && !self->awaiting_since_.empty()) self->awaiting_since_.pop_front();
    try {
        if (pending->handler) pending->handler(static_cast<const redisReply*>(reply));
    } catch (const std::exception& e) {
        self->log("redis_internal_error", e.what());
    } catch (...) {
        self->log("redis_internal_error", "unknown exception in a reply handler");
    }
}

void RedisConnection::on_push(redisAsyncContext* context, void* reply, void*) {
    auto* link = static_cast<Link*>(context->data);
    RedisConnection* self = link != nullptr ? link->owner : nullptr;
    if (self == nullptr || self->state_ == State::Closing || reply == nullptr) return;
    try {
        if (self->hooks_.push) self->hooks_.push(static_cast<const redisReply*>(reply));
    } catch (const std::exception& e) {
        self->log("redis_internal_error", e.what());
    } catch (...) {
        self->log("redis_internal_error", "unknown exception in a pub/sub handler");
    }
}

// ---- the timer --------------------------------------------------------------------------------------------------

void RedisConnection::arm_timer(uint64_t ms) {
    uv_timer_start(timer_, [](uv_timer_t* t) { static_cast<RedisConnection*>(t->data)->on_timer(); }, ms, 0);
}

void RedisConnection::on_timer() {
    switch (state_) {
        case State::Resolving:
            ++connect_generation_;  // the resolve may still answer; it will be ignored
            attempt_failed("resolving " + options_.host + " timed out");
            break;
        case State::Connecting:
            if (context_ != nullptr) {
                drop("connect timed out after " + std::to_string(options_.connect_timeout_ms) + " ms");
            } else {
                attempt_failed("connect timed out");
            }
            break;
        case State::Waiting:
            connect();
            break;
        case State::Ready: {
            if (awaiting_since_.empty()) break;
            const uint64_t age = uv_now(loop_) - awaiting_since_.front();
            if (age >= options_.command_timeout_ms) {
                drop("no reply for " + std::to_string(age) + " ms");
            } else {
                arm_timer(options_.command_timeout_ms - age);
            }
            break;
        }
        case State::Idle:
        case State::Closing:
            break;
    }
}

}  // namespace herald
