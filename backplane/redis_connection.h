// One Redis connection on the node's libuv loop, through hiredis' async API: resolves the host off the loop
// (uv_getaddrinfo), connects without blocking, runs a handshake (AUTH, SELECT, CLIENT SETNAME, the owner's own
// commands), reconnects with jittered exponential backoff, drops a connection whose replies stop coming, and closes
// with every handle freed in its own close callback. RedisBackplane keeps two: one for commands, one for pub/sub.
//
// hiredis is attached to the loop by the small adapter in redis_connection.cpp rather than hiredis'
// adapters/libuv.h: 0.14's adapter frees its uv_poll_t in a close callback nobody can wait for (so close() could
// not promise "done after every handle is closed") and ignores the UV_EBADF a socket error reports, which would
// leave a reset connection hanging. The adapter here is the same shape with those two fixed.
//
// Lifetime rules (hiredis 0.14):
//  * A context is freed only by hiredis, through redisAsyncFree or on an error; every path ends in the adapter's
//    cleanup hook, which is the one place this class learns that a context is gone. Nothing touches a context
//    after that.
//  * Each command's callback runs exactly once: with its reply, or with nullptr when the context goes away first.
//  * Hooks and reply handlers run inside hiredis callbacks: they may send more commands, but must not close or
//    destroy this object (RedisBackplane defers everything the broker sees to its own loop turn).
#pragma once
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include <uv.h>

#include "backplane/redis_options.h"

struct redisAsyncContext;
struct redisReply;

namespace herald {

class RedisConnection {
public:
    // A reply, or nullptr when the connection went away before it arrived.
    using ReplyHandler = std::function<void(const redisReply* reply)>;
    struct Hooks {
        std::function<void()> up;    // the handshake finished; ready() is true
        std::function<void()> down;  // a ready connection was lost; ready() is false and a reconnect is scheduled
        // Pub/sub replies (subscribe confirmations and messages) of contexts that sent SUBSCRIBE; never nullptr.
        std::function<void(const redisReply* reply)> push;
    };
    using Command = std::vector<std::string>;

    // `role` names the connection in logs and CLIENT SETNAME ("commands", "pubsub"); `handshake` runs after AUTH /
    // SELECT on every (re)connection, and any error reply fails the attempt. Nothing happens before start().
    RedisConnection(uv_loop_t* loop, const RedisOptions& options, std::string role, RedisLogHook log, Hooks hooks,
                    bool select_db, std::vector<Command> handshake);
    // Without a finished close() the context is freed and handles are closed with callbacks that no longer reach
    // this object; the loop must still run them (call close() first and let it finish).
    ~RedisConnection();
    RedisConnection(const RedisConnection&) = delete;
    RedisConnection& operator=(const RedisConnection&) = delete;

    void start();
    bool ready() const { return state_ == State::Ready; }

    // Sends a command on a ready connection; false (and `handler` dropped) when not ready or hiredis refuses it.
    bool command(const Command& argv, ReplyHandler handler);
    // SUBSCRIBE / UNSUBSCRIBE: the replies arrive through Hooks::push, `expected_replies` of them (one per channel).
    bool pubsub_command(const Command& argv, size_t expected_replies);
    // A subscribe or unsubscribe confirmation arrived through Hooks::push (keeps the reply watchdog current).
    void note_pubsub_reply();
    // Gives up on the current connection (e.g. the server answered READONLY): pending commands fail, reconnect.
    void drop(std::string_view reason);

    // Frees the context and closes every handle; `done` runs from the loop once all are closed, never inside close().
    // Nothing else runs after close() has started. A second close() is ignored.
    void close(std::function<void()> done);

private:
    enum class State { Idle, Resolving, Connecting, Ready, Waiting, Closing };
    struct Link;
    struct Resolve;
    struct Pending;

    void connect();
    void open_context(const std::string& address);
    void attempt_failed(std::string_view reason);
    void schedule_retry();
    void handshake_done();
    bool send(const Command& argv, ReplyHandler handler);
    void arm_timer(uint64_t ms);
    void on_timer();
    void on_context_gone(Link* link, std::string reason);
    void on_link_freed(Link* link);
    void finish_close_if_done();
    void log(std::string_view event, std::string_view detail) const;

    static void on_resolved(uv_getaddrinfo_t* req, int status, struct addrinfo* result);
    static void on_reply(redisAsyncContext* context, void* reply, void* privdata);
    static void on_push(redisAsyncContext* context, void* reply, void* privdata);

    uv_loop_t* loop_;
    RedisOptions options_;
    std::string role_;
    RedisLogHook log_;
    Hooks hooks_;
    bool select_db_;
    std::vector<Command> handshake_;

    State state_ = State::Idle;
    // The one timer, by state: Resolving/Connecting → connect deadline; Waiting → backoff; Ready → reply watchdog.
    uv_timer_t* timer_;  // owned; freed in its close callback
    bool timer_closed_ = false;
    redisAsyncContext* context_ = nullptr;  // the live context, nullptr once its cleanup hook ran
    Link* link_ = nullptr;                  // adapter state of context_
    std::set<Link*> links_;                 // every link whose poll handle is not yet closed (link_ among them)
    std::set<Resolve*> resolves_;           // getaddrinfo requests in flight (each freed in its callback)
    uint64_t connect_generation_ = 0;       // a resolve answering an abandoned attempt is ignored
    size_t handshake_left_ = 0;
    std::deque<uint64_t> awaiting_since_;   // loop time each unanswered command or confirmation was sent, in order
    unsigned attempt_ = 0;                  // failed attempts since the last success, for the backoff
    std::mt19937_64 jitter_;
    std::function<void()> close_done_;
    bool close_finished_ = false;
};

}  // namespace herald
