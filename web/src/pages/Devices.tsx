// Devices: the list with online status, creating one (its token is shown once), CSV import.
import { useState } from "react";
import { ApiError, api, listOf } from "../api";
import { Button, Card, ErrorBox, Field, Notice, PageTitle, Table, fmtTime, td, useAsync } from "../components/ui";
import { linkClick } from "../router";

interface Device {
  id?: number;
  name: string;
  type?: string;
  label?: string;
  description?: string;
  online?: boolean;
  last_seen?: number | null;
}

function TokenReveal({ device, token, onClose }: { device: string; token: string; onClose: () => void }) {
  const [copied, setCopied] = useState<"" | "yes" | "failed">("");
  return (
    <div
      role="alert"
      className="my-3 rounded-md border border-amber-400 bg-amber-50 p-3 text-sm text-amber-950 dark:border-amber-600 dark:bg-amber-950 dark:text-amber-50"
    >
      <p className="font-semibold">Access token of {device} — shown only this once. Store it in the device now.</p>
      <code
        className="my-2 block break-all rounded bg-white p-2 font-mono text-slate-900 dark:bg-slate-900 dark:text-slate-100"
        data-testid="device-token"
      >
        {token}
      </code>
      <div className="flex gap-2">
        <Button
          kind="secondary"
          onClick={async () => {
            try {
              await navigator.clipboard.writeText(token);
              setCopied("yes");
            } catch {
              setCopied("failed");
            }
          }}
        >
          {copied === "yes" ? "Copied" : "Copy token"}
        </Button>
        <Button onClick={onClose}>I stored it</Button>
      </div>
      {copied === "failed" && (
        <p className="mt-2">The browser refused the clipboard: select the token and copy it by hand.</p>
      )}
    </div>
  );
}

interface ImportReport {
  created?: { line?: number; name?: string; device?: string | Device; token?: string }[];
  skipped?: unknown[];
  errors?: { line?: number; field?: string; message?: string }[];
}

function ImportDevices({ onDone }: { onDone: () => void }) {
  const [csv, setCsv] = useState("");
  const [report, setReport] = useState<ImportReport | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);

  async function run(e: React.FormEvent) {
    e.preventDefault();
    setBusy(true);
    setReport(null);
    try {
      const r = await api<ImportReport>("/api/v1/devices/import", {
        method: "POST",
        raw: csv,
        contentType: "text/csv",
      });
      setReport(r);
      setError(null);
      onDone();
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  }
  const nameOf = (c: NonNullable<ImportReport["created"]>[number]) =>
    c.name ?? (typeof c.device === "string" ? c.device : c.device?.name) ?? "?";

  return (
    <Card title="Import devices from CSV" className="mb-4">
      <form onSubmit={run}>
        <label htmlFor="csv-file" className="block text-sm font-medium">
          CSV file (columns name,type,label,description)
        </label>
        <input
          id="csv-file"
          type="file"
          accept=".csv,text/csv"
          className="mb-2 mt-1 block text-sm"
          onChange={async (e) => {
            const file = e.target.files?.[0];
            if (file) setCsv(await file.text());
          }}
        />
        <label htmlFor="csv-text" className="block text-sm font-medium">
          or paste it
        </label>
        <textarea
          id="csv-text"
          value={csv}
          onChange={(e) => setCsv(e.target.value)}
          rows={4}
          className="mt-1 block w-full rounded-md border border-slate-400 bg-white p-2 font-mono text-sm dark:border-slate-500 dark:bg-slate-900"
          placeholder={"name,type,label\npump-7,pump,Pump 7"}
        />
        <Button type="submit" disabled={busy || !csv.trim()} className="mt-2">
          {busy ? "Importing…" : "Import"}
        </Button>
      </form>
      <ErrorBox error={error} />
      {report && (
        <div className="mt-3 text-sm" role="status">
          <p>
            {report.created?.length ?? 0} created, {report.skipped?.length ?? 0} skipped (already there),{" "}
            {report.errors?.length ?? 0} errors.
          </p>
          {(report.errors?.length ?? 0) > 0 && (
            <ul className="mt-1 list-disc pl-5 text-red-800 dark:text-red-300">
              {report.errors!.map((er, i) => (
                <li key={i}>
                  line {er.line}
                  {er.field ? ` (${er.field})` : ""}: {er.message}
                </li>
              ))}
            </ul>
          )}
          {(report.created?.length ?? 0) > 0 && (
            <>
              <p className="mt-2 font-semibold">Tokens of the new devices (shown once):</p>
              <pre className="max-h-48 overflow-auto rounded bg-slate-100 p-2 text-xs dark:bg-slate-800">
                {report.created!.map((c) => `${nameOf(c)},${c.token ?? ""}`).join("\n")}
              </pre>
            </>
          )}
        </div>
      )}
    </Card>
  );
}

export function Devices({ canManage }: { canManage: boolean }) {
  const devices = useAsync(async () => listOf<Device>(await api("/api/v1/devices"), "devices"), []);
  const [name, setName] = useState("");
  const [type, setType] = useState("");
  const [label, setLabel] = useState("");
  const [error, setError] = useState<unknown>(null);
  const [token, setToken] = useState<{ device: string; token: string } | null>(null);
  const [showImport, setShowImport] = useState(false);
  const [notice, setNotice] = useState("");

  async function create(e: React.FormEvent) {
    e.preventDefault();
    try {
      const body: Record<string, string> = { name };
      if (type) body.type = type;
      if (label) body.label = label;
      const r = await api<{ token: string; device?: Device; name?: string }>("/api/v1/devices", {
        method: "POST",
        body,
      });
      setToken({ device: r.device?.name ?? r.name ?? name, token: r.token });
      setName("");
      setLabel("");
      setError(null);
      devices.reload();
    } catch (err) {
      setError(err);
    }
  }

  async function remove(d: Device) {
    if (!confirm(`Delete device ${d.name}? Its token stops working; its telemetry stays.`)) return;
    try {
      await api("/api/v1/devices/" + encodeURIComponent(d.name), { method: "DELETE" });
      setNotice(`Device ${d.name} deleted.`);
      devices.reload();
    } catch (err) {
      setError(err);
    }
  }

  const fieldErr = (f: string) => (error instanceof ApiError && error.field === f ? error.message : undefined);
  const general =
    error && !(error instanceof ApiError && ["name", "type", "label"].includes(error.field ?? "")) ? error : null;

  return (
    <>
      <PageTitle
        actions={
          canManage && (
            <Button kind="secondary" onClick={() => setShowImport(!showImport)} aria-expanded={showImport}>
              Import CSV
            </Button>
          )
        }
      >
        Devices
      </PageTitle>
      {notice && <Notice>{notice}</Notice>}
      {token && <TokenReveal device={token.device} token={token.token} onClose={() => setToken(null)} />}
      {showImport && <ImportDevices onDone={devices.reload} />}
      {canManage && (
        <Card title="New device" className="mb-4">
          <form onSubmit={create} className="grid gap-x-4 sm:grid-cols-4" noValidate>
            <Field label="Name" name="name" value={name} onChange={setName} required error={fieldErr("name")} />
            <Field
              label="Type"
              name="type"
              value={type}
              onChange={setType}
              placeholder="default"
              error={fieldErr("type")}
            />
            <Field label="Label" name="label" value={label} onChange={setLabel} error={fieldErr("label")} />
            <div className="flex items-end pb-3">
              <Button type="submit">Create device</Button>
            </div>
          </form>
          <ErrorBox error={general} />
        </Card>
      )}
      <ErrorBox error={devices.error} />
      {devices.data && devices.data.length === 0 && <p className="text-sm">No devices yet.</p>}
      {devices.data && devices.data.length > 0 && (
        <Table caption="Devices" head={["Name", "Type", "Label", "Status", "Last seen", canManage ? "Actions" : ""]}>
          {devices.data.map((d) => (
            <tr key={d.id ?? d.name}>
              <td className={td()}>
                <a
                  href={"/devices/" + encodeURIComponent(d.name)}
                  onClick={linkClick}
                  className="font-medium text-cyan-800 underline dark:text-cyan-300"
                >
                  {d.name}
                </a>
              </td>
              <td className={td()}>{d.type}</td>
              <td className={td()}>{d.label}</td>
              <td className={td()}>
                <span
                  className={
                    d.online
                      ? "font-medium text-emerald-700 dark:text-emerald-400"
                      : "text-slate-600 dark:text-slate-400"
                  }
                >
                  {d.online ? "online" : "offline"}
                </span>
              </td>
              <td className={td()}>{fmtTime(d.last_seen ?? undefined)}</td>
              <td className={td()}>
                {canManage && (
                  <Button kind="danger" onClick={() => remove(d)} aria-label={`Delete device ${d.name}`}>
                    Delete
                  </Button>
                )}
              </td>
            </tr>
          ))}
        </Table>
      )}
    </>
  );
}
