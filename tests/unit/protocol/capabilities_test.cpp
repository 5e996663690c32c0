// Tests for protocol/capabilities.cpp: pattern forms (exact, prefix*, *, {sub}), the union of grants, operation
// "*", and every parse failure, each with the fragment its error message must name.
#include "protocol/capabilities.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace herald {
namespace {

Capabilities parsed(std::string_view text) {
    auto caps = Capabilities::parse_text(text);
    EXPECT_TRUE(caps.ok()) << "text: " << text << "\nerror: " << (caps.ok() ? "" : caps.error());
    return caps.ok() ? *caps : Capabilities{};
}

constexpr Operation kSub = Operation::Subscribe;
constexpr Operation kPub = Operation::Publish;
constexpr Operation kHist = Operation::History;

TEST(Capabilities, ExactPatternMatchesOnlyThatChannel) {
    const auto caps = parsed(R"({"news":["subscribe","history"]})");
    EXPECT_TRUE(caps.allows("news", kSub, "alice"));
    EXPECT_TRUE(caps.allows("news", kHist, "alice"));
    EXPECT_FALSE(caps.allows("news", kPub, "alice"));
    EXPECT_FALSE(caps.allows("news2", kSub, "alice"));
    EXPECT_FALSE(caps.allows("new", kSub, "alice"));
    EXPECT_FALSE(caps.allows("news:x", kSub, "alice"));
}

TEST(Capabilities, PrefixPatternMatchesChannelsStartingWithIt) {
    const auto caps = parsed(R"({"chat:*":["subscribe","publish"]})");
    EXPECT_TRUE(caps.allows("chat:room1", kSub, "a"));
    EXPECT_TRUE(caps.allows("chat:room1", kPub, "a"));
    EXPECT_TRUE(caps.allows("chat:", kSub, "a"));
    EXPECT_FALSE(caps.allows("chat:room1", kHist, "a"));
    EXPECT_FALSE(caps.allows("chat", kSub, "a"));
    EXPECT_FALSE(caps.allows("chatter", kSub, "a"));
    EXPECT_FALSE(caps.allows("xchat:room1", kSub, "a"));
}

TEST(Capabilities, StarAloneMatchesEveryChannel) {
    const auto caps = parsed(R"({"*":["subscribe"]})");
    EXPECT_TRUE(caps.allows("news", kSub, "a"));
    EXPECT_TRUE(caps.allows("a:b:c", kSub, "a"));
    EXPECT_FALSE(caps.allows("news", kPub, "a"));
}

TEST(Capabilities, SubjectPlaceholderIsReplacedBySubject) {
    const auto caps = parsed(R"({"user:{sub}":["*"],"inbox:{sub}:*":["subscribe"],"dm:{sub}:{sub}":["publish"]})");
    EXPECT_TRUE(caps.allows("user:alice", kPub, "alice"));
    EXPECT_TRUE(caps.allows("user:alice", kHist, "alice"));
    EXPECT_FALSE(caps.allows("user:bob", kSub, "alice"));
    EXPECT_FALSE(caps.allows("user:alice2", kSub, "alice"));
    EXPECT_FALSE(caps.allows("user:alic", kSub, "alice"));
    EXPECT_FALSE(caps.allows("user:{sub}", kSub, "alice"));
    EXPECT_TRUE(caps.allows("inbox:alice:1", kSub, "alice"));
    EXPECT_TRUE(caps.allows("inbox:alice:", kSub, "alice"));
    EXPECT_FALSE(caps.allows("inbox:alice", kSub, "alice"));
    EXPECT_FALSE(caps.allows("inbox:bob:1", kSub, "alice"));
    EXPECT_TRUE(caps.allows("dm:alice:alice", kPub, "alice"));
    EXPECT_FALSE(caps.allows("dm:alice:bob", kPub, "alice"));
}

TEST(Capabilities, SubjectOutsideChannelAlphabetNeverMatches) {
    const auto caps = parsed(R"({"user:{sub}":["subscribe"],"p:{sub}*":["publish"]})");
    EXPECT_FALSE(caps.allows("user:", kSub, ""));
    EXPECT_FALSE(caps.allows("user:a b", kSub, "a b"));
    EXPECT_FALSE(caps.allows("user:*", kSub, "*"));
    EXPECT_FALSE(caps.allows("user:{sub}", kSub, "{sub}"));
    EXPECT_FALSE(caps.allows("p:x", kPub, "*"));
    EXPECT_FALSE(caps.allows("p:x", kPub, std::string(256, 'x')));
    EXPECT_TRUE(caps.allows("p:bob42", kPub, "bob"));
}

TEST(Capabilities, GrantsAreAUnion) {
    const auto caps =
        parsed(R"({"news":["subscribe","history"],"chat:*":["subscribe","publish"],"*":["subscribe"],
                   "chat:lobby":["history"]})");
    EXPECT_TRUE(caps.allows("anything", kSub, "a"));
    EXPECT_FALSE(caps.allows("anything", kPub, "a"));
    EXPECT_TRUE(caps.allows("news", kHist, "a"));
    EXPECT_FALSE(caps.allows("news", kPub, "a"));
    EXPECT_TRUE(caps.allows("chat:lobby", kPub, "a"));
    EXPECT_TRUE(caps.allows("chat:lobby", kHist, "a"));
    EXPECT_FALSE(caps.allows("chat:other", kHist, "a"));
}

TEST(Capabilities, OperationStarGrantsAll) {
    const auto caps = parsed(R"({"x":["*"]})");
    for (Operation op : {kSub, kPub, kHist}) EXPECT_TRUE(caps.allows("x", op, "a")) << operation_name(op);
}

TEST(Capabilities, EmptyAndAll) {
    EXPECT_TRUE(Capabilities{}.empty());
    EXPECT_TRUE(parsed("{}").empty());
    EXPECT_TRUE(parsed(R"({"x":[]})").empty());
    EXPECT_FALSE(parsed(R"({"x":["history"]})").empty());
    EXPECT_FALSE(parsed("{}").allows("x", kSub, "a"));

    const auto all = Capabilities::all();
    EXPECT_FALSE(all.empty());
    for (Operation op : {kSub, kPub, kHist}) EXPECT_TRUE(all.allows("any:channel", op, ""));
}

TEST(Capabilities, ParseAcceptsJsonValue) {
    const auto caps = Capabilities::parse(nlohmann::json{{"a", {"publish"}}});
    ASSERT_TRUE(caps.ok()) << caps.error();
    EXPECT_TRUE(caps->allows("a", kPub, "s"));
    EXPECT_EQ(*caps, parsed(R"({"a":["publish"]})"));
}

TEST(Capabilities, OperationNames) {
    EXPECT_EQ(operation_name(kSub), "subscribe");
    EXPECT_EQ(operation_name(kPub), "publish");
    EXPECT_EQ(operation_name(kHist), "history");
}

struct BadCase {
    std::string text;
    std::string error_fragment;
};

TEST(Capabilities, RejectsInvalidForms) {
    const std::vector<BadCase> cases = {
        {"", "not valid JSON"},
        {"{", "not valid JSON"},
        {"[]", "must be a JSON object"},
        {"null", "must be a JSON object"},
        {R"("news")", "must be a JSON object"},
        {R"({"news":"subscribe"})", "must map to an array"},
        {R"({"news":{"subscribe":true}})", "must map to an array"},
        {R"({"news":[1]})", "must be a string"},
        {R"({"news":[null]})", "must be a string"},
        {R"({"news":["subscribe","delete"]})", "unknown operation \"delete\""},
        {R"({"news":["Subscribe"]})", "unknown operation \"Subscribe\""},
        {R"({"news":["**"]})", "unknown operation \"**\""},
        {R"({"":["subscribe"]})", "must not be empty"},
        {R"({"chat:*:x":["subscribe"]})", "'*' may only end"},
        {R"({"**":["subscribe"]})", "'*' may only end"},
        {R"({"*chat":["subscribe"]})", "'*' may only end"},
        {R"({"a b":["subscribe"]})", "character outside"},
        {R"({"user:{user}":["subscribe"]})", "character outside"},
        {R"({"user:{sub":["subscribe"]})", "character outside"},
        {R"({"user:sub}":["subscribe"]})", "character outside"},
        {R"({"caf\u00e9":["subscribe"]})", "character outside"},
        {"{\"" + std::string(256, 'a') + "\":[\"subscribe\"]}", "longer than 255"},
    };
    for (const auto& c : cases) {
        const auto caps = Capabilities::parse_text(c.text);
        ASSERT_FALSE(caps.ok()) << "accepted: " << c.text;
        EXPECT_NE(caps.error().find(c.error_fragment), std::string::npos)
            << "text: " << c.text << "\nexpected fragment: " << c.error_fragment << "\nerror: " << caps.error();
    }
}

TEST(Capabilities, ErrorMessagesQuoteUntrustedTextSafely) {
    const auto caps = Capabilities::parse_text("{\"x\":[\"" + std::string(100, 'q') + "\\n\"]}");
    ASSERT_FALSE(caps.ok());
    EXPECT_EQ(caps.error().find('\n'), std::string::npos) << caps.error();
    EXPECT_NE(caps.error().find("..."), std::string::npos) << caps.error();
    EXPECT_LT(caps.error().size(), 200u) << caps.error();

    const auto control = Capabilities::parse_text(R"({"x":["a\nb\u0007"]})");
    ASSERT_FALSE(control.ok());
    EXPECT_NE(control.error().find("\"a?b?\""), std::string::npos) << control.error();
}

}  // namespace
}  // namespace herald
