// One device: live charts (WebSocket, or polling when the server has no live endpoint), a
// time-range picker with drag-to-zoom, the anomaly score under each chart, each chart's
// forecast (a quarter of its range ahead) with the crossing of the device type's expected
// range, attributes and the device's alarms.
import { useCallback, useEffect, useMemo, useRef, useState } from "react";
import { api, listOf, qs, query, type Series } from "../api";
import { Chart, type ChartData } from "../components/Chart";
import {
  Button,
  Card,
  ErrorBox,
  Field,
  inputClass,
  Loading,
  PageTitle,
  SeverityBadge,
  Table,
  fmtTime,
  fmtValue,
  td,
  useAsync,
} from "../components/ui";
import { HealthPanel } from "../components/health";
import { ForecastNote, useDeviceForecasts, useTypeLimits } from "../components/forecast";
import { forecastSpan } from "../forecast";
import { LiveClient, type LiveState } from "../live";
import { linkClick } from "../router";

const windows: [string, number][] = [
  ["15m", 15 * 60],
  ["1h", 3600],
  ["6h", 6 * 3600],
  ["24h", 24 * 3600],
  ["7d", 7 * 24 * 3600],
];

// Buckets so that a chart holds at most ~1,500 points, on steps the query API aligns.
function stepFor(seconds: number): string | undefined {
  const target = seconds / 1500;
  if (target <= 1) return undefined; // raw
  for (const s of [2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 21600, 86400])
    if (s >= target) return s + "s";
  return "86400s";
}

// Machine health has a panel of its own (components/health.tsx), not a chart per series.
const isHealth = (metric: string) => metric === "health" || metric.startsWith("health.");

interface Charts {
  [metric: string]: { data: ChartData; anomaly?: ChartData };
}

function toChart(s: Series): ChartData {
  const xs: number[] = [];
  const ys: (number | null)[] = [];
  for (const [t, v] of s.points) {
    xs.push(t / 1000);
    ys.push(typeof v === "number" ? v : typeof v === "boolean" ? Number(v) : null);
  }
  return { xs, ys };
}

function append(c: ChartData, points: [number, number][], from: number): ChartData {
  const xs = c.xs.slice();
  const ys = c.ys.slice();
  for (const [t, v] of points) {
    const x = t / 1000;
    if (xs.length && x <= xs[xs.length - 1]) continue; // already have it (poll overlap)
    xs.push(x);
    ys.push(v);
  }
  let cut = 0;
  while (cut < xs.length && xs[cut] < from) cut++;
  return cut ? { xs: xs.slice(cut), ys: ys.slice(cut) } : { xs, ys };
}

interface AlarmRow {
  id: number;
  rule?: string;
  rule_name?: string;
  severity: string;
  status: string;
  message?: string;
  last_at?: number;
}

// datetime-local works in local time without seconds: "2026-11-26T01:05".
function localInput(sec: number): string {
  const d = new Date(sec * 1000);
  const pad = (n: number) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

// A range by hand: from/to pickers, applied like a zoom.
function CustomRange({ range, onApply }: { range: [number, number]; onApply: (from: number, to: number) => void }) {
  const [open, setOpen] = useState(false);
  const [from, setFrom] = useState("");
  const [to, setTo] = useState("");
  const [error, setError] = useState("");
  if (!open)
    return (
      <Button
        kind="secondary"
        onClick={() => {
          setFrom(localInput(range[0]));
          setTo(localInput(range[1]));
          setOpen(true);
        }}
      >
        Custom range…
      </Button>
    );
  return (
    <form
      className="flex flex-wrap items-end gap-2"
      aria-label="Custom time range"
      onSubmit={(e) => {
        e.preventDefault();
        const f = new Date(from).getTime() / 1000;
        const t = new Date(to).getTime() / 1000;
        if (!(f < t)) {
          setError("The start must be before the end.");
          return;
        }
        setError("");
        setOpen(false);
        onApply(f, t);
      }}
    >
      <label className="text-sm">
        From
        <input
          type="datetime-local"
          value={from}
          onChange={(e) => setFrom(e.target.value)}
          className={inputClass}
          required
        />
      </label>
      <label className="text-sm">
        To
        <input
          type="datetime-local"
          value={to}
          onChange={(e) => setTo(e.target.value)}
          className={inputClass}
          required
        />
      </label>
      <Button type="submit">Apply</Button>
      <Button kind="secondary" onClick={() => setOpen(false)}>
        Cancel
      </Button>
      {error && (
        <p role="alert" className="w-full text-sm text-red-700 dark:text-red-300">
          {error}
        </p>
      )}
    </form>
  );
}

// Sets one server or shared attribute (shared ones are pushed to the device by the server).
function AttributeForm({ device, onSaved }: { device: string; onSaved: () => void }) {
  const [scope, setScope] = useState("shared");
  const [key, setKey] = useState("");
  const [value, setValue] = useState("");
  const [error, setError] = useState<unknown>(null);
  async function save(e: React.FormEvent) {
    e.preventDefault();
    let parsed: unknown = value;
    try {
      parsed = JSON.parse(value);
    } catch {
      /* not JSON: a string */
    }
    try {
      await api(`/api/v1/devices/${encodeURIComponent(device)}/attributes?scope=${scope}`, {
        method: "POST",
        body: { [key]: parsed },
      });
      setKey("");
      setValue("");
      setError(null);
      onSaved();
    } catch (err) {
      setError(err);
    }
  }
  return (
    <form
      onSubmit={save}
      className="mt-3 grid gap-x-2 border-t border-slate-200 pt-3 dark:border-slate-700 sm:grid-cols-2"
      aria-label="Set an attribute"
    >
      <Field label="Scope" name="scope" value={scope} onChange={setScope} options={["shared", "server"]} />
      <Field label="Key" name="key" value={key} onChange={setKey} required />
      <Field label="Value (JSON or text)" name="value" value={value} onChange={setValue} required />
      <div className="flex items-end pb-3">
        <Button type="submit" disabled={!key}>
          Set
        </Button>
      </div>
      <div className="sm:col-span-2">
        <ErrorBox error={error} />
      </div>
    </form>
  );
}

export function DeviceDetail({ name, dark, canManage }: { name: string; dark: boolean; canManage: boolean }) {
  // ?range=24h opens the page on that window (links, the bench).
  const [windowSec, setWindowSec] = useState(() => {
    const wanted = new URLSearchParams(location.search).get("range");
    return windows.find(([label]) => label === wanted)?.[1] ?? 3600;
  });
  const [zoom, setZoom] = useState<[number, number] | null>(null);
  const [now, setNow] = useState(() => Date.now() / 1000);
  const [charts, setCharts] = useState<Charts>({});
  const [error, setError] = useState<unknown>(null);
  const [loading, setLoading] = useState(true);
  const [live, setLive] = useState<{ state: LiveState; detail?: string }>({ state: "connecting" });
  const [loadMs, setLoadMs] = useState<number | null>(null);
  const chartsRef = useRef(charts);
  chartsRef.current = charts;

  const range: [number, number] = zoom ?? [now - windowSec, now];
  const following = zoom === null;
  // The forecast: on unless turned off (remembered in this browser), and only for a range that
  // reaches the present (a zoom into the past has nothing to forecast).
  const [showForecast, setShowForecast] = useState(() => localStorage.getItem("clisonix.forecast") !== "off");
  const span = forecastSpan(range[1] - range[0]);
  const forecastOn = showForecast && (following || range[1] >= Date.now() / 1000 - span.stepSec);
  const chartRange: [number, number] = forecastOn ? [range[0], range[1] + span.horizonSec] : range;

  const device = useAsync(() => api<Record<string, unknown>>("/api/v1/devices/" + encodeURIComponent(name)), [name]);
  const attributes = useAsync(
    () => api<Record<string, Record<string, unknown>>>("/api/v1/devices/" + encodeURIComponent(name) + "/attributes"),
    [name],
  );
  const alarms = useAsync(
    async () => listOf<AlarmRow>(await api("/api/v1/alarms" + qs({ device: name, limit: 20 })), "alarms"),
    [name],
  );

  const load = useCallback(async () => {
    const started = performance.now();
    const [from, to] = zoom ?? [Date.now() / 1000 - windowSec, Date.now() / 1000];
    const step = stepFor(to - from);
    const base = { device: name, from: Math.floor(from * 1000), to: Math.ceil(to * 1000) + 1 };
    setLoading(true);
    try {
      const [values, scores] = await Promise.all([
        query({ ...base, metric: "*", agg: step ? "mean" : undefined, step }),
        query({ ...base, metric: "*.anomaly", agg: step ? "max" : undefined, step }),
      ]);
      const next: Charts = {};
      for (const s of values) {
        if (s.metric.endsWith(".anomaly") || s.metric.endsWith(".out_of_range") || isHealth(s.metric)) continue;
        if (s.points.length && typeof s.points[0][1] === "string") continue;
        next[s.metric] = { data: toChart(s) };
      }
      for (const s of scores) {
        const m = s.metric.replace(/\.anomaly$/, "");
        if (next[m]) next[m].anomaly = toChart(s);
      }
      setCharts(next);
      setError(null);
      setNow(Date.now() / 1000);
      requestAnimationFrame(() => setLoadMs(Math.round(performance.now() - started)));
    } catch (e) {
      setError(e);
    } finally {
      setLoading(false);
    }
  }, [name, windowSec, zoom]);

  useEffect(() => {
    void load();
  }, [load]);

  const windowSecRef = useRef(windowSec);
  windowSecRef.current = windowSec;

  // Live points: from the WebSocket when there is one, else a poll every 5 s.
  const onPoints = useCallback((metric: string, points: [number, number][]) => {
    if (isHealth(metric)) return;
    const fromSec = Date.now() / 1000 - windowSecRef.current;
    setCharts((prev) => {
      const isScore = metric.endsWith(".anomaly");
      const m = isScore ? metric.slice(0, -8) : metric;
      const cur = prev[m] ?? (isScore ? undefined : { data: { xs: [], ys: [] } });
      if (!cur) return prev;
      const next = { ...prev };
      if (isScore) next[m] = { ...cur, anomaly: append(cur.anomaly ?? { xs: [], ys: [] }, points, fromSec) };
      else next[m] = { ...cur, data: append(cur.data, points, fromSec) };
      return next;
    });
    setNow(Date.now() / 1000);
  }, []);
  useEffect(() => {
    if (!following) return;
    const client = new LiveClient(
      { telemetry: { devices: [name] }, alarms: true },
      (m) => {
        if (m.type === "telemetry" && m.device === name && !m.metric.endsWith(".out_of_range")) {
          const pts = m.points.filter((p) => typeof p[1] === "number");
          if (pts.length) onPoints(m.metric, pts);
        }
        if (m.type === "alarm") alarms.reload();
      },
      (state, detail) => setLive({ state, detail }),
    );
    return () => client.close();
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [name, following, onPoints]);

  useEffect(() => {
    if (!following || live.state === "live") return;
    const t = window.setInterval(async () => {
      let since = 0;
      for (const c of Object.values(chartsRef.current)) {
        const x = c.data.xs[c.data.xs.length - 1];
        if (x && x * 1000 > since) since = x * 1000;
      }
      const from = since ? Math.floor(since) + 1 : Date.now() - 60000;
      try {
        const fresh = await query({ device: name, metric: "*", from, to: "now" });
        for (const s of fresh) {
          if (s.metric.endsWith(".out_of_range")) continue;
          const pts = s.points.filter((p) => typeof p[1] === "number") as [number, number][];
          if (pts.length) onPoints(s.metric, pts);
        }
        setNow(Date.now() / 1000);
      } catch (e) {
        setError(e);
      }
    }, 5000);
    return () => window.clearInterval(t);
  }, [name, following, live.state, onPoints]);

  const metrics = useMemo(() => Object.keys(charts).sort(), [charts]);
  const record = (device.data?.device ?? device.data) as Record<string, unknown> | undefined;
  const typeLimits = useTypeLimits(
    typeof record?.type === "string" && record.type ? record.type : undefined,
    device.data !== undefined || !!device.error,
  );
  const limits = typeLimits.limits;
  const forecasts = useDeviceForecasts(name, metrics, limits, span, forecastOn && typeLimits.ready);
  const attrScopes = attributes.data && typeof attributes.data === "object" ? Object.entries(attributes.data) : [];
  const liveText =
    live.state === "live"
      ? "Live"
      : live.state === "unavailable"
        ? "Polling every 5 s (" + (live.detail ?? "no live endpoint") + ")"
        : live.state === "connecting"
          ? "Connecting…" + (live.detail ? " (" + live.detail + ")" : "")
          : "Paused";

  return (
    <>
      <PageTitle
        actions={
          <a href="/devices" onClick={linkClick} className="text-sm text-cyan-800 underline dark:text-cyan-300">
            All devices
          </a>
        }
      >
        Device {name}
      </PageTitle>
      <div className="mb-3 flex flex-wrap items-center gap-2" role="group" aria-label="Time range">
        {windows.map(([label, sec]) => (
          <Button
            key={label}
            kind={windowSec === sec && following ? "primary" : "secondary"}
            aria-pressed={windowSec === sec && following}
            onClick={() => {
              setZoom(null);
              setWindowSec(sec);
            }}
          >
            {label}
          </Button>
        ))}
        {zoom && (
          <Button kind="secondary" onClick={() => setZoom(null)}>
            Reset zoom
          </Button>
        )}
        <CustomRange range={range} onApply={(from, to) => setZoom([from, to])} />
        <Button
          kind="secondary"
          aria-pressed={showForecast}
          title="The forecast after the last point, with its 50 % and 95 % intervals"
          onClick={() => {
            localStorage.setItem("clisonix.forecast", showForecast ? "off" : "on");
            setShowForecast(!showForecast);
          }}
        >
          Forecast
        </Button>
        <span
          className="text-sm text-slate-600 dark:text-slate-400"
          aria-live="polite"
          data-testid="live-state"
          data-state={following ? live.state : "zoomed"}
        >
          {following
            ? liveText
            : `Zoomed: ${new Date(range[0] * 1000).toLocaleString()} – ${new Date(range[1] * 1000).toLocaleString()}`}
        </span>
        {loadMs !== null && (
          <span className="text-xs text-slate-500 dark:text-slate-400" data-testid="load-ms">
            loaded in {loadMs} ms
          </span>
        )}
      </div>
      <HealthPanel
        device={name}
        range={range}
        step={stepFor(range[1] - range[0])}
        dark={dark}
        canManage={canManage}
        onZoom={(from, to) => setZoom([from, to])}
      />
      <ErrorBox error={error} title="Telemetry" />
      <ErrorBox error={typeLimits.error} title="Expected ranges of the device type" />
      {loading && metrics.length === 0 && <Loading what="telemetry" />}
      {!loading && !error && metrics.length === 0 && (
        <p className="text-sm text-slate-600 dark:text-slate-400">No telemetry from {name} in this range.</p>
      )}
      <div
        className="grid gap-4 lg:grid-cols-2"
        data-testid="charts"
        data-ready={!loading && metrics.length > 0 ? "true" : "false"}
      >
        {metrics.map((m) => (
          <Chart
            key={m}
            metric={m}
            data={charts[m].data}
            anomaly={charts[m].anomaly}
            range={chartRange}
            dark={dark}
            onZoom={(from, to) => setZoom([from, to])}
            forecast={forecastOn ? forecasts[m]?.forecast : null}
            forecastNote={forecastOn && <ForecastNote state={forecasts[m]} limits={limits[m]} />}
          />
        ))}
      </div>
      <div className="mt-4 grid gap-4 lg:grid-cols-2">
        <Card title="Details">
          <ErrorBox error={device.error} />
          {device.data && (
            <dl className="grid grid-cols-[auto_1fr] gap-x-4 gap-y-1 text-sm">
              {Object.entries((device.data.device as Record<string, unknown>) ?? device.data).map(([k, v]) => (
                <div key={k} className="contents">
                  <dt className="font-medium">{k}</dt>
                  <dd className="break-all">
                    {k.endsWith("_at") || k === "last_seen"
                      ? fmtTime(v)
                      : fmtValue(typeof v === "object" ? JSON.stringify(v) : v)}
                  </dd>
                </div>
              ))}
            </dl>
          )}
        </Card>
        <Card title="Attributes">
          <ErrorBox error={attributes.error} />
          {attributes.data && attrScopes.length === 0 && <p className="text-sm">No attributes.</p>}
          {attrScopes.map(([scope, values]) => (
            <div key={scope} className="mb-2">
              <h3 className="text-sm font-semibold capitalize">{scope}</h3>
              {values && typeof values === "object" && Object.keys(values).length ? (
                <dl className="grid grid-cols-[auto_1fr] gap-x-4 text-sm">
                  {Object.entries(values).map(([k, v]) => (
                    <div key={k} className="contents">
                      <dt className="font-mono">{k}</dt>
                      <dd className="break-all font-mono">{JSON.stringify(v)}</dd>
                    </div>
                  ))}
                </dl>
              ) : (
                <p className="text-sm text-slate-600 dark:text-slate-400">none</p>
              )}
            </div>
          ))}
          {canManage && !attributes.error && <AttributeForm device={name} onSaved={attributes.reload} />}
        </Card>
      </div>
      <h2 className="mb-2 mt-6 text-lg font-semibold">Alarms of {name}</h2>
      <ErrorBox error={alarms.error} />
      {alarms.data && alarms.data.length === 0 && <p className="text-sm">No alarms.</p>}
      {alarms.data && alarms.data.length > 0 && (
        <Table caption={"Alarms of " + name} head={["Severity", "Rule", "Status", "Message", "Last"]}>
          {alarms.data.map((a) => (
            <tr key={a.id}>
              <td className={td()}>
                <SeverityBadge severity={a.severity} />
              </td>
              <td className={td()}>{a.rule ?? a.rule_name}</td>
              <td className={td()}>{a.status}</td>
              <td className={td()}>{a.message}</td>
              <td className={td()}>{fmtTime(a.last_at)}</td>
            </tr>
          ))}
        </Table>
      )}
    </>
  );
}
