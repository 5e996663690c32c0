// The channel index on its own: find/create/erase, swap-remove slots, removal while iterating, generations.
#include "broker/channel_index.h"

#include <algorithm>
#include <memory>
#include <set>
#include <vector>

#include <gtest/gtest.h>

#include "broker/hub.h"  // ClientState, for Subscription::on_written

namespace herald {
namespace {

class ChannelIndexTest : public ::testing::Test {
protected:
    Subscription& make_sub() {
        subs_.push_back(std::make_unique<Subscription>());
        subs_.back()->id = subs_.size();
        subs_.back()->client = &client_;
        return *subs_.back();
    }

    // Every subscriber's slot is its index in the channel's list.
    static void expect_slots_consistent(const ChannelState& channel) {
        for (size_t i = 0; i < channel.subscribers.size(); ++i) {
            EXPECT_EQ(channel.subscribers[i]->slot, i) << "subscriber id " << channel.subscribers[i]->id;
            EXPECT_EQ(channel.subscribers[i]->channel, &channel);
        }
    }

    static std::set<uint64_t> ids(const ChannelState& channel) {
        std::set<uint64_t> out;
        for (auto* s : channel.subscribers) out.insert(s->id);
        return out;
    }

    ChannelIndex index_;
    ClientState client_;
    std::vector<std::unique_ptr<Subscription>> subs_;
};

TEST_F(ChannelIndexTest, FindOrCreateCreatesOnceWithNameAndRetention) {
    EXPECT_EQ(index_.find("c"), nullptr);
    EXPECT_EQ(index_.size(), 0u);
    auto [channel, created] = index_.find_or_create("c", RetentionPolicy{10, 2'000});
    ASSERT_NE(channel, nullptr);
    EXPECT_TRUE(created);
    EXPECT_EQ(channel->name, "c");
    EXPECT_EQ(channel->retention.max_messages, 10u);
    EXPECT_EQ(channel->retention.ttl_ms, 2'000u);
    EXPECT_EQ(channel->phase, ChannelState::Phase::Subscribing);
    EXPECT_EQ(channel->last, 0u);
    EXPECT_TRUE(channel->subscribers.empty());

    auto [again, created_again] = index_.find_or_create("c", RetentionPolicy{99, 99});
    EXPECT_FALSE(created_again);
    EXPECT_EQ(again, channel);
    EXPECT_EQ(again->retention.max_messages, 10u) << "an existing channel keeps its retention";
    EXPECT_EQ(index_.find("c"), channel);
    EXPECT_EQ(index_.size(), 1u);

    auto [other, other_created] = index_.find_or_create("d", {});
    EXPECT_TRUE(other_created);
    EXPECT_NE(other, channel);
    EXPECT_NE(other->generation, channel->generation);
    EXPECT_EQ(index_.size(), 2u);
}

TEST_F(ChannelIndexTest, AddAssignsSlotsInOrder) {
    auto* channel = index_.find_or_create("c", {}).first;
    Subscription& a = make_sub();
    Subscription& b = make_sub();
    Subscription& c = make_sub();
    index_.add(*channel, a);
    index_.add(*channel, b);
    index_.add(*channel, c);
    ASSERT_EQ(channel->subscribers.size(), 3u);
    EXPECT_EQ(channel->subscribers, (std::vector<Subscription*>{&a, &b, &c}));
    expect_slots_consistent(*channel);
}

TEST_F(ChannelIndexTest, RemoveSwapsTheLastIntoTheFreedSlot) {
    auto* channel = index_.find_or_create("c", {}).first;
    Subscription& a = make_sub();
    Subscription& b = make_sub();
    Subscription& c = make_sub();
    Subscription& d = make_sub();
    for (Subscription* s : {&a, &b, &c, &d}) index_.add(*channel, *s);

    EXPECT_FALSE(index_.remove(b));
    EXPECT_EQ(channel->subscribers, (std::vector<Subscription*>{&a, &d, &c}));
    EXPECT_EQ(d.slot, 1u);
    expect_slots_consistent(*channel);

    EXPECT_FALSE(index_.remove(c)) << "removing the last element";
    EXPECT_EQ(channel->subscribers, (std::vector<Subscription*>{&a, &d}));
    expect_slots_consistent(*channel);

    EXPECT_FALSE(index_.remove(a)) << "removing the first element";
    EXPECT_EQ(channel->subscribers, (std::vector<Subscription*>{&d}));
    expect_slots_consistent(*channel);

    EXPECT_TRUE(index_.remove(d)) << "true once the channel has no subscriber left";
    EXPECT_TRUE(channel->subscribers.empty());
    EXPECT_EQ(index_.find("c"), channel) << "remove() leaves erasing to the caller";
}

TEST_F(ChannelIndexTest, RemoveWhileIteratingASnapshotVisitsEverySubscriberOnce) {
    // The hub's pattern: copy the list, then remove as it goes (e.g. a failed backplane subscribe drops them all).
    auto* channel = index_.find_or_create("c", {}).first;
    for (int i = 0; i < 7; ++i) index_.add(*channel, make_sub());
    std::vector<Subscription*> snapshot = channel->subscribers;
    std::vector<uint64_t> visited;
    size_t became_empty = 0;
    for (Subscription* s : snapshot) {
        visited.push_back(s->id);
        if (index_.remove(*s)) ++became_empty;
        expect_slots_consistent(*channel);
    }
    std::sort(visited.begin(), visited.end());
    EXPECT_EQ(visited, (std::vector<uint64_t>{1, 2, 3, 4, 5, 6, 7}));
    EXPECT_EQ(became_empty, 1u) << "only the final remove reports an empty channel";
    EXPECT_TRUE(channel->subscribers.empty());
}

TEST_F(ChannelIndexTest, RemovingTheCurrentSubscriberDuringBackwardIndexIterationIsSafe) {
    // Fan-out that lets a subscriber leave mid-iteration walks the indices from the end: swap-remove only moves
    // an element that was already visited.
    auto* channel = index_.find_or_create("c", {}).first;
    for (int i = 0; i < 6; ++i) index_.add(*channel, make_sub());
    std::vector<uint64_t> visited;
    for (size_t i = channel->subscribers.size(); i-- > 0;) {
        Subscription* s = channel->subscribers[i];
        visited.push_back(s->id);
        if (s->id % 2 == 0) index_.remove(*s);  // even ids leave while being visited
    }
    std::sort(visited.begin(), visited.end());
    EXPECT_EQ(visited, (std::vector<uint64_t>{1, 2, 3, 4, 5, 6}));
    EXPECT_EQ(ids(*channel), (std::set<uint64_t>{1, 3, 5}));
    expect_slots_consistent(*channel);
}

TEST_F(ChannelIndexTest, EraseThenFindOrCreateGivesANewerGeneration) {
    auto [first, created] = index_.find_or_create("c", {});
    ASSERT_TRUE(created);
    const uint64_t generation = first->generation;
    index_.erase("c");
    EXPECT_EQ(index_.find("c"), nullptr);
    EXPECT_EQ(index_.size(), 0u);
    auto [second, created_again] = index_.find_or_create("c", {});
    EXPECT_TRUE(created_again);
    EXPECT_GT(second->generation, generation)
        << "a callback holding (name, old generation) must not find the new channel";
    EXPECT_EQ(second->phase, ChannelState::Phase::Subscribing) << "fresh state";
    index_.erase("missing");  // erasing an unknown name is harmless
    EXPECT_EQ(index_.size(), 1u);
}

TEST_F(ChannelIndexTest, ForEachVisitsEveryChannel) {
    index_.find_or_create("a", {});
    index_.find_or_create("b", {});
    index_.find_or_create("c", {});
    std::set<std::string> seen;
    index_.for_each([&](ChannelState& ch) { seen.insert(ch.name); });
    EXPECT_EQ(seen, (std::set<std::string>{"a", "b", "c"}));
}

TEST_F(ChannelIndexTest, OnWrittenKeepsTheHighestSerialAndMarksTheSessionDirty) {
    Subscription& s = make_sub();
    s.written = 4;
    client_.session_dirty = false;
    s.on_written(6);
    EXPECT_EQ(s.written, 6u);
    EXPECT_TRUE(client_.session_dirty);
    s.on_written(5);
    EXPECT_EQ(s.written, 6u) << "written never moves back";
}

}  // namespace
}  // namespace herald
