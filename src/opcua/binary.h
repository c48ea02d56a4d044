// OPC UA binary encoding (Part 6 §5.2) of the built-in types: a writer that appends to a
// string and a reader that checks every length against the bytes left. A reader that meets
// bad bytes remembers the first failure and returns zeroes from then on, so that a decoder
// reads a whole structure and checks `ok()` once; nothing it reads can overrun or recurse
// without bound.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "opcua/opcua.h"

namespace clisonix::opcua::binary {

// Built-in type ids (Part 6 Table 1).
enum builtin : uint8_t {
    t_boolean = 1,
    t_sbyte,
    t_byte,
    t_int16,
    t_uint16,
    t_int32,
    t_uint32,
    t_int64,
    t_uint64,
    t_float,
    t_double,
    t_string,
    t_datetime,
    t_guid,
    t_bytestring,
    t_xml,
    t_nodeid,
    t_expanded_nodeid,
    t_statuscode,
    t_qualified_name,
    t_localized_text,
    t_extension_object,
    t_data_value,
    t_variant,
    t_diagnostic_info
};

// DateTime is 100 ns ticks since 1601-01-01; Unix ms are what the rest of Clisonix uses.
constexpr int64_t unix_epoch_ticks = 116444736000000000LL;
inline int64_t ticks_to_unix_ms(int64_t t) {
    return t <= 0 ? 0 : (t - unix_epoch_ticks) / 10000;
}
inline int64_t unix_ms_to_ticks(int64_t ms) {
    return ms * 10000 + unix_epoch_ticks;
}

class writer {
public:
    std::string out;

    void u8(uint8_t v) { out.push_back(static_cast<char>(v)); }
    void boolean(bool v) { u8(v ? 1 : 0); }
    void u16(uint16_t v) { le(v); }
    void u32(uint32_t v) { le(v); }
    void i32(int32_t v) { le(static_cast<uint32_t>(v)); }
    void i64(int64_t v) { le(static_cast<uint64_t>(v)); }
    void f64(double v) {
        uint64_t bits;
        std::memcpy(&bits, &v, 8);
        le(bits);
    }
    void string(std::string_view s) {
        i32(static_cast<int32_t>(s.size()));
        out.append(s);
    }
    void null_string() { i32(-1); }
    void bytes(std::string_view s) { string(s); }  // ByteString: same wire form
    void raw(std::string_view s) { out.append(s); }
    void datetime_ms(int64_t unix_ms) { i64(unix_ms_to_ticks(unix_ms)); }
    void node(const node_id& id);
    void expanded_node(const node_id& id) { node(id); }
    void qualified_name(uint16_t ns, std::string_view name) {
        u16(ns);
        string(name);
    }
    // An ExtensionObject with a binary body of the given encoding id.
    void extension_object(uint32_t encoding_id, std::string_view body) {
        node(node_id::of(encoding_id));
        u8(1);
        bytes(body);
    }
    void null_extension_object() {
        node(node_id{});
        u8(0);
    }
    // Arrays: the count first; -1 is a null array.
    void count(size_t n) { i32(static_cast<int32_t>(n)); }

private:
    template <typename T>
    void le(T v) {
        for (size_t i = 0; i < sizeof(T); ++i)
            out.push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
    }
};

class reader {
public:
    explicit reader(std::string_view data) : _data(data) {}

    bool ok() const { return _error.empty(); }
    const std::string& error() const { return _error; }
    size_t left() const { return _data.size() - _pos; }
    size_t position() const { return _pos; }
    void fail(std::string why) {
        if (_error.empty()) _error = std::move(why);
        _pos = _data.size();
    }

    uint8_t u8();
    bool boolean() { return u8() != 0; }
    uint16_t u16() { return static_cast<uint16_t>(le(2)); }
    uint32_t u32() { return static_cast<uint32_t>(le(4)); }
    int32_t i32() { return static_cast<int32_t>(u32()); }
    int64_t i64() { return static_cast<int64_t>(le(8)); }
    float f32();
    double f64();
    std::string string();  // String and ByteString; null reads as empty
    std::string_view raw(size_t n);
    void skip(size_t n) { (void)raw(n); }
    int64_t datetime_ms() { return ticks_to_unix_ms(i64()); }
    std::string guid();  // text form
    node_id node();
    node_id expanded_node();
    uint32_t status() { return u32(); }
    void qualified_name(uint16_t& ns, std::string& name) {
        ns = u16();
        name = string();
    }
    std::string localized_text();  // the text; the locale is dropped
    // An ExtensionObject: its type (encoding) id and its body bytes.
    void extension_object(node_id& type, std::string& body);
    value variant();
    data_value read_data_value();
    void diagnostic_info();
    // An array count, checked against the bytes left (each element takes at least
    // `min_element_size` bytes). -1 (null) reads as 0.
    size_t count(size_t min_element_size = 1);

    // Nesting guard for Variant, DataValue and DiagnosticInfo inside each other.
    static constexpr int max_depth = 16;

private:
    uint64_t le(size_t n);
    value::scalar scalar(uint8_t type);

    std::string_view _data;
    size_t _pos = 0;
    int _depth = 0;
    uint8_t _last_node_flags = 0;
    std::string _error;
};

// Guid text form <-> 16 wire bytes.
std::string guid_to_text(std::string_view wire16);
bool guid_from_text(std::string_view text, std::string& wire16);

}  // namespace clisonix::opcua::binary
