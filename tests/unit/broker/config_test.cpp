// Configuration parsing: defaults, flag > environment > file precedence, value syntax, errors that name the
// option, and a --help that documents every option of the spec.
#include "broker/config.h"

#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace herald {
namespace {

using Args = std::vector<std::string>;

Result<ConfigRequest, std::string> parse(const Args& args, const Args& env = {}) {
    std::vector<const char*> argv{"herald"};
    for (const auto& a : args) argv.push_back(a.c_str());
    argv.push_back(nullptr);
    std::vector<const char*> envp;
    for (const auto& e : env) envp.push_back(e.c_str());
    envp.push_back(nullptr);
    return parse_config(static_cast<int>(args.size() + 1), argv.data(), envp.data());
}

// Parses and expects success; returns the config (defaults on failure, after reporting it).
Config parse_ok(const Args& args, const Args& env = {}) {
    auto result = parse(args, env);
    EXPECT_TRUE(result.ok()) << "unexpected error: " << (result.ok() ? "" : result.error());
    return result.ok() ? result.value().config : Config{};
}

// A JSON file in the temp directory, removed at the end of the test.
class TempFile {
public:
    explicit TempFile(const std::string& content) {
        static std::atomic<int> counter{0};
        path_ = (std::filesystem::temp_directory_path() /
                 ("herald_config_test_" + std::to_string(getpid()) + "_" + std::to_string(counter++) + ".json"))
                    .string();
        std::ofstream(path_) << content;
    }
    ~TempFile() { std::filesystem::remove(path_); }
    const std::string& path() const { return path_; }

private:
    std::string path_;
};

std::string hostname() {
    char host[256] = {};
    gethostname(host, sizeof host - 1);
    return host;
}

TEST(ConfigTest, DefaultsMatchTheSpec) {
    Config c = parse_ok({});
    EXPECT_EQ(c.listen_host, "0.0.0.0");
    EXPECT_EQ(c.listen_port, 8080);
    EXPECT_EQ(c.node_name, hostname().empty() ? "herald" : hostname());
    EXPECT_EQ(c.api_key, "");
    EXPECT_EQ(c.max_message_size, 65536u);
    EXPECT_EQ(c.max_connections, 10000u);
    EXPECT_EQ(c.handshake_timeout_s, 10);
    EXPECT_EQ(c.connect_timeout_s, 10);
    EXPECT_EQ(c.heartbeat_s, 25);
    EXPECT_EQ(c.outbound_limit, 1048576u);
    EXPECT_EQ(c.history_size, 1000u);
    EXPECT_EQ(c.history_ttl_s, 300);
    EXPECT_EQ(c.session_ttl_s, 120);
    EXPECT_EQ(c.drain_timeout_s, 10);
    EXPECT_TRUE(c.client_publish);
    EXPECT_EQ(c.log_level, LogLevel::Info);
    EXPECT_TRUE(c.namespaces.empty());

    auto r = parse({});
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r.value().action, ConfigRequest::Action::Run);
}

TEST(ConfigTest, EveryFlagSetsItsField) {
    Config c = parse_ok({"--listen", "127.0.0.1:9001", "--node-name", "n1", "--api-key=secret",
                         "--max-message-size", "1000", "--max-connections", "7", "--handshake-timeout", "3",
                         "--connect-timeout", "4", "--heartbeat", "5", "--outbound-limit", "4096",
                         "--history-size", "11", "--history-ttl", "12", "--session-ttl", "13",
                         "--no-client-publish", "--drain-timeout", "14", "--log-level", "debug"});
    EXPECT_EQ(c.listen_host, "127.0.0.1");
    EXPECT_EQ(c.listen_port, 9001);
    EXPECT_EQ(c.node_name, "n1");
    EXPECT_EQ(c.api_key, "secret");
    EXPECT_EQ(c.max_message_size, 1000u);
    EXPECT_EQ(c.max_connections, 7u);
    EXPECT_EQ(c.handshake_timeout_s, 3);
    EXPECT_EQ(c.connect_timeout_s, 4);
    EXPECT_EQ(c.heartbeat_s, 5);
    EXPECT_EQ(c.outbound_limit, 4096u);
    EXPECT_EQ(c.history_size, 11u);
    EXPECT_EQ(c.history_ttl_s, 12);
    EXPECT_EQ(c.session_ttl_s, 13);
    EXPECT_FALSE(c.client_publish);
    EXPECT_EQ(c.drain_timeout_s, 14);
    EXPECT_EQ(c.log_level, LogLevel::Debug);
}

TEST(ConfigTest, ListenAcceptsPortZeroAndBracketedIpv6) {
    Config c = parse_ok({"--listen", "127.0.0.1:0"});
    EXPECT_EQ(c.listen_port, 0);
    c = parse_ok({"--listen=[::1]:9000"});
    EXPECT_EQ(c.listen_host, "::1");
    EXPECT_EQ(c.listen_port, 9000);
}

TEST(ConfigTest, LogLevels) {
    EXPECT_EQ(parse_ok({"--log-level", "debug"}).log_level, LogLevel::Debug);
    EXPECT_EQ(parse_ok({"--log-level", "info"}).log_level, LogLevel::Info);
    EXPECT_EQ(parse_ok({"--log-level", "warn"}).log_level, LogLevel::Warn);
    EXPECT_EQ(parse_ok({"--log-level", "error"}).log_level, LogLevel::Error);
}

TEST(ConfigTest, FlagOverridesEnvironmentOverridesFile) {
    TempFile file(R"({"heartbeat": 30, "history_size": 10, "node_name": "from-file"})");
    const std::string config = "--config=" + file.path();

    Config c = parse_ok({config});
    EXPECT_EQ(c.heartbeat_s, 30);
    EXPECT_EQ(c.history_size, 10u);
    EXPECT_EQ(c.node_name, "from-file");

    c = parse_ok({config}, {"HERALD_HEARTBEAT=40", "HERALD_NODE_NAME=from-env"});
    EXPECT_EQ(c.heartbeat_s, 40) << "environment over file";
    EXPECT_EQ(c.node_name, "from-env");
    EXPECT_EQ(c.history_size, 10u) << "the file still supplies what the environment does not";

    c = parse_ok({config, "--heartbeat", "50"}, {"HERALD_HEARTBEAT=40", "HERALD_NODE_NAME=from-env"});
    EXPECT_EQ(c.heartbeat_s, 50) << "flag over environment";
    EXPECT_EQ(c.node_name, "from-env");
    EXPECT_EQ(c.history_size, 10u);

    c = parse_ok({"--heartbeat", "50"}, {"HERALD_HEARTBEAT=40"});
    EXPECT_EQ(c.heartbeat_s, 50);

    // A flag placed before --config still wins over the file.
    c = parse_ok({"--heartbeat", "50", "--config", file.path()});
    EXPECT_EQ(c.heartbeat_s, 50);
}

TEST(ConfigTest, ConfigFileFromTheEnvironment) {
    TempFile file(R"({"max_connections": 3})");
    EXPECT_EQ(parse_ok({}, {"HERALD_CONFIG=" + file.path()}).max_connections, 3u);
}

TEST(ConfigTest, EnvironmentNamesAreUpperCasedFlagNames) {
    Config c = parse_ok({}, {"HERALD_MAX_MESSAGE_SIZE=2048", "HERALD_API_KEY=k=v", "HERALD_LISTEN=127.0.0.1:1",
                             "HERALD_LOG_LEVEL=warn", "HERALD_NO_CLIENT_PUBLISH=1", "HERALD_UNRELATED=x",
                             "OTHER=1"});
    EXPECT_EQ(c.max_message_size, 2048u);
    EXPECT_EQ(c.api_key, "k=v");
    EXPECT_EQ(c.listen_port, 1);
    EXPECT_EQ(c.log_level, LogLevel::Warn);
    EXPECT_FALSE(c.client_publish);
    EXPECT_TRUE(parse_ok({}, {"HERALD_NO_CLIENT_PUBLISH=0"}).client_publish);
    EXPECT_TRUE(parse_ok({}, {"HERALD_NO_CLIENT_PUBLISH=false"}).client_publish);
}

TEST(ConfigTest, FileKeysAreFlagNamesWithUnderscores) {
    TempFile file(R"({"max_message_size": "32KiB", "no_client_publish": true, "listen": "127.0.0.1:7000",
                      "log_level": "error", "history_ttl": 0.5})");
    Config c = parse_ok({"--config", file.path()});
    EXPECT_EQ(c.max_message_size, 32768u);
    EXPECT_FALSE(c.client_publish);
    EXPECT_EQ(c.listen_port, 7000);
    EXPECT_EQ(c.log_level, LogLevel::Error);
    EXPECT_EQ(c.history_ttl_s, 0.5);
}

TEST(ConfigTest, SizesTakeKAndMSuffixes) {
    EXPECT_EQ(parse_ok({"--max-message-size", "64K"}).max_message_size, 65536u);
    EXPECT_EQ(parse_ok({"--max-message-size", "32KiB"}).max_message_size, 32768u);
    EXPECT_EQ(parse_ok({"--outbound-limit", "2M"}).outbound_limit, 2u * 1024 * 1024);
    EXPECT_EQ(parse_ok({"--outbound-limit", "3MiB"}).outbound_limit, 3u * 1024 * 1024);
    EXPECT_EQ(parse_ok({"--outbound-limit", "70000"}).outbound_limit, 70000u);
}

TEST(ConfigTest, DurationsMayBeFractional) {
    Config c = parse_ok({"--heartbeat", "0.5", "--session-ttl", "1.25", "--handshake-timeout", "0.2",
                         "--connect-timeout=2.5", "--history-ttl", "0.75", "--drain-timeout", "0"});
    EXPECT_EQ(c.heartbeat_s, 0.5);
    EXPECT_EQ(c.session_ttl_s, 1.25);
    EXPECT_EQ(c.handshake_timeout_s, 0.2);
    EXPECT_EQ(c.connect_timeout_s, 2.5);
    EXPECT_EQ(c.history_ttl_s, 0.75);
    EXPECT_EQ(c.drain_timeout_s, 0);
    EXPECT_EQ(c.retention_for("c").ttl_ms, 750u);
}

TEST(ConfigTest, NamespacesOverrideRetentionByChannelPrefix) {
    Config c = parse_ok({"--namespace", "chat:100:60", "--namespace=news:5:0.5", "--history-size", "7",
                         "--history-ttl", "9"});
    ASSERT_EQ(c.namespaces.size(), 2u);
    RetentionPolicy chat = c.retention_for("chat:room1");
    EXPECT_EQ(chat.max_messages, 100u);
    EXPECT_EQ(chat.ttl_ms, 60'000u);
    RetentionPolicy nested = c.retention_for("chat:a:b");
    EXPECT_EQ(nested.max_messages, 100u) << "the namespace is the prefix before the FIRST ':'";
    RetentionPolicy news = c.retention_for("news:x");
    EXPECT_EQ(news.max_messages, 5u);
    EXPECT_EQ(news.ttl_ms, 500u);
    for (const char* other : {"chat", "other:x", "chatter:x", "c"}) {
        RetentionPolicy d = c.retention_for(other);
        EXPECT_EQ(d.max_messages, 7u) << other;
        EXPECT_EQ(d.ttl_ms, 9'000u) << other;
    }
    EXPECT_EQ(parse_ok({"--namespace", "chat:1:1", "--namespace", "chat:2:2"}).retention_for("chat:x").max_messages,
              2u)
        << "a repeated namespace: the last one wins";
}

TEST(ConfigTest, NamespacesFromTheConfigFile) {
    TempFile file(R"({"namespaces": {"chat": {"history_size": 100, "history_ttl": 60}, "log": {"history_ttl": 1.5}},
                      "history_size": 20})");
    Config c = parse_ok({"--config", file.path()});
    EXPECT_EQ(c.retention_for("chat:x").max_messages, 100u);
    EXPECT_EQ(c.retention_for("chat:x").ttl_ms, 60'000u);
    EXPECT_EQ(c.retention_for("log:x").ttl_ms, 1'500u);
    EXPECT_EQ(c.retention_for("other:x").max_messages, 20u);
}

struct Invalid {
    Args args;
    Args env;
    std::string must_name;  // the option the error message has to mention
};

void PrintTo(const Invalid& c, std::ostream* os) {
    for (const auto& a : c.args) *os << a << ' ';
    for (const auto& e : c.env) *os << '[' << e << "] ";
}

class ConfigInvalidTest : public ::testing::TestWithParam<Invalid> {};

TEST_P(ConfigInvalidTest, ErrorNamesTheOption) {
    const Invalid& c = GetParam();
    Result<ConfigRequest, std::string> result = ConfigRequest{};
    ASSERT_NO_THROW(result = parse(c.args, c.env)) << "errors are values, never exceptions";
    ASSERT_FALSE(result.ok()) << "accepted an invalid value";
    EXPECT_NE(result.error().find(c.must_name), std::string::npos)
        << "error '" << result.error() << "' does not name " << c.must_name;
}

INSTANTIATE_TEST_SUITE_P(
    Flags, ConfigInvalidTest,
    ::testing::Values(Invalid{{"--bogus"}, {}, "--bogus"},
                      Invalid{{"--bogus=1"}, {}, "--bogus"},
                      Invalid{{"stray"}, {}, "stray"},
                      Invalid{{"--listen", "0.0.0.0:99999"}, {}, "--listen"},
                      Invalid{{"--listen", "0.0.0.0:-1"}, {}, "--listen"},
                      Invalid{{"--listen", "0.0.0.0:http"}, {}, "--listen"},
                      Invalid{{"--listen", "0.0.0.0"}, {}, "--listen"},
                      Invalid{{"--listen", "0.0.0.0:"}, {}, "--listen"},
                      Invalid{{"--max-connections", "-5"}, {}, "--max-connections"},
                      Invalid{{"--max-connections", "0"}, {}, "--max-connections"},
                      Invalid{{"--max-connections", "many"}, {}, "--max-connections"},
                      Invalid{{"--max-connections", "99999999999999999999999"}, {}, "--max-connections"},
                      Invalid{{"--history-size", "-1"}, {}, "--history-size"},
                      Invalid{{"--history-size", "1.5"}, {}, "--history-size"},
                      Invalid{{"--max-message-size", "64Q"}, {}, "--max-message-size"},
                      Invalid{{"--max-message-size", "12"}, {}, "--max-message-size"},
                      Invalid{{"--outbound-limit", "17592186044417M"}, {}, "--outbound-limit"},  // 2^64 + 1 MiB
                      Invalid{{"--outbound-limit", "1K"}, {}, "--outbound-limit"},  // below max-message-size
                      Invalid{{"--heartbeat", "-1"}, {}, "--heartbeat"},
                      Invalid{{"--heartbeat", "fast"}, {}, "--heartbeat"},
                      Invalid{{"--heartbeat", "5s"}, {}, "--heartbeat"},
                      Invalid{{"--heartbeat", "nan"}, {}, "--heartbeat"},
                      Invalid{{"--heartbeat", "inf"}, {}, "--heartbeat"},
                      Invalid{{"--heartbeat"}, {}, "--heartbeat"},
                      Invalid{{"--session-ttl", "-0.5"}, {}, "--session-ttl"},
                      Invalid{{"--drain-timeout", "soon"}, {}, "--drain-timeout"},
                      Invalid{{"--connect-timeout", ""}, {}, "--connect-timeout"},
                      Invalid{{"--log-level", "loud"}, {}, "--log-level"},
                      Invalid{{"--log-level", ""}, {}, "--log-level"},
                      Invalid{{"--node-name", ""}, {}, "--node-name"},
                      Invalid{{"--no-client-publish=yes"}, {}, "--no-client-publish"},
                      Invalid{{"--namespace", "chat"}, {}, "--namespace"},
                      Invalid{{"--namespace", "chat:1"}, {}, "--namespace"},
                      Invalid{{"--namespace", ":1:1"}, {}, "--namespace"},
                      Invalid{{"--namespace", "bad name:1:1"}, {}, "--namespace"},
                      Invalid{{"--namespace", "chat:x:1"}, {}, "--namespace"},
                      Invalid{{"--namespace", "chat:-1:1"}, {}, "--namespace"},
                      Invalid{{"--namespace", "chat:1:-1"}, {}, "--namespace"},
                      Invalid{{"--namespace", "chat:1:soon"}, {}, "--namespace"},
                      Invalid{{"--config"}, {}, "--config"},
                      Invalid{{"--config", "/nonexistent/herald.json"}, {}, "--config"},
                      Invalid{{}, {"HERALD_HEARTBEAT=abc"}, "HERALD_HEARTBEAT"},
                      Invalid{{}, {"HERALD_MAX_CONNECTIONS=-1"}, "HERALD_MAX_CONNECTIONS"},
                      Invalid{{}, {"HERALD_LOG_LEVEL=loud"}, "HERALD_LOG_LEVEL"},
                      Invalid{{}, {"HERALD_LISTEN=nope"}, "HERALD_LISTEN"},
                      Invalid{{"--heartbeat", "5"}, {"HERALD_HEARTBEAT=abc"}, "HERALD_HEARTBEAT"}));

struct InvalidFile {
    std::string content;
    std::string must_name;
};

void PrintTo(const InvalidFile& c, std::ostream* os) { *os << c.content; }

class ConfigInvalidFileTest : public ::testing::TestWithParam<InvalidFile> {};

TEST_P(ConfigInvalidFileTest, ErrorNamesTheKey) {
    TempFile file(GetParam().content);
    Result<ConfigRequest, std::string> result = ConfigRequest{};
    ASSERT_NO_THROW(result = parse({"--config", file.path()})) << "errors are values, never exceptions";
    ASSERT_FALSE(result.ok()) << "accepted an invalid file";
    EXPECT_NE(result.error().find(GetParam().must_name), std::string::npos)
        << "error '" << result.error() << "' does not name " << GetParam().must_name;
}

INSTANTIATE_TEST_SUITE_P(
    Files, ConfigInvalidFileTest,
    ::testing::Values(InvalidFile{"{not json", "--config"},
                      InvalidFile{"[1, 2]", "--config"},
                      InvalidFile{R"({"bogus": 1})", "bogus"},
                      InvalidFile{R"({"heartbeat": "abc"})", "heartbeat"},
                      InvalidFile{R"({"heartbeat": -1})", "heartbeat"},
                      InvalidFile{R"({"history_size": -1})", "history_size"},
                      InvalidFile{R"({"history_size": [1]})", "history_size"},
                      InvalidFile{R"({"listen": "0.0.0.0:70000"})", "listen"},
                      InvalidFile{R"({"log_level": "loud"})", "log_level"},
                      InvalidFile{R"({"no_client_publish": "yes"})", "no_client_publish"},
                      InvalidFile{R"({"namespaces": [1]})", "namespaces"},
                      InvalidFile{R"({"namespaces": {"chat": 5}})", "chat"},
                      InvalidFile{R"({"namespaces": {"chat": {"history_size": "lots"}}})", "chat"},
                      InvalidFile{R"({"namespaces": {"chat": {"history_ttl": "soon"}}})", "chat"},
                      InvalidFile{R"({"namespaces": {"bad name": {"history_size": 1}}})", "bad name"}));

TEST(ConfigTest, HelpAndVersionAreActions) {
    auto help = parse({"--help"});
    ASSERT_TRUE(help.ok());
    EXPECT_EQ(help.value().action, ConfigRequest::Action::Help);
    auto version = parse({"--version"});
    ASSERT_TRUE(version.ok());
    EXPECT_EQ(version.value().action, ConfigRequest::Action::Version);
    auto help_despite_errors = parse({"--bogus", "--help"});
    EXPECT_TRUE(help_despite_errors.ok() || help_despite_errors.error().find("--bogus") != std::string::npos);
}

// Every option of the spec's table (/work/notes/spec.md, "Binary and options") with its placeholder.
const std::vector<std::pair<std::string, std::string>> kSpecOptions = {
    {"--listen", "HOST:PORT"},
    {"--node-name", "NAME"},
    {"--api-key", "KEY"},
    {"--max-message-size", "BYTES"},
    {"--max-connections", "N"},
    {"--handshake-timeout", ""},
    {"--connect-timeout", ""},
    {"--heartbeat", ""},
    {"--outbound-limit", "BYTES"},
    {"--history-size", "N"},
    {"--history-ttl", ""},
    {"--session-ttl", ""},
    {"--namespace", "NAME:SIZE:TTL"},
    {"--no-client-publish", ""},
    {"--drain-timeout", ""},
    {"--log-level", "LEVEL"},
    {"--config", "FILE"},
    {"--help", ""},
    {"--version", ""},
};

std::set<std::string> flags_in_help(const std::string& help) {
    std::set<std::string> out;
    std::regex flag(R"((^|\s)(--[a-z][a-z0-9-]*))");
    for (auto it = std::sregex_iterator(help.begin(), help.end(), flag); it != std::sregex_iterator(); ++it)
        out.insert((*it)[2]);
    return out;
}

TEST(ConfigTest, HelpListsEveryOptionOfTheSpec) {
    const std::string help = config_help_text();
    const std::set<std::string> listed = flags_in_help(help);
    for (const auto& [flag, placeholder] : kSpecOptions) {
        EXPECT_TRUE(listed.count(flag)) << flag << " is missing from --help:\n" << help;
        if (!placeholder.empty()) {
            EXPECT_NE(help.find(flag + " " + placeholder), std::string::npos)
                << "--help should show " << flag << " " << placeholder;
        }
    }
    EXPECT_NE(help.find("HERALD_"), std::string::npos) << "--help should mention the environment variables";
}

TEST(ConfigTest, EveryOptionInHelpIsAccepted) {
    // Sample values by placeholder: whatever --help documents must parse.
    const std::string file = ::testing::TempDir() + "herald_config_sample.txt";
    std::ofstream(file) << "sample-contents-at-least-32-bytes-long\n";
    const std::map<std::string, std::string> samples = {
        {"HOST:PORT", "127.0.0.1:0"}, {"NAME", "n"},         {"KEY", "k"},      {"BYTES", "65536"},
        {"N", "5"},                   {"SECONDS", "1"},      {"NAME:SIZE:TTL", "a:1:1"}, {"LEVEL", "debug"},
        {"URL", "redis://127.0.0.1:6379"}, {"FILE", file},   {"SECRET", "s"},   {"KID", "k1"},
        {"AUD", "a"},                 {"ISS", "i"},          {"JSON", "{}"},    {"LIST", "*"},
        {"CIDRS", "10.0.0.0/8"},      {"1.2|1.3", "1.3"},
    };
    const std::string help = config_help_text();
    std::regex line(R"(^\s+(--[a-z][a-z0-9-]*)(?: ([A-Z:]+|[0-9.|]+))?)");
    size_t checked = 0;
    std::istringstream in(help);
    for (std::string text; std::getline(in, text);) {
        std::smatch m;
        if (!std::regex_search(text, m, line)) continue;
        const std::string flag = m[1];
        if (flag == "--help" || flag == "--version" || flag == "--config") continue;
        Args args{flag};
        if (m[2].matched) {
            auto sample = samples.find(m[2]);
            ASSERT_NE(sample, samples.end()) << "no sample value for placeholder " << m[2] << " of " << flag;
            args.push_back(sample->second);
        }
        // The certificate and its key only make sense together.
        if (flag == "--tls-cert") args.insert(args.end(), {"--tls-key", file});
        if (flag == "--tls-key") args.insert(args.end(), {"--tls-cert", file});
        auto result = parse(args);
        EXPECT_TRUE(result.ok()) << flag << " from --help was refused: " << (result.ok() ? "" : result.error());
        ++checked;
    }
    EXPECT_GE(checked, kSpecOptions.size() - 3);
}

}  // namespace
}  // namespace herald
