// Agreement with InfluxData's line protocol decoder on its own test corpus
// (github.com/influxdata/line-protocol, lineprotocol/testdata/corpus.json; not vendored):
//   build/bench/line_protocol_corpus corpus.json
// Each decode case is parsed as one request; prints how many the reference refuses and we
// accept (and the reverse), and lists the inputs of the first kind.
#include <boost/json.hpp>

#include <cstdio>
#include <fstream>
#include <iterator>
#include <string>

#include "ingest/ingest.h"

namespace {

std::string base64_decode(std::string_view in) {
    auto value = [](char c) -> int {
        if (c >= 'A' && c <= 'Z') return c - 'A';
        if (c >= 'a' && c <= 'z') return c - 'a' + 26;
        if (c >= '0' && c <= '9') return c - '0' + 52;
        if (c == '+') return 62;
        if (c == '/') return 63;
        return -1;
    };
    std::string out;
    int bits = 0, acc = 0;
    for (char c : in) {
        int v = value(c);
        if (v < 0) continue;  // '=' padding
        acc = acc << 6 | v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out.push_back(static_cast<char>((acc >> bits) & 0xFF));
        }
    }
    return out;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: line_protocol_corpus corpus.json\n");
        return 2;
    }
    std::ifstream file(argv[1], std::ios::binary);
    std::string text((std::istreambuf_iterator<char>(file)), {});
    boost::system::error_code ec;
    auto doc = boost::json::parse(text, ec);
    if (ec || !doc.is_object() || !doc.as_object().contains("decode")) {
        std::fprintf(stderr, "%s: not the corpus (%s)\n", argv[1], ec.message().c_str());
        return 2;
    }
    clisonix::ingest::line_parser parser;
    clisonix::storage::write_batch batch;
    size_t cases = 0, we_accept_more = 0, we_refuse_more = 0;
    for (const auto& [key, c] : doc.at("decode").as_object()) {
        const auto& input = c.at("input").at("text");
        std::string body = input.is_string() ? std::string(input.as_string())
                                             : base64_decode(input.at("binary").as_string());
        clisonix::ingest::line_options opts;
        opts.now_ns = 946'815'194'000'000'000;
        bool reference_ok = !c.at("output").as_object().contains("error");
        bool ours_ok = parser.parse(body, opts, batch).ok();
        ++cases;
        if (!reference_ok && ours_ok) {
            ++we_accept_more;
            std::printf("accepted, the reference refuses: %s\n",
                        boost::json::serialize(boost::json::value(body)).c_str());
        }
        if (reference_ok && !ours_ok) ++we_refuse_more;
    }
    std::printf(
        "cases %zu, refused by the reference and accepted here %zu, accepted by the "
        "reference and refused here %zu\n",
        cases, we_accept_more, we_refuse_more);
    return 0;
}
