// The audit log (admin only): newest first, filtered by actor and action, paged.
import { useState } from "react";
import { api, qs } from "../api";
import { Button, ErrorBox, Field, PageTitle, Table, fmtTime, td, useAsync } from "../components/ui";

interface Entry {
  id: number;
  at: number;
  actor: string;
  action: string;
  target: string;
  remote: string;
  details: unknown;
}

const pageSize = 50;

export function Audit() {
  const [actor, setActor] = useState("");
  const [action, setAction] = useState("");
  const [offset, setOffset] = useState(0);
  const log = useAsync(
    () => api<{ entries: Entry[] }>("/api/v1/audit" + qs({ actor, action, limit: pageSize, offset })),
    [actor, action, offset],
  );
  const entries = log.data?.entries ?? [];
  return (
    <>
      <PageTitle>Audit log</PageTitle>
      <form
        className="mb-3 grid gap-x-4 sm:grid-cols-3"
        onSubmit={(e) => e.preventDefault()}
        aria-label="Filter the audit log"
      >
        <Field
          label="Actor"
          name="actor"
          value={actor}
          onChange={(v) => {
            setActor(v);
            setOffset(0);
          }}
        />
        <Field
          label="Action"
          name="action"
          value={action}
          onChange={(v) => {
            setAction(v);
            setOffset(0);
          }}
          placeholder="e.g. login"
        />
      </form>
      <ErrorBox error={log.error} />
      {log.data && (
        <Table caption="Audit log" head={["When", "Actor", "Action", "Target", "From", "Details"]}>
          {entries.map((e) => (
            <tr key={e.id}>
              <td className={td("whitespace-nowrap")}>{fmtTime(e.at)}</td>
              <td className={td()}>{e.actor}</td>
              <td className={td("font-mono text-xs")}>{e.action}</td>
              <td className={td()}>{e.target}</td>
              <td className={td("font-mono text-xs")}>{e.remote}</td>
              <td className={td("break-all font-mono text-xs")}>{JSON.stringify(e.details)}</td>
            </tr>
          ))}
        </Table>
      )}
      <div className="mt-3 flex gap-2">
        <Button kind="secondary" disabled={offset === 0} onClick={() => setOffset(Math.max(0, offset - pageSize))}>
          Newer
        </Button>
        <Button kind="secondary" disabled={entries.length < pageSize} onClick={() => setOffset(offset + pageSize)}>
          Older
        </Button>
      </div>
    </>
  );
}
