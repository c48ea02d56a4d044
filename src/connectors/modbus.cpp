// The Modbus TCP driver on libmodbus: one context per session (libmodbus contexts are not
// thread safe, and a session belongs to one runner thread), requests batched over adjacent
// addresses of one unit and table.
#include <modbus.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstring>
#include <map>
#include <tuple>

#include "common/float_text.h"
#include "connectors/connectors.h"

namespace clisonix::connectors {

namespace {

enum class table { holding, input, coil, discrete };

constexpr int max_registers_per_request = 125;  // the protocol's limit for reads
constexpr int max_bits_per_request = 2000;

struct address {
    table t;
    int reg;
};

bool is_bits(table t) {
    return t == table::coil || t == table::discrete;
}

std::string_view table_name(table t) {
    switch (t) {
        case table::holding:
            return "holding";
        case table::input:
            return "input";
        case table::coil:
            return "coil";
        case table::discrete:
            return "discrete";
    }
    return "";
}

result<address> parse_address(std::string_view text, std::string_view field) {
    const auto colon = text.find(':');
    auto bad = [&](const std::string& why) {
        return make_error("invalid_argument", std::string(field) + ": " + why, std::string(field));
    };
    if (colon == std::string_view::npos)
        return bad("\"" + std::string(text) +
                   "\" must be <table>:<register> with table holding, input, coil or discrete");
    const auto name = text.substr(0, colon), number = text.substr(colon + 1);
    address a{};
    if (name == "holding")
        a.t = table::holding;
    else if (name == "input")
        a.t = table::input;
    else if (name == "coil")
        a.t = table::coil;
    else if (name == "discrete")
        a.t = table::discrete;
    else
        return bad("the table \"" + std::string(name) +
                   "\" is not holding, input, coil or discrete");
    auto [end, ec] = std::from_chars(number.data(), number.data() + number.size(), a.reg);
    if (ec != std::errc{} || end != number.data() + number.size() || a.reg < 0 || a.reg > 65535)
        return bad("the register \"" + std::string(number) + "\" must be an integer in 0..65535");
    return a;
}

int registers_of(std::string_view data_type) {
    if (data_type == "int32" || data_type == "uint32" || data_type == "float32") return 2;
    if (data_type == "int64" || data_type == "uint64" || data_type == "float64") return 4;
    return 1;
}

struct endpoint {
    std::string host;
    std::string port;
};

result<endpoint> parse_endpoint(std::string_view text) {
    auto bad = [&](const std::string& why) {
        return make_error("invalid_argument", "endpoint: " + why, "endpoint");
    };
    constexpr std::string_view scheme = "tcp://";
    if (!text.starts_with(scheme))
        return bad("\"" + std::string(text) + "\" must be tcp://host:port");
    auto rest = text.substr(scheme.size());
    endpoint e;
    std::string_view port;
    if (rest.starts_with('[')) {
        const auto close = rest.find(']');
        if (close == std::string_view::npos) return bad("an IPv6 address needs its closing ]");
        e.host = std::string(rest.substr(1, close - 1));
        rest = rest.substr(close + 1);
        if (rest.starts_with(':'))
            port = rest.substr(1);
        else if (!rest.empty())
            return bad("unexpected text after the host");
    } else {
        const auto colon = rest.rfind(':');
        e.host = std::string(rest.substr(0, colon));
        if (colon != std::string_view::npos) port = rest.substr(colon + 1);
    }
    if (e.host.empty() || e.host.find('/') != std::string::npos)
        return bad("the host is missing or holds a /");
    int p = 502;
    if (!port.empty()) {
        auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), p);
        if (ec != std::errc{} || end != port.data() + port.size() || p < 1 || p > 65535)
            return bad("the port must be an integer in 1..65535");
    }
    e.port = std::to_string(p);
    return e;
}

// One read request and the mappings its answer holds.
struct request {
    int unit;
    table t;
    int start;
    int count;
    std::vector<std::pair<size_t, int>> parts;  // (mapping index, offset in the answer)
};

// Mappings grouped by unit and table, sorted by address, merged while adjacent (or
// overlapping) and within the protocol's per-request limit.
std::vector<request> plan(const connector& c) {
    struct item {
        int unit;
        table t;
        int start;
        int width;
        size_t index;
    };
    std::vector<item> items;
    for (size_t i = 0; i < c.mappings.size(); ++i) {
        const auto& m = c.mappings[i];
        auto a = parse_address(m.address, "address");
        if (!a) continue;  // validated before; never here
        items.push_back({static_cast<int>(m.unit_id), a->t, a->reg,
                         is_bits(a->t) ? 1 : registers_of(m.data_type), i});
    }
    std::sort(items.begin(), items.end(), [](const item& a, const item& b) {
        return std::tie(a.unit, a.t, a.start) < std::tie(b.unit, b.t, b.start);
    });
    std::vector<request> out;
    for (const auto& it : items) {
        const int limit = is_bits(it.t) ? max_bits_per_request : max_registers_per_request;
        if (!out.empty()) {
            auto& r = out.back();
            const int end = r.start + r.count;
            const int new_end = std::max(end, it.start + it.width);
            if (r.unit == it.unit && r.t == it.t && it.start <= end && new_end - r.start <= limit) {
                r.count = new_end - r.start;
                r.parts.emplace_back(it.index, it.start - r.start);
                continue;
            }
        }
        out.push_back({it.unit, it.t, it.start, it.width, {{it.index, 0}}});
    }
    return out;
}

// The value of `n` registers as the mapping's data type says, before scale and offset.
double decode(const mapping& m, const uint16_t* regs) {
    const int n = registers_of(m.data_type);
    uint64_t bits = 0;
    for (int k = 0; k < n; ++k) {
        uint16_t w = regs[m.word_order == "big" ? k : n - 1 - k];
        if (m.byte_order == "little") w = static_cast<uint16_t>((w >> 8) | (w << 8));
        bits = (bits << 16) | w;
    }
    const auto& t = m.data_type;
    if (t == "int16") return static_cast<int16_t>(bits);
    if (t == "uint16") return static_cast<uint16_t>(bits);
    if (t == "int32") return static_cast<int32_t>(bits);
    if (t == "uint32") return static_cast<uint32_t>(bits);
    if (t == "int64") return static_cast<double>(static_cast<int64_t>(bits));
    if (t == "uint64") return static_cast<double>(bits);
    if (t == "float32") return decimal_of(std::bit_cast<float>(static_cast<uint32_t>(bits)));
    return std::bit_cast<double>(bits);
}

// raw * scale + offset; a scale of 1/n (0.1, 0.01) divides by n instead, so that 312 at
// scale 0.1 is stored as 31.2 and not as 31.200000000000003.
double scaled(double raw, const mapping& m) {
    const double divisor = std::round(1.0 / m.scale);
    if (divisor > 1 && std::abs(1.0 / m.scale - divisor) < 1e-9 * divisor)
        return raw / divisor + m.offset;
    return raw * m.scale + m.offset;
}

class modbus_session final : public session {
public:
    explicit modbus_session(const connector& c) : _c(c), _requests(plan(c)) {}
    ~modbus_session() override { close(); }

    status connect() override {
        close();
        auto e = parse_endpoint(_c.endpoint);
        if (!e) return e.error();
        _ctx = modbus_new_tcp_pi(e->host.c_str(), e->port.c_str());
        if (!_ctx) return fail("modbus: cannot use endpoint " + _c.endpoint);
        const auto sec = static_cast<uint32_t>(_c.timeout_ms / 1000);
        const auto usec = static_cast<uint32_t>((_c.timeout_ms % 1000) * 1000);
        modbus_set_response_timeout(_ctx, sec, usec);
        modbus_set_byte_timeout(_ctx, sec, usec);
        if (modbus_connect(_ctx) == -1) {
            auto err = fail("modbus connect " + _c.endpoint);
            close();
            return err;
        }
        return {};
    }

    status poll(std::vector<reading>& out) override {
        if (!_ctx) return make_error("unavailable", "modbus: not connected");
        for (const auto& r : _requests) {
            modbus_set_slave(_ctx, r.unit);
            ++_sent;
            int got = -1;
            switch (r.t) {
                case table::holding:
                    got = modbus_read_registers(_ctx, r.start, r.count, _regs);
                    break;
                case table::input:
                    got = modbus_read_input_registers(_ctx, r.start, r.count, _regs);
                    break;
                case table::coil:
                    got = modbus_read_bits(_ctx, r.start, r.count, _bits);
                    break;
                case table::discrete:
                    got = modbus_read_input_bits(_ctx, r.start, r.count, _bits);
                    break;
            }
            if (got != r.count)
                return fail("modbus read " + std::string(table_name(r.t)) + ":" +
                            std::to_string(r.start) + " (" + std::to_string(r.count) +
                            ") of unit " + std::to_string(r.unit) + " at " + _c.endpoint);
            for (const auto& [index, offset] : r.parts) {
                const auto& m = _c.mappings[index];
                const double raw =
                    is_bits(r.t) ? (_bits[offset] ? 1.0 : 0.0) : decode(m, _regs + offset);
                out.push_back({index, scaled(raw, m)});
            }
        }
        return {};
    }

    void close() override {
        if (!_ctx) return;
        modbus_close(_ctx);
        modbus_free(_ctx);
        _ctx = nullptr;
    }

    uint64_t requests() const override { return _sent; }

private:
    // The error of the libmodbus call just made, in words.
    static error fail(const std::string& what) {
        return make_error("unavailable", what + ": " + modbus_strerror(errno));
    }

    connector _c;
    std::vector<request> _requests;
    modbus_t* _ctx = nullptr;
    uint64_t _sent = 0;
    uint16_t _regs[max_registers_per_request]{};
    uint8_t _bits[max_bits_per_request]{};
};

class modbus_driver final : public driver {
public:
    std::string_view type() const override { return "modbus"; }

    status validate(const connector& c) const override {
        if (auto e = parse_endpoint(c.endpoint); !e) return e.error();
        for (size_t i = 0; i < c.mappings.size(); ++i) {
            const auto& m = c.mappings[i];
            const std::string at = "mapping[" + std::to_string(i) + "].";
            auto a = parse_address(m.address, at + "address");
            if (!a) return a.error();
            if (m.unit_id < 0 || m.unit_id > 255)
                return make_error("invalid_argument", at + "unit_id: must be an integer in 0..255",
                                  at + "unit_id");
            if (is_bits(a->t) && m.data_type != "bool")
                return make_error("invalid_argument",
                                  at + "data_type: a " + std::string(table_name(a->t)) +
                                      " is one bit: the data type must be bool",
                                  at + "data_type");
            if (!is_bits(a->t) && m.data_type == "bool")
                return make_error("invalid_argument",
                                  at + "data_type: bool is for coils and discrete inputs; a " +
                                      std::string(table_name(a->t)) +
                                      " register is int16, uint16, int32, ...",
                                  at + "data_type");
            if (!is_bits(a->t) && a->reg + registers_of(m.data_type) > 65536)
                return make_error("invalid_argument",
                                  at + "address: a " + m.data_type + " at register " +
                                      std::to_string(a->reg) + " runs past register 65535",
                                  at + "address");
        }
        return {};
    }

    std::unique_ptr<session> open(const connector& c) const override {
        return std::make_unique<modbus_session>(c);
    }
};

}  // namespace

std::unique_ptr<driver> make_modbus_driver() {
    return std::make_unique<modbus_driver>();
}

}  // namespace clisonix::connectors
