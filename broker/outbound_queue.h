// A connection's outbound queue: references to shared, pre-framed buffers, counted in bytes, written in batches
// with one vectored uv_write. Queuing a fan-out message is a pointer push; nothing is copied per subscriber.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <uv.h>

namespace herald {

using Frame = std::shared_ptr<const std::string>;  // WebSocket header + payload, ready for the wire

inline Frame make_frame(std::string bytes) { return std::make_shared<const std::string>(std::move(bytes)); }

// Told when a message frame it queued has been handed to the kernel: the session position a node can vouch for.
class WriteObserver {
public:
    virtual void on_written(uint64_t serial) = 0;

protected:
    ~WriteObserver() = default;
};

struct OutboundItem {
    Frame frame;
    WriteObserver* observer = nullptr;  // set for channel messages
    uint64_t serial = 0;
    uint64_t published_at_us = 0;  // 0 for replies and control frames
};

struct WriteCompletion {
    uint64_t bytes = 0;
    uint64_t oldest_published_at_us = 0;  // 0 when the batch held no message frame
};

class OutboundQueue {
public:
    void push(OutboundItem item);
    // Bytes queued and in flight: what the outbound limit is checked against.
    uint64_t queued_bytes() const { return pending_bytes_ + in_flight_bytes_; }
    bool has_pending() const { return !pending_.empty(); }
    bool writing() const { return !in_flight_.empty(); }

    // Moves every pending item into the in-flight batch and describes it as buffers for uv_write.
    std::vector<uv_buf_t>& begin_write();
    // The first `bytes` of the in-flight batch were written synchronously: drop them from the buffer list.
    void advance(size_t bytes);
    // The in-flight batch reached the kernel: notifies observers and releases the frames.
    WriteCompletion complete_write();
    // Drops what is not yet in flight (slow consumer: the connection is closing, nothing more will be sent).
    void drop_pending();
    // An observer is going away: its queued items stay, but it is not called for them.
    void forget(const WriteObserver* observer);
    // Releases capacity when idle, so an idle connection keeps no buffer.
    void shrink_idle();

private:
    std::vector<OutboundItem> pending_;
    std::vector<OutboundItem> in_flight_;
    std::vector<uv_buf_t> bufs_;
    uint64_t pending_bytes_ = 0;
    uint64_t in_flight_bytes_ = 0;
};

}  // namespace herald
