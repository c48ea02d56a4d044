#include "opcua/crypto.h"

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace clisonix::opcua::crypto {
namespace {

std::string openssl_reason() {
    unsigned long e = ERR_get_error();
    ERR_clear_error();
    if (!e) return "unknown OpenSSL error";
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    return buf;
}

error crypto_error(std::string what) {
    return make_error("internal", what + ": " + openssl_reason());
}

struct ctx_free {
    void operator()(EVP_PKEY_CTX* c) const { EVP_PKEY_CTX_free(c); }
    void operator()(EVP_MD_CTX* c) const { EVP_MD_CTX_free(c); }
    void operator()(EVP_CIPHER_CTX* c) const { EVP_CIPHER_CTX_free(c); }
    void operator()(X509* x) const { X509_free(x); }
    void operator()(BIO* b) const { BIO_free(b); }
};

std::string read_file(const std::string& path, bool& found) {
    std::ifstream in(path, std::ios::binary);
    found = static_cast<bool>(in);
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

std::string x509_der(X509* x) {
    int n = i2d_X509(x, nullptr);
    if (n <= 0) return {};
    std::string der(static_cast<size_t>(n), '\0');
    auto* p = reinterpret_cast<unsigned char*>(der.data());
    i2d_X509(x, &p);
    return der;
}

// A certificate file's DER, whether the file is PEM or DER.
std::string der_of_file_text(const std::string& text) {
    std::unique_ptr<BIO, ctx_free> bio(BIO_new_mem_buf(text.data(), static_cast<int>(text.size())));
    std::unique_ptr<X509, ctx_free> x(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
    ERR_clear_error();
    if (x) return x509_der(x.get());
    auto* p = reinterpret_cast<const unsigned char*>(text.data());
    std::unique_ptr<X509, ctx_free> d(d2i_X509(nullptr, &p, static_cast<long>(text.size())));
    ERR_clear_error();
    return d ? x509_der(d.get()) : std::string();
}

result<void> write_file(const std::string& path, const std::string& data, mode_t mode) {
    std::error_code ec;
    auto parent = std::filesystem::path(path).parent_path();
    if (!parent.empty()) std::filesystem::create_directories(parent, ec);
    std::string tmp = path + ".tmp";
    {
        std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
        if (!out) return make_error("invalid_config", "cannot write '" + path + "'");
        out << data;
        if (!out) return make_error("invalid_config", "cannot write '" + path + "'");
    }
    ::chmod(tmp.c_str(), mode);
    std::filesystem::rename(tmp, path, ec);
    if (ec) return make_error("invalid_config", "cannot write '" + path + "': " + ec.message());
    return {};
}

}  // namespace

void pkey_free::operator()(EVP_PKEY* k) const {
    EVP_PKEY_free(k);
}

result<certificate> certificate_from_der(std::string_view der) {
    auto* p = reinterpret_cast<const unsigned char*>(der.data());
    std::unique_ptr<X509, ctx_free> x(d2i_X509(nullptr, &p, static_cast<long>(der.size())));
    if (!x)
        return make_error("invalid_argument",
                          "the server certificate is not valid DER: " + openssl_reason());
    certificate c;
    c.der = std::string(der);
    c.key.reset(X509_get_pubkey(x.get()));
    if (!c.key || EVP_PKEY_base_id(c.key.get()) != EVP_PKEY_RSA)
        return make_error("invalid_argument", "the server certificate has no RSA key");
    return c;
}

result<void> load_or_generate(const std::string& cert_path, const std::string& key_path,
                              const std::string& application_uri, certificate& cert, pkey& key) {
    bool cert_found = false, key_found = false;
    std::string cert_text = read_file(cert_path, cert_found);
    std::string key_text = read_file(key_path, key_found);
    if (cert_found != key_found)
        return make_error("invalid_config",
                          "the OPC UA certificate '" + cert_path + "' and key '" + key_path +
                              "' must both exist (or both be missing, to be generated)",
                          cert_found ? "private_key_path" : "certificate_path");
    if (cert_found) {
        std::string der = der_of_file_text(cert_text);
        if (der.empty())
            return make_error("invalid_config", "'" + cert_path + "' holds no certificate",
                              "certificate_path");
        auto c = certificate_from_der(der);
        if (!c)
            return make_error("invalid_config", "'" + cert_path + "': " + c.error().message,
                              "certificate_path");
        std::unique_ptr<BIO, ctx_free> bio(
            BIO_new_mem_buf(key_text.data(), static_cast<int>(key_text.size())));
        key.reset(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
        if (!key || EVP_PKEY_base_id(key.get()) != EVP_PKEY_RSA)
            return make_error("invalid_config", "'" + key_path + "' holds no RSA private key",
                              "private_key_path");
        if (EVP_PKEY_eq(key.get(), c->key.get()) != 1)
            return make_error("invalid_config",
                              "'" + key_path + "' is not the key of '" + cert_path + "'",
                              "private_key_path");
        cert = std::move(*c);
        return {};
    }

    // Generate: RSA 2048 (Basic256Sha256 allows 2048..4096), self-signed, SHA-256.
    key.reset(EVP_RSA_gen(2048));
    if (!key) return crypto_error("generating an RSA key");
    std::unique_ptr<X509, ctx_free> x(X509_new());
    X509_set_version(x.get(), 2);
    std::string serial = random_bytes(16);
    serial[0] = static_cast<char>(serial[0] & 0x7F);
    BIGNUM* bn = BN_bin2bn(reinterpret_cast<const unsigned char*>(serial.data()), 16, nullptr);
    BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x.get()));
    BN_free(bn);
    X509_gmtime_adj(X509_getm_notBefore(x.get()), -3600);
    X509_gmtime_adj(X509_getm_notAfter(x.get()), 10L * 365 * 24 * 3600);
    X509_set_pubkey(x.get(), key.get());
    X509_NAME* name = X509_get_subject_name(x.get());
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                               reinterpret_cast<const unsigned char*>("Clisonix OPC UA client"), -1,
                               -1, 0);
    X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8,
                               reinterpret_cast<const unsigned char*>("Clisonix"), -1, -1, 0);
    X509_set_issuer_name(x.get(), name);
    char host[256] = "localhost";
    gethostname(host, sizeof host - 1);
    X509V3_CTX v3;
    X509V3_set_ctx_nodb(&v3);
    X509V3_set_ctx(&v3, x.get(), x.get(), nullptr, nullptr, 0);
    const std::string san = "URI:" + application_uri + ",DNS:" + host;
    const std::pair<int, std::string> extensions[] = {
        {NID_subject_alt_name, san},
        {NID_basic_constraints, "critical,CA:FALSE"},
        {NID_key_usage,
         "critical,digitalSignature,nonRepudiation,keyEncipherment,dataEncipherment"},
        {NID_ext_key_usage, "clientAuth,serverAuth"},
        {NID_subject_key_identifier, "hash"},
    };
    for (const auto& [nid, text] : extensions) {
        X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &v3, nid, text.c_str());
        if (!ext) return crypto_error("building the certificate's extensions");
        X509_add_ext(x.get(), ext, -1);
        X509_EXTENSION_free(ext);
    }
    if (X509_sign(x.get(), key.get(), EVP_sha256()) <= 0)
        return crypto_error("signing the certificate");

    std::unique_ptr<BIO, ctx_free> cert_bio(BIO_new(BIO_s_mem())), key_bio(BIO_new(BIO_s_mem()));
    PEM_write_bio_X509(cert_bio.get(), x.get());
    PEM_write_bio_PrivateKey(key_bio.get(), key.get(), nullptr, nullptr, 0, nullptr, nullptr);
    auto bio_text = [](BIO* b) {
        char* data = nullptr;
        long n = BIO_get_mem_data(b, &data);
        return std::string(data, static_cast<size_t>(n));
    };
    if (auto st = write_file(key_path, bio_text(key_bio.get()), 0600); !st) return st;
    if (auto st = write_file(cert_path, bio_text(cert_bio.get()), 0644); !st) return st;
    cert.der = x509_der(x.get());
    cert.key.reset(X509_get_pubkey(x.get()));
    return {};
}

result<bool> trusted(const std::string& dir, std::string_view der, bool add_if_missing) {
    std::error_code ec;
    if (std::filesystem::is_directory(dir, ec)) {
        for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
            if (!entry.is_regular_file()) continue;
            bool found = false;
            std::string text = read_file(entry.path().string(), found);
            if (found && der_of_file_text(text) == der) return true;
        }
    }
    if (!add_if_missing) return false;
    std::string name = dir + "/server-" + hex(sha1(der)) + ".der";
    if (auto st = write_file(name, std::string(der), 0644); !st) return st.error();
    return true;
}

std::string random_bytes(size_t n) {
    std::string s(n, '\0');
    RAND_bytes(reinterpret_cast<unsigned char*>(s.data()), static_cast<int>(n));
    return s;
}

std::string sha1(std::string_view data) {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    EVP_Digest(data.data(), data.size(), md, &n, EVP_sha1(), nullptr);
    return std::string(reinterpret_cast<char*>(md), n);
}

std::string hex(std::string_view bytes) {
    static const char digits[] = "0123456789abcdef";
    std::string out;
    for (unsigned char c : bytes) {
        out.push_back(digits[c >> 4]);
        out.push_back(digits[c & 15]);
    }
    return out;
}

size_t key_bytes(const EVP_PKEY* k) {
    return static_cast<size_t>(EVP_PKEY_get_size(k));
}

result<std::string> rsa_oaep_encrypt(EVP_PKEY* pub, std::string_view plain) {
    const size_t block = key_bytes(pub), plain_block = block - 42;  // OAEP SHA-1 overhead
    std::string out;
    for (size_t off = 0; off < plain.size(); off += plain_block) {
        std::unique_ptr<EVP_PKEY_CTX, ctx_free> ctx(EVP_PKEY_CTX_new(pub, nullptr));
        if (!ctx || EVP_PKEY_encrypt_init(ctx.get()) <= 0 ||
            EVP_PKEY_CTX_set_rsa_padding(ctx.get(), RSA_PKCS1_OAEP_PADDING) <= 0)
            return crypto_error("RSA-OAEP encryption");
        size_t n = std::min(plain_block, plain.size() - off), out_len = block;
        std::string c(block, '\0');
        if (EVP_PKEY_encrypt(ctx.get(), reinterpret_cast<unsigned char*>(c.data()), &out_len,
                             reinterpret_cast<const unsigned char*>(plain.data() + off), n) <= 0)
            return crypto_error("RSA-OAEP encryption");
        out.append(c.data(), out_len);
    }
    return out;
}

result<std::string> rsa_oaep_decrypt(EVP_PKEY* priv, std::string_view cipher) {
    const size_t block = key_bytes(priv);
    if (cipher.size() % block)
        return make_error("invalid_argument", "encrypted data of " + std::to_string(cipher.size()) +
                                                  " bytes is not a whole number of RSA blocks");
    std::string out;
    for (size_t off = 0; off < cipher.size(); off += block) {
        std::unique_ptr<EVP_PKEY_CTX, ctx_free> ctx(EVP_PKEY_CTX_new(priv, nullptr));
        if (!ctx || EVP_PKEY_decrypt_init(ctx.get()) <= 0 ||
            EVP_PKEY_CTX_set_rsa_padding(ctx.get(), RSA_PKCS1_OAEP_PADDING) <= 0)
            return crypto_error("RSA-OAEP decryption");
        std::string p(block, '\0');
        size_t out_len = block;
        if (EVP_PKEY_decrypt(ctx.get(), reinterpret_cast<unsigned char*>(p.data()), &out_len,
                             reinterpret_cast<const unsigned char*>(cipher.data() + off),
                             block) <= 0) {
            ERR_clear_error();
            return make_error("invalid_argument", "a message could not be decrypted with our key");
        }
        out.append(p.data(), out_len);
    }
    return out;
}

result<std::string> rsa_sign(EVP_PKEY* priv, std::string_view data) {
    std::unique_ptr<EVP_MD_CTX, ctx_free> ctx(EVP_MD_CTX_new());
    EVP_PKEY_CTX* pctx = nullptr;
    if (!ctx || EVP_DigestSignInit(ctx.get(), &pctx, EVP_sha256(), nullptr, priv) <= 0 ||
        EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING) <= 0)
        return crypto_error("RSA signing");
    size_t n = 0;
    auto* d = reinterpret_cast<const unsigned char*>(data.data());
    if (EVP_DigestSign(ctx.get(), nullptr, &n, d, data.size()) <= 0)
        return crypto_error("RSA signing");
    std::string sig(n, '\0');
    if (EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(sig.data()), &n, d,
                       data.size()) <= 0)
        return crypto_error("RSA signing");
    sig.resize(n);
    return sig;
}

bool rsa_verify(EVP_PKEY* pub, std::string_view data, std::string_view sig) {
    std::unique_ptr<EVP_MD_CTX, ctx_free> ctx(EVP_MD_CTX_new());
    EVP_PKEY_CTX* pctx = nullptr;
    if (!ctx || EVP_DigestVerifyInit(ctx.get(), &pctx, EVP_sha256(), nullptr, pub) <= 0 ||
        EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING) <= 0) {
        ERR_clear_error();
        return false;
    }
    int r =
        EVP_DigestVerify(ctx.get(), reinterpret_cast<const unsigned char*>(sig.data()), sig.size(),
                         reinterpret_cast<const unsigned char*>(data.data()), data.size());
    ERR_clear_error();
    return r == 1;
}

std::string hmac_sha256(std::string_view key, std::string_view data) {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
         reinterpret_cast<const unsigned char*>(data.data()), data.size(), md, &n);
    return std::string(reinterpret_cast<char*>(md), n);
}

// P_SHA256 of RFC 5246 §5: A(0) = seed, A(i) = HMAC(secret, A(i-1)),
// output = HMAC(secret, A(1) + seed) + HMAC(secret, A(2) + seed) + ...
std::string p_sha256(std::string_view secret, std::string_view seed, size_t length) {
    std::string out, a(seed);
    while (out.size() < length) {
        a = hmac_sha256(secret, a);
        out += hmac_sha256(secret, a + std::string(seed));
    }
    out.resize(length);
    return out;
}

result<std::string> aes_cbc(bool encrypt, std::string_view key, std::string_view iv,
                            std::string_view data) {
    if (data.size() % 16)
        return make_error("invalid_argument", "encrypted data of " + std::to_string(data.size()) +
                                                  " bytes is not a whole number of AES blocks");
    std::unique_ptr<EVP_CIPHER_CTX, ctx_free> ctx(EVP_CIPHER_CTX_new());
    if (!ctx ||
        EVP_CipherInit_ex(ctx.get(), EVP_aes_256_cbc(), nullptr,
                          reinterpret_cast<const unsigned char*>(key.data()),
                          reinterpret_cast<const unsigned char*>(iv.data()), encrypt ? 1 : 0) <= 0)
        return crypto_error("AES-256-CBC");
    EVP_CIPHER_CTX_set_padding(ctx.get(), 0);
    std::string out(data.size() + 16, '\0');
    int n = 0, tail = 0;
    if (EVP_CipherUpdate(ctx.get(), reinterpret_cast<unsigned char*>(out.data()), &n,
                         reinterpret_cast<const unsigned char*>(data.data()),
                         static_cast<int>(data.size())) <= 0 ||
        EVP_CipherFinal_ex(ctx.get(), reinterpret_cast<unsigned char*>(out.data()) + n, &tail) <= 0)
        return crypto_error("AES-256-CBC");
    out.resize(static_cast<size_t>(n + tail));
    return out;
}

bool equal_constant_time(std::string_view a, std::string_view b) {
    return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace clisonix::opcua::crypto
