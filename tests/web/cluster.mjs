// Browser test of the dashboard behind a cluster: `scripts/cluster up` starts three NATS
// servers, PostgreSQL, Redis, three nodes and nginx; points written straight to node n2
// show on the device page opened through nginx, and points written to node n3 while the
// page is open reach its chart, whichever node the browser's requests land on.
//
//   node tests/web/cluster.mjs --binary build/clisonix --out build/screenshots
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { launchBrowser, loadModules, parseArgs, skipAll, sourceDir, uiLogin } from "./harness.mjs";

const args = parseArgs(process.argv.slice(2));
const binary = args.binary ?? path.resolve("build/clisonix");
const out = args.out ?? path.resolve("build/screenshots");
mkdirSync(out, { recursive: true });
const { playwright } = loadModules();
if (!existsSync(binary)) skipAll(`${binary} is missing`);
for (const tool of ["/usr/sbin/nats-server", "/usr/sbin/nginx", "/usr/bin/redis-server"])
  if (!existsSync(tool)) skipAll(`${tool} is missing (scripts/setup installs it)`);

const script = path.join(sourceDir, "scripts/cluster");
const dir = mkdtempSync(path.join(os.tmpdir(), "clisonix-web-cluster-"));
const env = { ...process.env, CLISONIX_BINARY: binary };
function down() {
  spawnSync(script, ["down", "--dir", dir, "--purge"], { env, stdio: "inherit" });
}
process.on("exit", down);

const lines = execFileSync(script, ["up", "--dir", dir], { env, encoding: "utf8" }).trim().split("\n");
const cluster = JSON.parse(lines[lines.length - 1]);
const node = (id) => cluster.nodes.find((n) => n.id === id).http;

async function login(base) {
  const r = await fetch(base + "/api/v1/auth/login", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ username: "admin", password: cluster.admin_password }),
  });
  if (r.status !== 200) throw new Error(`login at ${base}: ${r.status} ${await r.text()}`);
  return (await r.json()).access_token;
}

// Writes `count` temperatures of press-7 one second apart through `base`, returns the last ts.
async function write(base, token, first, count, value) {
  let body = "";
  for (let i = 0; i < count; i++) body += `telemetry,device=press-7 temperature=${value + i} ${first + i * 1000}\n`;
  const r = await fetch(base + "/api/v1/write?precision=ms", {
    method: "POST",
    headers: { Authorization: "Bearer " + token, "Content-Type": "text/plain" },
    body,
  });
  if (r.status !== 204) throw new Error(`write through ${base}: ${r.status} ${await r.text()}`);
  return first + (count - 1) * 1000;
}

let failed = 0;
const browser = await launchBrowser(playwright);
try {
  // Registered through n1, written through n2, shown through nginx.
  const made = await fetch(node("n1") + "/api/v1/devices", {
    method: "POST",
    headers: { Authorization: "Bearer " + (await login(node("n1"))), "Content-Type": "application/json" },
    body: JSON.stringify({ name: "press-7", label: "Press 7" }),
  });
  if (made.status !== 201) throw new Error(`registering press-7 through n1: ${made.status} ${await made.text()}`);
  const start = Date.now() - 120_000;
  await write(node("n2"), await login(node("n2")), start, 60, 40);

  const page = browser.context.pages()[0] ?? (await browser.context.newPage());
  page.setDefaultTimeout(15000);
  await uiLogin(page, cluster.http, cluster.admin_password);

  await page.goto(cluster.http + "/devices/press-7");
  const chart = page.locator('figure.chart[data-metric="temperature"]');
  await chart.waitFor({ timeout: 15000 });
  await page.waitForSelector('[data-testid="charts"][data-ready="true"]', { timeout: 15000 });
  await page.getByText("Press 7").first().waitFor();
  const before = Number(await chart.getAttribute("data-points"));
  if (!(before > 0)) throw new Error("the chart through nginx shows none of the points written to n2");
  // The chart draws buckets; the API behind it, through nginx, has every point exactly.
  const token = await login(cluster.http);
  const q = await fetch(`${cluster.http}/api/v1/query?device=press-7&metric=temperature&from=${start}&to=${start + 60_000}`, {
    headers: { Authorization: "Bearer " + token },
  });
  const points = (await q.json()).series?.[0]?.points ?? [];
  const exact = points.length === 60 && points.every(([ts, v], i) => ts === start + i * 1000 && v === 40 + i);
  if (!exact) throw new Error(`the query through nginx answers ${JSON.stringify(points).slice(0, 200)}`);
  console.log(`[PASS] 60 points written to n2 show through nginx (${before} on the chart, all 60 in its query)`);

  // Written to n3 while the page is open: the chart grows, by live update or by its refresh.
  await write(node("n3"), await login(node("n3")), Date.now() - 3000, 3, 80);
  await page.waitForFunction(
    (n) => Number(document.querySelector('figure.chart[data-metric="temperature"]')?.getAttribute("data-points")) > n,
    before,
    { timeout: 15000 },
  );
  console.log(`[PASS] points written to n3 reach the open chart (${await chart.getAttribute("data-points")} points)`);
  await page.screenshot({ path: path.join(out, "cluster-device.png"), fullPage: true });
} catch (e) {
  failed++;
  console.log(`[FAIL] ${e.stack ?? e}`);
} finally {
  await browser.close();
}
process.exit(failed ? 1 : 0);
