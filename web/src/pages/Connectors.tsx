// Connectors (admin only): machines Clisonix polls itself (Modbus TCP), with their state
// (connected, last success, last error, points read), a create/edit form with the mapping
// table, and delete. A password is write-only: the server never returns it, and an edit that
// leaves it empty keeps the stored one. A 400 names the field ("mapping[3].address"): the
// page marks that cell.
import { useState } from "react";
import { ApiError, api, listOf } from "../api";
import {
  Button,
  Card,
  ErrorBox,
  Field,
  Notice,
  PageTitle,
  Table,
  fmtTime,
  inputClass,
  td,
  useAsync,
} from "../components/ui";

interface Mapping {
  address: string;
  unit_id: number;
  device: string;
  metric: string;
  unit: string;
  scale: number;
  offset: number;
  data_type: string;
  word_order: string;
  byte_order: string;
}

interface State {
  status: string;
  last_success: number | null;
  last_error: string;
  points_read: number;
  errors: number;
  breaker: string;
}

interface Connector {
  id: number;
  name: string;
  type: string;
  enabled: boolean;
  endpoint: string;
  username: string;
  password_set: boolean;
  poll_interval_ms: number;
  timeout_ms: number;
  mapping: Mapping[];
  state: State;
}

// Form rows keep what was typed as text; numbers are parsed on save.
type Row = Record<keyof Mapping, string>;

interface Form {
  name: string;
  type: string;
  enabled: string;
  endpoint: string;
  username: string;
  password: string;
  poll_interval_ms: string;
  timeout_ms: string;
  rows: Row[];
}

const dataTypes = ["uint16", "int16", "uint32", "int32", "uint64", "int64", "float32", "float64", "bool"];

const emptyRow: Row = {
  address: "holding:0",
  unit_id: "1",
  device: "",
  metric: "",
  unit: "",
  scale: "1",
  offset: "0",
  data_type: "uint16",
  word_order: "big",
  byte_order: "big",
};

const empty: Form = {
  name: "",
  type: "modbus",
  enabled: "yes",
  endpoint: "tcp://",
  username: "",
  password: "",
  poll_interval_ms: "1000",
  timeout_ms: "1000",
  rows: [{ ...emptyRow }],
};

function formOf(c: Connector): Form {
  return {
    name: c.name,
    type: c.type,
    enabled: c.enabled ? "yes" : "no",
    endpoint: c.endpoint,
    username: c.username,
    password: "",
    poll_interval_ms: String(c.poll_interval_ms),
    timeout_ms: String(c.timeout_ms),
    rows: c.mapping.map((m) => ({
      address: m.address,
      unit_id: String(m.unit_id),
      device: m.device,
      metric: m.metric,
      unit: m.unit,
      scale: String(m.scale),
      offset: String(m.offset),
      data_type: m.data_type,
      word_order: m.word_order,
      byte_order: m.byte_order,
    })),
  };
}

// Numbers that do not parse are sent as typed, so that the server names the field.
function num(text: string): number | string {
  const n = Number(text);
  return text.trim() !== "" && Number.isFinite(n) ? n : text;
}

function documentOf(f: Form): Record<string, unknown> {
  const doc: Record<string, unknown> = {
    name: f.name,
    type: f.type,
    enabled: f.enabled === "yes",
    endpoint: f.endpoint,
    username: f.username,
    poll_interval_ms: num(f.poll_interval_ms),
    timeout_ms: num(f.timeout_ms),
    mapping: f.rows.map((r) => ({
      address: r.address,
      unit_id: num(r.unit_id),
      device: r.device,
      metric: r.metric,
      unit: r.unit,
      scale: num(r.scale),
      offset: num(r.offset),
      data_type: r.data_type,
      word_order: r.word_order,
      byte_order: r.byte_order,
    })),
  };
  if (f.password) doc.password = f.password;
  return doc;
}

const columns: { key: keyof Mapping; label: string; options?: string[]; width: string }[] = [
  { key: "address", label: "Address", width: "w-32" },
  { key: "unit_id", label: "Unit id", width: "w-16" },
  { key: "device", label: "Device", width: "w-32" },
  { key: "metric", label: "Metric", width: "w-32" },
  { key: "unit", label: "Unit", width: "w-16" },
  { key: "scale", label: "Scale", width: "w-20" },
  { key: "offset", label: "Offset", width: "w-20" },
  { key: "data_type", label: "Data type", options: dataTypes, width: "w-24" },
  { key: "word_order", label: "Word order", options: ["big", "little"], width: "w-20" },
  { key: "byte_order", label: "Byte order", options: ["big", "little"], width: "w-20" },
];

function ConnectorForm({
  initial,
  existing,
  types,
  onSaved,
  onCancel,
}: {
  initial: Form;
  existing?: Connector;
  types: string[];
  onSaved: (msg: string) => void;
  onCancel: () => void;
}) {
  const [f, setF] = useState<Form>(initial);
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const set = (k: Exclude<keyof Form, "rows">) => (v: string) => setF({ ...f, [k]: v });
  const setCell = (i: number, k: keyof Mapping, v: string) =>
    setF({ ...f, rows: f.rows.map((r, j) => (j === i ? { ...r, [k]: v } : r)) });
  const field = error instanceof ApiError ? (error.field ?? "") : "";
  const fieldError = (k: string) => (field === k && error instanceof ApiError ? error.message : undefined);
  const cellError = (i: number, k: keyof Mapping) => field === `mapping[${i}].${k}`;
  const editing = existing !== undefined;

  async function save(e: React.FormEvent) {
    e.preventDefault();
    setBusy(true);
    try {
      if (editing) await api("/api/v1/connectors/" + existing.id, { method: "PUT", body: documentOf(f) });
      else await api("/api/v1/connectors", { method: "POST", body: documentOf(f) });
      setError(null);
      onSaved(`Connector ${f.name} saved.`);
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  }

  const topFields = ["name", "type", "enabled", "endpoint", "username", "password", "poll_interval_ms", "timeout_ms"];
  return (
    <Card title={editing ? `Edit connector ${existing.name}` : "New connector"} className="mb-4">
      <form onSubmit={save} noValidate aria-label={editing ? "Edit connector" : "New connector"}>
        <div className="grid gap-x-4 sm:grid-cols-2">
          <Field label="Name" name="name" value={f.name} onChange={set("name")} required error={fieldError("name")} />
          <Field
            label="Type"
            name="type"
            value={f.type}
            onChange={set("type")}
            options={types.length ? types : ["modbus"]}
            error={fieldError("type")}
          />
          <Field
            label="Endpoint"
            name="endpoint"
            value={f.endpoint}
            onChange={set("endpoint")}
            required
            hint="Modbus: tcp://host:port (502 when left out)"
            error={fieldError("endpoint")}
          />
          <Field
            label="Enabled"
            name="enabled"
            value={f.enabled}
            onChange={set("enabled")}
            options={["yes", "no"]}
            error={fieldError("enabled")}
          />
          <Field
            label="Poll interval (ms)"
            name="poll_interval_ms"
            value={f.poll_interval_ms}
            onChange={set("poll_interval_ms")}
            error={fieldError("poll_interval_ms")}
          />
          <Field
            label="Timeout (ms)"
            name="timeout_ms"
            value={f.timeout_ms}
            onChange={set("timeout_ms")}
            hint="connect and every request; 10 to 60000"
            error={fieldError("timeout_ms")}
          />
          <Field
            label="Username"
            name="username"
            value={f.username}
            onChange={set("username")}
            hint="for protocols with sessions; Modbus has none"
            error={fieldError("username")}
          />
          <Field
            label="Password"
            name="password"
            type="password"
            value={f.password}
            onChange={set("password")}
            autoComplete="new-password"
            hint={existing?.password_set ? "set; leave empty to keep it" : "optional"}
            error={fieldError("password")}
          />
        </div>
        <h3 className="mb-1 mt-2 text-sm font-semibold">Mapping</h3>
        <p className="mb-2 text-xs text-slate-600 dark:text-slate-400">
          Address: holding:N, input:N, coil:N or discrete:N (protocol addresses from 0). Stored value = raw × scale +
          offset. Word order big: the first register holds the most significant word.
        </p>
        <div className="mb-3 overflow-x-auto">
          <table className="text-sm" aria-label="Mapping">
            <thead>
              <tr>
                {columns.map((c) => (
                  <th key={c.key} className="px-1 text-left font-medium">
                    {c.label}
                  </th>
                ))}
                <th />
              </tr>
            </thead>
            <tbody>
              {f.rows.map((r, i) => (
                <tr key={i} data-row={i}>
                  {columns.map((c) => {
                    const bad = cellError(i, c.key);
                    const common = {
                      "aria-label": `${c.label} of row ${i + 1}`,
                      "aria-invalid": bad ? true : undefined,
                      className: inputClass + " " + c.width + (bad ? " border-red-600 dark:border-red-400" : ""),
                      value: r[c.key],
                    };
                    return (
                      <td key={c.key} className="px-1 py-1">
                        {c.options ? (
                          <select {...common} onChange={(e) => setCell(i, c.key, e.target.value)}>
                            {c.options.map((o) => (
                              <option key={o}>{o}</option>
                            ))}
                          </select>
                        ) : (
                          <input {...common} onChange={(e) => setCell(i, c.key, e.target.value)} />
                        )}
                      </td>
                    );
                  })}
                  <td className="px-1">
                    <Button
                      kind="secondary"
                      onClick={() => setF({ ...f, rows: f.rows.filter((_, j) => j !== i) })}
                      aria-label={`Remove row ${i + 1}`}
                    >
                      Remove
                    </Button>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
          <Button kind="secondary" onClick={() => setF({ ...f, rows: [...f.rows, { ...emptyRow }] })}>
            Add row
          </Button>
        </div>
        {error !== null && !topFields.includes(field) && <ErrorBox error={error} />}
        <div className="flex gap-2">
          <Button type="submit" disabled={busy}>
            Save connector
          </Button>
          <Button kind="secondary" onClick={onCancel}>
            Cancel
          </Button>
        </div>
      </form>
    </Card>
  );
}

const statusStyle: Record<string, string> = {
  connected: "text-green-700 dark:text-green-300",
  connecting: "text-amber-700 dark:text-amber-300",
  failing: "text-red-700 dark:text-red-300",
  disabled: "text-slate-500",
};

export function Connectors() {
  const data = useAsync(async () => {
    const body = await api<{ types?: string[] }>("/api/v1/connectors");
    return { connectors: listOf<Connector>(body, "connectors"), types: body.types ?? [] };
  }, []);
  const [editing, setEditing] = useState<{ form: Form; existing?: Connector; key: number } | null>(null);
  const [notice, setNotice] = useState("");
  const [error, setError] = useState<unknown>(null);

  async function remove(c: Connector) {
    if (!confirm(`Delete connector ${c.name}? It stops polling at once; its stored data stays.`)) return;
    try {
      await api("/api/v1/connectors/" + c.id, { method: "DELETE" });
      setNotice(`Connector ${c.name} deleted.`);
      setError(null);
      data.reload();
    } catch (e) {
      setError(e);
    }
  }

  const list = data.data?.connectors;
  return (
    <>
      <PageTitle
        actions={
          <>
            <Button kind="secondary" onClick={() => data.reload()}>
              Refresh
            </Button>
            <Button onClick={() => setEditing({ form: empty, key: Date.now() })} disabled={!!editing}>
              New connector
            </Button>
          </>
        }
      >
        Connectors
      </PageTitle>
      {notice && <Notice>{notice}</Notice>}
      <ErrorBox error={error} title="Action failed" />
      {editing && (
        <ConnectorForm
          key={editing.key}
          initial={editing.form}
          existing={editing.existing}
          types={data.data?.types ?? []}
          onSaved={(msg) => {
            setEditing(null);
            setNotice(msg);
            data.reload();
          }}
          onCancel={() => setEditing(null)}
        />
      )}
      <ErrorBox error={data.error} />
      {list && list.length === 0 && (
        <p className="text-sm">No connectors yet: add one to poll a Modbus TCP device or gateway.</p>
      )}
      {list && list.length > 0 && (
        <Table
          caption="Connectors"
          head={[
            "Name",
            "Type",
            "Endpoint",
            "Status",
            "Last success",
            "Points read",
            "Errors",
            "Last error",
            "Actions",
          ]}
        >
          {list.map((c) => (
            <tr key={c.id} data-connector={c.name}>
              <td className={td("font-medium")}>{c.name}</td>
              <td className={td()}>{c.type}</td>
              <td className={td("break-all font-mono text-xs")}>{c.endpoint}</td>
              <td className={td(statusStyle[c.state.status] ?? "")}>
                {c.state.status}
                {c.state.breaker !== "closed" && ` (breaker ${c.state.breaker})`}
              </td>
              <td className={td("whitespace-nowrap")}>
                {c.state.last_success ? fmtTime(c.state.last_success) : "never"}
              </td>
              <td className={td()}>{c.state.points_read}</td>
              <td className={td()}>{c.state.errors}</td>
              <td className={td("break-all text-xs")}>{c.state.last_error || "—"}</td>
              <td className={td("whitespace-nowrap")}>
                <div className="flex gap-1">
                  <Button
                    kind="secondary"
                    onClick={() => setEditing({ form: formOf(c), existing: c, key: Date.now() })}
                    aria-label={`Edit connector ${c.name}`}
                  >
                    Edit
                  </Button>
                  <Button kind="danger" onClick={() => remove(c)} aria-label={`Delete connector ${c.name}`}>
                    Delete
                  </Button>
                </div>
              </td>
            </tr>
          ))}
        </Table>
      )}
    </>
  );
}
