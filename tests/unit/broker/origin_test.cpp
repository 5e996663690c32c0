// Tests for broker/origin.cpp: the same-host rule, explicit lists, wildcards (subdomains, not the apex), schemes,
// ports and malformed input.
#include "broker/origin.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace herald {
namespace {

OriginPolicy policy(std::vector<std::string> entries) {
    auto parsed = OriginPolicy::parse(entries);
    EXPECT_TRUE(parsed.ok()) << (parsed.ok() ? "" : parsed.error());
    return parsed.ok() ? *parsed : OriginPolicy();
}

TEST(Origin, ParsesAndNormalises) {
    auto o = Origin::parse("HTTPS://App.Example.COM:443");
    ASSERT_TRUE(o);
    EXPECT_EQ(o->scheme, "https");
    EXPECT_EQ(o->host, "app.example.com");
    EXPECT_EQ(o->port, "") << "the default port is dropped";
    auto p = Origin::parse("http://[::1]:8080");
    ASSERT_TRUE(p);
    EXPECT_EQ(p->host, "[::1]");
    EXPECT_EQ(p->port, "8080");
    for (const char* bad : {"null", "", "example.com", "https://", "https://a.example/path", "https://u@a.example",
                            "https://a.example:80x", "https://a example", "https://a.example:123456", "://a"})
        EXPECT_FALSE(Origin::parse(bad)) << bad;
}

TEST(OriginPolicy, WithoutAListTheOriginMustMatchTheHost) {
    OriginPolicy same;
    EXPECT_TRUE(same.allows("http://127.0.0.1:8080", "127.0.0.1:8080"));
    EXPECT_TRUE(same.allows("https://127.0.0.1:8080", "127.0.0.1:8080")) << "scheme aside (TLS may end at a proxy)";
    EXPECT_TRUE(same.allows("https://Herald.Example", "herald.example")) << "case-insensitive";
    EXPECT_TRUE(same.allows("https://herald.example", "herald.example:443")) << "default port in Host";
    EXPECT_TRUE(same.allows("http://[::1]:8080", "[::1]:8080"));
    EXPECT_FALSE(same.allows("https://evil.example", "herald.example"));
    EXPECT_FALSE(same.allows("http://127.0.0.1:9999", "127.0.0.1:8080")) << "port differs";
    EXPECT_FALSE(same.allows("http://127.0.0.1", "127.0.0.1:8080"));
    EXPECT_FALSE(same.allows("https://herald.example.evil.example", "herald.example"));
    EXPECT_FALSE(same.allows("null", "herald.example"));
    EXPECT_FALSE(same.allows("https://herald.example", "")) << "no Host: nothing to compare with";
}

TEST(OriginPolicy, StarAllowsEveryOrigin) {
    OriginPolicy any = policy({"*"});
    EXPECT_TRUE(any.allows("https://anything.example", "herald.example"));
    EXPECT_TRUE(any.allows("null", "herald.example"));
}

TEST(OriginPolicy, ExactEntriesMatchSchemeHostAndPort) {
    OriginPolicy list = policy({"https://app.example.com", "http://localhost:3000/"});
    EXPECT_TRUE(list.allows("https://app.example.com", "herald.example"));
    EXPECT_TRUE(list.allows("https://APP.example.com:443", "herald.example"));
    EXPECT_TRUE(list.allows("http://localhost:3000", "herald.example")) << "a trailing slash in the entry is forgiven";
    EXPECT_FALSE(list.allows("http://app.example.com", "herald.example")) << "scheme must match";
    EXPECT_FALSE(list.allows("https://app.example.com:8443", "herald.example")) << "port must match";
    EXPECT_FALSE(list.allows("https://other.example.com", "herald.example"));
    EXPECT_FALSE(list.allows("https://herald.example", "herald.example")) << "a list replaces the same-host rule";
}

TEST(OriginPolicy, WildcardMatchesSubdomainsOnly) {
    OriginPolicy list = policy({"https://*.example.com"});
    EXPECT_TRUE(list.allows("https://app.example.com", "h"));
    EXPECT_TRUE(list.allows("https://a.b.example.com", "h"));
    EXPECT_FALSE(list.allows("https://example.com", "h")) << "not the apex";
    EXPECT_FALSE(list.allows("https://badexample.com", "h"));
    EXPECT_FALSE(list.allows("https://example.com.evil.net", "h"));
    EXPECT_FALSE(list.allows("http://app.example.com", "h")) << "scheme must match";
    EXPECT_FALSE(list.allows("https://app.example.com:8443", "h"));
}

TEST(OriginPolicy, BadEntriesAreRefusedAtStartup) {
    for (const char* bad : {"example.com", "https://", "https://*example.com", "https://a.*.example.com",
                            "https://example.com/app", "https://*.[::1]", "*.example.com"}) {
        auto parsed = OriginPolicy::parse({bad});
        EXPECT_FALSE(parsed.ok()) << bad;
        if (!parsed.ok()) {
            EXPECT_NE(parsed.error().find("--allowed-origins"), std::string::npos) << parsed.error();
        }
    }
}

}  // namespace
}  // namespace herald
