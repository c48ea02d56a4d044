// The API reference: this server's own /api/v1/openapi.json (generated from its route
// declarations, public), its operations grouped by the part of the API they belong to, each
// with its permission, parameters, request body schema and responses, and a filter box.
import { useMemo, useState } from "react";
import { api } from "../api";
import { ErrorBox, Field, Loading, PageTitle, Table, td, useAsync } from "../components/ui";
import { filterOperations, groupOperations, operationCount, type OpenApiDocument, type Operation } from "../openapi";

const methodStyle: Record<string, string> = {
  GET: "bg-cyan-800 text-white",
  POST: "bg-emerald-800 text-white",
  PUT: "bg-amber-300 text-slate-900",
  PATCH: "bg-amber-300 text-slate-900",
  DELETE: "bg-red-700 text-white",
};

function MethodBadge({ method }: { method: string }) {
  return (
    <span
      className={`inline-block w-16 shrink-0 rounded px-1.5 py-0.5 text-center font-mono text-xs font-semibold ${methodStyle[method] ?? "bg-slate-600 text-white"}`}
    >
      {method}
    </span>
  );
}

function OperationDetails({ op }: { op: Operation }) {
  return (
    <details className="group border-b border-slate-200 last:border-b-0 dark:border-slate-700">
      <summary className="flex cursor-pointer flex-wrap items-center gap-2 px-3 py-2 hover:bg-slate-50 dark:hover:bg-slate-800">
        <MethodBadge method={op.method} />
        <code className="break-all font-mono text-sm">{op.path}</code>
        <span className="text-sm text-slate-700 dark:text-slate-300">{op.summary}</span>
      </summary>
      <div className="space-y-3 px-3 pb-3 text-sm" data-testid="operation-details">
        <p>
          Permission: <code className="font-mono">{op.permission || "—"}</code>
          {op.permission === "open" && " (no credentials needed)"}
          {op.websocket && " · a WebSocket: the request upgrades the connection"}
        </p>
        {op.parameters.length > 0 && (
          <Table caption={`Parameters of ${op.method} ${op.path}`} head={["Parameter", "In", "Required", "Type"]}>
            {op.parameters.map((p) => (
              <tr key={p.in + p.name}>
                <td className={td("font-mono text-xs")}>{p.name}</td>
                <td className={td()}>{p.in}</td>
                <td className={td()}>{p.required ? "yes" : "no"}</td>
                <td className={td("font-mono text-xs")}>{JSON.stringify(p.schema ?? {})}</td>
              </tr>
            ))}
          </Table>
        )}
        {op.requestSchema !== undefined && (
          <div>
            <h4 className="font-medium">Request body (application/json)</h4>
            <pre className="mt-1 max-h-96 overflow-auto rounded-md bg-slate-100 p-2 font-mono text-xs dark:bg-slate-800">
              {JSON.stringify(op.requestSchema, null, 2)}
            </pre>
          </div>
        )}
        <div>
          <h4 className="font-medium">Responses</h4>
          <ul className="mt-1 list-inside list-disc">
            {op.responses.map((r) => (
              <li key={r.status}>
                <code className="font-mono">{r.status}</code> {r.description}
                {r.status === "default" && ' (JSON {"error":{"code","message","field"}})'}
              </li>
            ))}
          </ul>
        </div>
      </div>
    </details>
  );
}

export function ApiReference() {
  const [filter, setFilter] = useState("");
  const doc = useAsync(() => api<OpenApiDocument>("/api/v1/openapi.json"), []);
  const groups = useMemo(() => (doc.data ? groupOperations(doc.data) : []), [doc.data]);
  const shown = useMemo(() => filterOperations(groups, filter), [groups, filter]);
  return (
    <>
      <PageTitle>API reference</PageTitle>
      <p className="mb-3 text-sm text-slate-700 dark:text-slate-300">
        Every route of this server, from its{" "}
        <a className="text-cyan-800 underline dark:text-cyan-300" href="/api/v1/openapi.json">
          OpenAPI document
        </a>
        {doc.data && ` (${doc.data.info.title} ${doc.data.info.version}, OpenAPI ${doc.data.openapi})`}. Requests other
        than open ones need <code className="font-mono">Authorization: Bearer</code> with an access token or an API key.
      </p>
      <form className="max-w-md" role="search" aria-label="Filter the operations" onSubmit={(e) => e.preventDefault()}>
        <Field
          label="Filter"
          name="filter"
          value={filter}
          onChange={setFilter}
          placeholder="e.g. devices post"
          hint="Words matched in the method, path, summary, permission and parameters"
        />
      </form>
      <ErrorBox error={doc.error} />
      {doc.loading && !doc.data && <Loading what="the API description" />}
      {doc.data && (
        <>
          <p role="status" className="mb-3 text-sm text-slate-600 dark:text-slate-400" data-testid="operation-count">
            {operationCount(shown)} of {operationCount(groups)} operations
          </p>
          {shown.map((g) => (
            <section
              key={g.name}
              aria-label={g.name}
              className="mb-4 rounded-lg border border-slate-200 bg-white shadow-sm dark:border-slate-700 dark:bg-slate-900"
            >
              <h2 className="border-b border-slate-200 px-3 py-2 text-base font-semibold dark:border-slate-700">
                {g.name}
              </h2>
              {g.operations.map((op) => (
                <OperationDetails key={op.method + op.path} op={op} />
              ))}
            </section>
          ))}
        </>
      )}
    </>
  );
}
