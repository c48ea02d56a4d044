// Alarms: filter, acknowledge, clear, comment. Live alarm events refresh the list.
import { useEffect, useState } from "react";
import { api, listOf, qs } from "../api";
import {
  Button,
  ErrorBox,
  Field,
  PageTitle,
  SeverityBadge,
  Table,
  fmtTime,
  fmtValue,
  td,
  useAsync,
} from "../components/ui";
import { LiveClient } from "../live";
import { linkClick } from "../router";

interface Comment {
  id?: number;
  at?: number;
  author?: string;
  text: string;
}

interface Alarm {
  id: number;
  rule?: string;
  rule_name?: string;
  device: string;
  severity: string;
  status: string;
  count?: number;
  first_at?: number;
  last_at?: number;
  value?: number;
  message?: string;
  acked_by?: string;
  cleared_by?: string;
  comments?: Comment[];
}

function AlarmComments({ alarm, canComment }: { alarm: Alarm; canComment: boolean }) {
  const detail = useAsync(() => api<Alarm | { alarm: Alarm }>("/api/v1/alarms/" + alarm.id), [alarm.id]);
  const [text, setText] = useState("");
  const [error, setError] = useState<unknown>(null);
  const full = detail.data && "alarm" in detail.data ? detail.data.alarm : (detail.data as Alarm | undefined);
  const comments = full?.comments ?? (detail.data as { comments?: Comment[] } | undefined)?.comments ?? [];
  async function add(e: React.FormEvent) {
    e.preventDefault();
    try {
      await api(`/api/v1/alarms/${alarm.id}/comments`, { method: "POST", body: { text } });
      setText("");
      setError(null);
      detail.reload();
    } catch (err) {
      setError(err);
    }
  }
  return (
    <div className="mt-2 rounded border border-slate-200 p-2 dark:border-slate-700">
      <ErrorBox error={detail.error} />
      <ul className="mb-2 text-sm">
        {comments.map((c, i) => (
          <li key={c.id ?? i}>
            <span className="font-medium">{c.author ?? "?"}</span>{" "}
            <span className="text-slate-600 dark:text-slate-400">{fmtTime(c.at)}</span>: {c.text}
          </li>
        ))}
        {comments.length === 0 && <li className="text-slate-600 dark:text-slate-400">No comments yet.</li>}
      </ul>
      {canComment && (
        <form onSubmit={add} className="flex flex-wrap items-end gap-2">
          <div className="grow">
            <Field
              label={`Comment on alarm ${alarm.id}`}
              name="text"
              value={text}
              onChange={setText}
              required
              error={
                error instanceof Error && (error as { field?: string }).field === "text" ? error.message : undefined
              }
            />
          </div>
          <Button type="submit" className="mb-3">
            Add comment
          </Button>
        </form>
      )}
      <ErrorBox error={error} />
    </div>
  );
}

const pageSize = 100;

export function Alarms({ canAct }: { canAct: boolean }) {
  const params = new URLSearchParams(location.search);
  const [status, setStatus] = useState(params.get("status") ?? "open");
  const [severity, setSeverity] = useState(params.get("severity") ?? "");
  const [device, setDevice] = useState(params.get("device") ?? "");
  const [asset, setAsset] = useState(params.get("asset") ?? "");
  const [offset, setOffset] = useState(0);
  const [actionError, setActionError] = useState<unknown>(null);
  const [open, setOpen] = useState<number | null>(null);
  const list = useAsync(async () => {
    const body = await api<{ alarms: Alarm[]; total?: number }>(
      "/api/v1/alarms" + qs({ status, severity, device, asset, limit: pageSize, offset }),
    );
    return { alarms: listOf<Alarm>(body, "alarms"), total: (body as { total?: number }).total };
  }, [status, severity, device, asset, offset]);
  const filter = (set: (v: string) => void) => (v: string) => {
    set(v);
    setOffset(0);
  };

  useEffect(() => {
    const client = new LiveClient(
      { alarms: true },
      (m) => m.type === "alarm" && list.reload(),
      () => {},
    );
    return () => client.close();
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, []);

  async function act(a: Alarm, action: "ack" | "clear") {
    try {
      await api(`/api/v1/alarms/${a.id}/${action}`, { method: "POST", body: {} });
      setActionError(null);
      list.reload();
    } catch (e) {
      setActionError(e);
    }
  }

  return (
    <>
      <PageTitle>Alarms</PageTitle>
      <form className="mb-3 grid gap-2 sm:grid-cols-5" onSubmit={(e) => e.preventDefault()} aria-label="Filter alarms">
        <Field
          label="Status"
          name="status"
          value={status}
          onChange={filter(setStatus)}
          options={["open", "active", "acknowledged", "cleared", ""]}
        />
        <Field
          label="Severity"
          name="severity"
          value={severity}
          onChange={filter(setSeverity)}
          options={["", "critical", "major", "minor", "warning"]}
        />
        <Field label="Device" name="device" value={device} onChange={filter(setDevice)} placeholder="any" />
        <Field label="Under asset" name="asset" value={asset} onChange={filter(setAsset)} placeholder="any" />
        <div className="flex items-end pb-3">
          <Button kind="secondary" onClick={list.reload}>
            Refresh
          </Button>
        </div>
      </form>
      <ErrorBox error={list.error} />
      <ErrorBox error={actionError} title="Action failed" />
      {list.data && (
        <p className="mb-2 text-sm text-slate-600 dark:text-slate-400">
          {list.data.total ?? list.data.alarms.length} alarm
          {(list.data.total ?? list.data.alarms.length) === 1 ? "" : "s"}
        </p>
      )}
      {list.data && list.data.alarms.length > 0 && (
        <Table caption="Alarms" head={["Severity", "Rule / device", "Status", "Message", "Count", "Times", "Actions"]}>
          {list.data.alarms.map((a) => (
            <tr key={a.id} data-alarm-id={a.id} data-status={a.status}>
              <td className={td()}>
                <SeverityBadge severity={a.severity} />
              </td>
              <td className={td()}>
                <div className="font-medium">{a.rule ?? a.rule_name}</div>
                <a
                  href={"/devices/" + encodeURIComponent(a.device)}
                  onClick={linkClick}
                  className="text-cyan-800 underline dark:text-cyan-300"
                >
                  {a.device}
                </a>
              </td>
              <td className={td("alarm-status")}>
                {a.status}
                {a.acked_by && <div className="text-xs">ack: {a.acked_by}</div>}
                {a.cleared_by && <div className="text-xs">cleared: {a.cleared_by}</div>}
              </td>
              <td className={td()}>
                {a.message}
                {a.value !== undefined && (
                  <span className="text-xs text-slate-600 dark:text-slate-400"> (value {fmtValue(a.value)})</span>
                )}
                {open === a.id && <AlarmComments alarm={a} canComment={canAct} />}
              </td>
              <td className={td()}>{a.count ?? 1}</td>
              <td className={td("whitespace-nowrap text-xs")}>
                first {fmtTime(a.first_at)}
                <br />
                last {fmtTime(a.last_at)}
              </td>
              <td className={td("whitespace-nowrap")}>
                <div className="flex flex-col gap-1">
                  {canAct && a.status === "active" && (
                    <Button onClick={() => act(a, "ack")} aria-label={`Acknowledge alarm ${a.id}`}>
                      Acknowledge
                    </Button>
                  )}
                  {canAct && a.status !== "cleared" && (
                    <Button kind="secondary" onClick={() => act(a, "clear")} aria-label={`Clear alarm ${a.id}`}>
                      Clear
                    </Button>
                  )}
                  <Button
                    kind="secondary"
                    aria-expanded={open === a.id}
                    onClick={() => setOpen(open === a.id ? null : a.id)}
                  >
                    Comments
                  </Button>
                </div>
              </td>
            </tr>
          ))}
        </Table>
      )}
      {list.data && list.data.alarms.length === 0 && (
        <p className="text-sm">
          No alarms match.{" "}
          {status !== "" && (
            <Button kind="secondary" onClick={() => filter(setStatus)("")}>
              Show alarms of any status
            </Button>
          )}
        </p>
      )}
      {list.data && (offset > 0 || (list.data.total ?? 0) > offset + pageSize) && (
        <div className="mt-3 flex items-center gap-2">
          <Button kind="secondary" disabled={offset === 0} onClick={() => setOffset(Math.max(0, offset - pageSize))}>
            Previous
          </Button>
          <span className="text-sm">
            {offset + 1}–{Math.min(offset + pageSize, list.data.total ?? offset + pageSize)}
          </span>
          <Button
            kind="secondary"
            disabled={(list.data.total ?? 0) <= offset + pageSize}
            onClick={() => setOffset(offset + pageSize)}
          >
            Next
          </Button>
        </div>
      )}
    </>
  );
}
