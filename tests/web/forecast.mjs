// Browser test of the dashboard's forecasts: Playwright (playwright-core) drives Debian's
// Chromium against the real `clisonix serve`. An oven whose type allows at most 90 °C runs
// shifts, each heating it past 90 °C: its chart draws the forecast band after the last
// point with the crossing hint, and the overview lists it as predicted to cross; before any
// data the list is empty.
//
//   node tests/web/forecast.mjs --binary build/clisonix --web-dist web/dist
import path from "node:path";
import {
  axeCheck,
  browserTestArgs,
  expect,
  launchBrowser,
  skipAll,
  startServer,
  stepRunner,
  uiLogin,
} from "./harness.mjs";

const { binary, webDist, out, playwright, axeSource } = browserTestArgs();
const { step, counts } = stepRunner();
const axe = (name) => axeCheck(page, axeSource, name);

// The fleet's predictions are recomputed every second here (the default is a minute).
const server = await startServer({
  binary,
  webDist,
  extraArgs: ["--set", "forecast.refresh_interval=1s"],
}).catch((e) => {
  if (/forecast\.refresh_interval.*unknown key/.test(e.message)) skipAll("this server has no forecast service");
  throw e;
});
const api = server.api;
if ((await api("GET", "/api/v1/forecast?device=none&metric=none")).status === 404) {
  await server.stop();
  skipAll("this server has no forecast API (/api/v1/forecast answers 404)");
}
const browser = await launchBrowser(playwright);
const page = browser.context.pages()[0] ?? (await browser.context.newPage());
page.setDefaultTimeout(15000);
const problems = [];
page.on("pageerror", (e) => problems.push("page error: " + e.message));

await uiLogin(page, server.base);

await step("overview: no data, no predicted crossing", async () => {
  await page.getByText("No limit crossings predicted in the next 6 h").waitFor();
  expect((await page.getByTestId("predicted-row").count()) === 0, "no rows in the empty list");
});

// oven-1: an 8-hour shift pattern (one of the periods the forecast looks for), a point every
// 2 minutes for 30 hours: each shift heats it from 60 °C to 95 °C, past 90 °C at 6 h 51 min.
// The last point is 6 h 25 min into a shift, at 88 °C: 90 °C again in about 26 minutes. Any
// of the forecast's models continues such a pattern (seasonal naive already does), which a
// bare trend would not test.
const made = [
  await api("POST", "/api/v1/device-types", { name: "oven", metrics: { temperature: { unit: "°C", max: 90 } } }),
  await api("POST", "/api/v1/devices", { name: "oven-1", type: "oven" }),
];
for (const r of made) expect(r.status === 201, "setting up: " + r.status + " " + r.text);
const now = Date.now();
const lines = [];
const last = (30 * 60 + 25) / 2; // 2-minute points: 24 h and 6 h 25 min
for (let i = last; i >= 0; i--) {
  const hours = (((last - i) * 2) % 480) / 60; // into the shift
  const temperature = 60 + (35 * hours) / 8 + 0.4 * Math.sin(i * 2.3); // with some noise
  lines.push(`telemetry,device=oven-1 temperature=${temperature.toFixed(3)} ${now - i * 120000}`);
}
const w = await api("POST", "/api/v1/write?precision=ms", lines.join("\n"));
if (w.status !== 204) throw new Error("writing oven-1: " + w.status + " " + w.text);

await step("device page: the forecast band starts after the last point, with the crossing hint", async () => {
  await page.goto(server.base + "/devices/oven-1?range=6h");
  const chart = page.locator('figure.chart[data-metric="temperature"]');
  await page.locator('figure.chart[data-metric="temperature"][data-forecast="drawn"]').waitFor();
  // Drawn on the canvas: uPlot's last draw put the band's first step right of the last point.
  await page.waitForFunction(() => {
    const d = document.querySelector('figure.chart[data-metric="temperature"]')?.dataset;
    return d && d.bandPx && d.lastPx;
  });
  const d = await chart.evaluate((e) => ({ ...e.dataset }));
  console.log(`  ${JSON.stringify(d)}`);
  expect(Number(d.forecastFromMs) > Number(d.lastMs), "the forecast starts after the last point's time");
  expect(Number(d.bandPx) > Number(d.lastPx), "the band is drawn right of the last point");
  const model = await chart.getByTestId("forecast-model").textContent();
  expect(model && model.length > 0, "the legend names the model");
  expect(/MAE \d/.test(await chart.getByTestId("forecast-legend").textContent()), "the legend shows the error");
  const hint = chart.getByTestId("crossing-hint");
  await hint.waitFor();
  const text = await hint.textContent();
  console.log(`  ${text}`);
  expect(/^⚠ Expected to cross 90 °C at .+ \(.+–.+\), \d+ % likely$/.test(text), "the hint reads: " + text);
  const expected = Number(await hint.getAttribute("data-expected-ms"));
  const minutes = (expected - now) / 60000;
  expect(minutes > 10 && minutes < 45, `the shift passes 90 °C in about 26 minutes, not ${minutes.toFixed(1)}`);
  await page.screenshot({ path: path.join(out, "device-forecast.png"), fullPage: true });
  await axe("device page with a forecast");

  // The toggle hides the forecast and brings it back.
  await page.getByRole("button", { name: "Forecast", exact: true }).click();
  await page.locator('figure.chart[data-metric="temperature"][data-forecast="none"]').waitFor();
  expect((await chart.getByTestId("crossing-hint").count()) === 0, "no hint with the forecast hidden");
  await page.getByRole("button", { name: "Forecast", exact: true }).click();
  await page.locator('figure.chart[data-metric="temperature"][data-forecast="drawn"]').waitFor();
});

await step("overview: the oven heading for its type's max is listed, linked to its page", async () => {
  await page.goto(server.base + "/");
  const row = page.locator('[data-testid="predicted-row"][data-device="oven-1"][data-metric="temperature"]');
  await row.waitFor({ timeout: 30000 });
  const text = (await row.textContent()) ?? "";
  console.log(`  ${text}`);
  expect(text.includes("above 90"), "the limit is shown: " + text);
  expect(/in (\d+ (min|h)|less than a minute)/.test(text), "the time ahead is shown: " + text);
  expect(/\d+ %$/.test(text), "the probability is shown: " + text);
  await page.screenshot({ path: path.join(out, "overview-forecast.png"), fullPage: true });
  await axe("overview with a predicted crossing");
  await row.getByRole("link", { name: "oven-1" }).click();
  await page.getByRole("heading", { name: "Device oven-1", level: 1 }).waitFor();
});

await step("no uncaught error on the pages", async () => {
  expect(problems.length === 0, problems.join("\n"));
});

await browser.close();
await server.stop();
console.log(`\nforecast: ${counts.passed} passed, ${counts.failed} failed`);
process.exit(counts.failed ? 1 : 0);
