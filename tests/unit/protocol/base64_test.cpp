// Tests for protocol/base64.cpp: RFC 4648 vectors, strict decoding, and the RFC 6455 accept key.
#include "protocol/base64.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace herald {
namespace {

struct Vector {
    std::string plain;
    std::string encoded;
};

const std::vector<Vector> kRfc4648 = {
    {"", ""},         {"f", "Zg=="},         {"fo", "Zm8="},         {"foo", "Zm9v"},
    {"foob", "Zm9vYg=="}, {"fooba", "Zm9vYmE="}, {"foobar", "Zm9vYmFy"},
};

TEST(Base64, EncodesRfc4648Vectors) {
    for (const auto& v : kRfc4648) EXPECT_EQ(base64_encode(v.plain), v.encoded) << "plain: \"" << v.plain << "\"";
}

TEST(Base64, DecodesRfc4648Vectors) {
    for (const auto& v : kRfc4648) {
        auto decoded = base64_decode(v.encoded);
        ASSERT_TRUE(decoded.has_value()) << "encoded: \"" << v.encoded << "\"";
        EXPECT_EQ(*decoded, v.plain);
    }
}

TEST(Base64, RoundTripsEveryByteValueAndLength) {
    std::string all;
    for (int i = 0; i < 256; ++i) all += static_cast<char>(i);
    for (size_t n = 0; n <= all.size(); ++n) {
        const std::string plain = all.substr(all.size() - n);
        auto decoded = base64_decode(base64_encode(plain));
        ASSERT_TRUE(decoded.has_value()) << "length " << n;
        EXPECT_EQ(*decoded, plain) << "length " << n;
    }
}

TEST(Base64, RejectsNonCanonicalOrMalformedText) {
    const std::vector<std::string> bad = {
        "Zg",        "Zg=",       "Zm9vY",    "Zg===",     "====",     "Z===",     "=Zg=",  "Zg==Zg==",
        "Zm9v!A==",  " Zg=",      "Zg== ",    "Zm9v\nYmFy", "Zm-_",    "Zh==",     "Zm9=",  "Zg=a",
        std::string("Zg\0=", 4),
    };
    for (const auto& text : bad) EXPECT_FALSE(base64_decode(text).has_value()) << "should reject \"" << text << "\"";
}

TEST(Base64, WebSocketAcceptKeyFromRfc6455) {
    EXPECT_EQ(websocket_accept_key("dGhlIHNhbXBsZSBub25jZQ=="), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}

TEST(Base64, WebSocketAcceptKeyIsTwentyBytesEncoded) {
    const std::string accept = websocket_accept_key("x3JJHMbDL1EzLkh9GBhXDw==");
    EXPECT_EQ(accept, "HSmrc0sMlYUkAGmm5OPpG2HaGWk=");  // cross-checked with `openssl sha1 -binary | base64`
    auto raw = base64_decode(accept);
    ASSERT_TRUE(raw.has_value());
    EXPECT_EQ(raw->size(), 20u);
}

}  // namespace
}  // namespace herald
