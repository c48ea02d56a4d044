// Unit tests of the dashboard's forecast helpers (web/src/forecast.ts): how far a chart looks
// ahead, how the forecast joins the chart's data, and how times ahead read. The TypeScript is
// turned into JavaScript by Vite's esbuild (already in web/node_modules), then run by node.
//
//   node --test tests/web/forecast_unit.mjs
import assert from "node:assert/strict";
import { test } from "node:test";
import { importWebSource } from "./harness.mjs";

const f = await importWebSource("forecast.ts");

test("a chart looks a quarter of its range ahead, in about 60 aligned steps", () => {
  assert.deepEqual(f.forecastSpan(3600), { horizonSec: 900, stepSec: 15 }); // 1 h: 15 min in 60 steps
  assert.deepEqual(f.forecastSpan(6 * 3600), { horizonSec: 5400, stepSec: 120 }); // 6 h: 90 min in 45
  assert.deepEqual(f.forecastSpan(24 * 3600), { horizonSec: 21600, stepSec: 600 }); // 24 h: 6 h in 36
  assert.deepEqual(f.forecastSpan(15 * 60), { horizonSec: 225, stepSec: 5 }); // 15 min: 3 min 45 s
  const week = f.forecastSpan(7 * 86400);
  assert.equal(week.stepSec, 3600);
  assert.equal(week.horizonSec % week.stepSec, 0, "the horizon is whole steps");
});

test("the forecast joins the chart after its last point; older steps are dropped", () => {
  const data = { xs: [100, 110, 120], ys: [1, 2, 3] };
  const fc = {
    points: [
      [115000, 9, 9, 9, 9, 9], // before the last point (overtaken by live data): dropped
      [130000, 4, 3.5, 4.5, 3, 5],
      [140000, 5, 4, 6, 3.5, 6.5],
    ],
  };
  const a = f.alignForecast(data, fc);
  assert.deepEqual(a.columns[0], [100, 110, 120, 130, 140]);
  assert.deepEqual(a.columns[1], [1, 2, 3, null, null], "actual values stop at the last point");
  assert.deepEqual(a.columns[2], [null, null, 3, 4, 5], "the forecast line starts at the last value");
  assert.deepEqual(a.columns[3], [null, null, null, 3, 3.5], "lower 95 %");
  assert.deepEqual(a.columns[4], [null, null, null, 5, 6.5], "upper 95 %");
  assert.deepEqual(a.columns[5], [null, null, null, 3.5, 4], "lower 50 %");
  assert.deepEqual(a.columns[6], [null, null, null, 4.5, 6], "upper 50 %");
  assert.equal(a.bandFrom, 130);
  assert.equal(a.lastX, 120);
});

test("without a forecast the chart's data is unchanged", () => {
  const a = f.alignForecast({ xs: [1, 2], ys: [5, null] }, null);
  assert.deepEqual(a.columns, [
    [1, 2],
    [5, null],
    [null, null],
    [null, null],
    [null, null],
    [null, null],
    [null, null],
  ]);
  assert.equal(a.bandFrom, null);
});

test("times ahead read as hours and minutes", () => {
  const now = Date.UTC(2026, 11, 4, 12, 0);
  assert.equal(f.fmtIn(now + (2 * 60 + 10) * 60000 + 5000, now), "in 2 h 10 min");
  assert.equal(f.fmtIn(now + 45 * 60000, now), "in 45 min");
  assert.equal(f.fmtIn(now + 3 * 3600000, now), "in 3 h");
  assert.equal(f.fmtIn(now + (27 * 60 + 5) * 60000, now), "in 1 d 3 h");
  assert.equal(f.fmtIn(now + 20000, now), "in less than a minute");
  assert.equal(f.fmtIn(now - 60000, now), "now");
});

test("the crossing hint names the limit with its unit, the time and the 95 % interval", () => {
  const at = (h, m) => new Date(2026, 11, 4, h, m).getTime();
  const now = at(12, 0);
  const clock = (ms) => f.fmtClock(ms, now);
  const c = {
    metric: "temperature",
    limit: 90,
    direction: "above",
    within_horizon: true,
    expected_ms: at(14, 32),
    earliest_ms: at(14, 10),
    latest_ms: at(14, 55),
    probability: 0.83,
    horizon_end_ms: at(18, 0),
  };
  assert.equal(
    f.crossingText(c, "°C", now),
    `expected to cross 90 °C at ${clock(at(14, 32))} (${clock(at(14, 10))}–${clock(at(14, 55))})`,
  );
  assert.equal(
    f.crossingText({ ...c, direction: "below", limit: 2.5, latest_ms: null }, undefined, now),
    `expected to fall below 2.5 at ${clock(at(14, 32))} (${clock(at(14, 10))}–later)`,
  );
  assert.equal(f.crossingText({ ...c, within_horizon: false, expected_ms: null }, "°C", now), null);
  assert.ok(!clock(at(14, 32)).includes("Dec"), "today's times have no date");
  assert.ok(f.fmtClock(at(14, 32) + 86400000, now) !== clock(at(14, 32)), "tomorrow's have one");
  assert.equal(f.fmtPercent(0.834), "83 %");
});
