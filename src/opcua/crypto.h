// The cryptography of security policy Basic256Sha256 (Part 7), on OpenSSL 3: RSA-OAEP (SHA-1)
// and RSA PKCS#1 v1.5 SHA-256 with the certificates' keys, AES-256-CBC and HMAC-SHA256 with
// keys derived by P_SHA256, and the application certificate (loaded or generated).
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include <openssl/evp.h>

#include "common/result.h"

namespace clisonix::opcua::crypto {

struct pkey_free {
    void operator()(EVP_PKEY* k) const;
};
using pkey = std::unique_ptr<EVP_PKEY, pkey_free>;

// A certificate (DER) and the public key in it.
struct certificate {
    std::string der;
    pkey key;
};

result<certificate> certificate_from_der(std::string_view der);
// Loads the PEM certificate and key; when both files are missing, generates them (RSA 2048,
// self-signed, SHA-256, 10 years, application_uri in subjectAltName) and writes them.
result<void> load_or_generate(const std::string& cert_path, const std::string& key_path,
                              const std::string& application_uri, certificate& cert, pkey& key);

// Whether `der` is one of the certificates in `dir` (PEM or DER files); with
// add_if_missing, writes it there and answers yes.
result<bool> trusted(const std::string& dir, std::string_view der, bool add_if_missing);

std::string random_bytes(size_t n);
std::string sha1(std::string_view data);
std::string hex(std::string_view bytes);
size_t key_bytes(const EVP_PKEY* k);

result<std::string> rsa_oaep_encrypt(EVP_PKEY* public_key, std::string_view plain);
result<std::string> rsa_oaep_decrypt(EVP_PKEY* private_key, std::string_view cipher);
result<std::string> rsa_sign(EVP_PKEY* private_key, std::string_view data);
bool rsa_verify(EVP_PKEY* public_key, std::string_view data, std::string_view signature);

std::string hmac_sha256(std::string_view key, std::string_view data);
std::string p_sha256(std::string_view secret, std::string_view seed, size_t length);
// AES-256-CBC without padding (the caller pads to whole blocks).
result<std::string> aes_cbc(bool encrypt, std::string_view key, std::string_view iv,
                            std::string_view data);
bool equal_constant_time(std::string_view a, std::string_view b);

}  // namespace clisonix::opcua::crypto
