// Notification channels (admin only): list, create, edit, test, delete. A webhook's secret is
// write-only: the server never returns it, the page shows only whether one is set, and an
// edit that leaves the secret empty keeps the stored one.
import { useState } from "react";
import { ApiError, api, listOf } from "../api";
import { Button, Card, ErrorBox, Field, Notice, PageTitle, Table, td, useAsync } from "../components/ui";

interface Channel {
  name: string;
  type: string;
  url?: string;
  topic?: string;
  timeout_ms?: number;
  secret_set?: boolean;
  breaker?: string;
}

interface Form {
  name: string;
  type: string;
  url: string;
  secret: string;
  timeout_ms: string;
  topic: string;
}

const empty: Form = { name: "", type: "webhook", url: "", secret: "", timeout_ms: "", topic: "" };

function formOf(c: Channel): Form {
  return {
    name: c.name,
    type: c.type,
    url: c.url ?? "",
    secret: "",
    timeout_ms: c.timeout_ms ? String(c.timeout_ms) : "",
    topic: c.topic ?? "",
  };
}

// The request body: only the members of the chosen type, and the secret only when typed.
function documentOf(f: Form, withName: boolean): Record<string, unknown> {
  const doc: Record<string, unknown> = { type: f.type };
  if (withName) doc.name = f.name;
  if (f.type === "webhook") {
    doc.url = f.url;
    if (f.secret) doc.secret = f.secret;
    if (f.timeout_ms.trim()) doc.timeout_ms = Number(f.timeout_ms);
  } else {
    doc.topic = f.topic;
  }
  return doc;
}

function ChannelForm({
  initial,
  existing,
  onSaved,
  onCancel,
}: {
  initial: Form;
  existing?: Channel;
  onSaved: (msg: string) => void;
  onCancel: () => void;
}) {
  const [f, setF] = useState<Form>(initial);
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const set = (k: keyof Form) => (v: string) => setF({ ...f, [k]: v });
  const field = error instanceof ApiError ? (error.field ?? "").split(".")[0] : "";
  const fieldError = (k: keyof Form) => (field === k && error instanceof ApiError ? error.message : undefined);
  const editing = existing !== undefined;

  async function save(e: React.FormEvent) {
    e.preventDefault();
    setBusy(true);
    try {
      if (editing)
        await api("/api/v1/channels/" + encodeURIComponent(existing.name), {
          method: "PUT",
          body: documentOf(f, false),
        });
      else await api("/api/v1/channels", { method: "POST", body: documentOf(f, true) });
      setError(null);
      onSaved(`Channel ${f.name} saved.`);
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  }

  const title = editing ? `Edit channel ${existing.name}` : "New channel";
  return (
    <Card title={title} className="mb-4">
      <form onSubmit={save} noValidate aria-label={editing ? "Edit channel" : "New channel"}>
        <div className="grid gap-x-4 sm:grid-cols-2">
          {!editing && (
            <Field label="Name" name="name" value={f.name} onChange={set("name")} required error={fieldError("name")} />
          )}
          <Field
            label="Type"
            name="type"
            value={f.type}
            onChange={set("type")}
            options={["webhook", "mqtt"]}
            error={fieldError("type")}
          />
          {f.type === "webhook" ? (
            <>
              <Field
                label="URL"
                name="url"
                value={f.url}
                onChange={set("url")}
                required
                hint="http:// or https://; the event JSON is POSTed there"
                error={fieldError("url")}
              />
              <Field
                label="Secret"
                name="secret"
                type="password"
                value={f.secret}
                onChange={set("secret")}
                autoComplete="new-password"
                hint={
                  existing?.secret_set
                    ? "set; leave empty to keep it, type a new one to replace it"
                    : "signs each body (X-Clisonix-Signature); optional"
                }
                error={fieldError("secret")}
              />
              <Field
                label="Timeout (ms)"
                name="timeout_ms"
                value={f.timeout_ms}
                onChange={set("timeout_ms")}
                hint="100 to 60000; empty: the server's default"
                error={fieldError("timeout_ms")}
              />
            </>
          ) : (
            <Field
              label="Topic"
              name="topic"
              value={f.topic}
              onChange={set("topic")}
              required
              hint="published on the built-in broker, e.g. clisonix/alarms/ops"
              error={fieldError("topic")}
            />
          )}
        </div>
        {error !== null && !(field && field in empty) && <ErrorBox error={error} />}
        <div className="flex gap-2">
          <Button type="submit" disabled={busy}>
            Save channel
          </Button>
          <Button kind="secondary" onClick={onCancel}>
            Cancel
          </Button>
        </div>
      </form>
    </Card>
  );
}

export function Channels() {
  const channels = useAsync(async () => listOf<Channel>(await api("/api/v1/channels"), "channels"), []);
  const [editing, setEditing] = useState<{ form: Form; existing?: Channel; key: number } | null>(null);
  const [notice, setNotice] = useState("");
  const [error, setError] = useState<unknown>(null);

  async function remove(c: Channel) {
    if (!confirm(`Delete channel ${c.name}? Its undelivered notifications become dead letters.`)) return;
    try {
      await api("/api/v1/channels/" + encodeURIComponent(c.name), { method: "DELETE" });
      setNotice(`Channel ${c.name} deleted.`);
      setError(null);
      channels.reload();
    } catch (e) {
      setError(e);
    }
  }
  async function test(c: Channel) {
    try {
      await api("/api/v1/channels/" + encodeURIComponent(c.name) + "/test", { method: "POST" });
      setNotice(`A test event is queued for ${c.name}.`);
      setError(null);
    } catch (e) {
      setError(e);
    }
  }

  return (
    <>
      <PageTitle
        actions={
          <Button onClick={() => setEditing({ form: empty, key: Date.now() })} disabled={!!editing}>
            New channel
          </Button>
        }
      >
        Notification channels
      </PageTitle>
      {notice && <Notice>{notice}</Notice>}
      <ErrorBox error={error} title="Action failed" />
      {editing && (
        <ChannelForm
          key={editing.key}
          initial={editing.form}
          existing={editing.existing}
          onSaved={(msg) => {
            setEditing(null);
            setNotice(msg);
            channels.reload();
          }}
          onCancel={() => setEditing(null)}
        />
      )}
      <ErrorBox error={channels.error} />
      {channels.data && channels.data.length === 0 && (
        <p className="text-sm">No channels yet: rules notify through the channels named here.</p>
      )}
      {channels.data && channels.data.length > 0 && (
        <Table caption="Notification channels" head={["Name", "Type", "Target", "Secret", "Delivery", "Actions"]}>
          {channels.data.map((c) => (
            <tr key={c.name} data-channel={c.name}>
              <td className={td("font-medium")}>{c.name}</td>
              <td className={td()}>{c.type}</td>
              <td className={td("break-all font-mono text-xs")}>{c.type === "webhook" ? c.url : c.topic}</td>
              <td className={td()}>{c.type === "webhook" ? (c.secret_set ? "set" : "not set") : "—"}</td>
              <td className={td()}>{c.breaker === "closed" ? "ok" : (c.breaker ?? "")}</td>
              <td className={td("whitespace-nowrap")}>
                <div className="flex gap-1">
                  <Button
                    kind="secondary"
                    onClick={() => setEditing({ form: formOf(c), existing: c, key: Date.now() })}
                    aria-label={`Edit channel ${c.name}`}
                  >
                    Edit
                  </Button>
                  <Button kind="secondary" onClick={() => test(c)} aria-label={`Test channel ${c.name}`}>
                    Test
                  </Button>
                  <Button kind="danger" onClick={() => remove(c)} aria-label={`Delete channel ${c.name}`}>
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
