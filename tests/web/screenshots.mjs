// Screenshots of every dashboard page of a server that is already running (e.g. `clisonix
// demo`), for notes and reviews:
//
//   node tests/web/screenshots.mjs --url http://127.0.0.1:8030 --password PASS --out DIR
//   [--user admin] [--device NAME]  (default: the device with the highest anomaly score)
import { mkdirSync } from "node:fs";
import path from "node:path";
import { launchBrowser, loadModules, parseArgs } from "./harness.mjs";

const args = parseArgs(process.argv.slice(2));
const base = args.url ?? "http://127.0.0.1:8030";
const out = path.resolve(args.out ?? "screenshots");
mkdirSync(out, { recursive: true });
const { playwright } = loadModules();
const browser = await launchBrowser(playwright);
const page = browser.context.pages()[0] ?? (await browser.context.newPage());
page.setDefaultTimeout(20000);
const errors = [];
page.on("console", (m) => m.type() === "error" && errors.push(m.text()));
page.on("pageerror", (e) => errors.push(e.message));

async function shot(name) {
  await page.waitForLoadState("networkidle").catch(() => {});
  await page.waitForTimeout(500);
  const file = path.join(out, name + ".png");
  await page.screenshot({ path: file, fullPage: true });
  console.log(file);
}

await page.goto(base + "/login");
await page.getByLabel("Username").fill(args.user ?? "admin");
await page.getByLabel("Password").fill(args.password ?? "");
await page.getByRole("button", { name: "Log in" }).click();
await page.getByRole("heading", { name: "Overview", level: 1 }).waitFor();
await page.waitForTimeout(3500); // two ingest-rate samples
await shot("overview");
let device = args.device;
if (!device) {
  const link = page.locator('a[href^="/devices/"]').first();
  device = (await link.count()) ? decodeURIComponent((await link.getAttribute("href")).slice(9)) : null;
}
for (const [p, name] of [
  ["/assets", "assets"],
  ["/devices", "devices"],
  ["/alarms", "alarms"],
  ["/rules", "rules"],
  ["/users", "users"],
  ["/audit", "audit"],
]) {
  await page.goto(base + p);
  await shot(name);
}
if (device) {
  await page.goto(base + "/devices/" + encodeURIComponent(device));
  await page.waitForSelector('[data-testid="charts"][data-ready="true"]').catch(() => {});
  await page.waitForTimeout(3000); // live points arrive
  await shot("device");
  await page.getByRole("button", { name: "Dark theme" }).click();
  await shot("device-dark");
  await page.getByRole("button", { name: "Dark theme" }).click();
  await page.setViewportSize({ width: 390, height: 844 });
  await page.reload();
  await page.waitForSelector('[data-testid="charts"][data-ready="true"]').catch(() => {});
  await shot("device-phone");
}
await browser.close();
if (errors.length) console.log("page errors:\n  " + errors.join("\n  "));
