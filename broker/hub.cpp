// herald.v1.json on one node. The continuity rules live here: a subscription is added to its channel before its
// history is read, live frames that arrive meanwhile are held, and the seam is cut by serial — so nothing is
// missed and nothing is delivered twice.
#include "broker/hub.h"

#include <openssl/rand.h>

#include <algorithm>

#include "protocol/frame_writer.h"
#include "protocol/server_messages.h"

namespace herald {
namespace {

constexpr uint64_t kDefaultHistoryLimit = 100;

std::string random_session_id() {
    unsigned char bytes[16];
    if (RAND_bytes(bytes, sizeof bytes) != 1) {
        // RAND_bytes only fails when the CSPRNG cannot be seeded; a guessable id would be worse than stopping.
        std::abort();
    }
    static const char* hex = "0123456789abcdef";
    std::string id;
    id.reserve(32);
    for (unsigned char b : bytes) {
        id += hex[b >> 4];
        id += hex[b & 15];
    }
    return id;
}

ProtocolError error_for(const BackplaneError& e) {
    return e.kind == BackplaneErrorKind::Unavailable ? ProtocolError::Unavailable : ProtocolError::Internal;
}

// A connection whose commands keep being refused for this long is closed with 4029. "Keep being refused": each
// refusal within kRefusalPauseMs of the previous one. The commands the refill lets through do not end the run —
// a flood at twice the rate gets half its commands through and is still a flood — a pause does.
constexpr uint64_t kRateLimitCloseMs = 10'000;
constexpr uint64_t kRefusalPauseMs = 2'000;

Authenticator build_authenticator(const Config& config, const Logger& log) {
    auto auth = Authenticator::from_config(config);
    if (!auth) {
        // main() runs validate_security() first, so this means it did not: fail closed rather than open.
        log.error("auth_misconfigured", {{"detail", auth.error()}});
        return Authenticator::deny_all();
    }
    if (auth->open()) {
        log.warn("auth_disabled", {{"detail", "no JWT key configured (--jwt-secret / --jwt-public-key): every client "
                                              "may subscribe, publish and read history on every channel"}});
    } else {
        log.info("auth", {{"algorithms", auth->describe()}, {"anonymous", config.allow_anonymous ? "allowed" : "refused"}});
    }
    return std::move(*auth);
}

}  // namespace

Hub::Hub(const Config& config, const Logger& log, Metrics& metrics, Backplane& backplane, HubHost& host)
    : config_(config), log_(log), metrics_(metrics), backplane_(backplane), host_(host),
      auth_(build_authenticator(config, log)) {
    backplane_.set_listener(this);
}

Hub::~Hub() { backplane_.set_listener(nullptr); }

ClientState* Hub::attach(ClientLink& connection) {
    auto client = std::make_unique<ClientState>();
    client->id = next_client_id_++;
    client->connection = &connection;
    client->commands = TokenBucket(config_.client_rate, config_.client_burst, host_.now_ms());
    auto* raw = client.get();
    clients_.emplace(raw->id, std::move(client));
    return raw;
}

void Hub::detach(ClientState& client) {
    if (client.phase == ClientState::Phase::Connected)
        save_session(client, static_cast<uint64_t>(config_.session_ttl_s * 1000));
    while (!client.subscriptions.empty()) remove_subscription(*client.subscriptions.begin()->second);
    clients_.erase(client.id);
}

ClientState* Hub::find_client(uint64_t id) {
    auto it = clients_.find(id);
    return it == clients_.end() ? nullptr : it->second.get();
}

Subscription* Hub::find_subscription(uint64_t client_id, const std::string& channel, uint64_t sub_id) {
    ClientState* client = find_client(client_id);
    if (!client) return nullptr;
    auto it = client->subscriptions.find(channel);
    return (it == client->subscriptions.end() || it->second->id != sub_id) ? nullptr : it->second.get();
}

ChannelState* Hub::find_channel(const std::string& name, uint64_t generation) {
    ChannelState* channel = channels_.find(name);
    return (channel && channel->generation == generation) ? channel : nullptr;
}

void Hub::send(ClientState& client, std::string_view json) { client.connection->send_text(json); }

void Hub::send_error(ClientState& client, RequestId id, ProtocolError error, std::string_view message) {
    metrics_.errors.increment(error_info(error).code);
    send(client, encode_error(id, error, message));
}

// Answers a command once its backplane call completes: re-finds the client (it may be gone by then) and turns a
// failure into the matching error, so each command states only what it sends on success.
template <typename T, typename OnSuccess>
BackplaneCallback<T> Hub::reply_to(ClientState& client, RequestId id, OnSuccess on_success) {
    return [this, client_id = client.id, id, on_success = std::move(on_success)](Result<T, BackplaneError> result) mutable {
        ClientState* c = find_client(client_id);
        if (!c) return;
        if (!result.ok()) {
            send_error(*c, id, error_for(result.error()), result.error().detail);
            return;
        }
        on_success(*c, result.value());
    };
}

// ---- commands -------------------------------------------------------------------------------------------------

int64_t Hub::now_unix() const { return static_cast<int64_t>(host_.wall_clock_us() / 1'000'000); }

bool Hub::allowed(const ClientState& client, const std::string& channel, Operation op) const {
    return client.caps && client.caps->allows(channel, op, client.subject);
}

// Every text message costs a token, pings and malformed ones included: a flood is a flood whatever it says.
bool Hub::admit_command(ClientState& client, RequestId id) {
    if (!client.commands.enabled()) return true;
    const uint64_t now = host_.now_ms();
    if (client.commands.try_take(now)) return true;
    metrics_.rate_limited.increment("command");
    if (!client.rate_limited_since_ms || now - client.last_refused_ms >= kRefusalPauseMs)
        client.rate_limited_since_ms = now;
    client.last_refused_ms = now;
    if (now - *client.rate_limited_since_ms >= kRateLimitCloseMs) {
        log_.info("rate_limit_close", {{"client", client.id}, {"subject", client.subject}});
        client.connection->close_for(ProtocolError::RateLimitSustained);
        return false;
    }
    send_error(client, id, ProtocolError::RateLimited);
    return false;
}

void Hub::on_text(ClientState& client, std::string_view text) {
    auto decoded = decode_command(text);
    if (!admit_command(client, decoded.ok() ? command_id(decoded.value()) : decoded.error().id)) return;
    if (!decoded.ok()) {
        send_error(client, decoded.error().id, decoded.error().error, decoded.error().message);
        return;
    }
    Command& command = decoded.value();
    if (client.phase != ClientState::Phase::Connected && !std::holds_alternative<PingCommand>(command) &&
        !std::holds_alternative<ConnectCommand>(command)) {
        send_error(client, command_id(command), ProtocolError::NotConnected);
        return;
    }
    std::visit([&](auto& c) { handle(client, c); }, command);
}

void Hub::handle(ClientState& client, PingCommand& command) { send(client, encode_pong(command.id)); }

void Hub::handle(ClientState& client, ConnectCommand& command) {
    if (client.phase != ClientState::Phase::New) {
        send_error(client, command.id, ProtocolError::AlreadyConnected);
        return;
    }
    auto identity = auth_.authenticate(command.token, now_unix());
    if (!identity.ok()) {
        refuse_auth(client, command.id, identity.error());
        return;
    }
    // The subject is known before the session loads: a record saved by another subject is never restored.
    apply_identity(client, std::move(identity.value()));
    if (!command.session) {
        finish_connect(client, command.id, random_session_id(), false, std::nullopt, {});
        return;
    }
    // Commands pipelined behind connect must see the restored session, so input waits for the load.
    client.phase = ClientState::Phase::Connecting;
    client.connection->pause_reading();
    backplane_.load_session(
        *command.session, [this, client_id = client.id, id = command.id, session = *command.session,
                           positions = std::move(command.positions)](auto result) mutable {
            ClientState* c = find_client(client_id);
            if (!c) return;
            if (!result.ok()) {
                c->phase = ClientState::Phase::New;
                send_error(*c, id, error_for(result.error()), "session store unavailable: " + result.error().detail);
                c->connection->resume_reading();
                return;
            }
            auto& record = result.value();
            if (record && record->subject == c->subject) {
                metrics_.resumes.increment("resumed");
                finish_connect(*c, id, std::move(session), true, std::move(record), std::move(positions));
            } else {
                metrics_.resumes.increment("unknown_session");
                finish_connect(*c, id, random_session_id(), false, std::nullopt, {});
            }
        });
}

void Hub::finish_connect(ClientState& client, RequestId id, std::string session_id, bool resumed,
                         std::optional<SessionRecord> record, std::map<std::string, StreamPosition> positions) {
    client.phase = ClientState::Phase::Connected;
    client.session_id = std::move(session_id);
    client.connection->mark_connected();
    send(client, encode_connected(ConnectedReply{id, client.session_id, config_.node_name,
                                                 static_cast<uint32_t>(config_.heartbeat_s + 0.5), resumed}));
    if (record) {
        for (auto& [channel, position] : record->positions) {
            // The record may predate a narrower token or a lower limit: such a channel is announced and skipped.
            if (!allowed(client, channel, Operation::Subscribe)) {
                send(client, encode_unsubscribed(std::nullopt, channel, error_info(ProtocolError::Forbidden).code));
                continue;
            }
            if (client.subscriptions.size() >= config_.max_subscriptions) {
                send(client, encode_unsubscribed(std::nullopt, channel, error_info(ProtocolError::LimitExceeded).code));
                continue;
            }
            auto given = positions.find(channel);
            StreamPosition from = given != positions.end() ? given->second : position;
            std::optional<StreamPosition> since;
            if (!from.epoch.empty()) since = from;
            start_subscription(client, channel, since, std::nullopt);
        }
    }
    save_session(client, static_cast<uint64_t>(config_.session_ttl_s * 1000));
    client.connection->resume_reading();
}

void Hub::handle(ClientState& client, SubscribeCommand& command) {
    if (client.subscriptions.count(command.channel)) {
        send_error(client, command.id, ProtocolError::AlreadySubscribed);
        return;
    }
    if (!allowed(client, command.channel, Operation::Subscribe)) {
        send_error(client, command.id, ProtocolError::Forbidden, "no subscribe capability for this channel");
        return;
    }
    if (client.subscriptions.size() >= config_.max_subscriptions) {
        send_error(client, command.id, ProtocolError::LimitExceeded,
                   "at most " + std::to_string(config_.max_subscriptions) + " subscriptions per connection");
        return;
    }
    start_subscription(client, command.channel, command.since, command.id);
    client.session_dirty = true;
    save_session(client, static_cast<uint64_t>(config_.session_ttl_s * 1000));
}

void Hub::handle(ClientState& client, UnsubscribeCommand& command) {
    auto it = client.subscriptions.find(command.channel);
    if (it == client.subscriptions.end()) {
        send_error(client, command.id, ProtocolError::NotSubscribed);
        return;
    }
    remove_subscription(*it->second);
    send(client, encode_unsubscribed(command.id, command.channel));
    save_session(client, static_cast<uint64_t>(config_.session_ttl_s * 1000));
}

void Hub::handle(ClientState& client, PublishCommand& command) {
    if (!config_.client_publish) {
        send_error(client, command.id, ProtocolError::PublishDisabled);
        return;
    }
    if (!allowed(client, command.channel, Operation::Publish)) {
        send_error(client, command.id, ProtocolError::Forbidden, "no publish capability for this channel");
        return;
    }
    if (command.data.size() > config_.max_message_size) {
        send_error(client, command.id, ProtocolError::MessageTooLarge);
        return;
    }
    std::string channel = command.channel;
    publish(std::move(command.channel), std::move(command.data), std::move(command.key),
            reply_to<PublishOutcome>(client, command.id, [this, id = command.id, channel](ClientState& c, auto& outcome) {
                send(c, encode_published(id, channel, outcome.serial));
            }));
}

void Hub::handle(ClientState& client, HistoryCommand& command) {
    if (!allowed(client, command.channel, Operation::History)) {
        send_error(client, command.id, ProtocolError::Forbidden, "no history capability for this channel");
        return;
    }
    std::string channel = command.channel;
    history(std::move(command.channel), command.since, command.limit,
            reply_to<HistorySlice>(client, command.id, [this, id = command.id, channel](ClientState& c, auto& slice) {
                HistoryReply reply{id, channel, slice.epoch, slice.top, {}};
                reply.messages.reserve(slice.messages.size());
                for (auto& m : slice.messages) reply.messages.push_back({m.serial, std::move(m.data)});
                send(c, encode_history(reply));
            }));
}

// ---- authentication ------------------------------------------------------------------------------------------

void Hub::refuse_auth(ClientState& client, RequestId id, const AuthFailure& failure) {
    metrics_.auth_failures.increment(failure.reason);
    log_.info("auth_refused", {{"client", client.id}, {"reason", failure.reason}});
    send_error(client, id, ProtocolError::Unauthorized, failure.message);
    client.connection->close_for(ProtocolError::Unauthorized, failure.message);
}

void Hub::apply_identity(ClientState& client, Identity identity) {
    client.subject = std::move(identity.subject);
    client.caps = std::move(identity.caps);
    client.token_expires_at = identity.expires_at;
    client.refresh_deadline_ms.reset();
}

void Hub::handle(ClientState& client, RefreshCommand& command) {
    auto identity = auth_.refresh(command.token, client.subject, now_unix());
    if (!identity.ok()) {
        refuse_auth(client, command.id, identity.error());
        return;
    }
    const bool was_expired = client.refresh_deadline_ms.has_value();
    apply_identity(client, std::move(identity.value()));
    metrics_.token_events.increment("refreshed");
    log_.debug("token_refreshed", {{"client", client.id}, {"after_expiry", was_expired ? "yes" : "no"}});
    send(client, encode_refreshed(command.id, client.token_expires_at.value_or(0)));
    drop_forbidden_subscriptions(client);
}

// The new capabilities replace the old ones: a subscription they no longer allow ends now.
void Hub::drop_forbidden_subscriptions(ClientState& client) {
    std::vector<std::string> dropped;
    for (const auto& [name, sub] : client.subscriptions)
        if (!allowed(client, name, Operation::Subscribe)) dropped.push_back(name);
    if (dropped.empty()) return;
    for (const std::string& name : dropped) {
        remove_subscription(*client.subscriptions.find(name)->second);
        send(client, encode_unsubscribed(std::nullopt, name, error_info(ProtocolError::Forbidden).code));
    }
    save_session(client, static_cast<uint64_t>(config_.session_ttl_s * 1000));
}

// `exp` passed: warn once and start the grace; at its end the connection closes with 4001.
void Hub::check_token(ClientState& client, uint64_t now_ms, int64_t now) {
    if (!client.token_expires_at) return;
    if (client.refresh_deadline_ms) {
        if (now_ms < *client.refresh_deadline_ms) return;
        metrics_.token_events.increment("refresh_timeout");
        log_.info("token_refresh_timeout", {{"client", client.id}});
        client.token_expires_at.reset();
        client.connection->close_for(ProtocolError::Unauthorized, "token expired and was not refreshed");
        return;
    }
    if (now < *client.token_expires_at) return;
    metrics_.token_events.increment("expired");
    client.refresh_deadline_ms = now_ms + static_cast<uint64_t>(config_.jwt_refresh_grace_s * 1000);
    send_error(client, std::nullopt, ProtocolError::TokenExpired);
}

void Hub::publish(std::string channel, std::string data, std::optional<std::string> key,
                  BackplaneCallback<PublishOutcome> done) {
    PublishRequest request;
    request.retention = config_.retention_for(channel);
    request.channel = std::move(channel);
    request.data = std::move(data);
    request.idempotency_key = std::move(key);
    request.published_at_us = host_.wall_clock_us();
    backplane_.publish(std::move(request), [this, done = std::move(done)](auto result) {
        if (result.ok() && !result.value().duplicate) metrics_.messages_published.Increment();
        done(std::move(result));
    });
}

void Hub::history(std::string channel, std::optional<uint64_t> since, std::optional<uint64_t> limit,
                  BackplaneCallback<HistorySlice> done) {
    HistoryRequest request;
    request.retention = config_.retention_for(channel);
    uint64_t cap = std::min<uint64_t>(config_.max_history_limit, request.retention.max_messages);
    request.limit = std::min<uint64_t>(limit.value_or(kDefaultHistoryLimit), cap);
    request.since = since;
    request.newest = !since.has_value();
    request.channel = std::move(channel);
    backplane_.history(std::move(request), std::move(done));
}

// ---- subscriptions --------------------------------------------------------------------------------------------

void Hub::start_subscription(ClientState& client, const std::string& name, std::optional<StreamPosition> since,
                             RequestId request_id) {
    auto [channel, created] = channels_.find_or_create(name, config_.retention_for(name));
    auto owned = std::make_unique<Subscription>();
    Subscription& sub = *owned;
    sub.id = next_subscription_id_++;
    sub.client = &client;
    sub.since = std::move(since);
    sub.request_id = request_id;
    if (sub.since) {
        sub.epoch = sub.since->epoch;
        sub.delivered = sub.written = sub.since->serial;
    }
    client.subscriptions.emplace(name, std::move(owned));
    channels_.add(*channel, sub);
    metrics_.subscriptions.Increment();
    if (created) {
        metrics_.channels.Increment();
        backplane_.subscribe(name, [this, name, generation = channel->generation](auto result) {
            ChannelState* ch = find_channel(name, generation);
            if (!ch) return;
            if (!result.ok()) {
                // Without delivery the channel cannot go live: tell its subscribers and drop them.
                log_.warn("backplane_subscribe_failed", {{"channel", name}, {"detail", result.error().detail}});
                std::vector<Subscription*> subs = ch->subscribers;
                for (Subscription* s : subs) {
                    ClientState& c = *s->client;
                    RequestId id = s->request_id;
                    remove_subscription(*s);
                    send_error(c, id, error_for(result.error()), "cannot subscribe: " + result.error().detail);
                }
                return;
            }
            sync_channel(*ch);
        });
    } else if (channel->phase == ChannelState::Phase::Live) {
        activate(sub);
    }
}

void Hub::sync_channel(ChannelState& channel) {
    channel.phase = ChannelState::Phase::Syncing;
    channel.repair_again = false;
    HistoryRequest request{channel.name, std::nullopt, 0, false, channel.retention};
    backplane_.history(std::move(request), [this, name = channel.name, generation = channel.generation](auto slice) {
        ChannelState* c = find_channel(name, generation);
        if (!c) return;
        if (!slice.ok()) {
            c->phase = ChannelState::Phase::Repairing;
            c->repair_again = true;  // learn the top on the next sweep
            return;
        }
        c->epoch = slice.value().epoch;
        c->last = slice.value().top;
        channel_ready(*c);
    });
}

void Hub::channel_ready(ChannelState& channel) {
    channel.phase = ChannelState::Phase::Live;
    // Waiting subscriptions start at the synced top first, so the deliveries held meanwhile reach them too.
    std::vector<Subscription*> waiting;
    for (Subscription* s : channel.subscribers)
        if (s->phase == Subscription::Phase::Waiting) waiting.push_back(s);
    for (Subscription* s : waiting) activate(*s);
    std::vector<Delivery> held;
    held.swap(channel.held);
    for (const auto& d : held) {
        if (channel.phase != ChannelState::Phase::Live) {
            channel.held.push_back(d);  // a gap started a repair: keep the rest for after it
            continue;
        }
        process_delivery(channel, d);
    }
}

void Hub::activate(Subscription& sub) {
    ChannelState& channel = *sub.channel;
    if (!sub.since) {
        go_live_from_top(sub, nullptr);
        return;
    }
    sub.phase = Subscription::Phase::Resuming;
    HistoryRequest request{channel.name, sub.since->serial, std::nullopt, false, channel.retention};
    backplane_.history(std::move(request),
                       [this, client_id = sub.client->id, name = channel.name, sub_id = sub.id](auto result) {
                           Subscription* s = find_subscription(client_id, name, sub_id);
                           if (!s) return;
                           if (!result.ok()) {
                               ClientState& c = *s->client;
                               RequestId id = s->request_id;
                               remove_subscription(*s);
                               send_error(c, id, error_for(result.error()), "cannot resume: " + result.error().detail);
                               return;
                           }
                           finish_resume(*s, result.value());
                       });
}

void Hub::go_live_from_top(Subscription& sub, const char* reason) {
    ChannelState& channel = *sub.channel;
    sub.phase = Subscription::Phase::Live;
    sub.epoch = channel.epoch;
    sub.delivered = sub.written = channel.last;
    sub.held.clear();  // everything held is at or below the channel's last serial
    sub.held_bytes = 0;
    if (reason) metrics_.resumes.increment(reason);
    SubscribedReply reply{sub.request_id, channel.name, channel.last, channel.epoch, false, 0, std::nullopt};
    if (reason) reply.reason = reason;
    send(*sub.client, encode_subscribed(reply));
}

void Hub::finish_resume(Subscription& sub, const HistorySlice& slice) {
    const StreamPosition& since = *sub.since;
    ChannelState& channel = *sub.channel;
    if (slice.epoch != since.epoch || slice.epoch != channel.epoch) return go_live_from_top(sub, "epoch_changed");
    if (since.serial > slice.top) return go_live_from_top(sub, "invalid_position");
    if (since.serial < slice.top && since.serial + 1 < slice.oldest) return go_live_from_top(sub, "history_expired");

    metrics_.resumes.increment("resumed");
    sub.phase = Subscription::Phase::Replaying;
    sub.epoch = slice.epoch;
    sub.replay.assign(slice.messages.begin(), slice.messages.end());
    SubscribedReply reply{sub.request_id, channel.name, slice.top, slice.epoch, true, slice.messages.size(), {}};
    send(*sub.client, encode_subscribed(reply));
    pump_replay(sub);
}

void Hub::pump_replay(Subscription& sub) {
    ClientLink& connection = *sub.client->connection;
    const uint64_t budget = config_.outbound_limit / 2;
    // Queue only while under half the outbound limit (always at least one frame when nothing is queued, so a
    // message larger than the budget still goes); the rest follows as writes complete (on_writable).
    auto fits = [&](size_t frame_size) {
        uint64_t queued = connection.queued_bytes();
        return queued == 0 || queued + frame_size <= budget;
    };
    while (!sub.replay.empty() && connection.is_open()) {
        const StoredMessage& m = sub.replay.front();
        if (m.serial > sub.delivered) {
            Frame frame = make_frame(encode_text_frame(encode_message(sub.channel->name, m.serial, m.data)));
            if (!fits(frame->size())) return;
            if (connection.enqueue(OutboundItem{std::move(frame), &sub, m.serial, m.published_at_us}))
                metrics_.messages_replayed.Increment();
            sub.delivered = m.serial;
        }
        sub.replay.pop_front();
    }
    // The seam: held live frames at or below the replayed top are duplicates; the rest drain at the same pace.
    while (!sub.held.empty() && connection.is_open()) {
        auto& [serial, frame] = sub.held.front();
        if (serial > sub.delivered) {
            if (!fits(frame->size())) return;
            connection.enqueue(OutboundItem{frame, &sub, serial, 0});
            sub.delivered = serial;
        }
        sub.held_bytes -= frame->size();
        sub.held.pop_front();
    }
    if (connection.is_open()) sub.phase = Subscription::Phase::Live;
}

void Hub::on_writable(ClientState& client) {
    for (auto& [name, sub] : client.subscriptions)
        if (sub->phase == Subscription::Phase::Replaying) pump_replay(*sub);
}

void Hub::remove_subscription(Subscription& sub) {
    ClientState& client = *sub.client;
    const std::string name = sub.channel->name;  // the channel may be erased below
    client.connection->forget(&sub);
    metrics_.subscriptions.Decrement();
    if (channels_.remove(sub)) {
        backplane_.unsubscribe(name);
        channels_.erase(name);
        metrics_.channels.Decrement();
    }
    client.subscriptions.erase(client.subscriptions.find(name));  // destroys sub
}

// ---- deliveries -----------------------------------------------------------------------------------------------

void Hub::on_delivery(const Delivery& delivery) {
    ChannelState* channel = channels_.find(delivery.channel);
    if (!channel) return;  // unsubscribed while the message was in flight
    if (channel->phase != ChannelState::Phase::Live) {
        channel->held.push_back(delivery);
        return;
    }
    process_delivery(*channel, delivery);
}

void Hub::process_delivery(ChannelState& channel, const Delivery& delivery) {
    if (delivery.epoch != channel.epoch) change_epoch(channel, delivery.epoch);
    const uint64_t serial = delivery.message.serial;
    if (serial <= channel.last) return;  // already forwarded (e.g. filled by a repair)
    if (serial == channel.last + 1) {
        forward(channel, delivery.message);
        return;
    }
    // A hole: never skip it silently. Hold this delivery and fill the hole from history first.
    channel.held.push_back(delivery);
    start_repair(channel);
}

void Hub::forward(ChannelState& channel, const StoredMessage& message) {
    channel.last = message.serial;
    if (channel.subscribers.empty()) return;
    // Serialised and framed once; every subscriber gets a reference.
    Frame frame = make_frame(encode_text_frame(encode_message(channel.name, message.serial, message.data)));
    uint64_t queued = 0;
    for (Subscription* sub : channel.subscribers) {
        if (sub->phase == Subscription::Phase::Live) {
            if (message.serial <= sub->delivered) continue;
            sub->delivered = message.serial;
            if (sub->client->connection->enqueue(OutboundItem{frame, sub, message.serial, message.published_at_us}))
                ++queued;
        } else {
            sub->held.emplace_back(message.serial, frame);
            sub->held_bytes += frame->size();
            // Held frames count against the same limit as queued ones: a resume cannot grow without bound.
            if (sub->held_bytes > config_.outbound_limit) sub->client->connection->close_for(ProtocolError::SlowConsumer);
        }
    }
    metrics_.messages_delivered.Increment(static_cast<double>(queued));
}

void Hub::start_repair(ChannelState& channel) {
    channel.phase = ChannelState::Phase::Repairing;
    channel.repair_again = false;
    if (channel.epoch.empty()) {
        sync_channel(channel);  // never learned its top: a repair from serial 0 would replay all history
        return;
    }
    HistoryRequest request{channel.name, channel.last, std::nullopt, false, channel.retention};
    backplane_.history(std::move(request), [this, name = channel.name, generation = channel.generation](auto result) {
        ChannelState* c = find_channel(name, generation);
        if (!c) return;
        if (!result.ok()) {
            c->repair_again = true;
            return;
        }
        finish_repair(*c, result.value());
    });
}

void Hub::finish_repair(ChannelState& channel, const HistorySlice& slice) {
    if (slice.epoch != channel.epoch) change_epoch(channel, slice.epoch);
    if (slice.oldest > channel.last + 1 && slice.top > channel.last) {
        // History no longer holds the missing serials: say so, then continue after them.
        uint64_t continue_after = std::min(slice.oldest - 1, slice.top);
        announce_discontinuity(channel, continue_after, "history_expired");
    }
    const uint64_t before = channel.last;
    for (const auto& m : slice.messages)
        if (m.serial == channel.last + 1) forward(channel, m);
    // A resync finds most channels complete: only a repair that filled something counts as a repaired gap.
    if (channel.last > before) metrics_.gaps_repaired.Increment();
    log_.debug("gap_repaired", {{"channel", channel.name}, {"last", channel.last}});
    channel_ready(channel);
}

void Hub::change_epoch(ChannelState& channel, const std::string& epoch) {
    channel.epoch = epoch;
    announce_discontinuity(channel, 0, "epoch_changed");
}

void Hub::announce_discontinuity(ChannelState& channel, uint64_t serial, const std::string& reason) {
    metrics_.discontinuities.increment(reason);
    channel.last = serial;
    std::string notice = encode_discontinuity(DiscontinuityNotice{channel.name, channel.epoch, serial, reason});
    Frame frame = make_frame(encode_text_frame(notice));
    for (Subscription* sub : channel.subscribers) {
        // Not yet answered with `subscribed`: its own history read decides (it compares epochs and `oldest`).
        if (sub->phase == Subscription::Phase::Waiting || sub->phase == Subscription::Phase::Resuming) continue;
        // A subscription mid-replay restarts live from here: the rest of its replay is superseded.
        sub->replay.clear();
        sub->held.clear();
        sub->held_bytes = 0;
        sub->phase = Subscription::Phase::Live;
        sub->epoch = channel.epoch;
        sub->delivered = sub->written = serial;
        sub->client->connection->enqueue(OutboundItem{frame});
    }
    log_.warn("discontinuity", {{"channel", channel.name}, {"serial", serial}, {"reason", reason}});
}

void Hub::on_availability(bool up) { log_.info(up ? "backplane_up" : "backplane_down", {{"kind", backplane_.kind()}}); }

void Hub::on_resync() {
    channels_.for_each([this](ChannelState& channel) {
        if (channel.phase == ChannelState::Phase::Live) start_repair(channel);
    });
}

// ---- sessions -------------------------------------------------------------------------------------------------

SessionRecord Hub::session_record(const ClientState& client) const {
    SessionRecord record;
    record.subject = client.subject;
    for (const auto& [name, sub] : client.subscriptions)
        record.positions.emplace(name, StreamPosition{sub->written, sub->epoch});
    return record;
}

void Hub::save_session(ClientState& client, uint64_t ttl_ms) {
    client.session_dirty = false;
    client.session_saved_ms = host_.now_ms();
    backplane_.save_session(client.session_id, session_record(client), ttl_ms, [this](auto result) {
        if (!result.ok()) log_.warn("session_save_failed", {{"detail", result.error().detail}});
    });
}

void Hub::sweep() {
    const uint64_t now = host_.now_ms();
    const auto sync_ms = static_cast<uint64_t>(config_.session_sync_interval_s * 1000);
    const auto ttl_ms = static_cast<uint64_t>(config_.session_ttl_s * 1000);
    const int64_t unix_now = now_unix();
    for (auto& [id, client] : clients_) {
        if (client->phase != ClientState::Phase::Connected) continue;
        check_token(*client, now, unix_now);
        bool due = client->session_dirty ? now - client->session_saved_ms >= sync_ms
                                         : now - client->session_saved_ms >= ttl_ms / 3;
        if (due) save_session(*client, ttl_ms);
    }
    channels_.for_each([this](ChannelState& channel) {
        if (channel.repair_again) start_repair(channel);
    });
}

}  // namespace herald
