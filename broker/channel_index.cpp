// Channel index operations; O(1) add and remove per subscription.
#include "broker/channel_index.h"

#include "broker/hub.h"

namespace herald {

void Subscription::on_written(uint64_t serial) {
    if (serial > written) written = serial;
    client->session_dirty = true;
}

ChannelState* ChannelIndex::find(const std::string& name) {
    auto it = channels_.find(name);
    return it == channels_.end() ? nullptr : it->second.get();
}

std::pair<ChannelState*, bool> ChannelIndex::find_or_create(const std::string& name, const RetentionPolicy& retention) {
    auto [it, created] = channels_.try_emplace(name);
    if (created) {
        it->second = std::make_unique<ChannelState>();
        it->second->name = name;
        it->second->generation = next_generation_++;
        it->second->retention = retention;
    }
    return {it->second.get(), created};
}

void ChannelIndex::add(ChannelState& channel, Subscription& sub) {
    sub.channel = &channel;
    sub.slot = channel.subscribers.size();
    channel.subscribers.push_back(&sub);
}

bool ChannelIndex::remove(Subscription& sub) {
    auto& list = sub.channel->subscribers;
    Subscription* last = list.back();
    list[sub.slot] = last;
    last->slot = sub.slot;
    list.pop_back();
    return list.empty();
}

void ChannelIndex::erase(const std::string& name) { channels_.erase(name); }

}  // namespace herald
