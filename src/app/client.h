// Private to the app: a small blocking HTTP/1.1 client for the CLI commands that talk to a
// running server (`clisonix import`, `clisonix query`).
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace clisonix::app {

struct client_response {
    int status = 0;
    std::string content_type;
    std::string body;
};

// One keep-alive connection to http://host:port.
class client {
public:
    // `base_url`: http://host[:port]; `token`: sent as "Authorization: Bearer <token>" if set.
    static result<std::unique_ptr<client>> connect(std::string_view base_url, std::string token);
    ~client();

    result<client_response> request(std::string_view method, std::string_view target,
                                    std::string_view body = {}, std::string_view content_type = {},
                                    std::string_view accept = "application/json");

private:
    client() = default;
    struct impl;
    std::unique_ptr<impl> _impl;
};

// The message of an error envelope ({"error":{"message":..}}), or the body itself.
std::string error_message(const client_response& r);

}  // namespace clisonix::app
