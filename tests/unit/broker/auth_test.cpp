// Tests for broker/auth.cpp and broker/security.cpp: the open mode, anonymous clients, defaults for tokens without
// caps, refresh's subject rule, and startup validation that names the option at fault without echoing secrets.
#include "broker/auth.h"

#include <gtest/gtest.h>

#include <string>

#include "broker/security.h"
#include "tests/unit/broker/token_minter.h"

namespace herald::testing {
namespace {

constexpr int64_t kNow = 1'764'000'000;

Config keyed() {
    Config c;
    c.jwt_secret = kTestJwtSecret;
    return c;
}

Authenticator build(const Config& c) {
    auto auth = Authenticator::from_config(c);
    EXPECT_TRUE(auth.ok()) << (auth.ok() ? "" : auth.error());
    return auth.ok() ? std::move(*auth) : Authenticator::deny_all();
}

TEST(Authenticator, WithoutAKeyEveryClientMayDoEverything) {
    Authenticator auth = build(Config{});
    EXPECT_TRUE(auth.open());
    EXPECT_EQ(auth.describe(), "none");
    for (std::optional<std::string> token : {std::optional<std::string>(), std::optional<std::string>("garbage")}) {
        auto id = auth.authenticate(token, kNow);
        ASSERT_TRUE(id.ok());
        EXPECT_EQ(id->subject, "") << "an unverified token names nobody";
        EXPECT_FALSE(id->expires_at);
        EXPECT_TRUE(id->caps->allows("any:channel", Operation::Publish, ""));
    }
}

TEST(Authenticator, ValidTokenGivesSubjectExpiryAndCaps) {
    Authenticator auth = build(keyed());
    EXPECT_FALSE(auth.open());
    EXPECT_EQ(auth.describe(), "HS256,HS384,HS512");
    auto id = auth.authenticate(token_for("alice", kNow + 60, {{"chat:*", {"subscribe"}}}), kNow);
    ASSERT_TRUE(id.ok()) << id.error().message;
    EXPECT_EQ(id->subject, "alice");
    EXPECT_EQ(id->expires_at, kNow + 60);
    EXPECT_TRUE(id->caps->allows("chat:x", Operation::Subscribe, "alice"));
    EXPECT_FALSE(id->caps->allows("chat:x", Operation::Publish, "alice"));
}

TEST(Authenticator, TokensWithoutCapsGetTheDefaults) {
    Config c = keyed();
    c.default_capabilities = R"({"user:{sub}":["*"]})";
    Authenticator auth = build(c);
    auto id = auth.authenticate(token_for("bob", kNow + 60), kNow);
    ASSERT_TRUE(id.ok());
    EXPECT_TRUE(id->caps->allows("user:bob", Operation::Publish, "bob"));
    EXPECT_FALSE(id->caps->allows("user:alice", Operation::Publish, "bob"));
}

TEST(Authenticator, MissingTokenIsRefusedUnlessAnonymousIsAllowed) {
    Config c = keyed();
    auto refused = build(c).authenticate(std::nullopt, kNow);
    ASSERT_FALSE(refused.ok());
    EXPECT_EQ(refused.error().reason, "missing_token");
    auto empty = build(c).authenticate(std::string(), kNow);
    ASSERT_FALSE(empty.ok());
    EXPECT_EQ(empty.error().reason, "missing_token");

    c.allow_anonymous = true;
    c.anonymous_capabilities = R"({"public:*":["subscribe"]})";
    Authenticator auth = build(c);
    auto anon = auth.authenticate(std::nullopt, kNow);
    ASSERT_TRUE(anon.ok());
    EXPECT_EQ(anon->subject, "");
    EXPECT_TRUE(anon->caps->allows("public:news", Operation::Subscribe, ""));
    EXPECT_FALSE(anon->caps->allows("private:x", Operation::Subscribe, ""));
    auto bad = auth.authenticate(std::string("not.a.token"), kNow);
    EXPECT_FALSE(bad.ok()) << "a bad token is refused even when anonymous clients are allowed";
}

TEST(Authenticator, FailureReasonsAreLabelsAndMessagesNeverEchoTheToken) {
    Authenticator auth = build(keyed());
    const std::string wrong_key = mint_hs256({{"sub", "a"}, {"exp", kNow + 60}}, "another-secret-0123456789abcdef-xyz");
    auto bad_sig = auth.authenticate(wrong_key, kNow);
    ASSERT_FALSE(bad_sig.ok());
    EXPECT_EQ(bad_sig.error().reason, "bad_signature");
    EXPECT_EQ(bad_sig.error().message.find(wrong_key.substr(0, 10)), std::string::npos);
    auto expired = auth.authenticate(token_for("a", kNow - 3600), kNow);
    ASSERT_FALSE(expired.ok());
    EXPECT_EQ(expired.error().reason, "expired");
    auto none = auth.authenticate(mint_hs256({{"sub", "a"}, {"exp", kNow + 60}}, kTestJwtSecret, {{"alg", "none"}}), kNow);
    ASSERT_FALSE(none.ok());
    EXPECT_EQ(none.error().reason, "algorithm");
}

TEST(Authenticator, RefreshKeepsTheSubject) {
    Authenticator auth = build(keyed());
    auto same = auth.refresh(token_for("alice", kNow + 600), "alice", kNow);
    ASSERT_TRUE(same.ok());
    EXPECT_EQ(same->expires_at, kNow + 600);
    auto other = auth.refresh(token_for("mallory", kNow + 600), "alice", kNow);
    ASSERT_FALSE(other.ok());
    EXPECT_EQ(other.error().reason, "subject_changed");
    auto anonymous = auth.refresh(token_for("alice", kNow + 600), "", kNow);
    EXPECT_FALSE(anonymous.ok()) << "an anonymous connection cannot become someone";
}

TEST(Authenticator, DenyAllRefusesEverything) {
    Authenticator auth = Authenticator::deny_all();
    EXPECT_FALSE(auth.open());
    EXPECT_FALSE(auth.authenticate(token_for("a", kNow + 60), kNow).ok());
    EXPECT_FALSE(auth.authenticate(std::nullopt, kNow).ok());
}

TEST(ValidateSecurity, AcceptsTheDefaultsAndSaysItRunsOpen) {
    auto summary = validate_security(Config{});
    ASSERT_TRUE(summary.ok()) << summary.error();
    EXPECT_TRUE(summary->open);
    EXPECT_EQ(summary->jwt_algorithms, "none");
    auto keyed_summary = validate_security(keyed());
    ASSERT_TRUE(keyed_summary.ok()) << keyed_summary.error();
    EXPECT_FALSE(keyed_summary->open);
}

TEST(ValidateSecurity, NamesTheOptionAtFault) {
    struct Case {
        const char* name;
        void (*edit)(Config&);
        const char* expected;
    };
    const Case cases[] = {
        {"short secret", [](Config& c) { c.jwt_secret = "too-short"; }, "--jwt-secret"},
        {"bad PEM", [](Config& c) { c.jwt_public_key_pem = "-----BEGIN PUBLIC KEY-----\nxx\n"; }, "--jwt-public-key"},
        {"bad default caps", [](Config& c) { c.default_capabilities = R"({"a b":["subscribe"]})"; },
         "--default-capabilities"},
        {"bad anonymous caps", [](Config& c) { c.anonymous_capabilities = R"({"a":["fly"]})"; },
         "--anonymous-capabilities"},
        {"bad origin", [](Config& c) { c.allowed_origins = {"example.com"}; }, "--allowed-origins"},
        {"bad proxy", [](Config& c) { c.trusted_proxies = {"10.0.0.0/99"}; }, "--trusted-proxies"},
        {"burst below one", [](Config& c) { c.client_burst = 0.5; }, "--client-burst"},
        {"connect rate too small", [](Config& c) { c.connect_rate = 0.1; }, "--connect-rate"},
        {"anonymous without key", [](Config& c) { c.allow_anonymous = true; }, "--allow-anonymous"},
    };
    for (const Case& k : cases) {
        Config c;
        k.edit(c);
        auto result = validate_security(c);
        ASSERT_FALSE(result.ok()) << k.name;
        EXPECT_NE(result.error().find(k.expected), std::string::npos) << k.name << ": " << result.error();
    }
    Config c;
    c.jwt_secret = "short-secret-value";
    auto result = validate_security(c);
    ASSERT_FALSE(result.ok());
    EXPECT_EQ(result.error().find("short-secret-value"), std::string::npos) << "the secret is never echoed";
}

}  // namespace
}  // namespace herald::testing
