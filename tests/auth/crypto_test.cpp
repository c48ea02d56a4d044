// The primitives: base64url, hashes, HMAC, constant-time equality, Argon2id, JWTs.
#include <gtest/gtest.h>

#include <boost/json.hpp>

#include "auth/crypto.h"
#include "auth/jwt.h"

namespace clisonix::auth::detail {
namespace {

TEST(base64url, round_trips_and_matches_rfc4648_vectors) {
    EXPECT_EQ(base64url_encode(""), "");
    EXPECT_EQ(base64url_encode("f"), "Zg");
    EXPECT_EQ(base64url_encode("fo"), "Zm8");
    EXPECT_EQ(base64url_encode("foo"), "Zm9v");
    EXPECT_EQ(base64url_encode("foob"), "Zm9vYg");
    EXPECT_EQ(base64url_encode("\xfb\xff"), "-_8");
    for (std::string s : {"", "a", "ab", "abc", "\x00\xff\x10\x80"}) {
        auto d = base64url_decode(base64url_encode(s));
        ASSERT_TRUE(d.ok());
        EXPECT_EQ(*d, s);
    }
}

TEST(base64url, decode_is_strict) {
    EXPECT_FALSE(base64url_decode("Zg==").ok());    // padding
    EXPECT_FALSE(base64url_decode("Zm9v+/").ok());  // standard alphabet
    EXPECT_FALSE(base64url_decode("Zm 9v").ok());
    EXPECT_FALSE(base64url_decode("Z").ok());   // impossible length
    EXPECT_FALSE(base64url_decode("Zh").ok());  // trailing bits set: not canonical
}

TEST(digests, sha256_and_hmac_match_known_vectors) {
    EXPECT_EQ(sha256_hex("abc"),
              "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    // RFC 4231 test case 2.
    EXPECT_EQ(hex(hmac_sha256("Jefe", "what do ya want for nothing?")),
              "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

TEST(digests, constant_time_equality) {
    EXPECT_TRUE(equal_constant_time("abc", "abc"));
    EXPECT_FALSE(equal_constant_time("abc", "abd"));
    EXPECT_FALSE(equal_constant_time("abc", "abcd"));
    EXPECT_TRUE(equal_constant_time("", ""));
}

TEST(random, tokens_are_long_and_distinct) {
    auto a = random_token("cxr_", 32);
    auto b = random_token("cxr_", 32);
    EXPECT_NE(a, b);
    EXPECT_EQ(a.size(), 4u + 43u);  // 256 bits in base64url
    EXPECT_EQ(a.substr(0, 4), "cxr_");
}

TEST(argon2id, hashes_verify_and_report_their_parameters) {
    argon2_params p{256, 1, 1};
    auto h = hash_password("a long enough password", p);
    ASSERT_TRUE(h.ok()) << h.error().message;
    EXPECT_EQ(h->rfind("$argon2id$v=19$m=256,t=1,p=1$", 0), 0u) << *h;
    EXPECT_TRUE(verify_password(*h, "a long enough password"));
    EXPECT_FALSE(verify_password(*h, "a long enough passwore"));
    EXPECT_FALSE(verify_password("not a hash", "x"));
    EXPECT_FALSE(needs_rehash(*h, p));
    EXPECT_TRUE(needs_rehash(*h, argon2_params{19456, 2, 1}));
    auto again = hash_password("a long enough password", p);
    EXPECT_NE(*again, *h);  // fresh salt each time
}

// ---- JWT -------------------------------------------------------------------------------

const jwt_key key{key_id_of("k1-secret-k1-secret-k1-secret-k1"),
                  "k1-secret-k1-secret-k1-secret-k1"};
constexpr int64_t now = 1'700'000'000;

jwt_claims claims() {
    return jwt_claims{"alice", "operator", "jti-1", now, now, now + 900};
}

std::string forge(const boost::json::object& header, const boost::json::object& payload,
                  std::string_view secret) {
    std::string input = base64url_encode(boost::json::serialize(header)) + "." +
                        base64url_encode(boost::json::serialize(payload));
    return input + "." + base64url_encode(hmac_sha256(secret, input));
}

boost::json::object good_payload() {
    return {{"iss", "clisonix"}, {"aud", "clisonix-api"},
            {"sub", "alice"},    {"role", "viewer"},
            {"iat", now},        {"nbf", now},
            {"exp", now + 900},  {"jti", "x"}};
}

result<jwt_claims> check(std::string_view token, int64_t at = now) {
    return verify_jwt(token, std::span<const jwt_key>(&key, 1), "clisonix", "clisonix-api", at);
}

std::string message_of(const result<jwt_claims>& r) {
    return r.ok() ? "ok" : r.error().code + ": " + r.error().message;
}

TEST(jwt, signs_and_verifies_with_every_claim) {
    auto token = sign_jwt(claims(), key, "clisonix", "clisonix-api");
    auto header = boost::json::parse(*base64url_decode(token.substr(0, token.find('.'))));
    EXPECT_EQ(header.at("alg"), "HS256");
    EXPECT_EQ(header.at("kid").as_string(), key.id);
    auto c = check(token);
    ASSERT_TRUE(c.ok()) << c.error().message;
    EXPECT_EQ(c->sub, "alice");
    EXPECT_EQ(c->role, "operator");
    EXPECT_EQ(c->jti, "jti-1");
    EXPECT_EQ(c->exp, now + 900);
}

TEST(jwt, expiry_and_not_before_have_a_30_second_leeway) {
    auto token = sign_jwt(claims(), key, "clisonix", "clisonix-api");
    EXPECT_EQ(message_of(check(token, now + 900 + 30)), "ok");
    EXPECT_EQ(message_of(check(token, now + 900 + 31)), "invalid_token: The token has expired");
    EXPECT_EQ(message_of(check(token, now - 30)), "ok");
    EXPECT_EQ(message_of(check(token, now - 31)), "invalid_token: The token is not valid yet");
}

TEST(jwt, rejects_other_algorithms_keys_and_claims) {
    boost::json::object h{{"alg", "HS256"}, {"typ", "JWT"}, {"kid", key.id}};
    EXPECT_EQ(message_of(check(forge(h, good_payload(), key.secret))), "ok");

    auto none = h;
    none["alg"] = "none";
    std::string unsigned_token = forge(none, good_payload(), key.secret);
    unsigned_token = unsigned_token.substr(0, unsigned_token.rfind('.') + 1);
    EXPECT_EQ(message_of(check(unsigned_token)),
              "invalid_token: The token's algorithm is not HS256");
    auto hs512 = h;
    hs512["alg"] = "HS512";
    EXPECT_EQ(message_of(check(forge(hs512, good_payload(), key.secret))),
              "invalid_token: The token's algorithm is not HS256");
    EXPECT_EQ(message_of(check(forge(h, good_payload(), "another-key-another-key-another!"))),
              "invalid_token: The token's signature does not verify");
    auto other_kid = h;
    other_kid["kid"] = "0000";
    EXPECT_EQ(message_of(check(forge(other_kid, good_payload(), key.secret))),
              "invalid_token: The token was signed with an unknown key");

    auto aud = good_payload();
    aud["aud"] = "someone-else";
    EXPECT_EQ(message_of(check(forge(h, aud, key.secret))),
              "invalid_token: The token is meant for another audience");
    aud["aud"] = boost::json::array{"x", "clisonix-api"};
    EXPECT_EQ(message_of(check(forge(h, aud, key.secret))), "ok");
    auto iss = good_payload();
    iss["iss"] = "evil";
    EXPECT_EQ(message_of(check(forge(h, iss, key.secret))),
              "invalid_token: The token was issued by someone else");
    auto no_exp = good_payload();
    no_exp.erase("exp");
    EXPECT_EQ(message_of(check(forge(h, no_exp, key.secret))),
              "invalid_token: The token has no expiry");
}

TEST(jwt, rejects_malformed_tokens) {
    for (std::string_view t :
         {"", "abc", "a.b", "a.b.c.d", "###.###.###", "e30.e30.", "eyJhbGciOiJIUzI1NiJ9.e30"}) {
        auto r = check(t);
        ASSERT_FALSE(r.ok()) << t;
        EXPECT_EQ(r.error().code, "invalid_token") << t;
    }
    // A valid token with one character of the payload changed.
    auto token = sign_jwt(claims(), key, "clisonix", "clisonix-api");
    auto dot = token.find('.');
    token[dot + 5] = token[dot + 5] == 'A' ? 'B' : 'A';
    EXPECT_EQ(message_of(check(token)), "invalid_token: The token's signature does not verify");
}

}  // namespace
}  // namespace clisonix::auth::detail
