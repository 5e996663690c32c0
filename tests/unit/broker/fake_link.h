// A ClientLink in memory for hub tests: records every frame the hub queues (decoded back to its JSON text), keeps a
// queue with a byte limit like Connection's, and lets the test "write" queued items with drain().
#pragma once
#include <cstdint>
#include <deque>
#include <limits>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "broker/client_link.h"
#include "protocol/frame_writer.h"

// Failing assertions print JSON as text (gtest would otherwise walk a json value as a container).
namespace nlohmann {
inline void PrintTo(const json& value, std::ostream* os) { *os << value.dump(); }
}  // namespace nlohmann

namespace herald::testing {

// The JSON text inside a server text frame: the 2, 4 or 10-byte header (never masked) is stripped.
inline std::string text_of_frame(const std::string& frame) {
    if (frame.size() < 2 || static_cast<uint8_t>(frame[0]) != 0x81) {
        ADD_FAILURE() << "expected a final text frame (0x81), got first byte "
                      << (frame.empty() ? -1 : static_cast<int>(static_cast<uint8_t>(frame[0])));
        return {};
    }
    const uint8_t length7 = static_cast<uint8_t>(frame[1]) & 0x7F;
    const size_t header = length7 < 126 ? 2 : length7 == 126 ? 4 : 10;
    EXPECT_EQ(static_cast<uint8_t>(frame[1]) & 0x80, 0) << "server frames are never masked";
    EXPECT_EQ(header, frame_header_size(frame.size() - header)) << "header is not the shortest form";
    return frame.substr(header);
}

class FakeLink final : public ClientLink {
public:
    struct Sent {
        Frame frame;
        const WriteObserver* observer_at_enqueue = nullptr;  // for assertions only; never called
        uint64_t serial = 0;
        std::string text;    // the JSON payload
        nlohmann::json json;
    };

    // `limit`: queued bytes beyond which enqueue refuses and the link closes as a slow consumer (as Connection does).
    explicit FakeLink(uint64_t limit = std::numeric_limits<uint64_t>::max()) : limit_(limit) {}

    // ClientLink
    bool enqueue(OutboundItem item) override {
        if (!open) return false;
        if (queued_ + item.frame->size() > max_attempted) max_attempted = queued_ + item.frame->size();
        if (queued_ + item.frame->size() > limit_) {
            close_for(ProtocolError::SlowConsumer, "outbound limit");
            return false;
        }
        std::string text = text_of_frame(*item.frame);
        nlohmann::json json = nlohmann::json::parse(text, nullptr, false);
        EXPECT_FALSE(json.is_discarded()) << "frame payload is not JSON: " << text;
        sent.push_back(Sent{item.frame, item.observer, item.serial, std::move(text), std::move(json)});
        queued_ += item.frame->size();
        queue_.push_back(std::move(item));
        if (queued_ > max_queued) max_queued = queued_;
        return true;
    }
    bool send_text(std::string_view json) override {
        if (!open) return false;
        return enqueue(OutboundItem{make_frame(encode_text_frame(json))});
    }
    uint64_t queued_bytes() const override { return queued_; }
    bool is_open() const override { return open; }
    void forget(const WriteObserver* observer) override {
        for (auto& item : queue_)
            if (item.observer == observer) item.observer = nullptr;
    }
    void pause_reading() override {
        paused = true;
        ++pause_count;
    }
    void resume_reading() override { paused = false; }
    void mark_connected() override { connected = true; }
    void close_for(ProtocolError error, std::string_view detail = {}) override {
        if (!open) return;
        open = false;
        closed_with = error;
        close_detail = std::string(detail);
    }

    // Test side: "writes" up to `count` queued items, oldest first, telling their observers. Returns how many.
    size_t drain(size_t count = std::numeric_limits<size_t>::max()) {
        size_t done = 0;
        while (done < count && !queue_.empty()) {
            OutboundItem item = std::move(queue_.front());
            queue_.pop_front();
            queued_ -= item.frame->size();
            if (item.observer) item.observer->on_written(item.serial);
            ++done;
        }
        return done;
    }
    size_t queued_items() const { return queue_.size(); }

    // Everything received since the last take_new(), as JSON.
    std::vector<nlohmann::json> take_new() {
        std::vector<nlohmann::json> out;
        for (; taken_ < sent.size(); ++taken_) out.push_back(sent[taken_].json);
        return out;
    }
    std::vector<nlohmann::json> all() const {
        std::vector<nlohmann::json> out;
        for (const auto& s : sent) out.push_back(s.json);
        return out;
    }

    std::vector<Sent> sent;
    bool open = true;
    bool paused = false;
    int pause_count = 0;
    bool connected = false;
    std::optional<ProtocolError> closed_with;
    std::string close_detail;
    uint64_t max_queued = 0;     // highest queued_bytes() after an accepted enqueue
    uint64_t max_attempted = 0;  // highest queued_bytes() an enqueue asked for, refused or not

private:
    uint64_t limit_;
    uint64_t queued_ = 0;
    std::deque<OutboundItem> queue_;
    size_t taken_ = 0;
};

}  // namespace herald::testing
