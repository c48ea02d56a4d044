// What is going on now: devices online, ingest rate, open alarms, the most anomalous series,
// and what the forecasts say is coming (metrics predicted to cross their type's limit). On
// top, the Ask box: questions about the plant in plain language.
import { useEffect, useRef, useState } from "react";
import { api, listOf, qs, type Series } from "../api";
import { Card, ErrorBox, Loading, PageTitle, SeverityBadge, fmtTime, useAsync } from "../components/ui";
import { HealthBadge, useHealthScores } from "../components/health";
import { PredictedCrossings } from "../components/forecast";
import { AskBox } from "../components/ask";
import { linkClick } from "../router";

interface DeviceRow {
  name: string;
  online?: boolean;
}
interface AlarmRow {
  id: number;
  rule?: string;
  device: string;
  severity: string;
  status: string;
  message?: string;
  last_at?: number;
}

const severities = ["critical", "major", "minor", "warning"];

function useIngestRate() {
  const [rate, setRate] = useState<number | null>(null);
  const [total, setTotal] = useState<number | null>(null);
  const [error, setError] = useState<unknown>(null);
  const last = useRef<{ at: number; points: number } | null>(null);
  useEffect(() => {
    let stop = false;
    async function tick() {
      try {
        const s = await api<{ points: number }>("/api/v1/storage/stats");
        const now = performance.now();
        if (last.current && now > last.current.at) {
          setRate(Math.max(0, ((s.points - last.current.points) * 1000) / (now - last.current.at)));
        }
        last.current = { at: now, points: s.points };
        setTotal(s.points);
        setError(null);
      } catch (e) {
        setError(e);
      }
      if (!stop) timer = window.setTimeout(tick, 3000);
    }
    let timer = window.setTimeout(tick, 0);
    return () => {
      stop = true;
      window.clearTimeout(timer);
    };
  }, []);
  return { rate, total, error };
}

export function Overview({ dark }: { dark: boolean }) {
  const devices = useAsync(async () => listOf<DeviceRow>(await api("/api/v1/devices"), "devices"), []);
  const alarms = useAsync(
    async () => listOf<AlarmRow>(await api("/api/v1/alarms" + qs({ status: "open", limit: 1000 })), "alarms"),
    [],
  );
  // "Now": the highest score of each series over the last five minutes, top ten by the
  // query API's ranking (a single latest score is too often a calm moment between spikes).
  const anomalies = useAsync(async () => {
    const body = await api<{ series: Series[] }>(
      "/api/v1/query" + qs({ device: "*", metric: "*.anomaly", from: "-5m", agg: "max", order: "max_desc", limit: 10 }),
    );
    return (body.series ?? [])
      .map((s) => ({
        device: s.tags.device ?? "",
        metric: s.metric.replace(/\.anomaly$/, ""),
        score: Number(s.points[0]?.[1] ?? 0),
      }))
      .sort((a, b) => b.score - a.score);
  }, []);
  const recent = useAsync(async () => listOf<AlarmRow>(await api("/api/v1/alarms" + qs({ limit: 8 })), "alarms"), []);
  const ingest = useIngestRate();
  const health = useHealthScores();
  const healthRows = [...(health.data ?? new Map<string, number>()).entries()].sort((a, b) => b[1] - a[1]);

  useEffect(() => {
    const t = window.setInterval(() => {
      devices.reload();
      alarms.reload();
      recent.reload();
      anomalies.reload();
    }, 10000);
    return () => window.clearInterval(t);
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, []);

  const online = devices.data?.filter((d) => d.online).length ?? 0;
  const offline = (devices.data?.length ?? 0) - online;
  const bySeverity = Object.fromEntries(severities.map((s) => [s, 0]));
  let acknowledged = 0;
  for (const a of alarms.data ?? []) {
    if (a.status === "active") bySeverity[a.severity] = (bySeverity[a.severity] ?? 0) + 1;
    else if (a.status === "acknowledged") acknowledged++;
  }

  return (
    <>
      <PageTitle>Overview</PageTitle>
      <AskBox dark={dark} />
      <div className="grid gap-4 sm:grid-cols-2 xl:grid-cols-4">
        <Card title="Devices">
          {devices.error ? (
            <ErrorBox error={devices.error} />
          ) : devices.data ? (
            <dl className="grid grid-cols-2 gap-2">
              <div>
                <dt className="text-sm text-slate-600 dark:text-slate-400">Online</dt>
                <dd
                  className="text-3xl font-semibold text-emerald-700 dark:text-emerald-400"
                  data-testid="devices-online"
                >
                  {online}
                </dd>
              </div>
              <div>
                <dt className="text-sm text-slate-600 dark:text-slate-400">Offline</dt>
                <dd className="text-3xl font-semibold" data-testid="devices-offline">
                  {offline}
                </dd>
              </div>
            </dl>
          ) : (
            <Loading what="devices" />
          )}
        </Card>
        <Card title="Ingest rate">
          {ingest.error ? (
            <ErrorBox error={ingest.error} />
          ) : (
            <>
              <p className="text-3xl font-semibold" data-testid="ingest-rate">
                {ingest.rate === null ? "…" : ingest.rate.toFixed(1)}
                <span className="ml-1 text-base font-normal">points/s</span>
              </p>
              <p className="text-sm text-slate-600 dark:text-slate-400">{ingest.total ?? "…"} points stored</p>
            </>
          )}
        </Card>
        <Card title="Active alarms" className="sm:col-span-2">
          {alarms.error ? (
            <ErrorBox error={alarms.error} />
          ) : (
            <>
              <ul className="flex flex-wrap gap-4">
                {severities.map((s) => (
                  <li key={s} className="flex items-center gap-2">
                    <SeverityBadge severity={s} />
                    <a
                      href={"/alarms?status=active&severity=" + s}
                      onClick={linkClick}
                      className="text-2xl font-semibold underline-offset-2 hover:underline"
                      aria-label={`${bySeverity[s]} active ${s} alarms`}
                      data-testid={"active-" + s}
                    >
                      {bySeverity[s]}
                    </a>
                  </li>
                ))}
              </ul>
              <p className="mt-2 text-sm text-slate-600 dark:text-slate-400">
                <a href="/alarms?status=acknowledged" onClick={linkClick} className="underline">
                  {acknowledged} acknowledged
                </a>
                , not yet cleared
              </p>
            </>
          )}
        </Card>
      </div>
      <Card title="Machine health" className="mt-4">
        <ErrorBox error={health.error} />
        {health.data && healthRows.length === 0 && (
          <p className="text-sm text-slate-600 dark:text-slate-400">
            No health scores yet: each machine first learns its normal from its first hour of data.
          </p>
        )}
        {healthRows.length > 0 && (
          <ul className="flex flex-wrap gap-x-6 gap-y-2" aria-label="Machine health, least healthy first">
            {healthRows.slice(0, 24).map(([device, score]) => (
              <li key={device} className="flex items-center">
                <a
                  href={"/devices/" + encodeURIComponent(device)}
                  onClick={linkClick}
                  className="text-cyan-800 underline dark:text-cyan-300"
                >
                  {device}
                </a>
                <HealthBadge device={device} score={score} />
              </li>
            ))}
          </ul>
        )}
      </Card>
      <PredictedCrossings horizon="6h" />
      <Card title="Most anomalous series (last 5 minutes)" className="mt-4">
        <ErrorBox error={anomalies.error} />
        {anomalies.data && anomalies.data.length === 0 && (
          <p className="text-sm text-slate-600 dark:text-slate-400">
            No anomaly scores yet: they appear once telemetry arrives.
          </p>
        )}
        {anomalies.data && anomalies.data.length > 0 && (
          <ol className="divide-y divide-slate-200 dark:divide-slate-700">
            {anomalies.data.map((a) => (
              <li key={a.device + "/" + a.metric} className="flex items-center gap-3 py-2">
                <span className="w-12 text-right font-mono">{a.score.toFixed(2)}</span>
                <span className="h-2 w-24 rounded bg-slate-200 dark:bg-slate-700" aria-hidden="true">
                  <span
                    className="block h-2 rounded bg-red-600"
                    style={{ width: `${Math.min(100, a.score * 100)}%` }}
                  />
                </span>
                <a
                  href={"/devices/" + encodeURIComponent(a.device)}
                  onClick={linkClick}
                  className="text-cyan-800 underline dark:text-cyan-300"
                >
                  {a.device}
                </a>
                <span>{a.metric}</span>
              </li>
            ))}
          </ol>
        )}
      </Card>
      <Card title="Latest alarms" className="mt-4">
        <ErrorBox error={recent.error} />
        {recent.data && recent.data.length === 0 && (
          <p className="text-sm text-slate-600 dark:text-slate-400">No alarms yet.</p>
        )}
        {recent.data && recent.data.length > 0 && (
          <ul className="divide-y divide-slate-200 dark:divide-slate-700">
            {recent.data.map((a) => (
              <li key={a.id} className="flex flex-wrap items-center gap-x-3 gap-y-1 py-2 text-sm">
                <SeverityBadge severity={a.severity} />
                <a
                  href={"/devices/" + encodeURIComponent(a.device)}
                  onClick={linkClick}
                  className="text-cyan-800 underline dark:text-cyan-300"
                >
                  {a.device}
                </a>
                <span className="font-medium">{a.rule}</span>
                <span>{a.message}</span>
                <span className="text-slate-600 dark:text-slate-400">
                  {a.status} · {fmtTime(a.last_at)}
                </span>
              </li>
            ))}
          </ul>
        )}
        <p className="mt-2 text-sm">
          <a href="/alarms?status=" onClick={linkClick} className="text-cyan-800 underline dark:text-cyan-300">
            All alarms
          </a>
        </p>
      </Card>
    </>
  );
}
