// Private to src/notify: the webhook client, the signature, and channel validation.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/result.h"
#include "notify/notify.h"

namespace clisonix::notify::detail {

// libcurl's global state, once per process, before any thread uses it.
void init_http_client();

// Lower-case hex of HMAC-SHA256(key, body).
std::string hmac_sha256_hex(std::string_view key, std::string_view body);

// One POST of `body` to `url` with the Clisonix headers (see notify.h). Ok on a 2xx answer;
// "unavailable" naming the status or the transport error otherwise. Never follows
// redirects (a redirect could carry the signed body somewhere else).
status post_webhook(const std::string& url, const std::string& secret, int64_t event_id,
                    const std::string& body, std::chrono::milliseconds timeout);

// "invalid_argument" with the field: name (when `check_name`), type, url (http/https with a
// host), topic (no wildcards), timeout_ms (100..60000 or 0), secret (at most 1024 bytes).
status check_channel(const channel& c, bool check_name);

}  // namespace clisonix::notify::detail
