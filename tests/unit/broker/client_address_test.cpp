// Tests for broker/client_address.cpp: IPv4/IPv6 CIDRs, and X-Forwarded-For read right to left past trusted
// proxies only.
#include "broker/client_address.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace herald {
namespace {

TrustedProxies trusted(std::vector<std::string> cidrs) {
    auto parsed = TrustedProxies::parse(cidrs);
    EXPECT_TRUE(parsed.ok()) << (parsed.ok() ? "" : parsed.error());
    return parsed.ok() ? *parsed : TrustedProxies();
}

bool in(const char* cidr, const char* ip) {
    auto c = Cidr::parse(cidr);
    auto a = IpAddress::parse(ip);
    EXPECT_TRUE(c.ok()) << cidr;
    EXPECT_TRUE(a) << ip;
    return c.ok() && a && c->contains(*a);
}

TEST(Cidr, Ipv4) {
    EXPECT_TRUE(in("10.0.0.0/8", "10.255.1.2"));
    EXPECT_FALSE(in("10.0.0.0/8", "11.0.0.1"));
    EXPECT_TRUE(in("192.168.1.0/23", "192.168.0.77"));
    EXPECT_FALSE(in("192.168.1.0/24", "192.168.0.77"));
    EXPECT_TRUE(in("203.0.113.7", "203.0.113.7")) << "a bare address is one host";
    EXPECT_FALSE(in("203.0.113.7", "203.0.113.8"));
    EXPECT_TRUE(in("0.0.0.0/0", "8.8.8.8"));
    EXPECT_TRUE(in("10.1.2.3/8", "10.9.9.9")) << "host bits in the network are cleared";
}

TEST(Cidr, Ipv6AndMappedAddresses) {
    EXPECT_TRUE(in("fd00::/8", "fd12:3456::1"));
    EXPECT_FALSE(in("fd00::/8", "fe80::1"));
    EXPECT_TRUE(in("2001:db8::/32", "2001:db8:ffff::1"));
    EXPECT_TRUE(in("::1", "::1"));
    EXPECT_FALSE(in("10.0.0.0/8", "fd00::1")) << "families never match";
    EXPECT_TRUE(in("10.0.0.0/8", "::ffff:10.1.2.3")) << "IPv4-mapped IPv6 is IPv4";
}

TEST(Cidr, RefusesGarbage) {
    for (const char* bad : {"", "10.0.0.0/33", "fd00::/129", "10.0.0.0/", "10.0.0.0/x", "10.0.0/8", "host.example",
                            "10.0.0.0/8/8", "10.0.0.0/-1"})
        EXPECT_FALSE(Cidr::parse(bad).ok()) << bad;
    auto parsed = TrustedProxies::parse({"10.0.0.0/8", "nonsense"});
    ASSERT_FALSE(parsed.ok());
    EXPECT_NE(parsed.error().find("--trusted-proxies"), std::string::npos) << parsed.error();
    EXPECT_NE(parsed.error().find("nonsense"), std::string::npos) << parsed.error();
}

TEST(PeerHost, StripsThePort) {
    EXPECT_EQ(peer_host("192.0.2.1:5678"), "192.0.2.1");
    EXPECT_EQ(peer_host("::1:5678"), "::1");
    EXPECT_EQ(peer_host("[2001:db8::1]:443"), "2001:db8::1");
}

TEST(ClientAddress, WithoutTrustedProxiesThePeerIsTheClient) {
    EXPECT_EQ(client_address("192.0.2.1", {"203.0.113.9"}, TrustedProxies()), "192.0.2.1");
}

TEST(ClientAddress, AnUntrustedPeerIsTheClientWhateverItForwards) {
    auto proxies = trusted({"10.0.0.0/8"});
    EXPECT_EQ(client_address("192.0.2.1", {"203.0.113.9"}, proxies), "192.0.2.1");
}

TEST(ClientAddress, NearestUntrustedAddressRightToLeft) {
    auto proxies = trusted({"10.0.0.0/8", "fd00::/8"});
    // A client forging "1.1.1.1" in front: the proxy appended the real address last.
    EXPECT_EQ(client_address("10.0.0.2", {"1.1.1.1, 203.0.113.9"}, proxies), "203.0.113.9");
    // Two proxies: the inner one appended the outer one's address, which is trusted and skipped.
    EXPECT_EQ(client_address("10.0.0.2", {"1.1.1.1, 203.0.113.9, 10.0.0.7"}, proxies), "203.0.113.9");
    // Several headers are one list, in order.
    EXPECT_EQ(client_address("10.0.0.2", {"1.1.1.1", "203.0.113.9,10.0.0.7"}, proxies), "203.0.113.9");
    EXPECT_EQ(client_address("fd00::2", {"2001:db8::5"}, proxies), "2001:db8::5");
    EXPECT_EQ(client_address("10.0.0.2", {" 203.0.113.9:4711 "}, proxies), "203.0.113.9") << "with a port";
    EXPECT_EQ(client_address("10.0.0.2", {"[2001:db8::5]:4711"}, proxies), "2001:db8::5");
    EXPECT_EQ(client_address("::ffff:10.0.0.2", {"203.0.113.9"}, proxies), "203.0.113.9") << "mapped peer";
}

TEST(ClientAddress, EdgeCases) {
    auto proxies = trusted({"10.0.0.0/8"});
    EXPECT_EQ(client_address("10.0.0.2", {}, proxies), "10.0.0.2") << "no header: the proxy itself";
    EXPECT_EQ(client_address("10.0.0.2", {""}, proxies), "10.0.0.2");
    EXPECT_EQ(client_address("10.0.0.2", {"10.0.0.5, 10.0.0.6"}, proxies), "10.0.0.5")
        << "all trusted: the leftmost";
    EXPECT_EQ(client_address("10.0.0.2", {"203.0.113.9, unknown"}, proxies), "10.0.0.2")
        << "garbage stops the walk at the hop that wrote it";
    EXPECT_EQ(client_address("10.0.0.2", {"203.0.113.9, 10.0.0.7, garbage"}, proxies), "10.0.0.2");
    EXPECT_EQ(client_address("10.0.0.2", {"garbage, 10.0.0.7"}, proxies), "10.0.0.7");
    EXPECT_EQ(client_address("10.0.0.2", {",,203.0.113.9,,"}, proxies), "203.0.113.9") << "empty entries skipped";
}

}  // namespace
}  // namespace herald
