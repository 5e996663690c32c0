// Tests for protocol/errors.cpp: the wire codes and close codes are part of the public protocol, so every row is
// pinned here, and the table's shape (order, uniqueness) is checked so error_info() can index it.
#include "protocol/errors.h"

#include <gtest/gtest.h>

#include <optional>
#include <set>
#include <string>

namespace herald {
namespace {

struct ExpectedRow {
    ProtocolError error;
    std::string_view code;
    std::optional<uint16_t> close_code;
};

constexpr ExpectedRow kExpected[] = {
    {ProtocolError::BadRequest, "bad_request", std::nullopt},
    {ProtocolError::UnknownOp, "unknown_op", std::nullopt},
    {ProtocolError::InvalidChannel, "invalid_channel", std::nullopt},
    {ProtocolError::NotConnected, "not_connected", std::nullopt},
    {ProtocolError::AlreadyConnected, "already_connected", std::nullopt},
    {ProtocolError::AlreadySubscribed, "already_subscribed", std::nullopt},
    {ProtocolError::NotSubscribed, "not_subscribed", std::nullopt},
    {ProtocolError::PublishDisabled, "publish_disabled", std::nullopt},
    {ProtocolError::MessageTooLarge, "message_too_large", std::nullopt},
    {ProtocolError::Unavailable, "unavailable", std::nullopt},
    {ProtocolError::Internal, "internal", std::nullopt},
    {ProtocolError::Forbidden, "forbidden", std::nullopt},
    {ProtocolError::TokenExpired, "token_expired", std::nullopt},
    {ProtocolError::RateLimited, "rate_limited", std::nullopt},
    {ProtocolError::LimitExceeded, "limit_exceeded", std::nullopt},
    {ProtocolError::ConnectTimeout, "connect_timeout", 1008},
    {ProtocolError::FrameProtocol, "protocol_error", 1002},
    {ProtocolError::InvalidUtf8, "invalid_utf8", 1007},
    {ProtocolError::BinaryMessage, "binary_message", 1003},
    {ProtocolError::FrameTooBig, "message_too_big", 1009},
    {ProtocolError::HeartbeatTimeout, "heartbeat_timeout", 1008},
    {ProtocolError::SlowConsumer, "slow_consumer", 4008},
    {ProtocolError::Unauthorized, "unauthorized", 4001},
    {ProtocolError::RateLimitSustained, "rate_limit_sustained", 4029},
};

std::string describe(std::optional<CloseCode> code) {
    return code ? std::to_string(static_cast<uint16_t>(*code)) : std::string("none");
}
std::string describe(std::optional<uint16_t> code) { return code ? std::to_string(*code) : std::string("none"); }

TEST(ProtocolErrors, EveryRowHasItsDocumentedCodeAndCloseCode) {
    ASSERT_EQ(all_protocol_errors().size(), std::size(kExpected));
    for (const ExpectedRow& expected : kExpected) {
        const ProtocolErrorInfo& info = error_info(expected.error);
        const std::optional<uint16_t> got_close =
            info.close_code ? std::optional<uint16_t>(static_cast<uint16_t>(*info.close_code)) : std::nullopt;
        EXPECT_EQ(info.code, expected.code) << "row " << static_cast<int>(expected.error);
        EXPECT_EQ(got_close, expected.close_code)
            << expected.code << ": expected close " << describe(expected.close_code) << ", got "
            << describe(info.close_code);
        EXPECT_FALSE(info.message.empty()) << expected.code << " has no default message";
    }
}

TEST(ProtocolErrors, RowsAreInDeclarationOrder) {
    const auto rows = all_protocol_errors();
    for (size_t i = 0; i < rows.size(); ++i) {
        EXPECT_EQ(static_cast<size_t>(rows[i].error), i) << "row " << i << " is " << rows[i].code;
        EXPECT_EQ(&error_info(rows[i].error), &rows[i]) << rows[i].code;
    }
}

TEST(ProtocolErrors, CodesAreUnique) {
    std::set<std::string_view> seen;
    for (const ProtocolErrorInfo& info : all_protocol_errors()) {
        EXPECT_TRUE(seen.insert(info.code).second) << "duplicate code " << info.code;
    }
}

TEST(ProtocolErrors, CommandLevelErrorsKeepTheConnectionOpen) {
    for (ProtocolError e : {ProtocolError::BadRequest, ProtocolError::UnknownOp, ProtocolError::InvalidChannel,
                            ProtocolError::NotConnected, ProtocolError::AlreadyConnected,
                            ProtocolError::AlreadySubscribed, ProtocolError::NotSubscribed,
                            ProtocolError::PublishDisabled, ProtocolError::MessageTooLarge,
                            ProtocolError::Unavailable, ProtocolError::Internal, ProtocolError::Forbidden,
                            ProtocolError::TokenExpired, ProtocolError::RateLimited, ProtocolError::LimitExceeded}) {
        EXPECT_FALSE(error_info(e).close_code.has_value())
            << error_info(e).code << " closes with " << describe(error_info(e).close_code);
    }
}

TEST(ProtocolErrors, CodesAreSafeAsJsonAndMetricLabels) {
    for (const ProtocolErrorInfo& info : all_protocol_errors()) {
        for (char c : info.code) {
            const bool plain = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
            EXPECT_TRUE(plain) << info.code << " contains '" << c << "'";
        }
        // Default messages double as close reasons, which must fit a control frame (125 - 2 code bytes).
        EXPECT_LE(info.message.size(), 123u) << info.code;
    }
}

TEST(ProtocolErrors, ValueOutsideTheEnumFallsBackToInternal) {
    const auto bogus = static_cast<ProtocolError>(200);
    EXPECT_EQ(error_info(bogus).code, "internal");
}

}  // namespace
}  // namespace herald
