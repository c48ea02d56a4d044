// Unit tests of the API reference page's reading of the OpenAPI document (web/src/openapi.ts):
// grouping by the part of the API, order, and the filter box. The TypeScript is turned into
// JavaScript by Vite's esbuild (already in web/node_modules), then run by node.
//
//   node --test tests/web/openapi_unit.mjs
import assert from "node:assert/strict";
import { test } from "node:test";
import { importWebSource } from "./harness.mjs";

const o = await importWebSource("openapi.ts");

const errorResponse = { default: { description: "Error" }, 200: { description: "Success" } };
const doc = {
  openapi: "3.1.0",
  info: { title: "Clisonix API", version: "0.1.0" },
  paths: {
    "/healthz": { get: { summary: "Liveness: the process answers", "x-permission": "open", responses: errorResponse } },
    "/api/v1/devices/{device}": {
      get: {
        summary: "One device",
        "x-permission": "read",
        parameters: [{ name: "device", in: "path", required: true, schema: { type: "string" } }],
        responses: errorResponse,
      },
      delete: { summary: "Delete a device", "x-permission": "manage", responses: errorResponse },
    },
    "/api/v1/devices": {
      post: {
        summary: "Create a device",
        "x-permission": "manage",
        requestBody: {
          required: true,
          content: { "application/json": { schema: { type: "object", required: ["name"] } } },
        },
        responses: errorResponse,
      },
      get: { summary: "Devices, with online status", "x-permission": "read", responses: errorResponse },
    },
    "/prometheus/api/v1/query": { get: { summary: "PromQL instant query", "x-permission": "read" } },
    "/api/v1/live": {
      get: {
        summary: "Live updates",
        "x-permission": "read",
        "x-websocket": true,
        responses: { 101: { description: "Switching Protocols" } },
      },
    },
  },
};

test("a path's group is the segment after /api/vN/, else its first segment", () => {
  assert.equal(o.groupOf("/api/v1/devices/{device}/attributes"), "devices");
  assert.equal(o.groupOf("/api/v2/write"), "write");
  assert.equal(o.groupOf("/prometheus/api/v1/query"), "prometheus");
  assert.equal(o.groupOf("/healthz"), "healthz");
  assert.equal(o.groupOf("/api/v1"), "api");
  assert.equal(o.groupOf("/"), "/");
});

test("operations are grouped, groups by name, operations by path then method", () => {
  const groups = o.groupOperations(doc);
  assert.deepEqual(
    groups.map((g) => [g.name, g.operations.map((op) => `${op.method} ${op.path}`)]),
    [
      [
        "devices",
        [
          "GET /api/v1/devices",
          "POST /api/v1/devices",
          "GET /api/v1/devices/{device}",
          "DELETE /api/v1/devices/{device}",
        ],
      ],
      ["healthz", ["GET /healthz"]],
      ["live", ["GET /api/v1/live"]],
      ["prometheus", ["GET /prometheus/api/v1/query"]],
    ],
  );
  assert.equal(o.operationCount(groups), 7);
  const post = groups[0].operations[1];
  assert.equal(post.summary, "Create a device");
  assert.equal(post.permission, "manage");
  assert.deepEqual(post.requestSchema, { type: "object", required: ["name"] });
  assert.deepEqual(post.responses, [
    { status: "200", description: "Success" },
    { status: "default", description: "Error" },
  ]);
  const one = groups[0].operations[2];
  assert.deepEqual(one.parameters, [{ name: "device", in: "path", required: true, schema: { type: "string" } }]);
  assert.equal(one.requestSchema, undefined);
  assert.equal(groups[2].operations[0].websocket, true);
  assert.deepEqual(groups[3].operations[0].responses, [], "no responses listed: none shown");
});

test("the filter keeps operations matching every word, in any case, and drops empty groups", () => {
  const groups = o.groupOperations(doc);
  const names = (gs) => gs.flatMap((g) => g.operations.map((op) => `${op.method} ${op.path}`));
  assert.deepEqual(names(o.filterOperations(groups, "DEVICES post")), ["POST /api/v1/devices"]);
  assert.deepEqual(names(o.filterOperations(groups, "manage")), [
    "POST /api/v1/devices",
    "DELETE /api/v1/devices/{device}",
  ]);
  // A parameter's name matches, and so does the summary.
  assert.deepEqual(names(o.filterOperations(groups, "device read")), [
    "GET /api/v1/devices",
    "GET /api/v1/devices/{device}",
  ]);
  assert.deepEqual(names(o.filterOperations(groups, "promql")), ["GET /prometheus/api/v1/query"]);
  assert.deepEqual(o.filterOperations(groups, "nothing-like-this"), []);
  assert.equal(o.filterOperations(groups, "  "), groups, "an empty filter keeps everything");
  assert.deepEqual(
    o.filterOperations(groups, "healthz").map((g) => g.name),
    ["healthz"],
  );
});
