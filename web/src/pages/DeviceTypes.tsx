// Device types: list, create, edit, delete. A type names its metrics with their unit and
// expected range (a point outside it is stored and flagged) and how long a device may stay
// silent before it counts as offline. Changing needs the `devices` permission (operator).
import { useState } from "react";
import { ApiError, api, listOf } from "../api";
import { Button, Card, ErrorBox, Field, Notice, PageTitle, Table, td, useAsync } from "../components/ui";

interface MetricSpec {
  unit?: string;
  min?: number;
  max?: number;
}

interface DeviceType {
  name: string;
  description?: string;
  metrics?: Record<string, MetricSpec>;
  offline_timeout_ms?: number;
}

interface MetricRow {
  name: string;
  unit: string;
  min: string;
  max: string;
}

interface Form {
  name: string;
  description: string;
  offline_timeout_ms: string;
  metrics: MetricRow[];
}

const emptyRow: MetricRow = { name: "", unit: "", min: "", max: "" };
const empty: Form = { name: "", description: "", offline_timeout_ms: "", metrics: [{ ...emptyRow }] };

function formOf(t: DeviceType): Form {
  const rows = Object.entries(t.metrics ?? {}).map(([name, m]) => ({
    name,
    unit: m.unit ?? "",
    min: m.min === undefined || m.min === null ? "" : String(m.min),
    max: m.max === undefined || m.max === null ? "" : String(m.max),
  }));
  return {
    name: t.name,
    description: t.description ?? "",
    offline_timeout_ms: t.offline_timeout_ms ? String(t.offline_timeout_ms) : "",
    metrics: rows.length ? rows : [{ ...emptyRow }],
  };
}

function rangeText(m: MetricSpec): string {
  const has = (v: unknown) => v !== undefined && v !== null;
  if (has(m.min) && has(m.max)) return `${m.min} … ${m.max}`;
  if (has(m.min)) return `≥ ${m.min}`;
  if (has(m.max)) return `≤ ${m.max}`;
  return "";
}

// The request body, or the first input that is not a number (checked here: JSON has no NaN).
function documentOf(f: Form, withName: boolean): Record<string, unknown> | ApiError {
  const metrics: Record<string, MetricSpec> = {};
  for (const row of f.metrics) {
    const name = row.name.trim();
    if (!name) continue;
    const spec: MetricSpec = {};
    if (row.unit.trim()) spec.unit = row.unit.trim();
    for (const bound of ["min", "max"] as const) {
      const text = row[bound].trim();
      if (!text) continue;
      const v = Number(text);
      if (!Number.isFinite(v))
        return new ApiError(400, "invalid_argument", `expected a number, got "${text}"`, `metrics.${name}.${bound}`);
      spec[bound] = v;
    }
    metrics[name] = spec;
  }
  const doc: Record<string, unknown> = { description: f.description, metrics };
  if (withName) doc.name = f.name;
  if (f.offline_timeout_ms.trim()) {
    const ms = Number(f.offline_timeout_ms);
    if (!Number.isInteger(ms))
      return new ApiError(400, "invalid_argument", "expected whole milliseconds", "offline_timeout_ms");
    doc.offline_timeout_ms = ms;
  }
  return doc;
}

function TypeForm({
  initial,
  editing,
  onSaved,
  onCancel,
}: {
  initial: Form;
  editing?: string;
  onSaved: (msg: string) => void;
  onCancel: () => void;
}) {
  const [f, setF] = useState<Form>(initial);
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const set = (k: "name" | "description" | "offline_timeout_ms") => (v: string) => setF({ ...f, [k]: v });
  const setRow = (i: number, k: keyof MetricRow) => (v: string) =>
    setF({ ...f, metrics: f.metrics.map((r, j) => (j === i ? { ...r, [k]: v } : r)) });
  const field = error instanceof ApiError ? (error.field ?? "") : "";
  const fieldError = (k: string) => (field === k && error instanceof ApiError ? error.message : undefined);
  // "metrics.temperature.min" -> the row of temperature, its min input.
  const rowError = (row: MetricRow, k: keyof MetricRow) => {
    if (!(error instanceof ApiError) || !field.startsWith("metrics.") || !row.name.trim()) return undefined;
    const rest = field.slice("metrics.".length);
    const name = row.name.trim();
    if (rest === `${name}.${k}`) return error.message;
    if (k === "name" && rest === name) return error.message;
    return undefined;
  };
  const shownAtField =
    ["name", "description", "offline_timeout_ms"].includes(field) ||
    f.metrics.some((r) => (["name", "unit", "min", "max"] as const).some((k) => rowError(r, k)));

  async function save(e: React.FormEvent) {
    e.preventDefault();
    const doc = documentOf(f, editing === undefined);
    if (doc instanceof ApiError) {
      setError(doc);
      return;
    }
    setBusy(true);
    try {
      if (editing !== undefined)
        await api("/api/v1/device-types/" + encodeURIComponent(editing), { method: "PATCH", body: doc });
      else await api("/api/v1/device-types", { method: "POST", body: doc });
      setError(null);
      onSaved(`Device type ${f.name} saved.`);
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  }

  return (
    <Card title={editing !== undefined ? `Edit device type ${editing}` : "New device type"} className="mb-4">
      <form onSubmit={save} noValidate aria-label={editing !== undefined ? "Edit device type" : "New device type"}>
        <div className="grid gap-x-4 sm:grid-cols-3">
          {editing === undefined && (
            <Field label="Name" name="name" value={f.name} onChange={set("name")} required error={fieldError("name")} />
          )}
          <Field
            label="Description"
            name="description"
            value={f.description}
            onChange={set("description")}
            error={fieldError("description")}
          />
          <Field
            label="Offline after (ms)"
            name="offline_timeout_ms"
            value={f.offline_timeout_ms}
            onChange={set("offline_timeout_ms")}
            hint="silence before a device counts as offline; empty: the server's default"
            error={fieldError("offline_timeout_ms")}
          />
        </div>
        <fieldset className="mb-3">
          <legend className="mb-1 text-sm font-medium">Metrics and their expected ranges</legend>
          {f.metrics.map((row, i) => (
            <div key={i} className="grid grid-cols-2 gap-x-3 sm:grid-cols-5" data-metric-row={i}>
              <Field
                label={`Metric ${i + 1}`}
                name={`metric-${i}`}
                value={row.name}
                onChange={setRow(i, "name")}
                placeholder="temperature"
                error={rowError(row, "name")}
              />
              <Field
                label={`Metric ${i + 1} unit`}
                name={`unit-${i}`}
                value={row.unit}
                onChange={setRow(i, "unit")}
                placeholder="°C"
                error={rowError(row, "unit")}
              />
              <Field
                label={`Metric ${i + 1} min`}
                name={`min-${i}`}
                value={row.min}
                onChange={setRow(i, "min")}
                error={rowError(row, "min")}
              />
              <Field
                label={`Metric ${i + 1} max`}
                name={`max-${i}`}
                value={row.max}
                onChange={setRow(i, "max")}
                error={rowError(row, "max")}
              />
              <div className="flex items-end pb-3">
                <Button
                  kind="secondary"
                  onClick={() => setF({ ...f, metrics: f.metrics.filter((_, j) => j !== i) })}
                  aria-label={`Remove metric ${i + 1}`}
                >
                  Remove
                </Button>
              </div>
            </div>
          ))}
          <Button kind="secondary" onClick={() => setF({ ...f, metrics: [...f.metrics, { ...emptyRow }] })}>
            Add metric
          </Button>
        </fieldset>
        {error !== null && !shownAtField && <ErrorBox error={error} />}
        <div className="flex gap-2">
          <Button type="submit" disabled={busy}>
            Save device type
          </Button>
          <Button kind="secondary" onClick={onCancel}>
            Cancel
          </Button>
        </div>
      </form>
    </Card>
  );
}

export function DeviceTypes({ canManage }: { canManage: boolean }) {
  const types = useAsync(async () => listOf<DeviceType>(await api("/api/v1/device-types"), "device_types"), []);
  const [editing, setEditing] = useState<{ form: Form; name?: string; key: number } | null>(null);
  const [notice, setNotice] = useState("");
  const [error, setError] = useState<unknown>(null);

  async function remove(t: DeviceType) {
    if (!confirm(`Delete device type ${t.name}?`)) return;
    try {
      await api("/api/v1/device-types/" + encodeURIComponent(t.name), { method: "DELETE" });
      setNotice(`Device type ${t.name} deleted.`);
      setError(null);
      types.reload();
    } catch (e) {
      setError(e);
    }
  }

  return (
    <>
      <PageTitle
        actions={
          canManage && (
            <Button onClick={() => setEditing({ form: empty, key: Date.now() })} disabled={!!editing}>
              New device type
            </Button>
          )
        }
      >
        Device types
      </PageTitle>
      {notice && <Notice>{notice}</Notice>}
      <ErrorBox error={error} title="Action failed" />
      {editing && (
        <TypeForm
          key={editing.key}
          initial={editing.form}
          editing={editing.name}
          onSaved={(msg) => {
            setEditing(null);
            setNotice(msg);
            types.reload();
          }}
          onCancel={() => setEditing(null)}
        />
      )}
      <ErrorBox error={types.error} />
      {types.data && types.data.length === 0 && <p className="text-sm">No device types yet.</p>}
      {types.data && types.data.length > 0 && (
        <Table
          caption="Device types"
          head={["Name", "Description", "Metrics (unit, expected range)", "Offline after", canManage ? "Actions" : ""]}
        >
          {types.data.map((t) => (
            <tr key={t.name} data-device-type={t.name}>
              <td className={td("font-medium")}>{t.name}</td>
              <td className={td()}>{t.description}</td>
              <td className={td()}>
                <ul>
                  {Object.entries(t.metrics ?? {}).map(([name, m]) => (
                    <li key={name}>
                      <span className="font-mono text-xs">{name}</span>
                      {m.unit ? ` (${m.unit})` : ""} {rangeText(m)}
                    </li>
                  ))}
                </ul>
              </td>
              <td className={td()}>{t.offline_timeout_ms ? `${t.offline_timeout_ms / 1000} s` : "default"}</td>
              <td className={td("whitespace-nowrap")}>
                {canManage && (
                  <div className="flex gap-1">
                    <Button
                      kind="secondary"
                      onClick={() => setEditing({ form: formOf(t), name: t.name, key: Date.now() })}
                      aria-label={`Edit device type ${t.name}`}
                    >
                      Edit
                    </Button>
                    <Button kind="danger" onClick={() => remove(t)} aria-label={`Delete device type ${t.name}`}>
                      Delete
                    </Button>
                  </div>
                )}
              </td>
            </tr>
          ))}
        </Table>
      )}
    </>
  );
}
