#include "opcua/services.h"

namespace clisonix::opcua::services {

uint32_t read_response_header(binary::reader& r) {
    (void)r.i64();  // timestamp
    (void)r.u32();  // request handle
    uint32_t status = r.u32();
    r.diagnostic_info();
    for (size_t i = 0, n = r.count(4); i < n && r.ok(); ++i)
        (void)r.string();
    node_id type;
    std::string body;
    r.extension_object(type, body);
    return status;
}

namespace {

void skip_application_description(binary::reader& r) {
    (void)r.string();  // application uri
    (void)r.string();  // product uri
    (void)r.localized_text();
    (void)r.i32();     // application type
    (void)r.string();  // gateway server uri
    (void)r.string();  // discovery profile uri
    for (size_t i = 0, n = r.count(4); i < n && r.ok(); ++i)
        (void)r.string();
}

}  // namespace

std::vector<endpoint> read_endpoints(binary::reader& r) {
    std::vector<endpoint> out;
    for (size_t i = 0, n = r.count(8); i < n && r.ok(); ++i) {
        endpoint e;
        e.url = r.string();
        skip_application_description(r);
        e.server_certificate = r.string();
        e.mode = r.i32();
        e.security_policy_uri = r.string();
        for (size_t j = 0, m = r.count(4); j < m && r.ok(); ++j) {
            user_token_policy p;
            p.policy_id = r.string();
            p.token_type = r.i32();
            (void)r.string();  // issued token type
            (void)r.string();  // issuer endpoint url
            p.security_policy_uri = r.string();
            e.user_tokens.push_back(std::move(p));
        }
        (void)r.string();  // transport profile uri
        (void)r.u8();      // security level
        out.push_back(std::move(e));
    }
    return out;
}

std::vector<browse_result> read_browse_results(binary::reader& r) {
    std::vector<browse_result> out;
    for (size_t i = 0, n = r.count(8); i < n && r.ok(); ++i) {
        browse_result b;
        b.status = r.u32();
        b.continuation_point = r.string();
        for (size_t j = 0, m = r.count(8); j < m && r.ok(); ++j) {
            reference ref;
            ref.reference_type = r.node();
            ref.is_forward = r.boolean();
            ref.target = r.expanded_node();
            r.qualified_name(ref.browse_name_namespace, ref.browse_name);
            ref.display_name = r.localized_text();
            ref.node_class = r.u32();
            ref.type_definition = r.expanded_node();
            b.references.push_back(std::move(ref));
        }
        out.push_back(std::move(b));
    }
    for (size_t i = 0, n = r.count(1); i < n && r.ok(); ++i)
        r.diagnostic_info();
    return out;
}

publish_result read_publish(binary::reader& r) {
    publish_result p;
    p.subscription_id = r.u32();
    for (size_t i = 0, n = r.count(4); i < n && r.ok(); ++i)
        (void)r.u32();  // available numbers
    (void)r.boolean();  // more notifications
    p.sequence_number = r.u32();
    (void)r.i64();  // publish time
    for (size_t i = 0, n = r.count(3); i < n && r.ok(); ++i) {
        node_id type;
        std::string body;
        r.extension_object(type, body);
        p.has_data = true;
        if (type.namespace_index != 0 || type.numeric != data_change_notification) continue;
        binary::reader d(body);
        for (size_t j = 0, m = d.count(5); j < m && d.ok(); ++j) {
            notification c;
            c.client_handle = d.u32();
            c.value = d.read_data_value();
            p.changes.push_back(std::move(c));
        }
        for (size_t j = 0, m = d.count(1); j < m && d.ok(); ++j)
            d.diagnostic_info();
        if (!d.ok()) r.fail("data change notification: " + d.error());
    }
    for (size_t i = 0, n = r.count(4); i < n && r.ok(); ++i)
        (void)r.u32();  // ack results
    for (size_t i = 0, n = r.count(1); i < n && r.ok(); ++i)
        r.diagnostic_info();
    return p;
}

bool decode_any(uint32_t type_id, std::string_view body) {
    binary::reader r(body);
    (void)read_response_header(r);
    switch (type_id) {
        case get_endpoints_response:
            (void)read_endpoints(r);
            break;
        case browse_response:
        case browse_next_response:
            (void)read_browse_results(r);
            break;
        case read_response: {
            for (size_t i = 0, n = r.count(1); i < n && r.ok(); ++i)
                (void)r.read_data_value();
            for (size_t i = 0, n = r.count(1); i < n && r.ok(); ++i)
                r.diagnostic_info();
            break;
        }
        case publish_response:
            (void)read_publish(r);
            break;
        case create_session_response: {
            (void)r.node();
            (void)r.node();
            (void)r.f64();
            (void)r.string();
            (void)r.string();
            (void)read_endpoints(r);
            for (size_t i = 0, n = r.count(8); i < n && r.ok(); ++i) {
                (void)r.string();
                (void)r.string();
            }
            (void)r.string();
            (void)r.string();
            (void)r.u32();
            break;
        }
        default: {
            // Any other body: a Variant stream, to reach the nested types.
            while (r.ok() && r.left())
                (void)r.variant();
            break;
        }
    }
    return r.ok();
}

}  // namespace clisonix::opcua::services
