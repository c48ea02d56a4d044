// Machine health in the dashboard: the coloured badge (overview, asset tree, device page),
// the latest score of every device in one request, and the device's health panel (chart,
// contributions, retraining the baseline).
import { useEffect, useState } from "react";
import { api, qs, query, type Series } from "../api";
import { Chart, type ChartData } from "./Chart";
import { Button, Card, ErrorBox, inputClass, useAsync } from "./ui";

export interface HealthStatus {
  device: string;
  state: "learning" | "trained" | "off";
  progress?: { fraction: number; rows: number; min_rows: number; elapsed_ms: number; baseline_ms: number };
  baseline: { source: string; from: number; to: number } | null;
  score: number | null;
  at: number | null;
  contributions: { metric: string; value: number }[];
  metrics: string[];
}

// 0.5 is the model's own "abnormal"; below 0.3 is clearly normal, between them a warning.
export function healthLevel(score: number): "good" | "watch" | "bad" {
  return score >= 0.5 ? "bad" : score >= 0.3 ? "watch" : "good";
}

const badgeStyle = {
  good: "bg-emerald-700 text-white",
  watch: "bg-amber-300 text-slate-900",
  bad: "bg-red-700 text-white",
};

export function HealthBadge({ device, score, state }: { device: string; score?: number | null; state?: string }) {
  if (state === "off") return null;
  if (score === null || score === undefined || !Number.isFinite(score))
    return (
      <span
        className="ml-2 inline-block rounded bg-slate-200 px-1.5 text-xs text-slate-800 dark:bg-slate-700 dark:text-slate-100"
        data-testid="health-badge"
        data-device={device}
        data-level="learning"
      >
        health: learning
      </span>
    );
  const level = healthLevel(score);
  return (
    <span
      className={`ml-2 inline-block rounded px-1.5 text-xs font-semibold ${badgeStyle[level]}`}
      data-testid="health-badge"
      data-device={device}
      data-level={level}
      aria-label={`health ${score.toFixed(2)} (${level === "bad" ? "abnormal" : level === "watch" ? "watch" : "normal"})`}
      title="Machine health: 0 is as in the baseline, 0.5 and above is abnormal"
    >
      health {score.toFixed(2)}
    </span>
  );
}

// The newest health score of every device: one request through /api/v1/last.
export function useHealthScores() {
  const scores = useAsync(async () => {
    const body = await api<{ series: Series[] }>("/api/v1/last" + qs({ device: "*", metric: "health" }));
    const out = new Map<string, number>();
    for (const s of body.series ?? []) {
      const v = s.points[0]?.[1];
      if (s.tags.device && typeof v === "number") out.set(s.tags.device, v);
    }
    return out;
  }, []);
  useEffect(() => {
    const t = window.setInterval(() => scores.reload(), 10000);
    return () => window.clearInterval(t);
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, []);
  return scores;
}

function localInput(ms: number): string {
  const d = new Date(ms);
  const pad = (n: number) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

// Retrain on a window the user picks (admins and operators; the server checks too).
function RetrainForm({ device, range, onDone }: { device: string; range: [number, number]; onDone: () => void }) {
  const [open, setOpen] = useState(false);
  const [from, setFrom] = useState("");
  const [to, setTo] = useState("");
  const [error, setError] = useState<unknown>(null);
  const [done, setDone] = useState("");
  if (!open)
    return (
      <div className="mt-3">
        <Button
          kind="secondary"
          onClick={() => {
            setFrom(localInput(range[0] * 1000));
            setTo(localInput(range[1] * 1000));
            setOpen(true);
          }}
        >
          Retrain baseline…
        </Button>
        {done && (
          <p role="status" className="mt-2 text-sm">
            {done}
          </p>
        )}
      </div>
    );
  return (
    <form
      className="mt-3 flex flex-wrap items-end gap-2 border-t border-slate-200 pt-3 dark:border-slate-700"
      aria-label="Retrain the health baseline"
      onSubmit={async (e) => {
        e.preventDefault();
        try {
          const r = await api<{ rows: number }>(`/api/v1/devices/${encodeURIComponent(device)}/health/baseline`, {
            method: "POST",
            body: { from: new Date(from).getTime(), to: new Date(to).getTime() },
          });
          setError(null);
          setOpen(false);
          setDone(`Retrained on ${r.rows} rows.`);
          onDone();
        } catch (err) {
          setError(err);
        }
      }}
    >
      <label className="text-sm">
        Baseline from
        <input
          type="datetime-local"
          value={from}
          onChange={(e) => setFrom(e.target.value)}
          className={inputClass}
          required
        />
      </label>
      <label className="text-sm">
        to
        <input
          type="datetime-local"
          value={to}
          onChange={(e) => setTo(e.target.value)}
          className={inputClass}
          required
        />
      </label>
      <Button type="submit">Retrain</Button>
      <Button kind="secondary" onClick={() => setOpen(false)}>
        Cancel
      </Button>
      <div className="w-full">
        <ErrorBox error={error} title="Retrain" />
      </div>
    </form>
  );
}

function toChart(s: Series | undefined): ChartData {
  const xs: number[] = [];
  const ys: (number | null)[] = [];
  for (const [t, v] of s?.points ?? []) {
    xs.push(t / 1000);
    ys.push(typeof v === "number" ? v : null);
  }
  return { xs, ys };
}

export function HealthPanel({
  device,
  range,
  step,
  dark,
  canManage,
  onZoom,
}: {
  device: string;
  range: [number, number];
  step?: string;
  dark: boolean;
  canManage: boolean;
  onZoom: (from: number, to: number) => void;
}) {
  const status = useAsync(() => api<HealthStatus>(`/api/v1/devices/${encodeURIComponent(device)}/health`), [device]);
  const from = Math.floor(range[0] * 1000);
  const to = Math.ceil(range[1] * 1000) + 1;
  const series = useAsync(
    async () => (await query({ device, metric: "health", from, to, agg: step ? "max" : undefined, step }))[0],
    [device, from, to, step],
  );
  useEffect(() => {
    const t = window.setInterval(() => {
      status.reload();
      series.reload();
    }, 10000);
    return () => window.clearInterval(t);
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [device, from, to, step]);

  const h = status.data;
  if (h?.state === "off") return null;
  const top = h?.contributions ?? [];
  const max = Math.max(0.5, ...top.map((c) => c.value));
  return (
    <Card title="Machine health" className="mb-4">
      <ErrorBox error={status.error ?? series.error} title="Health" />
      {h && (
        <div className="grid gap-4 lg:grid-cols-2" data-testid="health-panel" data-state={h.state}>
          <div>
            <p className="mb-2 flex items-center text-sm">
              <span className="font-medium">{h.state === "trained" ? "Trained" : "Learning normal"}</span>
              <HealthBadge device={device} score={h.score} state={h.state} />
            </p>
            {h.state === "learning" && h.progress && (
              <div className="text-sm">
                <progress
                  className="w-full"
                  max={1}
                  value={h.progress.fraction}
                  aria-label="Baseline learning progress"
                />
                <p className="text-slate-600 dark:text-slate-400">
                  {Math.round(h.progress.fraction * 100)} %: {h.progress.rows} of at least {h.progress.min_rows} rows,{" "}
                  {Math.round(h.progress.elapsed_ms / 60000)} of {Math.round(h.progress.baseline_ms / 60000)} min
                </p>
              </div>
            )}
            {h.baseline && (
              <p className="text-sm text-slate-600 dark:text-slate-400">
                Baseline {h.baseline.source === "window" ? "chosen" : "first data"}:{" "}
                {new Date(h.baseline.from).toLocaleString()} – {new Date(h.baseline.to).toLocaleString()}
              </p>
            )}
            {top.length > 0 && (
              <>
                <h3 className="mt-3 text-sm font-semibold">What drives the score</h3>
                <ol
                  className="mt-1 space-y-1"
                  aria-label="Contributions to the health score"
                  data-testid="contributions"
                >
                  {top.map((c) => (
                    <li key={c.metric} className="flex items-center gap-2 text-sm" data-metric={c.metric}>
                      <span className="w-36 truncate font-mono" title={c.metric}>
                        {c.metric}
                      </span>
                      <span className="h-2 flex-1 rounded bg-slate-200 dark:bg-slate-700" aria-hidden="true">
                        <span
                          className={`block h-2 rounded ${c.value >= 0.25 ? "bg-red-600" : "bg-cyan-700"}`}
                          style={{ width: `${Math.min(100, (c.value / max) * 100)}%` }}
                        />
                      </span>
                      <span className="w-12 text-right font-mono">{c.value.toFixed(2)}</span>
                    </li>
                  ))}
                </ol>
              </>
            )}
            {canManage && (
              <RetrainForm
                device={device}
                range={range}
                onDone={() => {
                  status.reload();
                  series.reload();
                }}
              />
            )}
          </div>
          <div>
            {series.data && series.data.points.length > 0 ? (
              <Chart metric="health" data={toChart(series.data)} range={range} dark={dark} onZoom={onZoom} />
            ) : (
              <p className="text-sm text-slate-600 dark:text-slate-400">No health scores in this range yet.</p>
            )}
          </div>
        </div>
      )}
    </Card>
  );
}
