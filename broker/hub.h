// The hub: herald.v1.json semantics on one node — clients, subscriptions, the channel index, replay on resume,
// fan-out of backplane deliveries and live gap repair. It is the backplane's listener; it never touches a socket
// (connections do) and never knows which backplane it talks to.
#pragma once
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "backplane/backplane.h"
#include "broker/auth.h"
#include "broker/channel_index.h"
#include "broker/client_link.h"
#include "broker/config.h"
#include "broker/log.h"
#include "broker/metrics.h"
#include "broker/outbound_queue.h"
#include "broker/rate_limiter.h"
#include "protocol/capabilities.h"
#include "protocol/commands.h"

namespace herald {

struct ClientState {
    enum class Phase { New, Connecting, Connected };
    uint64_t id = 0;
    ClientLink* connection = nullptr;
    Phase phase = Phase::New;
    std::string session_id;
    // Who the client is, from its token at connect (or refresh); set before a session is loaded, so a session is
    // only ever restored for the subject that saved it.
    std::string subject;                         // empty: anonymous, or no JWT key configured
    std::shared_ptr<const Capabilities> caps;    // null until connect: nothing allowed
    std::optional<int64_t> token_expires_at;     // unix seconds; none without a token
    std::optional<uint64_t> refresh_deadline_ms; // set when token_expired was sent: refresh by then or close 4001
    std::map<std::string, std::unique_ptr<Subscription>, std::less<>> subscriptions;
    bool session_dirty = false;
    uint64_t session_saved_ms = 0;
    TokenBucket commands;                        // --client-rate / --client-burst
    std::optional<uint64_t> rate_limited_since_ms;  // first refusal of the current run of refusals
    uint64_t last_refused_ms = 0;                // a pause in refusals ends the run
};

// What the node's environment provides to the hub: the clock and a way to reach connections.
class HubHost {
public:
    virtual uint64_t now_ms() const = 0;
    virtual uint64_t wall_clock_us() const = 0;

protected:
    ~HubHost() = default;
};

class Hub final : public BackplaneListener {
public:
    Hub(const Config& config, const Logger& log, Metrics& metrics, Backplane& backplane, HubHost& host);
    ~Hub() override;

    ClientState* attach(ClientLink& connection);
    void detach(ClientState& client);  // the connection is gone: save the session, drop subscriptions
    void on_text(ClientState& client, std::string_view text);
    void on_writable(ClientState& client);  // the outbound queue drained: continue paced replays
    void sweep();                           // periodic: session sync, repair retries, token expiry

    // Shared by the `publish` command and POST /api/publish.
    void publish(std::string channel, std::string data, std::optional<std::string> key,
                 BackplaneCallback<PublishOutcome> done);
    // Shared by the `history` command and GET /api/history; `limit` is capped by configuration.
    void history(std::string channel, std::optional<uint64_t> since, std::optional<uint64_t> limit,
                 BackplaneCallback<HistorySlice> done);

    size_t channel_count() const { return channels_.size(); }

    // BackplaneListener
    void on_delivery(const Delivery& delivery) override;
    void on_availability(bool up) override;
    void on_resync() override;

private:
    void handle(ClientState& client, ConnectCommand& command);
    void handle(ClientState& client, SubscribeCommand& command);
    void handle(ClientState& client, UnsubscribeCommand& command);
    void handle(ClientState& client, PublishCommand& command);
    void handle(ClientState& client, HistoryCommand& command);
    void handle(ClientState& client, PingCommand& command);
    void handle(ClientState& client, RefreshCommand& command);

    // Rate limit: false when the command must not run (refused with rate_limited, or the connection closed).
    bool admit_command(ClientState& client, RequestId id);
    bool allowed(const ClientState& client, const std::string& channel, Operation op) const;
    void refuse_auth(ClientState& client, RequestId id, const AuthFailure& failure);
    void apply_identity(ClientState& client, Identity identity);
    void drop_forbidden_subscriptions(ClientState& client);
    void check_token(ClientState& client, uint64_t now_ms, int64_t now_unix);
    int64_t now_unix() const;

    void finish_connect(ClientState& client, RequestId id, std::string session_id, bool resumed,
                        std::optional<SessionRecord> record, std::map<std::string, StreamPosition> positions);
    void start_subscription(ClientState& client, const std::string& channel, std::optional<StreamPosition> since,
                            RequestId request_id);
    void activate(Subscription& sub);
    void finish_resume(Subscription& sub, const HistorySlice& slice);
    void go_live_from_top(Subscription& sub, const char* reason);
    void pump_replay(Subscription& sub);
    void remove_subscription(Subscription& sub);

    void sync_channel(ChannelState& channel);
    void channel_ready(ChannelState& channel);
    void process_delivery(ChannelState& channel, const Delivery& delivery);
    void forward(ChannelState& channel, const StoredMessage& message);
    void start_repair(ChannelState& channel);
    void finish_repair(ChannelState& channel, const HistorySlice& slice);
    void change_epoch(ChannelState& channel, const std::string& epoch);
    void announce_discontinuity(ChannelState& channel, uint64_t serial, const std::string& reason);

    template <typename T, typename OnSuccess>
    BackplaneCallback<T> reply_to(ClientState& client, RequestId id, OnSuccess on_success);
    void send(ClientState& client, std::string_view json);
    void send_error(ClientState& client, RequestId id, ProtocolError error, std::string_view message = {});
    void save_session(ClientState& client, uint64_t ttl_ms);
    SessionRecord session_record(const ClientState& client) const;

    // Re-finds state after an asynchronous call: the client or subscription may be gone by then.
    ClientState* find_client(uint64_t id);
    Subscription* find_subscription(uint64_t client_id, const std::string& channel, uint64_t sub_id);
    ChannelState* find_channel(const std::string& name, uint64_t generation);

    const Config& config_;
    const Logger& log_;
    Metrics& metrics_;
    Backplane& backplane_;
    HubHost& host_;
    Authenticator auth_;
    ChannelIndex channels_;
    std::unordered_map<uint64_t, std::unique_ptr<ClientState>> clients_;
    uint64_t next_client_id_ = 1;
    uint64_t next_subscription_id_ = 1;
};

}  // namespace herald
