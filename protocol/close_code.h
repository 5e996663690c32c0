// WebSocket close codes Herald sends or accepts (RFC 6455 section 7.4 plus Herald's 4xxx application codes).
#pragma once
#include <cstdint>
#include <string_view>

namespace herald {

enum class CloseCode : uint16_t {
    Normal = 1000,
    GoingAway = 1001,        // node shutting down or draining
    ProtocolError = 1002,
    UnsupportedData = 1003,  // binary message on a text-only subprotocol
    NoStatus = 1005,         // never sent; stands for "close frame without a code"
    InvalidPayload = 1007,   // text that is not UTF-8
    PolicyViolation = 1008,  // e.g. no connect within the deadline, heartbeat timeout
    MessageTooBig = 1009,
    InternalError = 1011,
    Unauthorized = 4001,
    SlowConsumer = 4008,
    RateLimited = 4029,
};

// True for a code a peer may legitimately put in a close frame (RFC 6455 7.4.1/7.4.2).
constexpr bool is_valid_received_close_code(uint16_t code) {
    if (code < 1000 || code >= 5000) return false;
    if (code >= 3000) return true;
    switch (code) {
        case 1000: case 1001: case 1002: case 1003: case 1007: case 1008:
        case 1009: case 1010: case 1011: case 1012: case 1013: case 1014:
            return true;
        default:
            return false;
    }
}

}  // namespace herald
