// Fuzz target for protocol/frame_parser.cpp (and the incremental UTF-8 validator under it): arbitrary client bytes,
// fed whole and again in reads whose sizes the first input byte chooses; both runs must agree event for event.
//
// Input: [split control][options][stream...]
//   split control — see Splitter (fuzz_support.h): one byte at a time, small, medium or mixed reads with empties;
//   options       — bits 0-2 pick max_message_size from kLimits, bits 3-7 say after which events (index mod 5)
//                   the sink answers Stop, so the caller has to feed the rest of a read again.
// Invariants beyond the sanitizers: consumed <= bytes given; an error is reported at a byte of the failing read
// and is sticky; events carry only what a valid frame can (UTF-8 text within the limit, control payloads <= 125,
// a valid close code and UTF-8 reason); nothing after a close; buffered bytes stay bounded by the limit; any
// split gives the same events, the same error at the same absolute offset, and the same total consumed.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_support.h"
#include "protocol/frame_parser.h"
#include "protocol/utf8.h"

namespace {

using herald::CloseCode;
using herald::FrameLimits;
using herald::FrameParser;
using herald::ProtocolError;
using herald::SinkResult;
using herald::fuzz::Splitter;

constexpr size_t kLimits[8] = {0, 1, 16, 125, 1000, 4096, 64 * 1024, 1 << 20};

// Close codes a peer may send (RFC 6455 7.4.1/7.4.2), restated here rather than read from close_code.h.
bool reference_close_code(uint16_t code) {
    if (code >= 3000 && code <= 4999) return true;
    return code == 1000 || code == 1001 || code == 1002 || code == 1003 || (code >= 1007 && code <= 1014);
}

struct Event {
    char kind;  // 't' text, 'i' ping, 'o' pong, 'c' close
    uint16_t code;
    std::string payload;
    bool operator==(const Event&) const = default;
};

class CheckingSink : public herald::FrameSink {
public:
    CheckingSink(size_t max_message, uint8_t stop_mask) : max_message_(max_message), stop_mask_(stop_mask) {}

    SinkResult on_text(std::string_view message) override {
        FUZZ_CHECK(message.size() <= max_message_, "a text message within max_message_size");
        FUZZ_CHECK(herald::fuzz::reference_utf8(message), "text messages are valid UTF-8");
        return record('t', 0, message);
    }
    SinkResult on_ping(std::string_view payload) override {
        FUZZ_CHECK(payload.size() <= 125, "a ping payload of at most 125 bytes");
        return record('i', 0, payload);
    }
    SinkResult on_pong(std::string_view payload) override {
        FUZZ_CHECK(payload.size() <= 125, "a pong payload of at most 125 bytes");
        return record('o', 0, payload);
    }
    SinkResult on_close(CloseCode code, std::string_view reason) override {
        const auto value = static_cast<uint16_t>(code);
        if (code == CloseCode::NoStatus) {
            FUZZ_CHECK(reason.empty(), "a close without status has no reason");
        } else {
            FUZZ_CHECK(reference_close_code(value), "a close code a peer may send");
            FUZZ_CHECK(reason.size() <= 123, "a close reason of at most 123 bytes");
            FUZZ_CHECK(herald::fuzz::reference_utf8(reason), "a UTF-8 close reason");
        }
        const SinkResult result = record('c', value, reason);
        closed = true;
        return result;
    }

    std::vector<Event> events;
    bool closed = false;
    bool last_stop = false;

private:
    SinkResult record(char kind, uint16_t code, std::string_view payload) {
        FUZZ_CHECK(!closed, "no event after a close");
        events.push_back(Event{kind, code, std::string(payload)});
        const size_t index = events.size() - 1;
        last_stop = ((stop_mask_ >> (index % 5)) & 1u) != 0;
        return last_stop ? SinkResult::Stop : SinkResult::Continue;
    }

    size_t max_message_;
    uint8_t stop_mask_;
};

struct Outcome {
    std::vector<Event> events;
    bool failed = false;
    ProtocolError error{};
    size_t error_at = 0;  // absolute offset in the stream
    std::string detail;
    size_t consumed = 0;  // absolute bytes consumed (up to the close frame when closed)
    bool closed = false;
};

bool same_error(const herald::FrameError& a, const herald::FrameError& b) {
    return a.error == b.error && a.offset == b.offset && a.detail == b.detail;
}

// Feeds `stream` to a fresh parser in the reads `splitter` chooses (all at once without one). Each read is copied to
// a buffer of exactly its size so that a read past it is an ASan report, and the parser may unmask it in place.
Outcome run(std::string_view stream, size_t max_message, uint8_t stop_mask, std::optional<Splitter> splitter) {
    FrameParser parser(FrameLimits{max_message});
    CheckingSink sink(max_message, stop_mask);
    Outcome out;
    const size_t bound = max_message + 125 + 14;  // message + control payload + header spill
    size_t pos = 0;
    size_t reads = 0;
    bool done = false;
    while (!done && (pos < stream.size() || reads == 0)) {
        const size_t piece = splitter ? splitter->next(stream.size() - pos) : stream.size() - pos;
        std::vector<char> buffer(stream.begin() + static_cast<std::ptrdiff_t>(pos),
                                 stream.begin() + static_cast<std::ptrdiff_t>(pos + piece));
        size_t offset = 0;  // within this read: the sink may stop the parser before its end
        while (true) {
            const std::span<char> bytes(buffer.data() + offset, piece - offset);
            const size_t events_before = sink.events.size();
            auto result = parser.feed(bytes, sink);
            if (!result) {
                const herald::FrameError error = result.error();
                FUZZ_CHECK(error.offset < bytes.size(), "an error is reported at a byte of the failing read");
                FUZZ_CHECK(!error.detail.empty(), "an error says what was wrong");
                FUZZ_CHECK(error.error == ProtocolError::FrameProtocol || error.error == ProtocolError::InvalidUtf8 ||
                               error.error == ProtocolError::BinaryMessage || error.error == ProtocolError::FrameTooBig,
                           "a frame-level error");
                FUZZ_CHECK(!sink.closed, "no error after a close");
                // Sticky: the same read again, an empty read and a fresh byte all return the same error.
                const size_t events_at_error = sink.events.size();
                char extra = '\x81';
                auto again = parser.feed(bytes, sink);
                auto empty = parser.feed(std::span<char>(), sink);
                auto more = parser.feed(std::span<char>(&extra, 1), sink);
                FUZZ_CHECK(!again && same_error(again.error(), error), "the error is sticky (same read)");
                FUZZ_CHECK(!empty && same_error(empty.error(), error), "the error is sticky (empty read)");
                FUZZ_CHECK(!more && same_error(more.error(), error), "the error is sticky (more bytes)");
                FUZZ_CHECK(sink.events.size() == events_at_error, "no event after the error");
                out.failed = true;
                out.error = error.error;
                out.error_at = pos + offset + error.offset;
                out.detail.assign(error.detail);
                done = true;
                break;
            }
            const size_t consumed = *result;
            FUZZ_CHECK(consumed <= bytes.size(), "consumed <= bytes given");
            FUZZ_CHECK(parser.buffered_bytes() <= bound, "buffered bytes bounded by the message limit");
            out.consumed += consumed;
            if (parser.closed()) {
                FUZZ_CHECK(sink.closed, "closed() only after on_close");
                char extra = '\x81';
                const size_t events_before_more = sink.events.size();
                auto more = parser.feed(std::span<char>(&extra, 1), sink);
                FUZZ_CHECK(more && *more == 0, "nothing is parsed after a close");
                FUZZ_CHECK(sink.events.size() == events_before_more, "no event after a close");
                done = true;
                break;
            }
            FUZZ_CHECK(!sink.closed, "on_close means closed()");
            if (consumed == bytes.size()) break;
            // Less than everything only when the sink said Stop, and then after at least one byte.
            FUZZ_CHECK(sink.events.size() > events_before && sink.last_stop, "a short feed only after Stop");
            FUZZ_CHECK(consumed > 0, "a Stop still makes progress");
            offset += consumed;
        }
        pos += piece;
        ++reads;
        if (reads % 3 == 2) {
            parser.shrink_idle();
            (void)parser.buffer_capacity();
        }
    }
    out.events = std::move(sink.events);
    out.closed = sink.closed;
    return out;
}

// protocol/utf8.cpp against the reference: the same verdict, the first bad byte at the same place under any split,
// and the failure sticky until reset().
void check_utf8(std::string_view text, uint8_t split_control) {
    size_t first_bad = 0;
    bool truncated = false;
    const bool valid = herald::fuzz::reference_utf8(text, &first_bad, &truncated);
    FUZZ_CHECK(herald::is_valid_utf8(text) == valid, "is_valid_utf8 agrees with the reference");

    herald::Utf8Validator validator;
    Splitter splitter(split_control);
    size_t pos = 0;
    bool failed = false;
    do {
        const size_t piece = splitter.next(text.size() - pos);
        if (!validator.feed(text.substr(pos, piece))) {
            FUZZ_CHECK(!valid && !truncated, "the validator fails only on invalid bytes");
            FUZZ_CHECK(pos + validator.error_index() == first_bad, "the validator fails at the first bad byte");
            FUZZ_CHECK(!validator.feed("a"), "a failed validator stays failed");
            failed = true;
            break;
        }
        pos += piece;
    } while (pos < text.size());
    if (!failed) {
        FUZZ_CHECK(valid || truncated, "the validator accepts only valid prefixes");
        FUZZ_CHECK(validator.complete() == valid, "complete() only on a character boundary");
    }
    validator.reset();
    FUZZ_CHECK(validator.feed("ok") && validator.complete(), "reset() starts over");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size < 2) return 0;
    const uint8_t split_control = data[0];
    const uint8_t options = data[1];
    const std::string_view stream(reinterpret_cast<const char*>(data + 2), size - 2);
    const size_t max_message = kLimits[options & 7u];
    const auto stop_mask = static_cast<uint8_t>(options >> 3);

    check_utf8(stream, split_control);

    const Outcome whole = run(stream, max_message, stop_mask, std::nullopt);
    const Outcome split = run(stream, max_message, stop_mask, Splitter(split_control));
    FUZZ_CHECK(whole.events == split.events, "the same events under any split");
    FUZZ_CHECK(whole.failed == split.failed, "the same verdict under any split");
    if (whole.failed) {
        FUZZ_CHECK(whole.error == split.error, "the same error under any split");
        FUZZ_CHECK(whole.error_at == split.error_at, "the error at the same absolute offset under any split");
        FUZZ_CHECK(whole.detail == split.detail, "the same error detail under any split");
    } else {
        FUZZ_CHECK(whole.consumed == split.consumed, "the same bytes consumed under any split");
        FUZZ_CHECK(whole.closed == split.closed, "closed under any split");
        FUZZ_CHECK(whole.closed || whole.consumed == stream.size(), "everything consumed unless closed");
    }
    return 0;
}
