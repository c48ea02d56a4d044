// Browser tests of the dashboard: Playwright (playwright-core) drives Debian's Chromium
// against the real `clisonix serve`. Steps whose API is not on this server yet are skipped
// with the reason printed. Screenshots of every page go to --out.
//
//   node tests/web/run.mjs --binary build/clisonix --web-dist web/dist --out build/screenshots
import path from "node:path";
import { browserTestArgs, launchBrowser, startServer } from "./harness.mjs";

const { binary, webDist, out, playwright, axeSource } = browserTestArgs();

const results = [];
class Skip extends Error {}
const skip = (why) => {
  throw new Skip(why);
};
function expect(cond, message) {
  if (!cond) throw new Error(message);
}
async function step(name, fn) {
  const started = Date.now();
  try {
    await fn();
    results.push({ name, status: "passed" });
    console.log(`[PASS] ${name} (${Date.now() - started} ms)`);
  } catch (e) {
    if (e instanceof Skip) {
      results.push({ name, status: "skipped" });
      console.log(`[SKIP] ${name}: ${e.message}`);
    } else {
      results.push({ name, status: "failed" });
      console.log(`[FAIL] ${name}: ${e.stack ?? e}`);
    }
  }
}

// Machine health learns for five minutes (not the default hour): the seeded devices below
// send ten and seven minutes of history, so their health is scored when the pages open.
const server = await startServer({ binary, webDist, extraArgs: ["--set", "analytics.health_baseline=5m"] });
const browser = await launchBrowser(playwright);
const page = browser.context.pages()[0] ?? (await browser.context.newPage());
page.setDefaultTimeout(15000);
const problems = []; // CSP violations and uncaught errors: the page must have none
page.on("console", (m) => {
  if (m.type() === "error" && /Content Security Policy|Refused to/.test(m.text())) problems.push(m.text());
});
page.on("pageerror", (e) => problems.push("page error: " + e.message));

const shots = [];
async function shoot(name, target = page) {
  const file = path.join(out, name + ".png");
  await target.screenshot({ path: file, fullPage: true });
  shots.push(file);
}

async function axe(name) {
  await page.evaluate(axeSource);
  const r = await page.evaluate(() =>
    // eslint-disable-next-line no-undef
    axe.run(document, {
      resultTypes: ["violations"],
      runOnly: {
        type: "tag",
        values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"],
      },
    }),
  );
  console.log(`  axe ${name}: ${r.passes?.length ?? "?"} rules passed, ${r.violations.length} violated`);
  const bad = r.violations.filter((v) => v.impact === "serious" || v.impact === "critical");
  for (const v of r.violations)
    console.log(
      `  axe ${name}: ${v.impact} ${v.id} (${v.nodes.length}): ${v.help} — ${v.nodes
        .slice(0, 2)
        .map((n) => n.target.join(" "))
        .join(" | ")}`,
    );
  expect(
    bad.length === 0,
    `${name}: ${bad.length} serious/critical accessibility violations: ${bad.map((v) => v.id).join(", ")}`,
  );
}

const now = Date.now();
const api = server.api;
const has = async (target) => (await api("GET", target)).status !== 404;
const devicesApi = await has("/api/v1/devices");
const alarmsApi = await has("/api/v1/alarms");
const rulesApi = await has("/api/v1/rules");
console.log(`server ${server.base}: devices API ${devicesApi}, alarms API ${alarmsApi}, rules API ${rulesApi}`);

// A device with ten minutes of history: temperature, vibration and current at 1 Hz.
if (devicesApi) {
  const r = await api("POST", "/api/v1/devices", {
    name: "pump-1",
    type: "pump",
    label: "Pump 1",
  });
  if (r.status !== 201 && r.status !== 200) console.log("creating pump-1:", r.status, r.text);
}
{
  const lines = [];
  for (let i = 600; i >= 1; i--) {
    const t = now - i * 1000;
    const temp = 60 + 5 * Math.sin(i / 60) + (i % 7) * 0.1;
    lines.push(
      `telemetry,device=pump-1 temperature=${temp.toFixed(2)},vibration=${(0.5 + (i % 13) * 0.01).toFixed(3)},current=${(12 + Math.cos(i / 30)).toFixed(2)} ${t}`,
    );
  }
  const w = await api("POST", "/api/v1/write?precision=ms", lines.join("\n"));
  if (w.status !== 204) throw new Error("seeding telemetry: " + w.status + " " + w.text);
}

await step("login: a wrong password is shown, the right one opens the overview", async () => {
  await page.goto(server.base + "/");
  await page.waitForURL(/\/login$/);
  await shoot("login");
  await page.getByLabel("Username").fill("admin");
  await page.getByLabel("Password").fill("not-the-password");
  await page.getByRole("button", { name: "Log in" }).click();
  await page
    .getByRole("alert")
    .filter({ hasText: /401|invalid|password|credentials/i })
    .waitFor();
  await axe("login");
  await page.getByLabel("Password").fill("test-admin-password-1");
  await page.getByRole("button", { name: "Log in" }).click();
  await page.getByRole("heading", { name: "Overview", level: 1 }).waitFor();
  expect((await page.getByTestId("whoami").textContent()) === "admin", "the shell names the user");
});

await step("overview: devices, ingest rate, alarms, anomalies", async () => {
  await page.getByTestId("ingest-rate").waitFor();
  if (devicesApi) {
    // pump-1 sent telemetry a moment ago: online.
    await page.waitForFunction(() => document.querySelector('[data-testid="devices-online"]')?.textContent === "1");
  }
  await page.waitForFunction(
    () => !document.querySelector('[data-testid="ingest-rate"]')?.textContent?.startsWith("…"),
    null,
    { timeout: 10000 },
  );
  await page.waitForTimeout(300);
  await shoot("overview");
  await axe("overview");
});

await step("device page: a chart receives points posted while the page is open", async () => {
  await page.goto(server.base + "/devices/pump-1");
  const chart = page.locator('figure.chart[data-metric="temperature"]');
  await chart.waitFor();
  await page.waitForSelector('[data-testid="charts"][data-ready="true"]');
  const before = Number(await chart.getAttribute("data-points"));
  expect(before > 0, "the chart shows the history");
  // Wait for the live connection (or its polling fallback) before writing.
  await page
    .waitForFunction(
      () => {
        const s = document.querySelector('[data-testid="live-state"]')?.getAttribute("data-state");
        return s === "live" || s === "unavailable";
      },
      null,
      { timeout: 10000 },
    )
    .catch(() => {});
  const mode = await page.getByTestId("live-state").getAttribute("data-state");
  console.log(`  live mode: ${mode} (${await page.getByTestId("live-state").textContent()})`);
  for (let k = 0; k < 3; k++) {
    const r = await api("POST", "/api/v1/devices/pump-1/telemetry", {
      ts: Date.now(),
      values: { temperature: 70 + k },
    });
    expect(r.status === 204 || r.status === 200 || r.status === 202, "posting telemetry: " + r.status + " " + r.text);
    await page.waitForTimeout(300);
  }
  await page.waitForFunction(
    (n) => Number(document.querySelector('figure.chart[data-metric="temperature"]')?.getAttribute("data-points")) > n,
    before,
    { timeout: 15000 },
  );
  const after = Number(await chart.getAttribute("data-points"));
  console.log(`  temperature chart: ${before} -> ${after} points`);
  await shoot("device");
  await axe("device");
});

await step("alarms: acknowledge an alarm", async () => {
  if (!alarmsApi || !rulesApi) skip("the rules/alarms API (/api/v1/rules, /api/v1/alarms) answers 404 on this server");
  const rule = await api("POST", "/api/v1/rules", {
    name: "pump hot",
    scope: { device: "pump-1" },
    severity: "major",
    condition: "temperature > 80",
  });
  expect(rule.status === 201, "creating the rule: " + rule.status + " " + rule.text);
  let alarm = null;
  for (let i = 0; i < 50 && !alarm; i++) {
    await api("POST", "/api/v1/devices/pump-1/telemetry", {
      ts: Date.now(),
      values: { temperature: 91.5 },
    });
    await new Promise((r) => setTimeout(r, 200));
    const list = await api("GET", "/api/v1/alarms?status=active&device=pump-1");
    alarm = list.json?.alarms?.[0] ?? null;
  }
  expect(alarm, "the rule raised an alarm");
  await page.goto(server.base + "/alarms");
  const row = page.locator(`tr[data-alarm-id="${alarm.id}"]`);
  await row.waitFor();
  await shoot("alarms");
  await axe("alarms");
  await row.getByRole("button", { name: `Acknowledge alarm ${alarm.id}` }).click();
  await page.locator(`tr[data-alarm-id="${alarm.id}"][data-status="acknowledged"]`).waitFor();
  const after = await api("GET", "/api/v1/alarms/" + alarm.id);
  const status = after.json?.status ?? after.json?.alarm?.status;
  expect(status === "acknowledged", "the server has the alarm acknowledged, not " + status);
  await page.locator(`tr[data-alarm-id="${alarm.id}"]`).getByRole("button", { name: "Comments" }).click();
  await page.getByLabel(`Comment on alarm ${alarm.id}`).fill("bearing checked");
  await page.getByRole("button", { name: "Add comment" }).click();
  await page.getByText("bearing checked").waitFor();
  await shoot("alarms-acknowledged");
});

await step("rules: a bad condition is shown at its field", async () => {
  if (!rulesApi) skip("the rules API (/api/v1/rules) answers 404 on this server");
  await page.goto(server.base + "/rules");
  await page.getByRole("button", { name: "New rule" }).click();
  const form = page.getByRole("form", { name: "New rule" });
  await form.getByRole("textbox", { name: "Name", exact: true }).fill("broken rule");
  await form.getByRole("combobox", { name: "Scope device", exact: true }).selectOption("pump-1");
  await form.getByRole("textbox", { name: "Condition", exact: true }).fill("temperature >> 80 for 5m");
  await form.getByRole("button", { name: "Save rule" }).click();
  const err = form.locator('.field-error[data-field="condition"]');
  await err.waitFor();
  const text = await err.textContent();
  console.log(`  error at the condition field: ${text}`);
  expect(
    (await form.getByRole("textbox", { name: "Condition", exact: true }).getAttribute("aria-invalid")) === "true",
    "the condition input is marked invalid",
  );
  await shoot("rules-error");
  await axe("rules");
});

await step("rules: the scope is picked from the devices, types and assets of the API", async () => {
  if (!rulesApi || !devicesApi) skip("the rules or devices API answers 404 on this server");
  const madeAsset = await api("POST", "/api/v1/assets", { name: "scope-line-1", type: "line" });
  expect(madeAsset.status === 201, "creating an asset: " + madeAsset.status + " " + madeAsset.text);
  await page.goto(server.base + "/rules");
  await page.getByRole("button", { name: "New rule" }).click();
  const form = page.getByRole("form", { name: "New rule" });
  await form.getByRole("textbox", { name: "Name", exact: true }).fill("pump overheating");
  const devices = form.getByRole("combobox", { name: "Scope device", exact: true });
  await devices.locator("option", { hasText: "pump-1" }).waitFor({ state: "attached" });
  await form.getByRole("combobox", { name: "Scope", exact: true }).selectOption("device_type");
  const types = form.getByRole("combobox", { name: "Scope device_type", exact: true });
  await types.selectOption("pump");
  await form.getByRole("combobox", { name: "Scope", exact: true }).selectOption("asset");
  const assets = form.getByRole("combobox", { name: "Scope asset", exact: true });
  await assets.selectOption("scope-line-1");
  expect(
    (await assets.locator("option", { hasText: "pump-1" }).count()) === 0,
    "the asset picker lists assets, not devices",
  );
  await form.getByRole("textbox", { name: "Condition", exact: true }).fill("temperature > 90 for 1m");
  await form.getByRole("button", { name: "Save rule" }).click();
  await page.getByText('Rule "pump overheating" saved.').waitFor();
  await page.getByRole("cell", { name: "asset scope-line-1", exact: true }).waitFor();
  const rules = await api("GET", "/api/v1/rules");
  const saved = JSON.parse(rules.text).rules.find((r) => r.name === "pump overheating");
  expect(saved && saved.scope.asset === "scope-line-1", "the rule is stored with the picked scope: " + rules.text);
  // Editing shows the stored scope selected.
  await page.getByRole("button", { name: "Edit rule pump overheating" }).click();
  const edit = page.getByRole("form", { name: "Edit rule" });
  const picked = edit.getByRole("combobox", { name: "Scope asset", exact: true });
  await picked.locator("option", { hasText: "scope-line-1" }).waitFor({ state: "attached" });
  expect((await picked.inputValue()) === "scope-line-1", "the stored scope is selected");
  await shoot("rules-scope-picker");
  await axe("rules-scope-picker");
  await edit.getByRole("button", { name: "Cancel" }).click();
});

await step("device types: create with expected ranges, edit a range, delete", async () => {
  if (!devicesApi) skip("the devices API (/api/v1/devices) answers 404 on this server");
  await page.goto(server.base + "/device-types");
  await page.getByRole("heading", { name: "Device types", level: 1 }).waitFor();
  await page.getByRole("button", { name: "New device type" }).click();
  const form = page.getByRole("form", { name: "New device type" });
  await form.getByRole("textbox", { name: "Name", exact: true }).fill("chiller");
  await form.getByRole("textbox", { name: "Description", exact: true }).fill("Water chiller");
  await form.getByRole("textbox", { name: "Metric 1", exact: true }).fill("temperature");
  await form.getByRole("textbox", { name: "Metric 1 unit", exact: true }).fill("°C");
  await form.getByRole("textbox", { name: "Metric 1 min", exact: true }).fill("2");
  await form.getByRole("textbox", { name: "Metric 1 max", exact: true }).fill("abc");
  await form.getByRole("button", { name: "Save device type" }).click();
  // A range bound that is not a number is shown at its input, and nothing is sent.
  await form.locator('.field-error[data-field="max-0"]').waitFor();
  await form.getByRole("textbox", { name: "Metric 1 max", exact: true }).fill("12");
  await form.getByRole("button", { name: "Add metric" }).click();
  await form.getByRole("textbox", { name: "Metric 2", exact: true }).fill("pressure");
  await form.getByRole("textbox", { name: "Metric 2 unit", exact: true }).fill("bar");
  await form.getByRole("textbox", { name: "Metric 2 max", exact: true }).fill("6");
  await form.getByRole("button", { name: "Save device type" }).click();
  await page.getByText("Device type chiller saved.").waitFor();
  const row = page.locator('tr[data-device-type="chiller"]');
  await row.getByText("(°C) 2 … 12").waitFor();
  await row.getByText("(bar) ≤ 6").waitFor();
  let stored = JSON.parse((await api("GET", "/api/v1/device-types/chiller")).text);
  expect(stored.metrics.temperature.min === 2 && stored.metrics.temperature.max === 12, JSON.stringify(stored));
  expect(stored.metrics.pressure.unit === "bar" && stored.metrics.pressure.max === 6, JSON.stringify(stored));

  await page.getByRole("button", { name: "Edit device type chiller" }).click();
  const edit = page.getByRole("form", { name: "Edit device type" });
  // The rows come in the server's order (by name): find temperature's.
  let n = 1;
  while ((await edit.getByRole("textbox", { name: `Metric ${n}`, exact: true }).inputValue()) !== "temperature") {
    expect(n < 2, "the form lists the stored metrics");
    n++;
  }
  const max = edit.getByRole("textbox", { name: `Metric ${n} max`, exact: true });
  expect((await max.inputValue()) === "12", "the form shows the stored range");
  await max.fill("15");
  await edit.getByRole("button", { name: "Save device type" }).click();
  await page.getByText("Device type chiller saved.").waitFor();
  await row.getByText("(°C) 2 … 15").waitFor();
  stored = JSON.parse((await api("GET", "/api/v1/device-types/chiller")).text);
  expect(stored.metrics.temperature.max === 15, "the edit is stored: " + JSON.stringify(stored));
  await shoot("device-types");
  await axe("device-types");

  page.once("dialog", (d) => d.accept());
  await page.getByRole("button", { name: "Delete device type chiller" }).click();
  await page.getByText("Device type chiller deleted.").waitFor();
  // The message shows as soon as the server answers; the list reloads right after it.
  await row.waitFor({ state: "detached", timeout: 5000 }).catch(() => {});
  expect((await row.count()) === 0, "the row is gone");
  expect((await api("GET", "/api/v1/device-types/chiller")).status === 404, "the type is deleted on the server");
});

await step("channels: a webhook's secret is never shown, only that it is set; edit keeps it; delete", async () => {
  if ((await api("GET", "/api/v1/channels")).status === 404) skip("the channels API answers 404 on this server");
  const secret = "s3cret-value-never-shown";
  await page.goto(server.base + "/channels");
  await page.getByRole("heading", { name: "Notification channels", level: 1 }).waitFor();
  await page.getByRole("button", { name: "New channel" }).click();
  const form = page.getByRole("form", { name: "New channel" });
  await form.getByRole("textbox", { name: "Name", exact: true }).fill("ops-hook");
  await form.getByRole("textbox", { name: "URL", exact: true }).fill("https://hooks.example.com/clisonix");
  await form.getByLabel("Secret").fill(secret);
  await form.getByRole("textbox", { name: "Timeout (ms)", exact: true }).fill("3000");
  await form.getByRole("button", { name: "Save channel" }).click();
  await page.getByText("Channel ops-hook saved.").waitFor();
  const row = page.locator('tr[data-channel="ops-hook"]');
  await row.getByRole("cell", { name: "set", exact: true }).waitFor();
  expect(!(await page.content()).includes(secret), "the secret is nowhere on the page");

  await page.getByRole("button", { name: "Edit channel ops-hook" }).click();
  const edit = page.getByRole("form", { name: "Edit channel" });
  expect((await edit.getByLabel("Secret").inputValue()) === "", "the secret input starts empty");
  await edit.getByText("set; leave empty to keep it").waitFor();
  await edit.getByRole("textbox", { name: "URL", exact: true }).fill("https://hooks.example.com/other");
  await edit.getByRole("button", { name: "Save channel" }).click();
  await page.getByText("Channel ops-hook saved.").waitFor();
  await row.getByText("https://hooks.example.com/other").waitFor();
  const stored = JSON.parse((await api("GET", "/api/v1/channels/ops-hook")).text);
  expect(stored.secret_set === true, "an edit without a secret keeps the stored one: " + JSON.stringify(stored));
  expect(stored.timeout_ms === 3000, "the timeout is stored: " + JSON.stringify(stored));

  // An MQTT channel has a topic and no secret.
  await page.getByRole("button", { name: "New channel" }).click();
  const mqtt = page.getByRole("form", { name: "New channel" });
  await mqtt.getByRole("textbox", { name: "Name", exact: true }).fill("ops-mqtt");
  await mqtt.getByRole("combobox", { name: "Type", exact: true }).selectOption("mqtt");
  expect((await mqtt.getByLabel("Secret").count()) === 0, "no secret for an MQTT channel");
  await mqtt.getByRole("textbox", { name: "Topic", exact: true }).fill("clisonix/alarms/ops");
  await mqtt.getByRole("button", { name: "Save channel" }).click();
  await page.locator('tr[data-channel="ops-mqtt"]').getByText("clisonix/alarms/ops").waitFor();
  await shoot("channels");
  await axe("channels");

  page.once("dialog", (d) => d.accept());
  await page.getByRole("button", { name: "Delete channel ops-hook" }).click();
  await page.getByText("Channel ops-hook deleted.").waitFor();
  // The message shows as soon as the server answers; the list reloads right after it.
  await row.waitFor({ state: "detached", timeout: 5000 }).catch(() => {});
  expect((await row.count()) === 0, "the row is gone");
  expect((await api("GET", "/api/v1/channels/ops-hook")).status === 404, "the channel is deleted on the server");
});

await step(
  "connectors: a bad mapping cell is marked; saved, listed with its state; password hidden; delete",
  async () => {
    if ((await api("GET", "/api/v1/connectors")).status === 404) skip("the connectors API answers 404 on this server");
    const password = "plc-password-never-shown";
    await page.goto(server.base + "/connectors");
    await page.getByRole("heading", { name: "Connectors", level: 1 }).waitFor();
    await page.getByRole("button", { name: "New connector" }).click();
    const form = page.getByRole("form", { name: "New connector" });
    await form.getByRole("textbox", { name: "Name", exact: true }).fill("press-9");
    await form.getByRole("textbox", { name: "Endpoint", exact: true }).fill("tcp://127.0.0.1:1");
    await form.getByLabel("Password").fill(password);
    await form.getByRole("textbox", { name: "Device of row 1" }).fill("press-9");
    await form.getByRole("textbox", { name: "Metric of row 1" }).fill("temperature");
    await form.getByRole("button", { name: "Add row" }).click();
    await form.getByRole("textbox", { name: "Address of row 2" }).fill("holdin:3");
    await form.getByRole("textbox", { name: "Device of row 2" }).fill("press-9");
    await form.getByRole("textbox", { name: "Metric of row 2" }).fill("pressure");
    await form.getByRole("button", { name: "Save connector" }).click();
    await form.getByText("mapping[1].address").waitFor();
    const bad = form.getByRole("textbox", { name: "Address of row 2" });
    expect((await bad.getAttribute("aria-invalid")) === "true", "the bad cell is marked");
    await bad.fill("holding:3");
    await form.getByRole("combobox", { name: "Data type of row 2" }).selectOption("float32");
    await form.getByRole("button", { name: "Save connector" }).click();
    await page.getByText("Connector press-9 saved.").waitFor();
    const row = page.locator('tr[data-connector="press-9"]');
    await row.getByRole("cell", { name: "tcp://127.0.0.1:1", exact: true }).waitFor();
    expect(!(await page.content()).includes(password), "the password is nowhere on the page");
    const stored = JSON.parse((await api("GET", "/api/v1/connectors")).text).connectors[0];
    expect(stored.password_set === true, "the password is stored: " + JSON.stringify(stored));
    expect(stored.mapping[1].data_type === "float32", "the mapping is stored: " + JSON.stringify(stored));
    await shoot("connectors");
    await axe("connectors");

    page.once("dialog", (d) => d.accept());
    await page.getByRole("button", { name: "Delete connector press-9" }).click();
    await page.getByText("Connector press-9 deleted.").waitFor();
    await row.waitFor({ state: "detached", timeout: 5000 }).catch(() => {});
    expect((await row.count()) === 0, "the row is gone");
  },
);

await step("assets: the tree shows a device under its line", async () => {
  if (!devicesApi) skip("the devices API (/api/v1/devices) answers 404 on this server");
  for (const [name, type] of [
    ["plant-north", "site"],
    ["line-1", "line"],
  ]) {
    const r = await api("POST", "/api/v1/assets", { name, type });
    expect(r.status === 201 || r.status === 200, `creating asset ${name}: ${r.status} ${r.text}`);
  }
  for (const [from, to] of [
    ["plant-north", "line-1"],
    ["line-1", "pump-1"],
  ]) {
    const r = await api("POST", "/api/v1/relations", {
      from,
      to,
      type: "contains",
    });
    expect(r.status === 201 || r.status === 200, `relation ${from} -> ${to}: ${r.status} ${r.text}`);
  }
  await page.goto(server.base + "/assets");
  const tree = page.getByLabel("Asset tree");
  await tree.getByText("plant-north").waitFor();
  await tree.locator("li", { hasText: "line-1" }).getByRole("link", { name: "pump-1" }).waitFor();
  await shoot("assets");
  await axe("assets");
});

await step("device page: drag on a chart zooms, reset returns to the window", async () => {
  await page.goto(server.base + "/devices/pump-1");
  await page.waitForSelector('[data-testid="charts"][data-ready="true"]');
  const over = page.locator('figure.chart[data-metric="temperature"] .u-over').first();
  const box = await over.boundingBox();
  await page.mouse.move(box.x + box.width * 0.8, box.y + box.height / 2);
  await page.mouse.down();
  await page.mouse.move(box.x + box.width * 0.95, box.y + box.height / 2, {
    steps: 5,
  });
  await page.mouse.up();
  await page.locator('[data-testid="live-state"][data-state="zoomed"]').waitFor();
  await page.waitForSelector('[data-testid="charts"][data-ready="true"]');
  await shoot("device-zoomed");
  await page.getByRole("button", { name: "Reset zoom" }).click();
  await page.locator('[data-testid="live-state"]:not([data-state="zoomed"])').waitFor();
  // A range typed by hand: the last 5 minutes.
  await page.getByRole("button", { name: "Custom range…" }).click();
  const form = page.getByRole("form", { name: "Custom time range" });
  const local = (ms) => {
    const d = new Date(ms);
    const p = (n) => String(n).padStart(2, "0");
    return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}`;
  };
  await form.getByLabel("From").fill(local(Date.now() - 5 * 60000));
  await form.getByLabel("To").fill(local(Date.now() + 60000));
  await form.getByRole("button", { name: "Apply" }).click();
  await page.locator('[data-testid="live-state"][data-state="zoomed"]').waitFor();
  await page.waitForSelector('[data-testid="charts"][data-ready="true"]');
  const pts = Number(await page.locator('figure.chart[data-metric="temperature"]').getAttribute("data-points"));
  expect(pts > 200 && pts < 400, "about 5 minutes of 1 Hz raw points, got " + pts);
  await page.getByRole("button", { name: "Reset zoom" }).click();
});

await step("device page: set a shared attribute", async () => {
  if (!devicesApi) skip("the devices API (/api/v1/devices) answers 404 on this server");
  await page.goto(server.base + "/devices/pump-1");
  const form = page.getByRole("form", { name: "Set an attribute" });
  await form.getByRole("textbox", { name: "Key", exact: true }).fill("setpoint");
  await form.getByRole("textbox", { name: "Value (JSON or text)", exact: true }).fill("72.5");
  await form.getByRole("button", { name: "Set" }).click();
  await page.getByText("setpoint").waitFor();
  const r = await api("GET", "/api/v1/devices/pump-1/attributes?scope=shared");
  expect(r.status === 200 && JSON.stringify(r.json).includes('"setpoint":72.5'), "the server has it: " + r.text);
});

await step("other pages: assets, devices, users, audit log (screenshots, axe)", async () => {
  for (const [p, title, name] of [
    ["/devices", "Devices", "devices"],
    ["/users", "Users", "users"],
    ["/audit", "Audit log", "audit"],
    ["/rules", "Rules", "rules"],
  ]) {
    await page.goto(server.base + p);
    await page.getByRole("heading", { name: title, level: 1 }).waitFor();
    await page.waitForLoadState("networkidle");
    await shoot(name);
    await axe(name);
  }
});

await step("devices: create one and see its token once", async () => {
  if (!devicesApi) skip("the devices API (/api/v1/devices) answers 404 on this server");
  await page.goto(server.base + "/devices");
  await page.getByLabel("Name").fill("fan-9");
  await page.getByRole("button", { name: "Create device" }).click();
  const token = await page.getByTestId("device-token").textContent();
  expect(token && token.length > 10, "a token is shown");
  await shoot("devices-token");
  // The token works: the new device writes its own telemetry with it.
  const w = await fetch(server.base + "/api/v1/telemetry", {
    method: "POST",
    headers: {
      Authorization: "Bearer " + token,
      "Content-Type": "application/json",
    },
    body: JSON.stringify({ temperature: 20 }),
  });
  expect(w.status === 204 || w.status === 200, "the device wrote with its token: " + w.status);
  await page.getByRole("button", { name: "I stored it" }).click();
  expect((await page.getByTestId("device-token").count()) === 0, "the token is gone once stored");
});

await step("devices: CSV import reports each row", async () => {
  if (!devicesApi) skip("the devices API (/api/v1/devices) answers 404 on this server");
  await page.goto(server.base + "/devices");
  await page.getByRole("button", { name: "Import CSV" }).click();
  await page.getByLabel("or paste it").fill("name,type,label\nvalve-1,valve,Valve 1\nbad name!,valve,Broken\n");
  await page.getByRole("button", { name: "Import", exact: true }).click();
  await page.getByText("1 created, 0 skipped (already there), 1 errors.").waitFor();
  await page.getByText(/line 3 \(name\)/).waitFor();
  await shoot("devices-import");
});

await step("users: the server's validation error is shown at the field", async () => {
  await page.goto(server.base + "/users");
  const form = page.getByRole("region", { name: "New user" });
  await form.getByRole("textbox", { name: "Username", exact: true }).fill("operator-1");
  await form.getByLabel("Password").fill("short");
  await form.getByRole("button", { name: "Create user" }).click();
  const err = page.locator('.field-error[data-field="password"]');
  await err.waitFor();
  console.log(`  error at the password field: ${await err.textContent()}`);
  await form.getByLabel("Password").fill("a-long-enough-password-1");
  await form.getByRole("button", { name: "Create user" }).click();
  await page.getByRole("cell", { name: "operator-1", exact: true }).waitFor();
  await page.getByText("User operator-1 created.").waitFor();
});

await step("API reference: every operation of openapi.json, grouped, filtered, with its body schema", async () => {
  // The document is public: the page and this count read the same one.
  const doc = await (await fetch(server.base + "/api/v1/openapi.json")).json();
  const total = Object.values(doc.paths).reduce((n, item) => n + Object.keys(item).length, 0);
  await page.goto(server.base + "/");
  await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "API reference" }).click();
  await page.getByRole("heading", { name: "API reference", level: 1 }).waitFor();
  await page.getByText(`${total} of ${total} operations`).waitFor();
  for (const group of ["auth", "devices", "healthz", "write"])
    expect((await page.getByRole("region", { name: group, exact: true }).count()) === 1, `the group ${group}`);
  await shoot("api-reference");
  await axe("api-reference");

  await page.getByRole("textbox", { name: "Filter" }).fill("devices POST");
  const devices = page.getByRole("region", { name: "devices", exact: true });
  const create = devices.locator("details").filter({ hasText: "Create a device" });
  await create.waitFor();
  const shown = Number((await page.getByTestId("operation-count").textContent()).split(" ")[0]);
  expect(shown > 0 && shown < total, `the filter narrows ${total} operations to ${shown}`);
  expect((await page.getByRole("region", { name: "healthz", exact: true }).count()) === 0, "healthz filtered out");
  await create.locator("summary").click();
  const details = create.getByTestId("operation-details");
  await details.getByText("Permission: devices").waitFor();
  await details.getByText("Request body (application/json)").waitFor();
  expect((await details.locator("pre").textContent()).includes('"name"'), "the body schema names the field name");
  await details.getByText("default Error").waitFor();
  await shoot("api-reference-filtered");

  await page.getByRole("textbox", { name: "Filter" }).fill("{device} get attributes");
  const attrs = page.locator("details").filter({ hasText: "/api/v1/devices/{device}/attributes" }).first();
  await attrs.locator("summary").click();
  await attrs.getByRole("cell", { name: "device", exact: true }).waitFor();
  await page.getByRole("textbox", { name: "Filter" }).fill("no-such-operation");
  await page.getByText(`0 of ${total} operations`).waitFor();
});

await step("health: a badge per machine on the overview and in the tree, contributions on its page", async () => {
  // press-7: seven minutes of steady running, then its vibration jumps for the last 30 s.
  if (devicesApi) {
    const r = await api("POST", "/api/v1/devices", { name: "press-7", type: "press" });
    expect(r.status === 201, "creating press-7: " + r.status + " " + r.text);
  }
  const at = Date.now();
  const lines = [];
  for (let i = 420; i >= 1; i--) {
    const vibration = 0.5 + (i % 13) * 0.01 + (i <= 30 ? 1.5 : 0);
    const current = 12 + (i % 7) * 0.05;
    const temperature = 60 + (i % 5) * 0.1;
    lines.push(
      `telemetry,device=press-7 vibration=${vibration.toFixed(3)},current=${current.toFixed(2)},temperature=${temperature.toFixed(2)} ${at - i * 1000}`,
    );
  }
  const w = await api("POST", "/api/v1/write?precision=ms", lines.join("\n"));
  expect(w.status === 204, "writing press-7: " + w.status + " " + w.text);

  await page.goto(server.base + "/");
  const badge = page.locator('[data-testid="health-badge"][data-device="press-7"]');
  await badge.waitFor();
  expect((await badge.getAttribute("data-level")) === "bad", "press-7 is abnormal: " + (await badge.textContent()));
  expect(/^health \d\.\d\d$/.test((await badge.textContent()) ?? ""), "the badge shows the score");
  await shoot("overview-health");

  if (devicesApi) {
    const r = await api("POST", "/api/v1/relations", { from: "line-1", to: "press-7", type: "contains" });
    expect(r.status === 201 || r.status === 200, `relation line-1 -> press-7: ${r.status} ${r.text}`);
    await page.goto(server.base + "/assets");
    await page
      .getByLabel("Asset tree")
      .locator('[data-testid="health-badge"][data-device="press-7"][data-level="bad"]')
      .waitFor();
  }

  await page.goto(server.base + "/devices/press-7");
  const panel = page.getByTestId("health-panel");
  await panel.waitFor();
  expect((await panel.getAttribute("data-state")) === "trained", "the model is trained");
  const first = page.getByTestId("contributions").locator("li").first();
  await first.waitFor();
  expect((await first.getAttribute("data-metric")) === "vibration", "vibration drives the score");
  expect((await page.getByTestId("contributions").locator("li").count()) === 3, "one bar per metric");
  await page.locator('figure.chart[data-metric="health"]').waitFor();
  expect(
    (await page.locator('figure.chart[data-metric="health.vibration"]').count()) === 0,
    "contribution series are not charted as metrics",
  );
  await page.getByRole("button", { name: "Retrain baseline…" }).click();
  const form = page.getByRole("form", { name: "Retrain the health baseline" });
  await form.waitFor();
  await shoot("device-health");
  await axe("device-health");
  // A window without data: the server's reason is shown.
  await form.getByLabel("Baseline from").fill("2020-01-01T00:00");
  await form.getByLabel("to", { exact: true }).fill("2020-01-01T01:00");
  await form.getByRole("button", { name: "Retrain", exact: true }).click();
  await form
    .getByRole("alert")
    .filter({ hasText: /complete rows/ })
    .waitFor();
});

await step("themes and phone width", async () => {
  await page.goto(server.base + "/devices/pump-1");
  await page.waitForSelector('[data-testid="charts"][data-ready="true"]');
  await page.getByRole("button", { name: "Dark theme" }).click();
  await page.waitForTimeout(300);
  await shoot("device-dark");
  await axe("device (dark)");
  await page.goto(server.base + "/");
  await page.getByRole("heading", { name: "Overview", level: 1 }).waitFor();
  await shoot("overview-dark");
  await axe("overview (dark)");
  await page.getByRole("button", { name: "Dark theme" }).click();
  await page.setViewportSize({ width: 390, height: 844 });
  await page.goto(server.base + "/devices/pump-1");
  await page.waitForSelector('[data-testid="charts"][data-ready="true"]');
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  expect(overflow <= 1, `the page scrolls sideways by ${overflow}px at phone width`);
  await shoot("device-phone");
  await page.getByRole("button", { name: "Menu" }).click();
  await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Alarms" }).waitFor();
  await shoot("menu-phone");
  await page.setViewportSize({ width: 1280, height: 900 });
});

await step("session: a reload and an expired token refresh silently; a refused refresh sends to login", async () => {
  const refreshed = page.waitForRequest((r) => r.url().endsWith("/api/v1/auth/refresh"));
  await page.goto(server.base + "/alarms");
  const answer = await (await refreshed).response();
  expect(answer.status() === 200, "the refresh answered " + answer.status());
  await page.getByRole("heading", { name: "Alarms", level: 1 }).waitFor();
  // An access token that expires while the page is open: the server's 401 is answered by
  // one refresh and the same request again, and the person sees nothing of it.
  let expired = 0;
  await page.route("**/api/v1/users", (route) => {
    if (expired++ === 0)
      return route.fulfill({
        status: 401,
        contentType: "application/json",
        body: '{"error":{"code":"invalid_token","message":"The access token has expired"}}',
      });
    return route.continue();
  });
  const again = page.waitForRequest((r) => r.url().endsWith("/api/v1/auth/refresh"));
  await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Users" }).click();
  await again;
  await page.getByRole("cell", { name: "admin", exact: true }).waitFor();
  expect((await page.getByRole("alert").count()) === 0, "no error is shown after a silent refresh");
  expect(expired === 2, "the request was sent again after the refresh (" + expired + " times in all)");
  await page.unroute("**/api/v1/users");
  await page.evaluate(() => sessionStorage.setItem("clisonix.refresh", "not-a-valid-refresh-token"));
  await page.goto(server.base + "/devices");
  await page.waitForURL(/\/login$/);
  await page.getByText("Your session expired").waitFor();
  await shoot("login-expired");
  await page.getByLabel("Password").fill("test-admin-password-1");
  await page.getByRole("button", { name: "Log in" }).click();
  // Back where the person was going.
  await page.getByRole("heading", { name: "Devices", level: 1 }).waitFor();
});

await step("log out: back to the login page, and the session is gone", async () => {
  await page.goto(server.base + "/");
  await page.getByRole("heading", { name: "Overview", level: 1 }).waitFor();
  const refreshToken = await page.evaluate(() => sessionStorage.getItem("clisonix.refresh"));
  await page.getByRole("button", { name: "Log out" }).click();
  await page.waitForURL(/\/login$/);
  expect(
    (await page.evaluate(() => sessionStorage.getItem("clisonix.refresh"))) === null,
    "the page forgot the refresh token",
  );
  const r = await fetch(server.base + "/api/v1/auth/refresh", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ refresh_token: refreshToken }),
  });
  expect(r.status === 401, "the server ended the session: refresh answered " + r.status);
  await page.goto(server.base + "/alarms");
  await page.waitForURL(/\/login$/);
  await page.getByRole("button", { name: "Log in" }).waitFor();
});

await step("a viewer sees no admin pages and no alarm actions", async () => {
  const made = await api("POST", "/api/v1/users", {
    username: "viewer-1",
    password: "a-long-enough-password-2",
    role: "viewer",
  });
  expect(made.status === 201, "creating the viewer: " + made.status + " " + made.text);
  await page.goto(server.base + "/login");
  await page.getByLabel("Username").fill("viewer-1");
  await page.getByLabel("Password").fill("a-long-enough-password-2");
  await page.getByRole("button", { name: "Log in" }).click();
  // Back to where the logged-out visit was going (/alarms), then the overview.
  await page.getByRole("heading", { name: "Alarms", level: 1 }).waitFor();
  await page.goto(server.base + "/");
  await page.getByRole("heading", { name: "Overview", level: 1 }).waitFor();
  const nav = page.getByRole("navigation", { name: "Main" });
  expect((await nav.getByRole("link", { name: "Users" }).count()) === 0, "no Users link for a viewer");
  expect((await nav.getByRole("link", { name: "Audit log" }).count()) === 0, "no Audit link for a viewer");
  expect((await nav.getByRole("link", { name: "API reference" }).count()) === 1, "the API reference for a viewer too");
  await page.goto(server.base + "/users");
  await page.getByRole("heading", { name: "Admins only" }).waitFor();
  if (alarmsApi) {
    await page.goto(server.base + "/alarms?status=");
    await page.locator("tr[data-alarm-id]").first().waitFor();
    expect(
      (await page.getByRole("button", { name: /^Acknowledge|^Clear alarm/ }).count()) === 0,
      "no alarm actions for a viewer",
    );
  }
  await page.getByRole("button", { name: "Log out" }).click();
  await page.waitForURL(/\/login$/);
});

await step("no CSP violation or uncaught error on any page", async () => {
  expect(problems.length === 0, problems.join("\n"));
});

await browser.close();
await server.stop();

console.log("\nScreenshots:");
for (const s of shots) console.log("  " + s);
const count = (s) => results.filter((r) => r.status === s).length;
console.log(`\nbrowser: ${count("passed")} passed, ${count("failed")} failed, ${count("skipped")} skipped`);
process.exit(count("failed") ? 1 : 0);
