// Channel secrets at rest: AES-256-GCM, and the key that seals them (notify.secret_key or
// <data.dir>/notify.key). Why a key of its own: docs/decisions/*-egress-disk-secrets-at-rest.md.
#include <fcntl.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>

#include "common/key_file.h"
#include "notify/internal.h"
#include "notify/notify.h"

namespace clisonix::notify {

namespace detail {

namespace {

constexpr std::string_view sealed_prefix = "enc:v1:";
constexpr size_t nonce_bytes = 12;
constexpr size_t tag_bytes = 16;
constexpr size_t key_bytes = 32;

std::string to_hex(std::string_view bytes) {
    static constexpr char digits[] = "0123456789abcdef";
    std::string out;
    out.reserve(bytes.size() * 2);
    for (unsigned char c : bytes) {
        out += digits[c >> 4];
        out += digits[c & 0xf];
    }
    return out;
}

std::optional<std::string> from_hex(std::string_view hex) {
    if (hex.size() % 2 != 0) return std::nullopt;
    auto nibble = [](char c) -> int {
        if (c >= '0' && c <= '9') return c - '0';
        if (c >= 'a' && c <= 'f') return c - 'a' + 10;
        if (c >= 'A' && c <= 'F') return c - 'A' + 10;
        return -1;
    };
    std::string out;
    out.reserve(hex.size() / 2);
    for (size_t i = 0; i < hex.size(); i += 2) {
        int hi = nibble(hex[i]), lo = nibble(hex[i + 1]);
        if (hi < 0 || lo < 0) return std::nullopt;
        out += static_cast<char>(hi * 16 + lo);
    }
    return out;
}

struct ctx_deleter {
    void operator()(EVP_CIPHER_CTX* c) const { EVP_CIPHER_CTX_free(c); }
};
using cipher_ctx = std::unique_ptr<EVP_CIPHER_CTX, ctx_deleter>;

const unsigned char* bytes(std::string_view s) {
    return reinterpret_cast<const unsigned char*>(s.data());
}

}  // namespace

bool is_sealed(std::string_view stored) {
    return stored.starts_with(sealed_prefix);
}

std::string seal_secret(std::string_view key, std::string_view channel_name,
                        std::string_view secret) {
    if (key.empty() || secret.empty()) return std::string(secret);
    unsigned char nonce[nonce_bytes];
    RAND_bytes(nonce, sizeof nonce);
    cipher_ctx ctx(EVP_CIPHER_CTX_new());
    std::string out(secret.size() + 16, '\0');
    int len = 0, total = 0;
    unsigned char tag[tag_bytes];
    bool ok = ctx && EVP_EncryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, bytes(key), nonce);
    // The channel name is authenticated: a sealed secret copied to another channel's row
    // does not open there.
    ok = ok && EVP_EncryptUpdate(ctx.get(), nullptr, &len, bytes(channel_name),
                                 static_cast<int>(channel_name.size()));
    ok = ok && EVP_EncryptUpdate(ctx.get(), reinterpret_cast<unsigned char*>(out.data()), &len,
                                 bytes(secret), static_cast<int>(secret.size()));
    total = len;
    ok = ok &&
         EVP_EncryptFinal_ex(ctx.get(), reinterpret_cast<unsigned char*>(out.data()) + total, &len);
    total += len;
    ok = ok && EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, tag_bytes, tag);
    // Never store the plaintext when sealing failed: OpenSSL failing on AES-GCM means the
    // process is broken, and the delivery that needs the secret will say so.
    if (!ok) return std::string(sealed_prefix) + "broken";
    out.resize(static_cast<size_t>(total));
    std::string blob(reinterpret_cast<const char*>(nonce), nonce_bytes);
    blob += out;
    blob.append(reinterpret_cast<const char*>(tag), tag_bytes);
    return std::string(sealed_prefix) + to_hex(blob);
}

result<std::string> open_secret(std::string_view key, std::string_view channel_name,
                                std::string_view stored) {
    if (!is_sealed(stored)) return std::string(stored);
    auto cannot = [&] {
        return make_error("corrupt",
                          "The secret of channel " + std::string(channel_name) +
                              " does not open with this server's key (notify.secret_key or "
                              "<data.dir>/notify.key changed?); set the secret again",
                          "secret");
    };
    if (key.size() != key_bytes) return cannot();
    auto blob = from_hex(stored.substr(sealed_prefix.size()));
    if (!blob || blob->size() < nonce_bytes + tag_bytes) return cannot();
    std::string_view b(*blob);
    auto nonce = b.substr(0, nonce_bytes);
    auto ciphertext = b.substr(nonce_bytes, b.size() - nonce_bytes - tag_bytes);
    std::string tag(b.substr(b.size() - tag_bytes));
    cipher_ctx ctx(EVP_CIPHER_CTX_new());
    std::string out(ciphertext.size() + 16, '\0');
    int len = 0, total = 0;
    bool ok =
        ctx && EVP_DecryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, bytes(key), bytes(nonce));
    ok = ok && EVP_DecryptUpdate(ctx.get(), nullptr, &len, bytes(channel_name),
                                 static_cast<int>(channel_name.size()));
    ok = ok && EVP_DecryptUpdate(ctx.get(), reinterpret_cast<unsigned char*>(out.data()), &len,
                                 bytes(ciphertext), static_cast<int>(ciphertext.size()));
    total = len;
    ok = ok && EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, tag_bytes, tag.data());
    ok = ok && EVP_DecryptFinal_ex(ctx.get(), reinterpret_cast<unsigned char*>(out.data()) + total,
                                   &len) > 0;
    if (!ok) return cannot();
    total += len;
    out.resize(static_cast<size_t>(total));
    return out;
}

}  // namespace detail

namespace {

error key_file_error(const std::string& path, const std::string& why) {
    return make_error("unavailable", "notify: the channel-secret key " + path + " " + why);
}

// <dir>/notify.key: 64 hex digits, created once with O_EXCL (two servers starting at once
// agree on the winner's key), readable by this user only.
result<std::string> key_from_file(const std::string& dir) {
    const std::string path = (std::filesystem::path(dir) / "notify.key").string();
    std::string key(detail::key_bytes, '\0');
    RAND_bytes(reinterpret_cast<unsigned char*>(key.data()), static_cast<int>(key.size()));
    auto created = create_key_file(path, detail::to_hex(key) + "\n");
    if (!created) return key_file_error(path, created.error().message);
    if (!*created) {
        std::ifstream in(path);
        std::string line;
        std::getline(in, line);
        auto stored = detail::from_hex(line);
        if (!stored || stored->size() != detail::key_bytes)
            return key_file_error(path, "does not hold 64 hex digits");
        ::chmod(path.c_str(), 0600);
        return *stored;
    }
    return key;
}

}  // namespace

namespace detail {

result<std::string> secret_key_from(const config::config& cfg) {
    const std::string& configured = cfg.get_string("notify.secret_key");
    if (!configured.empty()) {
        if (configured.size() < 32)
            return make_error("invalid_argument", "notify.secret_key must be 32+ characters",
                              "notify.secret_key");
        // Any 32+ character text becomes a 256-bit key, the same on every node.
        unsigned char digest[EVP_MAX_MD_SIZE];
        unsigned int len = 0;
        EVP_Digest(configured.data(), configured.size(), digest, &len, EVP_sha256(), nullptr);
        return std::string(reinterpret_cast<const char*>(digest), len);
    }
    return key_from_file(cfg.get_string("data.dir"));
}

}  // namespace detail

std::string seal_secret(std::string_view key, std::string_view context, std::string_view secret) {
    return detail::seal_secret(key, context, secret);
}

result<std::string> open_secret(std::string_view key, std::string_view context,
                                std::string_view stored) {
    return detail::open_secret(key, context, stored);
}

}  // namespace clisonix::notify
