// The channel index: channel name → the node's state for it (epoch, last forwarded serial, subscribers). A plain
// map of small structs; subscribers are a vector with swap-remove, each subscription knowing its slot.
#pragma once
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "backplane/backplane.h"
#include "broker/outbound_queue.h"
#include "protocol/commands.h"

namespace herald {

struct ClientState;
struct ChannelState;

struct Subscription final : WriteObserver {
    enum class Phase {
        Waiting,    // the channel is not live on this node yet
        Resuming,   // a history read for the replay is in flight
        Replaying,  // replay messages are being queued as the connection drains
        Live,
    };
    uint64_t id = 0;
    ClientState* client = nullptr;
    ChannelState* channel = nullptr;
    size_t slot = 0;  // index in channel->subscribers
    Phase phase = Phase::Waiting;
    std::optional<StreamPosition> since;
    RequestId request_id;  // empty for a subscription restored from a session
    std::string epoch;     // epoch of `delivered` / `written`
    uint64_t delivered = 0;  // last serial queued to the connection
    uint64_t written = 0;    // last serial handed to the kernel: what the session record vouches for
    std::deque<StoredMessage> replay;   // history still to queue (paced by the outbound limit)
    std::deque<std::pair<uint64_t, Frame>> held;  // live frames that arrived before the replay finished
    uint64_t held_bytes = 0;

    void on_written(uint64_t serial) override;
};

struct ChannelState {
    enum class Phase {
        Subscribing,  // waiting for the backplane's subscribe confirmation
        Syncing,      // learning epoch and top serial
        Live,
        Repairing,    // a gap is being filled from history; deliveries are held
    };
    std::string name;
    uint64_t generation = 0;
    Phase phase = Phase::Subscribing;
    std::string epoch;
    uint64_t last = 0;  // last serial forwarded to subscribers
    RetentionPolicy retention;
    std::vector<Subscription*> subscribers;
    std::vector<Delivery> held;  // deliveries that arrived while not Live
    bool repair_again = false;   // a repair failed (backplane down): retry on the next sweep
};

class ChannelIndex {
public:
    ChannelState* find(const std::string& name);
    // Returns the channel and whether it was created by this call.
    std::pair<ChannelState*, bool> find_or_create(const std::string& name, const RetentionPolicy& retention);
    void add(ChannelState& channel, Subscription& sub);
    // Removes the subscription; true when the channel has no subscribers left (the caller then erases it).
    bool remove(Subscription& sub);
    void erase(const std::string& name);

    size_t size() const { return channels_.size(); }
    template <typename F>
    void for_each(F&& f) {
        for (auto& [name, channel] : channels_) f(*channel);
    }

private:
    std::unordered_map<std::string, std::unique_ptr<ChannelState>> channels_;
    uint64_t next_generation_ = 1;
};

}  // namespace herald
