// Unit tests of the Ask box's pure parts (web/src/ask.ts): the plan as chips a person can
// read, and which chart an answer gets. The TypeScript is turned into JavaScript by Vite's
// esbuild (already in web/node_modules), then run by node.
//
//   node --test tests/web/ask_unit.mjs
import assert from "node:assert/strict";
import { test } from "node:test";
import { hotter } from "./ask_answers.mjs";
import { importWebSource } from "./harness.mjs";

const a = await importWebSource("ask.ts");

const chipText = (chips) => chips.map((c) => `${c.label}: ${c.text}`);

test("the contract's example reads as scope, metric, time, aggregate, grouping, filter, order, source", () => {
  const chips = a.planChips(hotter.plan);
  assert.deepEqual(chipText(chips), [
    "Scope: pumps on line-2",
    "Metric: temperature (°C)",
    "Time: yesterday",
    "Aggregate: maximum",
    "Grouping: per device",
    "Filter: maximum > 80 °C",
    "Order: highest first",
    "Source: parser",
  ]);
  const time = chips.find((c) => c.label === "Time");
  assert.equal(time.title, "2026-12-04 00:00:00 +01:00 to 2026-12-05 00:00:00 +01:00", "absolute times on hover");
});

test("named devices, a top 3 per line, a threshold and the LLM as source", () => {
  const chips = a.planChips({
    kind: "telemetry",
    devices: ["pump-01", "pump-04"],
    metric: "vibration_rms",
    unit: "mm/s",
    from: "2026-12-05T07:15:00+01:00",
    to: "2026-12-05T10:15:00+01:00",
    time_text: "",
    aggregate: "time_above",
    threshold: { op: ">", value: 4.5 },
    group_by: "asset",
    asset_level: "line",
    order: "desc",
    limit: 3,
    source: "llm",
  });
  assert.deepEqual(chipText(chips), [
    "Scope: pump-01, pump-04",
    "Metric: vibration_rms (mm/s)",
    "Time: 2026-12-05 07:15:00 +01:00 to 2026-12-05 10:15:00 +01:00",
    "Aggregate: time above 4.5 mm/s",
    "Grouping: per line",
    "Ranking: top 3",
    "Source: LLM",
  ]);
});

test("alarms, offline, health and forecasts name their kind; now is one instant", () => {
  assert.deepEqual(
    chipText(
      a.planChips({
        kind: "alarms",
        asset: "line-2",
        alarm_status: "open",
        from: "2026-12-05T10:15:00Z",
        to: "2026-12-05T10:15:00Z",
        time_text: "now",
        group_by: "none",
        source: "parser",
      }),
    ),
    [
      "Kind: alarms",
      "Scope: all devices on line-2",
      "Time: now",
      "Status: open",
      "Grouping: one number over all",
      "Source: parser",
    ],
  );
  const now = a.planChips({ kind: "offline", from: "2026-12-05T10:15:00Z", to: "2026-12-05T10:15:00Z" });
  assert.equal(now.find((c) => c.label === "Time").title, "at 2026-12-05 10:15:00 UTC");
  assert.deepEqual(
    chipText(
      a.planChips({
        kind: "forecast",
        devices: ["pump-04"],
        metric: "temperature",
        unit: "°C",
        threshold: { op: ">=", value: 90 },
      }),
    ),
    ["Kind: forecast", "Scope: pump-04", "Metric: temperature (°C)", "Reaches: >= 90 °C", "Source: parser"],
  );
  assert.equal(a.scopeText({ kind: "health", device_type: "pump" }), "all pumps");
  assert.equal(a.scopeText({ kind: "health", devices: [] }), "all devices");
});

test("per-device values are bars, labelled by the hint's x with the hint's y", () => {
  assert.equal(a.chartKind(hotter), "bar");
  assert.deepEqual(a.barRows(hotter), [
    { label: "pump-06", value: 83.1 },
    { label: "pump-07", value: 81.4 },
  ]);
  const three = {
    ...hotter,
    data: { columns: ["device", "mean", "max"], rows: [["pump-01", 70, 90]] },
    chart: { type: "bar", x: "device", y: "mean" },
  };
  assert.deepEqual(a.barRows(three), [{ label: "pump-01", value: 70 }]);
});

test("one value is a big number; rows without a drawable hint are a table; series are lines", () => {
  const one = {
    ...hotter,
    data: { columns: ["mean"], rows: [[71.25]] },
    chart: { type: "number", y: "mean", unit: "°C" },
  };
  assert.equal(a.chartKind(one), "number");
  assert.equal(a.bigNumber(one), 71.25);
  const words = {
    ...hotter,
    data: { columns: ["device", "trend"], rows: [["pump-01", "rising"]] },
    chart: { type: "bar", x: "device", y: "trend" },
  };
  assert.equal(a.chartKind(words), "table", "bars need numbers");
  const table = { ...hotter, chart: { type: "table" } };
  assert.equal(a.chartKind(table), "table");
  const line = {
    ...hotter,
    data: {
      series: [
        {
          device: "pump-01",
          metric: "temperature",
          points: [
            [1796461200000, 70.5],
            [1796461260000, null],
          ],
        },
        { tags: { device: "pump-02" }, metric: "temperature", points: [] },
      ],
    },
    chart: { type: "line", unit: "°C" },
  };
  assert.equal(a.chartKind(line), "line");
  assert.equal(a.seriesName(line.data.series[0]), "pump-01 temperature");
  assert.equal(a.seriesName(line.data.series[1]), "pump-02 temperature");
  assert.equal(a.seriesName({ name: "line-2", points: [] }), "line-2", "the executor names its series");
  assert.deepEqual(a.seriesChartData(line.data.series[0]), { xs: [1796461200, 1796461260], ys: [70.5, null] });
  assert.equal(a.chartKind({ ...hotter, data: { columns: [], rows: [] }, chart: { type: "bar" } }), "none");
});

test("values read as the answer's sentence writes them", () => {
  assert.equal(a.answerValue(83.1), "83.1");
  assert.equal(a.answerValue(0.6), "0.6");
  assert.equal(a.answerValue(1234567.891), "1234570");
  assert.equal(a.answerValue(0.000123456789), "0.000123457");
  assert.equal(a.answerValue(42), "42");
  assert.equal(a.answerValue("rising"), "rising");
  assert.equal(a.answerValue(null), "—");
});
