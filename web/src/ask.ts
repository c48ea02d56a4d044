// The pure parts of the overview's Ask box: the answer's shape (POST /api/v1/ask), the plan
// as readable chips, and what the chart hint asks to be drawn. No React here, so that
// tests/web/ask_unit.mjs can run it under node.

export interface Comparison {
  op: string;
  value: number;
}

// The plan as the answer carries it (src/ask/ask.h, plan_to_json): times in RFC 3339.
export interface AskPlan {
  kind: "telemetry" | "alarms" | "health" | "offline" | "forecast";
  devices?: string[];
  device_type?: string;
  asset?: string;
  metric?: string;
  unit?: string;
  from?: string;
  to?: string;
  time_text?: string;
  aggregate?: string;
  group_by?: "device" | "asset" | "none";
  asset_level?: string;
  filter?: Comparison | null;
  order?: string;
  limit?: number | null;
  threshold?: Comparison | null;
  alarm_status?: string;
  source?: string;
}

// A series of the answer's data ({"series": [...]}): {"name", "points"} as the executor writes
// it, or the query API's shape (tags.device and metric).
export interface AskSeries {
  name?: string;
  device?: string;
  metric?: string;
  tags?: Record<string, string>;
  points: [number, number | null][];
}

export interface AskData {
  columns?: string[];
  rows?: unknown[][];
  series?: AskSeries[];
}

export interface ChartHint {
  type?: string; // "bar" | "line" | "number" | "table"
  x?: string;
  y?: string;
  unit?: string;
}

export interface Understood {
  understood: true;
  question: string;
  answer: string;
  plan: AskPlan;
  data?: AskData;
  chart?: ChartHint;
}

export interface NotUnderstood {
  understood: false;
  question: string;
  not_understood: string[];
  suggestions: string[];
}

export type AskAnswer = Understood | NotUnderstood;

// Questions anyone can ask of any plant (no device or metric names needed): the chips under
// the box. Clicking one asks it.
export const exampleQuestions = [
  "which machine is least healthy right now and why?",
  "open alarms",
  "what alarmed most last week?",
  "which devices are offline?",
];

export interface PlanChip {
  label: string; // what the chip is about: "Scope", "Metric", ...
  text: string; // what the plan says, in words
  title?: string; // more detail on hover (the absolute times of a range)
}

const aggregateWords: Record<string, string> = {
  last: "current value",
  mean: "average",
  min: "minimum",
  max: "maximum",
  sum: "total",
  count: "count",
  p50: "median (p50)",
  p90: "90th percentile",
  p95: "95th percentile",
  p99: "99th percentile",
  change: "change",
  trend: "trend",
  time_above: "time above",
  time_below: "time below",
};

const kindWords: Record<string, string> = {
  telemetry: "telemetry",
  alarms: "alarms",
  health: "machine health",
  offline: "devices offline",
  forecast: "forecast",
};

function plural(type: string): string {
  return type.endsWith("s") ? type : type + "s";
}

function withUnit(value: number, unit?: string): string {
  return unit ? `${value} ${unit}` : String(value);
}

// "2026-12-04T00:00:00+01:00" as "2026-12-04 00:00:00 +01:00": the server's zone, as sent.
export function readableTime(rfc3339: string): string {
  const m = /^(\d{4}-\d{2}-\d{2})T(\d{2}:\d{2}(?::\d{2})?)(?:\.\d+)?(Z|[+-]\d{2}:\d{2})?$/.exec(rfc3339);
  if (!m) return rfc3339;
  return `${m[1]} ${m[2]}${m[3] ? " " + (m[3] === "Z" ? "UTC" : m[3]) : ""}`;
}

export function scopeText(p: AskPlan): string {
  if (p.devices && p.devices.length > 0) return p.devices.join(", ");
  const what = p.device_type ? plural(p.device_type) : "all devices";
  return p.asset ? `${what} on ${p.asset}` : p.device_type ? `all ${what}` : what;
}

// The plan in the order a person reads a question: what, where, when, how, which.
export function planChips(p: AskPlan): PlanChip[] {
  const chips: PlanChip[] = [];
  if (p.kind !== "telemetry") chips.push({ label: "Kind", text: kindWords[p.kind] ?? p.kind });
  chips.push({ label: "Scope", text: scopeText(p) });
  if (p.metric) chips.push({ label: "Metric", text: p.unit ? `${p.metric} (${p.unit})` : p.metric });
  if (p.from && p.to) {
    const absolute =
      p.from === p.to ? `at ${readableTime(p.from)}` : `${readableTime(p.from)} to ${readableTime(p.to)}`;
    chips.push({ label: "Time", text: p.time_text || absolute, title: absolute });
  }
  if (p.kind === "telemetry" && p.aggregate) {
    let text = aggregateWords[p.aggregate] ?? p.aggregate;
    if ((p.aggregate === "time_above" || p.aggregate === "time_below") && p.threshold)
      text += ` ${withUnit(p.threshold.value, p.unit)}`;
    chips.push({ label: "Aggregate", text });
  }
  if (p.kind === "forecast" && p.threshold)
    chips.push({ label: "Reaches", text: `${p.threshold.op} ${withUnit(p.threshold.value, p.unit)}` });
  if (p.kind === "alarms" && p.alarm_status) chips.push({ label: "Status", text: p.alarm_status });
  if (p.group_by) {
    const text =
      p.group_by === "device"
        ? "per device"
        : p.group_by === "asset"
          ? `per ${p.asset_level || "asset"}`
          : "one number over all";
    chips.push({ label: "Grouping", text });
  }
  if (p.filter) {
    const of = p.aggregate ? (aggregateWords[p.aggregate] ?? p.aggregate) + " " : "";
    chips.push({ label: "Filter", text: `${of}${p.filter.op} ${withUnit(p.filter.value, p.unit)}` });
  }
  if (p.limit) {
    chips.push({ label: "Ranking", text: `${p.order === "asc" ? "bottom" : "top"} ${p.limit}` });
  } else if (p.order) {
    chips.push({ label: "Order", text: p.order === "asc" ? "lowest first" : "highest first" });
  }
  chips.push({ label: "Source", text: p.source === "llm" ? "LLM" : "parser" });
  return chips;
}

export type ChartKind = "bar" | "line" | "number" | "table" | "none";

// What to draw: the hint, when the data can be drawn that way; a table otherwise.
export function chartKind(a: Understood): ChartKind {
  const d = a.data;
  const type = a.chart?.type;
  const rows = d?.rows ?? [];
  if (type === "line" && d?.series && d.series.length > 0) return "line";
  if (type === "number" && rows.length > 0) return "number";
  if (type === "bar" && barRows(a).length > 0) return "bar";
  if (rows.length > 0 && (d?.columns?.length ?? 0) > 0) return "table";
  if (d?.series && d.series.length > 0) return "line";
  return "none";
}

function column(a: Understood, name: string | undefined, fallback: number): number {
  const cols = a.data?.columns ?? [];
  const i = name ? cols.indexOf(name) : -1;
  return i >= 0 ? i : fallback;
}

export interface Bar {
  label: string;
  value: number;
}

// One bar per row: x names it (the device or asset), y is its value; rows without a number
// are left out.
export function barRows(a: Understood): Bar[] {
  const cols = a.data?.columns ?? [];
  const x = column(a, a.chart?.x, 0);
  const y = column(a, a.chart?.y, cols.length - 1);
  const out: Bar[] = [];
  for (const row of a.data?.rows ?? []) {
    const v = row[y];
    if (typeof v === "number" && Number.isFinite(v)) out.push({ label: String(row[x] ?? ""), value: v });
  }
  return out;
}

// The one value of a "number" chart: the hint's y column of the first row, else its last.
export function bigNumber(a: Understood): unknown {
  const row = a.data?.rows?.[0] ?? [];
  return row[column(a, a.chart?.y, row.length - 1)];
}

// A value as the answer's sentence writes it: 83.1, not 83.10 (at most six significant
// digits, no padding zeros); words and missing values as they are.
export function answerValue(v: unknown): string {
  if (typeof v === "number" && Number.isFinite(v))
    return Number.isInteger(v) ? String(v) : String(Number(v.toPrecision(6)));
  if (v === null || v === undefined) return "—";
  return String(v);
}

export function seriesName(s: AskSeries): string {
  if (s.name) return s.name;
  const device = s.device ?? s.tags?.device ?? "";
  const metric = s.metric ?? "";
  return device && metric ? `${device} ${metric}` : device || metric || "series";
}

// A series as the dashboard's chart takes it: seconds on x.
export function seriesChartData(s: AskSeries): { xs: number[]; ys: (number | null)[] } {
  const xs: number[] = [];
  const ys: (number | null)[] = [];
  for (const [ms, v] of s.points ?? []) {
    xs.push(ms / 1000);
    ys.push(typeof v === "number" ? v : null);
  }
  return { xs, ys };
}
