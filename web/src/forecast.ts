// Forecasts in the dashboard: the API's answers, and the pure parts of showing them (how far
// ahead a chart looks, how the forecast joins the chart's data, how a time ahead reads).
// No imports here, so that tests/web/forecast_unit.mjs can test it with node alone; the
// requests are in components/forecast.tsx.

// GET /api/v1/forecast: one entry per selected series.
export interface Forecast {
  measurement: string;
  tags: Record<string, string>;
  metric: string;
  step_ms: number;
  horizon_ms: number;
  model: string;
  season_steps: number;
  error: { mae: number; smape: number };
  history_points: number;
  last: [number, number] | null;
  points: [number, number, number, number, number, number][]; // ts_ms, point, lo50, hi50, lo95, hi95
}

// GET /api/v1/forecast/crossing: when the series passes a limit (times null when not within
// the horizon; latest_ms null when the 95 % interval ends after it).
export interface Crossing {
  metric: string;
  limit: number;
  direction: "above" | "below";
  within_horizon: boolean;
  expected_ms: number | null;
  earliest_ms: number | null;
  latest_ms: number | null;
  probability: number;
  horizon_end_ms: number;
  model?: string;
}

// GET /api/v1/forecast/predicted: the fleet's metrics expected to leave their type's range.
export interface Prediction {
  device: string;
  metric: string;
  limit: number;
  direction: "above" | "below";
  expected_ms: number;
  earliest_ms: number | null;
  latest_ms: number | null;
  probability: number;
  value?: number;
}

export interface Predicted {
  predictions: Prediction[];
  computed_ms: number | null;
}

// Steps the query API aligns buckets on, in seconds.
const niceSteps = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 21600, 86400];

// How far a chart of `rangeSec` looks ahead: a quarter of its range, in about 60 steps of a
// step the query API aligns on (a coarser grid than the chart's own: the forecast is a trend,
// and fewer steps keep the request cheap). The horizon is a whole number of steps.
export function forecastSpan(rangeSec: number): { horizonSec: number; stepSec: number } {
  const wanted = Math.max(1, rangeSec / 4);
  const stepSec = niceSteps.find((s) => s >= wanted / 60) ?? niceSteps[niceSteps.length - 1];
  const steps = Math.max(2, Math.round(wanted / stepSec));
  return { horizonSec: steps * stepSec, stepSec };
}

// A chart's data with the forecast after it, on one time axis (seconds), as uPlot wants it:
// [xs, actual, point, lower95, upper95, lower50, upper50]. Forecast steps at or before the
// chart's last point are dropped (live points overtake an older forecast), and the point line
// starts at the last actual value so that it continues the curve; the bands start at the
// first forecast step, strictly after the last point.
export interface Aligned {
  columns: [number[], ...(number | null)[][]];
  bandFrom: number | null; // seconds: the first forecast step drawn
  lastX: number | null; // seconds: the chart's last point
}

export function alignForecast(data: { xs: number[]; ys: (number | null)[] }, f: Forecast | null): Aligned {
  const n = data.xs.length;
  const lastX = n ? data.xs[n - 1] : null;
  const ahead = (f?.points ?? []).filter((p) => lastX === null || p[0] / 1000 > lastX);
  const pad = () => new Array<number | null>(n).fill(null);
  const point = pad();
  if (ahead.length && n && data.ys[n - 1] !== null) point[n - 1] = data.ys[n - 1];
  const cols: (number | null)[][] = [data.ys.slice(), point, pad(), pad(), pad(), pad()];
  const xs = data.xs.slice();
  for (const [t, p, lo50, hi50, lo95, hi95] of ahead) {
    xs.push(t / 1000);
    cols[0].push(null);
    cols[1].push(p);
    cols[2].push(lo95);
    cols[3].push(hi95);
    cols[4].push(lo50);
    cols[5].push(hi50);
  }
  return { columns: [xs, ...cols], bandFrom: ahead.length ? ahead[0][0] / 1000 : null, lastX };
}

// "2 h 10 min", "45 min", "3 d 4 h", "less than a minute".
export function fmtDuration(ms: number): string {
  const min = Math.floor(ms / 60000);
  if (min < 1) return "less than a minute";
  const d = Math.floor(min / 1440);
  const h = Math.floor((min % 1440) / 60);
  const m = min % 60;
  if (d) return h ? `${d} d ${h} h` : `${d} d`;
  if (h) return m ? `${h} h ${m} min` : `${h} h`;
  return `${m} min`;
}

// "in 2 h 10 min"; a time already past (a prediction computed a while ago) is "now".
export function fmtIn(ms: number, now: number): string {
  return ms <= now ? "now" : "in " + fmtDuration(ms - now);
}

// A clock time, with the day when it is not today.
export function fmtClock(ms: number, now = Date.now()): string {
  const d = new Date(ms);
  const time = d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  if (d.toDateString() === new Date(now).toDateString()) return time;
  return d.toLocaleDateString([], { weekday: "short", day: "numeric", month: "short" }) + " " + time;
}

export function fmtLimit(limit: number, unit?: string): string {
  const v = String(Number(limit.toPrecision(6))); // as typed into the device type: 2.5, not 2.500
  return unit ? `${v} ${unit}` : v;
}

// "expected to cross 90 °C at 14:32 (14:10–14:55)"; null when no crossing is expected within
// the horizon. The interval is the 95 % one; an open end means "after the horizon".
export function crossingText(c: Crossing, unit?: string, now = Date.now()): string | null {
  if (!c.within_horizon || c.expected_ms === null) return null;
  const from = fmtClock(c.earliest_ms ?? c.expected_ms, now);
  const to = c.latest_ms === null ? "later" : fmtClock(c.latest_ms, now);
  const verb = c.direction === "below" ? "fall below" : "cross";
  return `expected to ${verb} ${fmtLimit(c.limit, unit)} at ${fmtClock(c.expected_ms, now)} (${from}–${to})`;
}

export function fmtPercent(p: number): string {
  return Math.round(Math.max(0, Math.min(1, p)) * 100) + " %";
}
