// The Redis backplane: with it every node is a stateless edge — serials, history, idempotency keys, sessions and
// cross-node delivery live in Redis (docs/backplane.md, "Redis implementation"). Two hiredis connections on the
// node's loop, one for commands (the Lua scripts in backplane/lua/, sessions) and one for pub/sub, plus one uv_idle
// that ends each loop turn: it sends the turn's SUBSCRIBEs and UNSUBSCRIBEs as one command each and hands results,
// deliveries and events to the broker in the order they arrived.
//
// Failure behaviour: while the command connection is down, publish/history/session calls fail at once (on the next
// loop turn) with Unavailable; commands in flight when it drops fail with Unavailable (a publish among them may or
// may not have been applied — idempotency keys make the retry safe). subscribe() fails with Unavailable while the
// pub/sub connection is down. Live subscriptions survive a pub/sub reconnect: every channel is subscribed again,
// then on_resync() tells the broker to repair the gap from history. available() is true while both connections
// are up; on_availability reports each change.
//
// Threads and lifetime: one loop thread, like InMemoryBackplane. Call close() and let it finish before the loop is
// closed; everything the broker receives runs from the idle callback, so a callback may close or destroy the node.
#pragma once
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <set>
#include <string>
#include <type_traits>
#include <unordered_map>
#include <vector>

#include <uv.h>

#include "backplane/backplane.h"
#include "backplane/redis_codec.h"
#include "backplane/redis_connection.h"
#include "backplane/redis_options.h"

namespace herald {

class RedisBackplane final : public Backplane {
public:
    // Starts connecting at once (see RedisOptions; parse_redis_url in backplane/redis_url.h fills one from a URL).
    RedisBackplane(uv_loop_t* loop, RedisOptions options, RedisLogHook log = {});
    ~RedisBackplane() override;

    RedisBackplane(const RedisBackplane&) = delete;
    RedisBackplane& operator=(const RedisBackplane&) = delete;

    void set_listener(BackplaneListener* listener) override { listener_ = listener; }
    bool available() const override;
    std::string kind() const override { return "redis"; }

    void publish(PublishRequest request, BackplaneCallback<PublishOutcome> done) override;
    void history(HistoryRequest request, BackplaneCallback<HistorySlice> done) override;
    // SUBSCRIBE commands of one loop turn go out as one; `ready` runs on Redis' confirmation for the channel.
    void subscribe(const std::string& channel, BackplaneCallback<Unit> ready) override;
    // Also drops deliveries already received but not yet handed over. A `ready` still waiting fails (Internal).
    void unsubscribe(const std::string& channel) override;
    void save_session(const std::string& session_id, SessionRecord record, uint64_t ttl_ms,
                      BackplaneCallback<Unit> done) override;
    void load_session(const std::string& session_id,
                      BackplaneCallback<std::optional<SessionRecord>> done) override;
    // A second close() is ignored (its `done` never runs).
    void close(std::function<void()> done) override;

private:
    struct LuaScript {
        std::string_view name;
        std::string_view body;
        std::string sha1;
    };
    // A channel the broker has subscribed on this node.
    struct LocalSubscription {
        uint64_t generation = 0;  // a delivery queued under another generation is dropped
        bool ready = false;       // Redis confirmed it on the current pub/sub connection: deliveries pass
        std::vector<BackplaneCallback<Unit>> waiting;  // ready callbacks not yet run
    };
    // What the current pub/sub connection has been told about a channel.
    struct RemoteSubscription {
        bool subscribed = false;        // the last command sent for it was SUBSCRIBE
        unsigned pending_confirms = 0;  // SUBSCRIBE confirmations still to come
    };

    // Runs `done` with `result` on a later turn (never inside the caller), unless the node closes first.
    template <typename T>
    void respond(BackplaneCallback<T>& done, std::type_identity_t<Result<T, BackplaneError>> result);
    void post(std::function<void()> task);
    void wake();
    static void on_turn(uv_idle_t* handle);
    void run_turn();

    // Sends EVALSHA; on NOSCRIPT (script cache flushed) sends the same call once more as EVAL, which reloads it.
    void run_script(const LuaScript& script, RedisConnection::Command argv, RedisConnection::ReplyHandler handler);
    BackplaneError error_of(const redisReply* reply);
    uint64_t lineage_ttl_ms(const RetentionPolicy& retention) const;

    void flush_subscriptions();
    void on_pubsub_up();
    void on_pubsub_down();
    void on_pubsub_reply(const redisReply* reply);
    void on_confirmed(const std::string& channel);
    void finish_resync_if_done();
    void update_availability();
    void log(std::string_view event, std::string_view detail) const;
    void part_closed();  // one of the idle handle and the two connections has closed

    uv_loop_t* loop_;
    RedisOptions options_;
    RedisLogHook log_;
    RedisKeyspace keys_;
    EpochGenerator epochs_;
    LuaScript publish_script_;
    LuaScript history_script_;
    BackplaneListener* listener_ = nullptr;

    std::unordered_map<std::string, LocalSubscription> local_;
    std::unordered_map<std::string, RemoteSubscription> remote_;
    std::set<std::string> dirty_;  // channels whose SUBSCRIBE/UNSUBSCRIBE is decided at the end of this turn
    uint64_t next_generation_ = 0;
    bool pubsub_was_up_ = false;
    bool resync_pending_ = false;            // on_resync() is due once every channel is confirmed again
    std::set<std::string> resync_waiting_;   // channels not yet confirmed on the new pub/sub connection
    bool reported_available_ = false;

    uv_idle_t* turn_;  // owned; freed in its close callback
    std::deque<std::function<void()>> inbox_;
    bool closing_ = false;
    bool* drain_stop_ = nullptr;  // while run_turn() drains: its local stop flag, set by close() and the destructor
    int closes_left_ = 0;
    std::function<void()> close_done_;

    // Declared last: destroyed first, while everything their hooks reach still exists.
    std::unique_ptr<RedisConnection> commands_;
    std::unique_ptr<RedisConnection> pubsub_;
};

}  // namespace herald
