// Clisonix — coap: the CoAP endpoint for devices (RFC 7252 over UDP, on Debian's libcoap3).
//
// Constrained devices use ThingsBoard's CoAP device API, with their access token in the path:
//   POST coap://host/api/v1/{device_token}/telemetry   JSON telemetry (the HTTP endpoint's
//                                                      forms), stored as that device
//   POST coap://host/api/v1/{device_token}/attributes  client attributes
//   GET  coap://host/api/v1/{device_token}/attributes?clientKeys=a,b&sharedKeys=c
//                                                      -> {"client":{..},"shared":{..}}
//
// Answers: 2.04 Changed once the telemetry is durable (pipeline.submit() returned ok, so the
// WAL fsync or, in a cluster, the log's quorum), piggybacked on the ACK of a confirmable
// request; a non-confirmable request is stored the same way and answered NON. 2.05 Content
// for the attributes GET. Errors carry a diagnostic payload (one line of text): 4.01 for a
// token that is unknown or revoked, 4.00 naming the JSON path at fault, 4.13 beyond
// coap.max_payload (with Size1), 4.29 for the per-device series quota, 5.03 with Max-Age (the
// retry hint, in seconds) when the engine is overloaded or the disk full, 4.04 for any other
// path, 4.05 for any other method. See docs/decisions for why the write runs on the I/O
// thread.
//
// Threading: libcoap is not thread-safe; one thread runs its I/O loop and the handlers,
// writes included. start()/stop() from one thread; port() from any.
// Errors from start(): "invalid_config" (bind address), "unavailable" (port taken).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "common/result.h"
#include "ingest/ingest.h"

namespace clisonix::config {
class config;
}

namespace clisonix::coap {

struct options {
    std::string bind = "0.0.0.0";      // coap.bind
    uint16_t port = 5683;              // coap.port (0 = off: the app does not create a server)
    uint64_t max_payload = 64 * 1024;  // coap.max_payload: a request's body, blocks included
    ingest::limits bounds;             // per request (ingest.*)
};

// The options from the `coap.*` config keys (and `ingest.*` for the bounds per request).
options options_from(const config::config& cfg);

// How the server learns about devices; the app wires these to auth and devices. An empty
// attribute hook answers its requests 5.01 Not Implemented.
struct hooks {
    // Device access token -> device name; an error answers 4.01.
    std::function<result<std::string>(std::string_view token)> authenticate_device;
    std::function<status(std::string_view device, std::string_view json)> client_attributes;
    // {"clientKeys":"a,b","sharedKeys":"c"} -> {"client":{..},"shared":{..}}
    std::function<result<std::string>(std::string_view device, std::string_view request_json)>
        attribute_request;
};

class server {
public:
    server(options opts, ingest::pipeline& sink, hooks h);
    ~server();  // stops
    server(const server&) = delete;
    server& operator=(const server&) = delete;

    // Binds the UDP port and starts the I/O thread.
    status start();
    // Finishes the request being handled, then stops the I/O thread. Before the engine
    // closes. Idempotent.
    void stop();
    // The bound UDP port; 0 before start().
    uint16_t port() const;

private:
    struct impl;
    std::unique_ptr<impl> _impl;
};

}  // namespace clisonix::coap
