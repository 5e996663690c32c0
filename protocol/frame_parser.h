// Incremental RFC 6455 frame parser for client-to-server frames; owns no socket.
// Accepts any split of the byte stream, validates text as UTF-8 as it arrives, and reports the close code a
// peer has earned. Per connection it keeps only a few header bytes, the part of a frame not yet complete, and
// the fragments of an unfinished message.
#pragma once
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "protocol/close_code.h"
#include "protocol/errors.h"
#include "protocol/result.h"
#include "protocol/utf8.h"

namespace herald {

struct FrameLimits {
    size_t max_message_size = 64 * 1024;  // payload bytes of one (reassembled) message; over it → 1009
};

// What the sink returns: keep parsing, or stop after this event (e.g. the connection is closing).
enum class SinkResult { Continue, Stop };

class FrameSink {
public:
    virtual ~FrameSink() = default;
    // A complete, UTF-8-valid text message. The view is valid only during the call.
    virtual SinkResult on_text(std::string_view message) = 0;
    virtual SinkResult on_ping(std::string_view payload) = 0;
    virtual SinkResult on_pong(std::string_view payload) = 0;
    // A valid close frame. code is NoStatus when the frame had no payload.
    virtual SinkResult on_close(CloseCode code, std::string_view reason) = 0;
};

struct FrameError {
    ProtocolError error;  // FrameProtocol, InvalidUtf8, BinaryMessage or FrameTooBig (see errors.h for the code)
    size_t offset;        // offset within the bytes given to the failing feed() call
    std::string_view detail;  // static text for logs, e.g. "unmasked client frame"
};

class FrameParser {
public:
    explicit FrameParser(FrameLimits limits);

    // Consumes as much of `bytes` as it can (payloads are unmasked in place, hence the mutable span) and calls
    // `sink` for each complete event. Returns the bytes consumed — all of them unless the sink said Stop — or the
    // error the peer earned. Errors are sticky: once failed, every later call returns the same error.
    // After a close frame has been delivered, nothing more is parsed (returns the bytes consumed up to it).
    Result<size_t, FrameError> feed(std::span<char> bytes, FrameSink& sink);

    bool closed() const { return closed_; }
    // Memory held between reads (partial header/payload and reassembly buffer), for tests and metrics.
    size_t buffered_bytes() const;
    // Releases buffer capacity when nothing is pending, so an idle connection costs only this object.
    void shrink_idle();
    // Capacity currently reserved by the internal buffers (what shrink_idle() can give back), for tests and metrics.
    size_t buffer_capacity() const;

private:
    // Checks the header byte just stored at header_[header_len_ - 1]; `offset` is its position in the feed.
    std::optional<FrameError> check_header_byte(size_t offset) const;
    size_t header_size() const;
    uint64_t declared_length() const;
    void begin_frame();
    Result<size_t, FrameError> failed(ProtocolError error, size_t offset, std::string_view detail);

    FrameLimits limits_;
    std::optional<FrameError> error_;
    bool closed_ = false;
    // Implementation state (header spill, current frame, message reassembly, UTF-8 state) is private to the .cpp.
    uint8_t header_[14] = {};
    uint8_t header_len_ = 0;
    bool in_frame_ = false;
    bool fin_ = false;
    uint8_t opcode_ = 0;
    uint8_t mask_[4] = {};
    uint64_t remaining_ = 0;
    uint64_t mask_offset_ = 0;
    bool in_message_ = false;  // a fragmented data message is open
    std::string message_;      // reassembled payload of the current data message (only when fragmented/split)
    std::string control_;      // payload of the current control frame when split across reads
    Utf8Validator utf8_;
};

}  // namespace herald
