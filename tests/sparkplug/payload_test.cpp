// The Sparkplug B payload codec: exact values for each data type, the rebirth command, topics,
// and malformed payloads refused with an error (never a crash).
#include <gtest/gtest.h>

#include "mqtt/sparkplug.h"

namespace clisonix::mqtt::sparkplug {
namespace {

metric typed(std::string name, datatype t, value v) {
    metric m;
    m.name = std::move(name);
    m.type = static_cast<uint32_t>(t);
    m.v = std::move(v);
    return m;
}

TEST(SparkplugPayload, EveryScalarTypeDecodesToItsExactValue) {
    payload p;
    p.timestamp_ms = 1704067200000;
    p.seq = 7;
    p.metrics = {
        typed("i8", datatype::int8, int64_t{-1}),
        typed("i16", datatype::int16, int64_t{-32768}),
        typed("i32", datatype::int32, int64_t{-5}),
        typed("i64", datatype::int64, int64_t{-9000000000}),
        typed("u8", datatype::uint8, uint64_t{255}),
        typed("u16", datatype::uint16, uint64_t{65535}),
        typed("u32", datatype::uint32, uint64_t{4294967295}),
        typed("u64", datatype::uint64, uint64_t{18446744073709551615ULL}),
        typed("f", datatype::float32, 21.3),
        typed("d", datatype::float64, 1450.25),
        typed("b", datatype::boolean, true),
        typed("s", datatype::string, std::string("running")),
        typed("dt", datatype::datetime, uint64_t{1704067200123}),
    };
    p.metrics[8].unit = "°C";
    auto d = decode(encode(p));
    ASSERT_TRUE(d) << d.error().message;
    EXPECT_EQ(d->timestamp_ms, 1704067200000u);
    EXPECT_EQ(d->seq, 7u);
    ASSERT_EQ(d->metrics.size(), 13u);
    EXPECT_EQ(d->metrics[0].v, value(int64_t{-1}));
    EXPECT_EQ(d->metrics[1].v, value(int64_t{-32768}));
    EXPECT_EQ(d->metrics[2].v, value(int64_t{-5}));
    EXPECT_EQ(d->metrics[3].v, value(int64_t{-9000000000}));
    EXPECT_EQ(d->metrics[4].v, value(uint64_t{255}));
    EXPECT_EQ(d->metrics[5].v, value(uint64_t{65535}));
    EXPECT_EQ(d->metrics[6].v, value(uint64_t{4294967295}));
    EXPECT_EQ(d->metrics[7].v, value(uint64_t{18446744073709551615ULL}));
    EXPECT_EQ(d->metrics[8].v, value(21.3));  // the float's shortest text, not 21.2999992
    EXPECT_EQ(d->metrics[8].unit, "°C");
    EXPECT_EQ(d->metrics[9].v, value(1450.25));
    EXPECT_EQ(d->metrics[10].v, value(true));
    EXPECT_EQ(d->metrics[11].v, value(std::string("running")));
    EXPECT_EQ(d->metrics[12].v, value(uint64_t{1704067200123}));
    EXPECT_EQ(datatype_name(d->metrics[8].type), "Float");
}

TEST(SparkplugPayload, DataByAliasTakesItsTypeFromTheBirth) {
    // Data messages often carry no datatype: an Int8 -1 arrives as int_value 0xFFFFFFFF.
    payload p;
    metric m;
    m.alias = 3;
    m.v = uint64_t{0xFFFFFFFF};
    m.timestamp_ms = 1704067201000;
    p.metrics.push_back(m);
    auto d = decode(encode(p));
    ASSERT_TRUE(d) << d.error().message;
    EXPECT_EQ(d->metrics[0].alias, 3u);
    EXPECT_EQ(d->metrics[0].timestamp_ms, 1704067201000u);
    EXPECT_EQ(retype(d->metrics[0].v, static_cast<uint32_t>(datatype::int8)), value(int64_t{-1}));
    EXPECT_EQ(retype(d->metrics[0].v, static_cast<uint32_t>(datatype::int32)), value(int64_t{-1}));
    EXPECT_EQ(retype(value(uint64_t{1}), static_cast<uint32_t>(datatype::boolean)), value(true));
}

TEST(SparkplugPayload, NullMetricsCarryNoValue) {
    payload p;
    auto m = typed("t", datatype::float64, 1.0);
    m.is_null = true;
    p.metrics.push_back(m);
    auto d = decode(encode(p));
    ASSERT_TRUE(d);
    EXPECT_TRUE(d->metrics[0].is_null);
    EXPECT_EQ(d->metrics[0].v, value(std::monostate{}));
}

TEST(SparkplugPayload, RebirthCommandIsNodeControlRebirthTrue) {
    auto d = decode(encode_rebirth(1704067200000));
    ASSERT_TRUE(d);
    ASSERT_EQ(d->metrics.size(), 1u);
    EXPECT_EQ(d->metrics[0].name, "Node Control/Rebirth");
    EXPECT_EQ(d->metrics[0].type, static_cast<uint32_t>(datatype::boolean));
    EXPECT_EQ(d->metrics[0].v, value(true));
    EXPECT_EQ(d->timestamp_ms, 1704067200000u);
}

TEST(SparkplugPayload, MalformedPayloadsAreErrorsNamingTheReason) {
    auto bad = decode(std::string("\xff\xff\xff\xff", 4));
    ASSERT_FALSE(bad);
    EXPECT_EQ(bad.error().message, "not a Sparkplug B payload (protobuf)");
    // A metric (field 2) announcing 100 bytes with 1 present: truncated.
    auto cut = decode(std::string("\x12\x64\x0a", 3));
    ASSERT_FALSE(cut);
    EXPECT_EQ(cut.error().code, "invalid_argument");
    payload p;
    p.seq = 300;
    auto seq = decode(encode(p));
    ASSERT_FALSE(seq);
    EXPECT_EQ(seq.error().message, "seq: 300 is past 255");
    EXPECT_EQ(seq.error().field, "seq");
    // Compressed payloads (uuid SPBV1.0_COMPRESSED, the body deflated): not read.
    auto compressed = decode(std::string("\x22\x12SPBV1.0_COMPRESSED", 20));
    ASSERT_FALSE(compressed);
    EXPECT_EQ(compressed.error().message, "compressed payloads are not supported");
    payload anonymous;
    anonymous.metrics.push_back(metric{});
    auto nameless = decode(encode(anonymous));
    ASSERT_FALSE(nameless);
    EXPECT_EQ(nameless.error().message, "metrics[0]: neither a name nor an alias");
    // Every prefix of a good payload: an error or a payload, never a crash.
    payload good;
    good.metrics = {typed("s", datatype::string, std::string("abc")),
                    typed("d", datatype::float64, 2.5)};
    const auto bytes = encode(good);
    for (size_t n = 0; n < bytes.size(); ++n)
        (void)decode(std::string_view(bytes).substr(0, n));
}

TEST(SparkplugPayload, TopicsOfTheNamespace) {
    auto t = parse_topic("spBv1.0/plant-a/DDATA/line-3/pump-1");
    ASSERT_TRUE(t);
    EXPECT_EQ(t->type, message_type::ddata);
    EXPECT_EQ(t->group, "plant-a");
    EXPECT_EQ(t->edge_node, "line-3");
    EXPECT_EQ(t->device, "pump-1");
    auto n = parse_topic("spBv1.0/plant-a/NBIRTH/line-3");
    ASSERT_TRUE(n);
    EXPECT_EQ(n->type, message_type::nbirth);
    EXPECT_EQ(n->device, "");
    auto s = parse_topic("spBv1.0/STATE/clisonix");
    ASSERT_TRUE(s);
    EXPECT_EQ(s->type, message_type::state);
    EXPECT_EQ(s->edge_node, "clisonix");
    EXPECT_FALSE(parse_topic("spBv1.0/plant-a/NBIRTH/line-3/pump-1"));  // N* has no device
    EXPECT_FALSE(parse_topic("spBv1.0/plant-a/DDATA/line-3"));          // D* needs one
    EXPECT_FALSE(parse_topic("spBv1.0/plant-a/NOPE/line-3"));
    EXPECT_FALSE(parse_topic("spBv1.0/plant-a//line-3"));
    EXPECT_FALSE(parse_topic("v1/devices/me/telemetry"));
}

}  // namespace
}  // namespace clisonix::mqtt::sparkplug
