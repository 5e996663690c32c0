// What the hub needs from a client connection. Connection implements it over a socket; tests implement it in
// memory, so the subprotocol's semantics are tested without a loop.
#pragma once
#include <cstdint>
#include <string_view>

#include "broker/outbound_queue.h"
#include "protocol/errors.h"

namespace herald {

class ClientLink {
public:
    // Queues one shared frame; false when it was not queued (closing, or over the limit: the link then closes
    // itself as a slow consumer).
    virtual bool enqueue(OutboundItem item) = 0;
    // Frames and queues one reply.
    virtual bool send_text(std::string_view json) = 0;
    virtual uint64_t queued_bytes() const = 0;
    virtual bool is_open() const = 0;
    // Queued items of a subscription that is going away must no longer report to it.
    virtual void forget(const WriteObserver* observer) = 0;
    virtual void pause_reading() = 0;
    virtual void resume_reading() = 0;
    virtual void mark_connected() = 0;
    virtual void close_for(ProtocolError error, std::string_view detail = {}) = 0;

protected:
    ~ClientLink() = default;
};

}  // namespace herald
