// Node ids in text form, the binary encoding of the built-in types, and the decoder's answer
// to bytes a hostile server could send.
#include <gtest/gtest.h>

#include "opcua/binary.h"
#include "opcua/crypto.h"
#include "opcua/secure_channel.h"
#include "opcua/services.h"

using namespace clisonix::opcua;

namespace {

std::string bytes(std::initializer_list<int> b) {
    std::string s;
    for (int c : b)
        s.push_back(static_cast<char>(c));
    return s;
}

TEST(opcua_node_id, parses_every_text_form_and_prints_it_back) {
    for (std::string text :
         {"i=2258", "ns=2;s=Pump1.Temp", "ns=3;g=72962B91-FA75-4AE6-8D28-B404DC7DAF63",
          "ns=1;b=M/RbKBsRVkePCePcx24oRA==", "ns=65535;i=4294967295"}) {
        auto id = parse_node_id(text);
        ASSERT_TRUE(id) << text << ": " << id.error().message;
        EXPECT_EQ(id->to_string(), text);
    }
    auto s = parse_node_id("ns=2;s=a;b=c");
    ASSERT_TRUE(s);
    EXPECT_EQ(s->identifier, "a;b=c");  // everything after s= is the string
}

TEST(opcua_node_id, names_the_part_at_fault) {
    auto err = [](std::string_view t) {
        auto r = parse_node_id(t);
        EXPECT_FALSE(r) << t;
        return r ? std::string() : r.error().message;
    };
    EXPECT_EQ(err("ns=x;i=1"),
              "node id 'ns=x;i=1': namespace index 'x' is not a number from 0 to 65535");
    EXPECT_EQ(err("ns=70000;i=1"),
              "node id 'ns=70000;i=1': namespace index '70000' is not a number from 0 to 65535");
    EXPECT_EQ(err("ns=1"), "node id 'ns=1': 'ns=' must be followed by ';' and the identifier");
    EXPECT_EQ(err("i=12a"),
              "node id 'i=12a': numeric identifier '12a' is not a number from 0 to 4294967295");
    EXPECT_EQ(err("q=1"), "node id 'q=1': identifier type 'q' is not one of i, s, g, b");
    EXPECT_EQ(err("ns=1;s="), "node id 'ns=1;s=': the string identifier is empty");
    EXPECT_EQ(
        err("g=1234"),
        "node id 'g=1234': guid '1234' is not of the form XXXXXXXX-XXXX-XXXX-XXXX-XXXXXXXXXXXX");
    EXPECT_EQ(err("b=!!"), "node id 'b=!!': opaque identifier '!!' is not base64");
    EXPECT_EQ(err(""), "node id '': expected i=, s=, g= or b= before the identifier");
}

TEST(opcua_binary, node_ids_round_trip_in_every_encoding) {
    for (std::string text : {"i=5", "ns=1;i=300", "ns=300;i=70000", "ns=2;s=Pump1.Temp",
                             "ns=3;g=72962B91-FA75-4AE6-8D28-B404DC7DAF63", "ns=1;b=AAEC"}) {
        binary::writer w;
        w.node(*parse_node_id(text));
        binary::reader r(w.out);
        EXPECT_EQ(r.node().to_string(), text);
        EXPECT_TRUE(r.ok());
        EXPECT_EQ(r.left(), 0u);
    }
    binary::writer w;
    w.node(node_id::of(5));
    EXPECT_EQ(w.out, bytes({0x00, 0x05}));  // the two-byte form
    // The Guid's first three fields are little-endian on the wire (Part 6 §5.2.2.7).
    binary::writer g;
    g.node(*parse_node_id("g=72962B91-FA75-4AE6-8D28-B404DC7DAF63"));
    EXPECT_EQ(g.out.substr(3, 8), bytes({0x91, 0x2B, 0x96, 0x72, 0x75, 0xFA, 0xE6, 0x4A}));
}

TEST(opcua_binary, decodes_variants_data_values_and_nested_types) {
    // DataValue { Variant Double[2] {1.5, -2}, status BadNodeIdUnknown, source time 1970+1 s }.
    binary::writer w;
    w.u8(0x01 | 0x02 | 0x04);
    w.u8(binary::t_double | 0x80);
    w.i32(2);
    w.f64(1.5);
    w.f64(-2);
    w.u32(0x80340000u);
    w.datetime_ms(1000);
    binary::reader r(w.out);
    auto dv = r.read_data_value();
    ASSERT_TRUE(r.ok()) << r.error();
    EXPECT_EQ(dv.v.to_string(), "[1.5, -2]");
    EXPECT_EQ(status_name_of(dv.status), "BadNodeIdUnknown");
    EXPECT_EQ(dv.source_time_ms, 1000);

    // LocalizedText, QualifiedName, ExtensionObject and a Variant in a Variant.
    binary::writer n;
    n.u8(binary::t_localized_text);
    n.u8(0x03);
    n.string("en");
    n.string("Pump");
    n.u8(binary::t_qualified_name);
    n.qualified_name(2, "Temp");
    n.u8(binary::t_extension_object);
    n.extension_object(811, "abc");
    n.u8(binary::t_variant);
    n.u8(binary::t_int32);
    n.i32(-7);
    binary::reader nr(n.out);
    EXPECT_EQ(nr.variant().to_string(), "Pump");
    EXPECT_EQ(nr.variant().to_string(), "Temp");
    EXPECT_EQ(nr.variant().to_string(), "abc");
    EXPECT_EQ(nr.variant().as_double(), -7.0);
    EXPECT_TRUE(nr.ok()) << nr.error();
}

TEST(opcua_binary, hostile_lengths_and_nesting_are_errors_not_crashes) {
    {
        const std::string data = bytes({0xFF, 0xFF, 0xFF, 0x7F, 'a'});
        binary::reader r(data);  // a 2 GiB string in 5 bytes
        (void)r.string();
        EXPECT_EQ(r.error(), "a length of 2147483647 runs past the end of the message");
    }
    {
        const std::string data = bytes({0x80 | binary::t_int32, 0x00, 0x00, 0x00, 0x10});
        binary::reader r(data);  // 268 M elements
        (void)r.variant();
        EXPECT_EQ(r.error(), "an array of 268435456 elements runs past the end of the message");
    }
    {
        std::string deep(100, static_cast<char>(binary::t_variant));  // Variant in Variant ...
        binary::reader r(deep);
        (void)r.variant();
        EXPECT_EQ(r.error(), "values nested more than 16 deep");
    }
    {
        std::string deep(100, 0x40);  // DiagnosticInfo with an inner one, 100 deep
        binary::reader r(deep);
        r.diagnostic_info();
        EXPECT_EQ(r.error(), "diagnostics nested more than 16 deep");
    }
    {
        const std::string data = bytes({0x3F});
        binary::reader r(data);
        (void)r.variant();
        EXPECT_EQ(r.error(), "unknown built-in type 63");
    }
    {
        const std::string data = bytes({0x07, 0x00});
        binary::reader r(data);
        (void)r.node();
        EXPECT_EQ(r.error(), "unknown node id encoding 7");
    }
    // Whatever the bytes, decode_any answers.
    for (uint32_t type : {431u, 530u, 634u, 829u, 464u, 0u}) {
        for (size_t len = 0; len < 64; ++len) {
            std::string junk(len, '\xFF');
            (void)services::decode_any(type, junk);
        }
    }
}

TEST(opcua_secure_channel, chunks_are_reassembled_and_bad_chunks_refused) {
    secure_channel ch;
    auto chunk = [](char kind, uint32_t seq, uint32_t req, std::string body) {
        binary::writer w;
        w.raw("MSG");
        w.u8(static_cast<uint8_t>(kind));
        w.u32(0);
        w.u32(0);  // channel
        w.u32(0);  // token
        w.u32(seq);
        w.u32(req);
        w.raw(body);
        for (int i = 0; i < 4; ++i)
            w.out[4 + i] = static_cast<char>((w.out.size() >> (8 * i)) & 0xFF);
        return w.out;
    };
    binary::writer body;
    body.node(node_id::of(634));
    body.raw("hello world");
    auto first = ch.accept_chunk(chunk('C', 1, 9, body.out.substr(0, 5)));
    ASSERT_TRUE(first);
    EXPECT_FALSE(*first);
    auto last = ch.accept_chunk(chunk('F', 2, 9, body.out.substr(5)));
    ASSERT_TRUE(last) << last.error().message;
    ASSERT_TRUE(*last);
    EXPECT_EQ((*last)->type_id, 634u);
    EXPECT_EQ((*last)->request_id, 9u);
    EXPECT_EQ((*last)->body, "hello world");

    for (uint32_t req = 20; req < 24; ++req)
        ASSERT_TRUE(ch.accept_chunk(chunk('C', req - 17, req, "x")));
    auto many = ch.accept_chunk(chunk('C', 7, 30, "x"));
    ASSERT_FALSE(many);
    EXPECT_EQ(many.error().message,
              "OPC UA server sent a bad message: more than 4 unfinished messages at once");

    auto gap = ch.accept_chunk(chunk('F', 9, 10, body.out));
    ASSERT_FALSE(gap);
    EXPECT_EQ(gap.error().message, "OPC UA server sent a bad message: sequence number 9 after 7");

    binary::writer err;
    err.raw("ERRF");
    err.u32(0);
    err.u32(0x80130000u);
    err.string("certificate rejected");
    auto e = ch.accept_chunk(err.out);
    ASSERT_FALSE(e);
    EXPECT_EQ(e.error().message,
              "OPC UA server closed the channel: BadSecurityChecksFailed (certificate rejected)");
}

TEST(opcua_crypto, p_sha256_matches_the_tls_test_vector) {
    // The P_SHA256 vector published for TLS 1.2's PRF (secret, "test label" + seed, 100 bytes).
    std::string secret = bytes({0x9b, 0xbe, 0x43, 0x6b, 0xa9, 0x40, 0xf0, 0x17, 0xb1, 0x76, 0x52,
                                0x84, 0x9a, 0x71, 0xdb, 0x35});
    std::string seed = "test label" + bytes({0xa0, 0xba, 0x9f, 0x93, 0x6c, 0xda, 0x31, 0x18, 0x27,
                                             0xa6, 0xf7, 0x96, 0xff, 0xd5, 0x19, 0x8c});
    EXPECT_EQ(crypto::hex(crypto::p_sha256(secret, seed, 16)), "e3f229ba727be17b8d122620557cd453");
}

}  // namespace
