// Tests backplane/redis_codec.cpp: key names and hash tags, the pub/sub payload, session JSON, epoch candidates and
// script digests — everything the Redis backplane encodes, without a server.
#include <set>

#include <gtest/gtest.h>

#include "backplane/redis_codec.h"

namespace herald {
namespace {

TEST(RedisKeyspace, ChannelKeysShareTheChannelAsHashTag) {
    const RedisKeyspace keys("herald");
    EXPECT_EQ(keys.meta("news:eu"), "herald:{news:eu}:meta");
    EXPECT_EQ(keys.history("news:eu"), "herald:{news:eu}:history");
    EXPECT_EQ(keys.idempotency("news:eu", "k-1"), "herald:{news:eu}:idem:k-1");
    EXPECT_EQ(keys.pubsub("news:eu"), "herald:{news:eu}:pub");
    EXPECT_EQ(keys.session("abc"), "herald:session:{abc}");
    EXPECT_EQ(RedisKeyspace("staging").meta("c"), "staging:{c}:meta");
}

TEST(RedisKeyspace, ChannelOfPubsubIsTheInverse) {
    const RedisKeyspace keys("herald");
    EXPECT_EQ(keys.channel_of_pubsub(keys.pubsub("a/b@c")), "a/b@c");
    EXPECT_EQ(keys.channel_of_pubsub("herald:{x}:meta"), std::nullopt);
    EXPECT_EQ(keys.channel_of_pubsub("other:{x}:pub"), std::nullopt);
    EXPECT_EQ(keys.channel_of_pubsub("herald:{}:pub"), std::nullopt);
    EXPECT_EQ(keys.channel_of_pubsub("herald:{"), std::nullopt);
}

TEST(RedisPayload, RoundTripKeepsNewlinesInData) {
    const std::string data = "{\n\"a\": \"x\\ny\"\n}\n";
    const std::string payload = encode_delivery_payload("e1-7", 42, 1700000000000000, data);
    EXPECT_EQ(payload, "e1-7\n42\n1700000000000000\n" + data);
    auto delivery = decode_delivery_payload("news", payload);
    ASSERT_TRUE(delivery.has_value());
    EXPECT_EQ(delivery->channel, "news");
    EXPECT_EQ(delivery->epoch, "e1-7");
    EXPECT_EQ(delivery->message.serial, 42u);
    EXPECT_EQ(delivery->message.published_at_us, 1700000000000000u);
    EXPECT_EQ(delivery->message.data, data);
}

TEST(RedisPayload, EmptyDataAndBinaryBytes) {
    auto empty = decode_delivery_payload("c", "e\n1\n0\n");
    ASSERT_TRUE(empty.has_value());
    EXPECT_EQ(empty->message.data, "");
    const std::string binary("\"\0\xff\"", 4);
    auto raw = decode_delivery_payload("c", encode_delivery_payload("e", 2, 3, binary));
    ASSERT_TRUE(raw.has_value());
    EXPECT_EQ(raw->message.data, binary);
}

TEST(RedisPayload, MalformedIsRefused) {
    EXPECT_FALSE(decode_delivery_payload("c", "").has_value());
    EXPECT_FALSE(decode_delivery_payload("c", "e\n1\n0").has_value()) << "missing the third newline";
    EXPECT_FALSE(decode_delivery_payload("c", "\n1\n0\nd").has_value()) << "empty epoch";
    EXPECT_FALSE(decode_delivery_payload("c", "e\n0\n0\nd").has_value()) << "serials start at 1";
    EXPECT_FALSE(decode_delivery_payload("c", "e\nx\n0\nd").has_value());
    EXPECT_FALSE(decode_delivery_payload("c", "e\n1\n-5\nd").has_value());
    EXPECT_FALSE(decode_delivery_payload("c", "e\n18446744073709551616\n0\nd").has_value()) << "overflow";
}

TEST(RedisStreamId, SerialOfId) {
    EXPECT_EQ(serial_of_stream_id("17-0"), 17u);
    EXPECT_EQ(serial_of_stream_id("18446744073709551615-0"), 18446744073709551615u);
    EXPECT_EQ(serial_of_stream_id("17"), std::nullopt);
    EXPECT_EQ(serial_of_stream_id("x-0"), std::nullopt);
}

TEST(RedisSession, RoundTrip) {
    SessionRecord record{"alice", {{"news", StreamPosition{5, "e1"}}, {"sports", StreamPosition{0, "e2"}}}};
    auto decoded = decode_session(encode_session(record));
    ASSERT_TRUE(decoded.ok()) << decoded.error();
    EXPECT_EQ(decoded->subject, "alice");
    EXPECT_EQ(decoded->positions, record.positions);

    auto anonymous = decode_session(encode_session(SessionRecord{}));
    ASSERT_TRUE(anonymous.ok());
    EXPECT_EQ(anonymous->subject, "");
    EXPECT_TRUE(anonymous->positions.empty());
}

TEST(RedisSession, MalformedIsAnError) {
    EXPECT_FALSE(decode_session("not json").ok());
    EXPECT_FALSE(decode_session("[]").ok());
    EXPECT_FALSE(decode_session(R"({"subject": 5})").ok());
    EXPECT_FALSE(decode_session(R"({"positions": {"c": {"serial": -1, "epoch": "e"}}})").ok());
    EXPECT_FALSE(decode_session(R"({"positions": {"c": {"serial": 1}}})").ok());
}

TEST(RedisEpoch, CandidatesAreUniqueAcrossGenerators) {
    EpochGenerator a;
    EpochGenerator b;
    std::set<std::string> seen;
    for (int i = 0; i < 100; ++i) {
        seen.insert(a.next());
        seen.insert(b.next());
    }
    EXPECT_EQ(seen.size(), 200u);
    EXPECT_EQ(a.next().size(), 16u + 1 + 3);  // "<16 hex>-101"
}

TEST(RedisScript, Sha1MatchesRedis) {
    // SCRIPT LOAD "return 1" answers e0e1f9fabfc9d4800c877a703b823ac0578ff8db.
    EXPECT_EQ(script_sha1("return 1"), "e0e1f9fabfc9d4800c877a703b823ac0578ff8db");
    EXPECT_EQ(script_sha1(""), "da39a3ee5e6b4b0d3255bfef95601890afd80709");
}

}  // namespace
}  // namespace herald
