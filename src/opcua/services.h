// The service messages the client uses (Part 4), as binary encoding ids and decoders of the
// answers. Decoding needs no connection, so that the fuzz target drives it.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "opcua/binary.h"

namespace clisonix::opcua::services {

// Binary encoding ids (NodeIds of the DefaultBinary encodings, namespace 0).
enum id : uint32_t {
    service_fault = 397,
    get_endpoints_request = 428,
    get_endpoints_response = 431,
    close_secure_channel_request = 452,
    create_session_request = 461,
    create_session_response = 464,
    activate_session_request = 467,
    activate_session_response = 470,
    close_session_request = 473,
    close_session_response = 476,
    browse_request = 527,
    browse_response = 530,
    browse_next_request = 533,
    browse_next_response = 536,
    read_request = 631,
    read_response = 634,
    create_monitored_items_request = 751,
    create_monitored_items_response = 754,
    create_subscription_request = 787,
    create_subscription_response = 790,
    data_change_notification = 811,
    publish_request = 826,
    publish_response = 829,
    anonymous_identity_token = 321,
    user_name_identity_token = 324,
};

// The ResponseHeader; returns the service result.
uint32_t read_response_header(binary::reader& r);

struct user_token_policy {
    std::string policy_id;
    int32_t token_type = 0;  // 0 anonymous, 1 user name, 2 certificate, 3 issued
    std::string security_policy_uri;
};

struct endpoint {
    std::string url;
    std::string server_certificate;
    int32_t mode = 0;
    std::string security_policy_uri;
    std::vector<user_token_policy> user_tokens;
};

std::vector<endpoint> read_endpoints(binary::reader& r);

struct browse_result {
    uint32_t status = 0;
    std::string continuation_point;
    std::vector<reference> references;
};
std::vector<browse_result> read_browse_results(binary::reader& r);

struct notification {
    uint32_t client_handle = 0;
    data_value value;
};
struct publish_result {
    uint32_t subscription_id = 0;
    uint32_t sequence_number = 0;
    bool has_data = false;  // false for a keep-alive
    std::vector<notification> changes;
};
publish_result read_publish(binary::reader& r);

// Decodes any answer by its encoding id (after the type id), as the client would; false when
// the bytes are not a valid answer. For the fuzz target and the tests.
bool decode_any(uint32_t type_id, std::string_view body);

}  // namespace clisonix::opcua::services
