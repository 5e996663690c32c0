// Tests backplane/redis_url.cpp: the --redis URL grammar, defaults, and the errors for what it refuses.
#include <gtest/gtest.h>

#include "backplane/redis_url.h"

namespace herald {
namespace {

RedisOptions parsed(std::string_view url) {
    auto result = parse_redis_url(url);
    EXPECT_TRUE(result.ok()) << url << ": " << (result.ok() ? "" : result.error());
    return result.ok() ? result.value() : RedisOptions{};
}

std::string error_of(std::string_view url) {
    auto result = parse_redis_url(url);
    EXPECT_FALSE(result.ok()) << url << " parsed";
    return result.ok() ? std::string() : result.error();
}

TEST(RedisUrl, HostAndPort) {
    const RedisOptions o = parsed("redis://redis.internal:6380");
    EXPECT_EQ(o.host, "redis.internal");
    EXPECT_EQ(o.port, 6380);
    EXPECT_FALSE(o.db.has_value());
    EXPECT_FALSE(o.password.has_value());
    EXPECT_FALSE(o.username.has_value());
}

TEST(RedisUrl, PortDefaultsTo6379AndTrailingSlashIsNoDatabase) {
    EXPECT_EQ(parsed("redis://10.0.0.5").port, 6379);
    const RedisOptions o = parsed("redis://10.0.0.5:7000/");
    EXPECT_EQ(o.port, 7000);
    EXPECT_FALSE(o.db.has_value());
}

TEST(RedisUrl, PasswordAndDatabase) {
    const RedisOptions o = parsed("redis://:s3cret@127.0.0.1:6379/2");
    EXPECT_EQ(o.password, "s3cret");
    EXPECT_FALSE(o.username.has_value());
    EXPECT_EQ(o.db, 2u);
}

TEST(RedisUrl, AclUserAndPercentEncodedPassword) {
    const RedisOptions o = parsed("redis://herald:p%40ss%3Aword@cache:6379/0");
    EXPECT_EQ(o.username, "herald");
    EXPECT_EQ(o.password, "p@ss:word");
    EXPECT_EQ(o.host, "cache");
    EXPECT_EQ(o.db, 0u);
}

TEST(RedisUrl, BracketedIpv6) {
    const RedisOptions o = parsed("redis://[::1]:6390/3");
    EXPECT_EQ(o.host, "::1");
    EXPECT_EQ(o.port, 6390);
    EXPECT_EQ(o.db, 3u);
    EXPECT_EQ(parsed("redis://[fe80::1]").port, 6379);
}

TEST(RedisUrl, KeepsTheOtherOptions) {
    RedisOptions defaults;
    defaults.key_prefix = "staging";
    defaults.connect_timeout_ms = 123;
    defaults.db = 9;  // replaced by the URL's (absent) database
    auto result = parse_redis_url("redis://h:1", defaults);
    ASSERT_TRUE(result.ok());
    EXPECT_EQ(result->key_prefix, "staging");
    EXPECT_EQ(result->connect_timeout_ms, 123u);
    EXPECT_FALSE(result->db.has_value());
}

TEST(RedisUrl, RefusesWithAReason) {
    EXPECT_NE(error_of("rediss://h:6379").find("TLS"), std::string::npos);
    EXPECT_NE(error_of("http://h:6379").find("redis://"), std::string::npos);
    EXPECT_NE(error_of("h:6379").find("redis://"), std::string::npos);
    EXPECT_NE(error_of("redis://").find("host is missing"), std::string::npos);
    EXPECT_NE(error_of("redis://:6379").find("host is missing"), std::string::npos);
    EXPECT_NE(error_of("redis://h:").find("port"), std::string::npos);
    EXPECT_NE(error_of("redis://h:0").find("port"), std::string::npos);
    EXPECT_NE(error_of("redis://h:65536").find("port"), std::string::npos);
    EXPECT_NE(error_of("redis://h:63a9").find("port"), std::string::npos);
    EXPECT_NE(error_of("redis://h:+80").find("port"), std::string::npos);
    EXPECT_NE(error_of("redis://h:6379/x").find("database"), std::string::npos);
    EXPECT_NE(error_of("redis://h:6379/-1").find("database"), std::string::npos);
    EXPECT_NE(error_of("redis://h:6379/1/2").find("database"), std::string::npos);
    EXPECT_NE(error_of("redis://h:6379/99999999999").find("database"), std::string::npos);
    EXPECT_NE(error_of("redis://h:6379?timeout=1").find("query"), std::string::npos);
    EXPECT_NE(error_of("redis://secret@h:6379").find("[user]:password"), std::string::npos);
    EXPECT_NE(error_of("redis://:@h:6379").find("password"), std::string::npos);
    EXPECT_NE(error_of("redis://:%zz@h").find("percent"), std::string::npos);
    EXPECT_NE(error_of("redis://:%4@h").find("percent"), std::string::npos);
    EXPECT_NE(error_of("redis://[::1:6379").find("']'"), std::string::npos);
    EXPECT_NE(error_of("redis://[::1]x").find("IPv6"), std::string::npos);
}

TEST(RedisUrl, ErrorsNeverShowThePassword) {
    const std::string error = error_of("redis://:hunter2@h:0");
    EXPECT_EQ(error.find("hunter2"), std::string::npos) << error;
}

TEST(RedisUrl, RedactedForLogs) {
    EXPECT_EQ(redacted_redis_url(parsed("redis://:hunter2@h:1/2")), "redis://:***@h:1/2");
    EXPECT_EQ(redacted_redis_url(parsed("redis://u:hunter2@h:1")), "redis://u:***@h:1");
    EXPECT_EQ(redacted_redis_url(parsed("redis://[::1]:7")), "redis://[::1]:7");
}

}  // namespace
}  // namespace herald
