// Bench: the device page with 10 series x 24 h at 1 Hz (864,000 points, plus their anomaly
// scores) is interactive in under 1 s. Writes the data into a fresh server, logs in through
// the page, then loads /devices/bench-1?range=24h three times and prints each time from
// navigation to every chart drawn (the page's own query-to-render time beside it).
//
//   node tests/web/bench.mjs --binary build/clisonix [--web-dist web/dist] [--budget-ms 1000]
import path from "node:path";
import { launchBrowser, loadModules, parseArgs, startServer, uiLogin, webDir } from "./harness.mjs";

const args = parseArgs(process.argv.slice(2));
const binary = args.binary ?? path.resolve("build/clisonix");
const webDist = args["web-dist"] ?? path.join(webDir, "dist");
const budget = Number(args["budget-ms"] ?? 1000);
const seriesCount = 10;
const seconds = 24 * 3600;

const { playwright } = loadModules();
// Scores are written by the bench (as `<metric>.anomaly`), so the detector stays off: scoring
// 864,000 points would measure the detector, not the page.
const server = await startServer({
  binary,
  webDist,
  extraArgs: ["--set", "analytics.detector=off", "--set", "storage.sync=interval"],
});
try {
  const end = Math.floor(Date.now() / 1000) * 1000;
  const start = end - seconds * 1000;
  const writeStarted = Date.now();
  const chunk = 15000;
  for (let i = 0; i < seconds; i += chunk) {
    const lines = [];
    for (let k = i; k < Math.min(seconds, i + chunk); k++) {
      const t = start + k * 1000;
      const fields = [];
      for (let m = 0; m < seriesCount; m++) {
        const v = 50 + 10 * Math.sin((k / 3600) * (1 + m / 5)) + ((k * 7919 + m * 104729) % 1000) / 500;
        fields.push(`s${m}=${v.toFixed(3)}`);
        fields.push(`s${m}.anomaly=${((k + m * 977) % 5000 < 20 ? 0.9 : 0.05).toFixed(2)}`);
      }
      lines.push(`telemetry,device=bench-1 ${fields.join(",")} ${t}`);
    }
    const r = await server.api("POST", "/api/v1/write?precision=ms", lines.join("\n"));
    if (r.status !== 204) throw new Error(`write: ${r.status} ${r.text}`);
  }
  const flushed = await server.api("POST", "/api/v1/storage/flush");
  console.log(
    `wrote ${seriesCount} series x ${seconds} points (+ scores) in ${Date.now() - writeStarted} ms (flush ${flushed.status})`,
  );

  const browser = await launchBrowser(playwright);
  const page = browser.context.pages()[0] ?? (await browser.context.newPage());
  page.setDefaultTimeout(30000);
  await uiLogin(page, server.base);
  const times = [];
  for (let run = 0; run < 3; run++) {
    const t0 = Date.now();
    await page.goto(server.base + "/devices/bench-1?range=24h");
    await page.waitForFunction(
      (n) =>
        document.querySelector('[data-testid="charts"]')?.getAttribute("data-ready") === "true" &&
        document.querySelectorAll("figure.chart canvas").length >= 2 * n,
      seriesCount,
      { polling: "raf" },
    );
    const ms = Date.now() - t0;
    // Interactive: the main thread answers at once.
    const lag = await page.evaluate(
      () =>
        new Promise((r) => {
          const s = performance.now();
          setTimeout(() => r(performance.now() - s), 0);
        }),
    );
    const inPage = await page
      .getByTestId("load-ms")
      .textContent()
      .catch(() => "?");
    const points = await page.$$eval("figure.chart", (fs) => fs.map((f) => Number(f.getAttribute("data-points"))));
    console.log(
      `run ${run + 1}: ${ms} ms from navigation to ${points.length} charts drawn (${points[0]} buckets each; page ${inPage}; main-thread lag ${Math.round(lag)} ms)`,
    );
    times.push(ms);
  }
  await browser.close();
  times.sort((a, b) => a - b);
  const median = times[1];
  console.log(
    `device page, ${seriesCount} series x 24 h at 1 Hz: interactive in ${median} ms (median of 3; budget ${budget} ms)`,
  );
  process.exitCode = median <= budget ? 0 : 1;
} finally {
  await server.stop();
}
