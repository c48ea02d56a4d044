// Forecasts in the dashboard: the device page's forecasts and crossing hints (loaded per
// charted metric, refreshed once a step), and the overview's "Predicted to cross a limit" list.
import { useEffect, useState } from "react";
import { ApiError, api, qs } from "../api";
import {
  crossingText,
  fmtClock,
  fmtIn,
  fmtLimit,
  fmtPercent,
  type Crossing,
  type Forecast,
  type Predicted,
  type Prediction,
} from "../forecast";
import { Card, ErrorBox, Table, errorText, td, useAsync } from "./ui";
import { linkClick } from "../router";

// The series' forecast, or why the server did not make one (e.g. too little history).
async function fetchForecast(
  device: string,
  metric: string,
  span: { horizonSec: number; stepSec: number },
): Promise<{ forecast: Forecast | null; skipped?: string }> {
  const body = await api<{ forecasts?: Forecast[]; skipped?: { metric: string; reason: string }[] }>(
    "/api/v1/forecast" + qs({ device, metric, horizon: span.horizonSec + "s", step: span.stepSec + "s" }),
  );
  const forecast = body.forecasts?.find((f) => f.metric === metric) ?? null;
  return { forecast, skipped: forecast ? undefined : body.skipped?.find((s) => s.metric === metric)?.reason };
}

async function fetchCrossing(
  device: string,
  metric: string,
  limit: { above?: number; below?: number },
  span: { horizonSec: number; stepSec: number },
): Promise<Crossing | null> {
  const body = await api<{ crossings?: Crossing[] }>(
    "/api/v1/forecast/crossing" +
      qs({ device, metric, ...limit, horizon: span.horizonSec + "s", step: span.stepSec + "s" }),
  );
  return body.crossings?.find((c) => c.metric === metric) ?? body.crossings?.[0] ?? null;
}

async function fetchPredicted(horizon: string): Promise<Predicted> {
  const body = await api<Partial<Predicted>>("/api/v1/forecast/predicted" + qs({ horizon }));
  return { predictions: body.predictions ?? [], computed_ms: body.computed_ms ?? null };
}

export interface MetricLimits {
  unit?: string;
  min?: number;
  max?: number;
}

export interface ForecastState {
  forecast: Forecast | null;
  skipped?: string; // the server's reason for not forecasting this series
  error?: unknown;
  crossings: Crossing[];
}

// A new forecast once a step (a new bucket is a new forecast on the server too), and at least
// every 30 s so that a chart that follows the present keeps a forecast ahead of its last point.
function refreshMs(stepSec: number) {
  return Math.max(30, stepSec) * 1000;
}

// The forecast of each charted metric, and its crossings of the device type's expected range.
// One request per metric: a series too short to forecast fails alone, on its own chart.
export function useDeviceForecasts(
  device: string,
  metrics: string[],
  limits: Record<string, MetricLimits>,
  span: { horizonSec: number; stepSec: number },
  enabled: boolean,
): Record<string, ForecastState> {
  const [states, setStates] = useState<Record<string, ForecastState>>({});
  const metricsKey = metrics.join("\n");
  const limitsKey = JSON.stringify(limits);
  useEffect(() => {
    if (!enabled || !metrics.length) {
      setStates({});
      return;
    }
    let stop = false;
    async function one(metric: string): Promise<[string, ForecastState]> {
      const lim = limits[metric] ?? {};
      const wanted: { above?: number; below?: number }[] = [];
      if (typeof lim.max === "number") wanted.push({ above: lim.max });
      if (typeof lim.min === "number") wanted.push({ below: lim.min });
      try {
        const [answer, crossings] = await Promise.all([
          fetchForecast(device, metric, span),
          Promise.all(wanted.map((l) => fetchCrossing(device, metric, l, span))),
        ]);
        return [metric, { ...answer, crossings: crossings.filter((c): c is Crossing => c !== null) }];
      } catch (error) {
        return [metric, { forecast: null, error, crossings: [] }];
      }
    }
    async function load() {
      const all = await Promise.all(metrics.map(one));
      if (!stop) setStates(Object.fromEntries(all));
    }
    void load();
    const t = window.setInterval(load, refreshMs(span.stepSec));
    return () => {
      stop = true;
      window.clearInterval(t);
    };
    // metrics and limits by value (the page makes new arrays on every live point).
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [device, metricsKey, limitsKey, span.horizonSec, span.stepSec, enabled]);
  return states;
}

// The expected ranges of a device's metrics, from its device type (none when it has no type,
// or names one that is not defined). `ready` once they are known for this very type, so that
// the page does not ask for forecasts twice (first without the limits, then with them).
export function useTypeLimits(type: string | undefined, known: boolean) {
  const [state, setState] = useState<{ type?: string; limits: Record<string, MetricLimits>; error?: unknown }>({
    limits: {},
  });
  useEffect(() => {
    if (!known) return;
    let stop = false;
    const done = (limits: Record<string, MetricLimits>, error?: unknown) => {
      if (!stop) setState({ type: type ?? "", limits, error });
    };
    if (!type) done({});
    else
      api<{ metrics?: Record<string, MetricLimits> }>("/api/v1/device-types/" + encodeURIComponent(type)).then(
        (t) => done(t.metrics ?? {}),
        (e) => done({}, e instanceof ApiError && e.status === 404 ? undefined : e),
      );
    return () => {
      stop = true;
    };
  }, [type, known]);
  return { ...state, ready: known && state.type === (type ?? "") };
}

// Under a chart's caption: when the forecast says the metric leaves its expected range, or
// why there is no forecast.
export function ForecastNote({ state, limits }: { state?: ForecastState; limits?: MetricLimits }) {
  if (!state) return null;
  if (state.error) {
    const missing =
      state.error instanceof ApiError && state.error.status === 404 && state.error.message.startsWith("No such");
    return (
      <p className="mt-1 text-xs text-red-800 dark:text-red-300" data-testid="forecast-error">
        No forecast: {missing ? "this server does not offer forecasts." : errorText(state.error)}
      </p>
    );
  }
  if (state.skipped)
    return (
      <p className="mt-1 text-xs text-slate-600 dark:text-slate-400" data-testid="forecast-skipped">
        No forecast: {state.skipped}
      </p>
    );
  const hints = state.crossings.map((c) => ({ c, text: crossingText(c, limits?.unit) }));
  const ahead = hints.filter((h): h is { c: Crossing; text: string } => h.text !== null);
  if (ahead.length)
    return (
      <>
        {ahead.map(({ c, text }) => (
          <p
            key={c.direction}
            className="mt-1 text-sm font-medium text-amber-900 dark:text-amber-200"
            data-testid="crossing-hint"
            data-direction={c.direction}
            data-limit={c.limit}
            data-expected-ms={c.expected_ms ?? undefined}
          >
            <span aria-hidden="true">⚠ </span>
            {text[0].toUpperCase() + text.slice(1)}, {fmtPercent(c.probability)} likely
          </p>
        ))}
      </>
    );
  if (hints.length)
    return (
      <p className="mt-1 text-xs text-slate-600 dark:text-slate-400" data-testid="crossing-none">
        Not expected to leave its range ({hints.map(({ c }) => fmtLimit(c.limit, limits?.unit)).join(", ")}) before{" "}
        {fmtClock(hints[0].c.horizon_end_ms)}
      </p>
    );
  return null;
}

// The overview's list: metrics expected to cross their device type's min or max within the
// horizon, soonest first. The server computes it in the background and answers its last result.
export function PredictedCrossings({ horizon = "6h" }: { horizon?: string }) {
  const predicted = useAsync(() => fetchPredicted(horizon), [horizon]);
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    const t = window.setInterval(() => {
      predicted.reload();
      setNow(Date.now());
    }, 10000);
    return () => window.clearInterval(t);
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, []);
  const rows: Prediction[] = predicted.data?.predictions ?? [];
  const computed = predicted.data?.computed_ms ?? null;
  return (
    <Card title="Predicted to cross a limit" className="mt-4">
      <ErrorBox error={predicted.error} />
      {predicted.data && rows.length === 0 && (
        <p className="text-sm text-slate-600 dark:text-slate-400" data-testid="predicted-empty">
          {computed === null
            ? "The first prediction is being computed…"
            : `No limit crossings predicted in the next ${horizon.replace(/^(\d+)([a-z]+)$/, "$1 $2")}`}
        </p>
      )}
      {rows.length > 0 && (
        <Table
          caption="Metrics predicted to cross their device type's limit, soonest first"
          head={["Device", "Metric", "Limit", "Expected", "Probability"]}
        >
          {rows.map((p) => (
            <tr
              key={p.device + "/" + p.metric + "/" + p.direction}
              data-testid="predicted-row"
              data-device={p.device}
              data-metric={p.metric}
            >
              <td className={td()}>
                <a
                  href={"/devices/" + encodeURIComponent(p.device)}
                  onClick={linkClick}
                  className="text-cyan-800 underline dark:text-cyan-300"
                >
                  {p.device}
                </a>
              </td>
              <td className={td()}>{p.metric}</td>
              <td className={td("whitespace-nowrap")}>
                {p.direction === "below" ? "below " : "above "}
                {fmtLimit(p.limit)}
              </td>
              <td className={td()}>
                <span className="font-medium">{fmtIn(p.expected_ms, now)}</span>{" "}
                <span className="text-slate-600 dark:text-slate-400">
                  at {fmtClock(p.expected_ms, now)}
                  {p.earliest_ms !== null && p.earliest_ms !== undefined && (
                    <>
                      {" "}
                      ({fmtClock(p.earliest_ms, now)}–
                      {p.latest_ms === null || p.latest_ms === undefined ? "later" : fmtClock(p.latest_ms, now)})
                    </>
                  )}
                </span>
              </td>
              <td className={td("font-mono")}>{fmtPercent(p.probability)}</td>
            </tr>
          ))}
        </Table>
      )}
      {computed !== null && (
        <p className="mt-2 text-xs text-slate-600 dark:text-slate-400">
          From the forecasts of {fmtClock(computed, now)}, over the device types' expected ranges.
        </p>
      )}
    </Card>
  );
}
