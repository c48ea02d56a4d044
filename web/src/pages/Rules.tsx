// Rules: the list, and a form to create or edit one. The server validates the document and
// the condition; its error names the field, and the message is shown under that field.
import { useState } from "react";
import { ApiError, api, listOf } from "../api";
import {
  Button,
  Card,
  ErrorBox,
  Field,
  Notice,
  PageTitle,
  SeverityBadge,
  Table,
  errorText,
  td,
  useAsync,
} from "../components/ui";

interface Rule {
  id?: number;
  name: string;
  scope: Record<string, string>;
  severity: string;
  condition: string;
  clear?: string;
  clear_after?: string;
  notify?: string[];
  enabled?: boolean;
}

const scopeKinds = ["device", "device_type", "asset"];

// The names a scope of each kind can take, from the API (the picker's options).
const scopeSources: Record<string, { path: string; key: string }> = {
  device: { path: "/api/v1/devices", key: "devices" },
  device_type: { path: "/api/v1/device-types", key: "device_types" },
  asset: { path: "/api/v1/assets", key: "assets" },
};

async function scopeNames(kind: string): Promise<string[]> {
  const source = scopeSources[kind];
  if (!source) return [];
  const items = listOf<{ name: string }>(await api(source.path), source.key);
  return items.map((i) => i.name).sort((a, b) => a.localeCompare(b));
}

interface Form {
  name: string;
  scopeKind: string;
  scopeValue: string;
  severity: string;
  condition: string;
  clear: string;
  clear_after: string;
  notify: string;
  enabled: string;
}

const empty: Form = {
  name: "",
  scopeKind: "device",
  scopeValue: "",
  severity: "major",
  condition: "",
  clear: "",
  clear_after: "",
  notify: "",
  enabled: "yes",
};

function formOf(r: Rule): Form {
  const [kind, value] = Object.entries(r.scope ?? {})[0] ?? ["device", ""];
  return {
    name: r.name,
    scopeKind: kind,
    scopeValue: String(value),
    severity: r.severity,
    condition: r.condition,
    clear: r.clear ?? "",
    clear_after: r.clear_after ?? "",
    notify: (r.notify ?? []).join(", "),
    enabled: r.enabled === false ? "no" : "yes",
  };
}

function documentOf(f: Form) {
  const doc: Record<string, unknown> = {
    name: f.name,
    scope: { [f.scopeKind]: f.scopeValue },
    severity: f.severity,
    condition: f.condition,
    enabled: f.enabled === "yes",
    notify: f.notify
      .split(",")
      .map((s) => s.trim())
      .filter(Boolean),
  };
  if (f.clear) doc.clear = f.clear;
  if (f.clear_after) doc.clear_after = f.clear_after;
  return doc;
}

// The server's field ("scope.device", "condition", "notify[0]") to the input it belongs to.
function inputOf(field: string | undefined): keyof Form | null {
  if (!field) return null;
  const head = field.split(/[.[]/)[0];
  if (head === "scope") return "scopeValue";
  if (head in empty) return head as keyof Form;
  return null;
}

function RuleForm({
  initial,
  id,
  onSaved,
  onCancel,
}: {
  initial: Form;
  id?: number;
  onSaved: (msg: string) => void;
  onCancel: () => void;
}) {
  const [f, setF] = useState<Form>(initial);
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const set = (k: keyof Form) => (v: string) => setF({ ...f, [k]: v });
  const names = useAsync(() => scopeNames(f.scopeKind), [f.scopeKind]);
  // A rule may name what no longer exists (a deleted device): it stays pickable as it is.
  const scopeOptions = ["", ...(names.data ?? [])];
  if (f.scopeValue && !scopeOptions.includes(f.scopeValue)) scopeOptions.push(f.scopeValue);
  const at = error instanceof ApiError ? inputOf(error.field) : null;
  const fieldError = (k: keyof Form) => (at === k && error instanceof ApiError ? error.message : undefined);

  async function save(e: React.FormEvent) {
    e.preventDefault();
    setBusy(true);
    try {
      if (id !== undefined) await api("/api/v1/rules/" + id, { method: "PUT", body: documentOf(f) });
      else await api("/api/v1/rules", { method: "POST", body: documentOf(f) });
      setError(null);
      onSaved(`Rule "${f.name}" saved.`);
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  }

  return (
    <Card title={id !== undefined ? `Edit rule ${initial.name}` : "New rule"} className="mb-4">
      <form onSubmit={save} noValidate aria-label={id !== undefined ? "Edit rule" : "New rule"}>
        <div className="grid gap-x-4 sm:grid-cols-2">
          <Field label="Name" name="name" value={f.name} onChange={set("name")} required error={fieldError("name")} />
          <Field
            label="Severity"
            name="severity"
            value={f.severity}
            onChange={set("severity")}
            options={["critical", "major", "minor", "warning"]}
            error={fieldError("severity")}
          />
          <Field
            label="Scope"
            name="scopeKind"
            value={f.scopeKind}
            onChange={(v) => setF({ ...f, scopeKind: v, scopeValue: "" })}
            options={scopeKinds}
            hint="One device, every device of a type, or every device under an asset"
          />
          <Field
            label={`Scope ${f.scopeKind}`}
            name="scopeValue"
            value={f.scopeValue}
            onChange={set("scopeValue")}
            options={scopeOptions}
            placeholder={names.loading ? "loading…" : `choose a ${f.scopeKind.replace("_", " ")}`}
            required
            hint={names.error ? "the list could not be loaded: " + errorText(names.error) : undefined}
            error={fieldError("scopeValue")}
          />
          <div className="sm:col-span-2">
            <Field
              label="Condition"
              name="condition"
              value={f.condition}
              onChange={set("condition")}
              required
              hint="e.g. temperature > 80 for 5m · anomaly(vibration) > 0.8 for 3 points · no data for 10m"
              error={fieldError("condition")}
            />
          </div>
          <Field
            label="Clear condition"
            name="clear"
            value={f.clear}
            onChange={set("clear")}
            hint="e.g. temperature < 75"
            error={fieldError("clear")}
          />
          <Field
            label="Clear after"
            name="clear_after"
            value={f.clear_after}
            onChange={set("clear_after")}
            hint="a delay such as 10m"
            error={fieldError("clear_after")}
          />
          <Field
            label="Notify channels"
            name="notify"
            value={f.notify}
            onChange={set("notify")}
            hint="comma-separated channel names"
            error={fieldError("notify")}
          />
          <Field
            label="Enabled"
            name="enabled"
            value={f.enabled}
            onChange={set("enabled")}
            options={["yes", "no"]}
            error={fieldError("enabled")}
          />
        </div>
        {error !== null && at === null && <ErrorBox error={error} />}
        <div className="flex gap-2">
          <Button type="submit" disabled={busy}>
            Save rule
          </Button>
          <Button kind="secondary" onClick={onCancel}>
            Cancel
          </Button>
        </div>
      </form>
    </Card>
  );
}

export function Rules({ admin }: { admin: boolean }) {
  const rules = useAsync(async () => listOf<Rule>(await api("/api/v1/rules"), "rules"), []);
  const [editing, setEditing] = useState<{ form: Form; id?: number; key: number } | null>(null);
  const [notice, setNotice] = useState("");
  const [error, setError] = useState<unknown>(null);

  async function remove(r: Rule) {
    if (!confirm(`Delete rule "${r.name}"? Its open alarms are cleared.`)) return;
    try {
      await api("/api/v1/rules/" + r.id, { method: "DELETE" });
      setNotice(`Rule "${r.name}" deleted.`);
      rules.reload();
    } catch (e) {
      setError(e);
    }
  }

  return (
    <>
      <PageTitle
        actions={
          admin && (
            <Button onClick={() => setEditing({ form: empty, key: Date.now() })} disabled={!!editing}>
              New rule
            </Button>
          )
        }
      >
        Rules
      </PageTitle>
      {notice && <Notice>{notice}</Notice>}
      <ErrorBox error={error} />
      {editing && (
        <RuleForm
          key={editing.key}
          initial={editing.form}
          id={editing.id}
          onSaved={(msg) => {
            setEditing(null);
            setNotice(msg);
            rules.reload();
          }}
          onCancel={() => setEditing(null)}
        />
      )}
      <ErrorBox error={rules.error} />
      {rules.data && rules.data.length === 0 && <p className="text-sm">No rules yet.</p>}
      {rules.data && rules.data.length > 0 && (
        <Table caption="Rules" head={["Name", "Severity", "Scope", "Condition", "Notify", admin ? "Actions" : ""]}>
          {rules.data.map((r) => (
            <tr key={r.id ?? r.name}>
              <td className={td("font-medium")}>
                {r.name}
                {r.enabled === false && <span className="ml-1 text-xs">(disabled)</span>}
              </td>
              <td className={td()}>
                <SeverityBadge severity={r.severity} />
              </td>
              <td className={td()}>
                {Object.entries(r.scope ?? {})
                  .map(([k, v]) => `${k} ${v}`)
                  .join(", ")}
              </td>
              <td className={td("font-mono text-xs")}>
                {r.condition}
                {r.clear && <div>clear: {r.clear}</div>}
              </td>
              <td className={td()}>{(r.notify ?? []).join(", ")}</td>
              <td className={td("whitespace-nowrap")}>
                {admin && (
                  <div className="flex gap-1">
                    <Button
                      kind="secondary"
                      onClick={() => setEditing({ form: formOf(r), id: r.id, key: Date.now() })}
                      aria-label={`Edit rule ${r.name}`}
                    >
                      Edit
                    </Button>
                    <Button kind="danger" onClick={() => remove(r)} aria-label={`Delete rule ${r.name}`}>
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
