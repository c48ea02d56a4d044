// The API reference page's reading of /api/v1/openapi.json: operations grouped by the part of
// the API they belong to, and the filter box's match. Pure functions (tests/web/openapi_unit.mjs).

export interface OpenApiParameter {
  name: string;
  in: string;
  required?: boolean;
  schema?: unknown;
  description?: string;
}

export interface OpenApiOperation {
  summary?: string;
  operationId?: string;
  parameters?: OpenApiParameter[];
  requestBody?: { required?: boolean; content?: Record<string, { schema?: unknown }> };
  responses?: Record<string, { description?: string }>;
  "x-permission"?: string;
  "x-websocket"?: boolean;
}

export interface OpenApiDocument {
  openapi: string;
  info: { title: string; version: string };
  paths: Record<string, Record<string, OpenApiOperation>>;
}

export interface Operation {
  method: string; // upper case: GET, POST ...
  path: string;
  summary: string;
  permission: string;
  websocket: boolean;
  parameters: OpenApiParameter[];
  requestSchema?: unknown; // the JSON body's schema, when the operation takes one
  responses: { status: string; description: string }[];
}

export interface OperationGroup {
  name: string;
  operations: Operation[];
}

const methodOrder = ["get", "head", "post", "put", "patch", "delete", "options"];

// The part of the API a path belongs to: the first segment after a versioned `/api/vN/`
// (`/api/v1/devices/{device}` is "devices"), else the first segment (`/prometheus/api/v1/query`
// is "prometheus", `/healthz` is "healthz").
export function groupOf(path: string): string {
  const segments = path.split("/").filter((s) => s !== "");
  if (segments[0] === "api" && /^v\d+$/.test(segments[1] ?? "") && segments.length > 2) return segments[2];
  return segments[0] ?? "/";
}

// Every operation of the document, grouped by groupOf and sorted: groups by name, operations
// by path then method.
export function groupOperations(doc: OpenApiDocument): OperationGroup[] {
  const groups = new Map<string, Operation[]>();
  for (const [path, item] of Object.entries(doc.paths ?? {})) {
    for (const [verb, op] of Object.entries(item)) {
      if (!methodOrder.includes(verb)) continue;
      const body = op.requestBody?.content?.["application/json"];
      const operation: Operation = {
        method: verb.toUpperCase(),
        path,
        summary: op.summary ?? "",
        permission: op["x-permission"] ?? "",
        websocket: op["x-websocket"] === true,
        parameters: op.parameters ?? [],
        requestSchema: body?.schema,
        responses: Object.entries(op.responses ?? {})
          .map(([status, r]) => ({ status, description: r.description ?? "" }))
          .sort((a, b) => a.status.localeCompare(b.status)),
      };
      const name = groupOf(path);
      groups.set(name, [...(groups.get(name) ?? []), operation]);
    }
  }
  return [...groups.entries()]
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([name, operations]) => ({
      name,
      operations: operations.sort(
        (a, b) =>
          a.path.localeCompare(b.path) ||
          methodOrder.indexOf(a.method.toLowerCase()) - methodOrder.indexOf(b.method.toLowerCase()),
      ),
    }));
}

// The filter box: every word (space-separated, any case) must occur in the method, the path,
// the summary, the permission or a parameter's name. Groups left without operations go.
export function filterOperations(groups: OperationGroup[], text: string): OperationGroup[] {
  const words = text.toLowerCase().split(/\s+/).filter(Boolean);
  if (words.length === 0) return groups;
  const matches = (op: Operation) => {
    const haystack = [op.method, op.path, op.summary, op.permission, ...op.parameters.map((p) => p.name)]
      .join(" ")
      .toLowerCase();
    return words.every((w) => haystack.includes(w));
  };
  return groups
    .map((g) => ({ name: g.name, operations: g.operations.filter(matches) }))
    .filter((g) => g.operations.length > 0);
}

export function operationCount(groups: OperationGroup[]): number {
  return groups.reduce((n, g) => n + g.operations.length, 0);
}
