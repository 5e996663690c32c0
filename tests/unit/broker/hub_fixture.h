// The hub test fixture: a Hub over a fake backplane, fake links and a hand-driven clock. Shared by hub_test.cpp
// (subprotocol semantics) and hub_security_test.cpp (authentication and abuse limits).
#pragma once
#include <cstdint>
#include <deque>
#include <limits>
#include <memory>
#include <regex>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "broker/hub.h"
#include "tests/unit/broker/fake_backplane.h"
#include "tests/unit/broker/fake_link.h"

namespace herald::testing {

using nlohmann::json;
using Serials = std::vector<uint64_t>;

class FakeHost final : public HubHost {
public:
    uint64_t now = 5'000'000;
    uint64_t wall = 1'764'000'000'000'000;
    uint64_t now_ms() const override { return now; }
    uint64_t wall_clock_us() const override { return wall; }
};

struct Peer {
    explicit Peer(uint64_t limit) : link(limit) {}
    FakeLink link;
    ClientState* state = nullptr;
    std::string session;
};

// Serials of the `message` frames for `channel`, in arrival order.
inline Serials message_serials(const std::vector<json>& got, const std::string& channel = "c") {
    Serials out;
    for (const auto& j : got)
        if (j.value("op", "") == "message" && j.value("channel", "") == channel) out.push_back(j["serial"].get<uint64_t>());
    return out;
}

inline std::vector<std::string> ops(const std::vector<json>& got) {
    std::vector<std::string> out;
    for (const auto& j : got) out.push_back(j.value("op", "?"));
    return out;
}

inline std::string subscribe_cmd(int id, const std::string& channel) {
    return R"({"op":"subscribe","id":)" + std::to_string(id) + R"(,"channel":")" + channel + R"("})";
}

inline std::string subscribe_since_cmd(int id, const std::string& channel, uint64_t serial, const std::string& epoch) {
    return R"({"op":"subscribe","id":)" + std::to_string(id) + R"(,"channel":")" + channel +
           R"(","since":{"serial":)" + std::to_string(serial) + R"(,"epoch":")" + epoch + R"("}})";
}

inline std::string message_text(const std::string& channel, uint64_t serial) {
    return R"({"op":"message","channel":")" + channel + R"(","serial":)" + std::to_string(serial) +
           R"(,"data":{"n":)" + std::to_string(serial) + "}}";
}

inline bool is_session_id(const std::string& s) { return std::regex_match(s, std::regex("^[0-9a-f]{32}$")); }

class HubTest : public ::testing::Test {
protected:
    HubTest() { config_.node_name = "n1"; }

    Hub& hub() {
        if (!hub_) hub_ = std::make_unique<Hub>(config_, log_, metrics_, backplane_, host_);
        return *hub_;
    }

    Peer& attach(uint64_t limit = std::numeric_limits<uint64_t>::max()) {
        peers_.push_back(std::make_unique<Peer>(limit));
        Peer& p = *peers_.back();
        p.state = hub().attach(p.link);
        return p;
    }

    void say(Peer& p, std::string_view text) { hub().on_text(*p.state, text); }

    // A peer that sent connect and got `connected`; its reply is consumed.
    Peer& connected_peer(uint64_t limit = std::numeric_limits<uint64_t>::max()) {
        Peer& p = attach(limit);
        say(p, R"({"op":"connect","id":1})");
        auto got = p.link.take_new();
        EXPECT_EQ(got.size(), 1u);
        if (!got.empty()) p.session = got[0].value("session", "");
        return p;
    }

    // Subscribes `p` to a channel new on this node and brings the channel live at `top`.
    void subscribe_live(Peer& p, const std::string& channel, const std::string& epoch, uint64_t top, int id = 2) {
        say(p, subscribe_cmd(id, channel));
        SubscribeCall* sub = backplane_.pending_subscribe(channel);
        ASSERT_NE(sub, nullptr) << "no backplane.subscribe for " << channel;
        sub->complete(Unit{});
        HistoryCall* sync = backplane_.pending_history(channel);
        ASSERT_NE(sync, nullptr) << "no sync history read for " << channel;
        sync->complete(slice(epoch, top, 1));
        auto got = p.link.take_new();
        ASSERT_EQ(ops(got), std::vector<std::string>{"subscribed"});
        ASSERT_EQ(got[0]["serial"], top);
    }

    // Subscribes `p` to a channel that is already live on this node.
    void join_live(Peer& p, const std::string& channel, int id = 2) {
        say(p, subscribe_cmd(id, channel));
        auto got = p.link.take_new();
        ASSERT_EQ(ops(got), std::vector<std::string>{"subscribed"});
    }

    Config config_;
    Logger log_{LogLevel::Error};
    Metrics metrics_;
    FakeBackplane backplane_;
    FakeHost host_;
    std::deque<std::unique_ptr<Peer>> peers_;
    std::unique_ptr<Hub> hub_;  // last: destroyed before the links and the backplane it points at
};

}  // namespace herald::testing
