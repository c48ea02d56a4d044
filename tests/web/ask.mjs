// Browser test of the overview's Ask box: Playwright (playwright-core) drives Debian's Chromium
// against the real `clisonix serve`. The answers of POST /api/v1/ask are canned here (the
// browser's requests to it are intercepted and answered by the test, the rest of the page
// talks to the real server), so that every kind of answer is drawn exactly as expected: bars,
// a big number, lines, a table, a question not understood with its suggestions, and the
// errors 400, 503 and 401. When the server has the route, one last step asks it for real and
// checks that the page shows what the API answers.
//
//   node tests/web/ask.mjs --binary build/clisonix --web-dist web/dist
import path from "node:path";
import { hotter } from "./ask_answers.mjs";
import {
  axeCheck,
  browserTestArgs,
  expect,
  expectEqual,
  importWebSource,
  launchBrowser,
  startServer,
  stepRunner,
  uiLogin,
} from "./harness.mjs";

const { binary, webDist, out, playwright, axeSource } = browserTestArgs();
const ask = await importWebSource("ask.ts"); // what the page is expected to show
const { step, counts } = stepRunner();
const axe = (name) => axeCheck(page, axeSource, name);

const server = await startServer({ binary, webDist });
const routeStatus = (await server.api("POST", "/api/v1/ask", { question: "which devices are offline?" })).status;
const hasRoute = routeStatus !== 404;
const browser = await launchBrowser(playwright);
const page = browser.context.pages()[0] ?? (await browser.context.newPage());
page.setDefaultTimeout(15000);
const problems = [];
page.on("console", (m) => {
  if (m.type() === "error" && /Content Security Policy|Refused to/.test(m.text())) problems.push(m.text());
});
page.on("pageerror", (e) => problems.push("page error: " + e.message));

// The canned answers: each POST /api/v1/ask takes the next; the questions asked are kept.
const asked = [];
let replies = [];
async function cannedAsk(route) {
  asked.push(JSON.parse(route.request().postData() ?? "null"));
  const next = replies.shift() ?? { status: 500, body: { error: { code: "internal", message: "no canned reply" } } };
  if (next.delayMs) await new Promise((r) => setTimeout(r, next.delayMs));
  await route.fulfill({ status: next.status ?? 200, contentType: "application/json", body: JSON.stringify(next.body) });
}
await page.route("**/api/v1/ask", cannedAsk);

await uiLogin(page, server.base);
const box = page.getByRole("region", { name: "Ask" });
const field = box.getByLabel("Ask a question about the plant");

await step("a question typed and asked: spinner, sentence, plan chips, one bar per pump", async () => {
  replies = [{ body: hotter, delayMs: 1200 }];
  await field.fill(hotter.question);
  await box.getByRole("button", { name: "Ask", exact: true }).click();
  await box.getByTestId("ask-spinner").waitFor();
  await box.getByText("Asking…").waitFor();
  await box.getByTestId("ask-sentence").waitFor();
  expect((await box.getByTestId("ask-spinner").count()) === 0, "the spinner is gone with the answer");
  expectEqual(asked.at(-1), { question: hotter.question }, "the request");
  expectEqual(await box.getByTestId("ask-sentence").textContent(), hotter.answer, "the sentence");
  expectEqual(
    await box.getByTestId("ask-chip").allTextContents(),
    [
      "Scope: pumps on line-2",
      "Metric: temperature (°C)",
      // The absolute range is read to screen readers too (and shown on hover).
      "Time: yesterday (2026-12-04 00:00:00 +01:00 to 2026-12-05 00:00:00 +01:00)",
      "Aggregate: maximum",
      "Grouping: per device",
      "Filter: maximum > 80 °C",
      "Order: highest first",
      "Source: parser",
    ],
    "the plan's chips",
  );
  expectEqual(
    await box.locator('[data-testid="ask-chip"][data-label="Time"]').getAttribute("title"),
    "2026-12-04 00:00:00 +01:00 to 2026-12-05 00:00:00 +01:00",
    "the time chip's tooltip",
  );
  expectEqual(await box.getByTestId("ask-bar-value").allTextContents(), ["83.1 °C", "81.4 °C"], "the bars' values");
  const widths = await box
    .locator('[data-testid="ask-bar"] span[aria-hidden="true"] > span')
    .evaluateAll((els) => els.map((e) => e.style.width));
  expect(widths[0] === "100%" && Math.abs(parseFloat(widths[1]) - (81.4 / 83.1) * 100) < 0.01, "bar widths " + widths);
  await page.screenshot({ path: path.join(out, "ask-bars.png"), fullPage: false });
  await axe("ask: bars");
  // The same answer in the dark theme keeps its contrast.
  await page.getByRole("button", { name: "Dark theme" }).click();
  await page.locator("html.dark").waitFor({ state: "attached" });
  await page.screenshot({ path: path.join(out, "ask-bars-dark.png"), fullPage: false });
  await axe("ask: bars, dark theme");
  await page.getByRole("button", { name: "Dark theme" }).click();
  await page.locator("html:not(.dark)").waitFor({ state: "attached" });
});

await step("an example chip asks its question; not understood shows why, and a suggestion asks again", async () => {
  replies = [
    {
      body: {
        understood: false,
        question: "which machine is least healthy right now and why?",
        not_understood: ['"the pump" could be any of 8 pumps (pump-01 ... pump-08): name one'],
        suggestions: ["what is the temperature of pump-01 now?", "what is the average temperature of the pumps now?"],
      },
    },
    {
      body: {
        ...hotter,
        question: "what is the average temperature of the pumps now?",
        answer: "The pumps average 71.25 °C now.",
        plan: {
          ...hotter.plan,
          asset: "",
          aggregate: "mean",
          group_by: "none",
          filter: null,
          order: "",
          time_text: "now",
        },
        data: { columns: ["mean"], rows: [[71.25]] },
        chart: { type: "number", y: "mean", unit: "°C" },
      },
    },
  ];
  await box.getByRole("button", { name: "which machine is least healthy right now and why?" }).click();
  await box.getByTestId("ask-not-understood").waitFor();
  expectEqual(asked.at(-1), { question: "which machine is least healthy right now and why?" }, "the chip's request");
  expectEqual(
    await box.getByTestId("ask-reason").allTextContents(),
    ['"the pump" could be any of 8 pumps (pump-01 ... pump-08): name one'],
    "the reasons",
  );
  expectEqual(
    await box.getByTestId("ask-suggestion").allTextContents(),
    ["what is the temperature of pump-01 now?", "what is the average temperature of the pumps now?"],
    "the suggestions",
  );
  await axe("ask: not understood");
  await page.screenshot({ path: path.join(out, "ask-not-understood.png"), fullPage: false });
  await box.getByRole("button", { name: "what is the average temperature of the pumps now?" }).click();
  await box.getByTestId("ask-number").waitFor();
  expectEqual(
    asked.at(-1),
    { question: "what is the average temperature of the pumps now?" },
    "the suggestion's request",
  );
  expectEqual(await field.inputValue(), "what is the average temperature of the pumps now?", "the field shows it");
  expectEqual(await box.getByTestId("ask-number").textContent(), "71.25°C", "the big number");
  expect((await box.getByTestId("ask-not-understood").count()) === 0, "the old reasons are gone");
});

await step("series are drawn with the dashboard's chart; other rows are a table", async () => {
  const t0 = Date.parse("2026-12-05T07:00:00+01:00");
  const points = (base) => Array.from({ length: 30 }, (_, i) => [t0 + i * 60000, base + i / 10]);
  replies = [
    {
      body: {
        ...hotter,
        answer: "pump-01 and pump-02 over the last 30 minutes.",
        plan: { ...hotter.plan, from: "2026-12-05T07:00:00+01:00", to: "2026-12-05T07:30:00+01:00", time_text: "" },
        data: {
          series: [
            { device: "pump-01", metric: "temperature", points: points(60) },
            { device: "pump-02", metric: "temperature", points: points(70) },
          ],
        },
        chart: { type: "line", unit: "°C" },
      },
    },
    {
      body: {
        ...hotter,
        answer: "pump-01 is rising by 0.6 °C per hour.",
        data: { columns: ["device", "trend", "slope_per_hour"], rows: [["pump-01", "rising", 0.6]] },
        chart: { type: "table" },
      },
    },
  ];
  await field.fill("temperature of pump-01 and pump-02 in the last 30 minutes");
  await field.press("Enter");
  await box.locator('figure.chart[data-metric="pump-02 temperature"]').waitFor();
  expectEqual(
    await box.locator("figure.chart").evaluateAll((f) => f.map((e) => [e.dataset.metric, e.dataset.points])),
    [
      ["pump-01 temperature", "30"],
      ["pump-02 temperature", "30"],
    ],
    "one chart per series",
  );
  expect(
    (await box.getByRole("img", { name: /^Anomaly score/ }).count()) === 0,
    "no empty anomaly band under an answer's chart",
  );
  await page.screenshot({ path: path.join(out, "ask-lines.png"), fullPage: false });
  await field.fill("is pump-01 getting hotter this week?");
  await field.press("Enter");
  await box.getByTestId("ask-table").waitFor();
  expectEqual(
    await box.locator('[data-testid="ask-table"] th').allTextContents(),
    ["device", "trend", "slope_per_hour"],
    "the table's columns",
  );
  expectEqual(await box.locator('[data-testid="ask-table"] td').allTextContents(), ["pump-01", "rising", "0.6"], "row");
});

await step("errors: a 400 under the field, a 503 in plain words", async () => {
  replies = [
    {
      status: 400,
      body: { error: { code: "invalid_argument", message: "question must be 1..500 characters", field: "question" } },
    },
    {
      status: 503,
      body: {
        error: { code: "unavailable", message: "ollama at http://127.0.0.1:11434 did not answer within 10000 ms" },
      },
    },
  ];
  await field.fill("   x   ");
  await field.press("Enter");
  await box.locator(".field-error").waitFor();
  expectEqual(await box.locator(".field-error").textContent(), "question must be 1..500 characters", "field error");
  expectEqual(await field.getAttribute("aria-invalid"), "true", "the field is marked invalid");
  expect((await box.getByTestId("ask-table").count()) === 0, "the previous answer is gone");
  await field.fill("something the grammar cannot read");
  await field.press("Enter");
  await box.getByRole("alert").waitFor();
  expectEqual(
    await box.getByRole("alert").textContent(),
    "The question could not be answered:ollama at http://127.0.0.1:11434 did not answer within 10000 ms (503 unavailable)",
    "the 503",
  );
  expect((await box.locator(".field-error").count()) === 0, "the field error is gone");
  await axe("ask: error");
});

await step("a 401 that a refresh does not cure ends the session, said plainly on the login page", async () => {
  replies = [401, 401].map(() => ({
    status: 401,
    body: { error: { code: "invalid_token", message: "The access token has been revoked" } },
  }));
  await field.fill("open alarms");
  await field.press("Enter");
  await page.waitForURL(/\/login$/);
  await page.getByText("Your session expired").waitFor();
  expect(asked.length >= 2 && replies.length === 0, "asked again after the refresh");
  await uiLogin(page, server.base);
});

// With the route on this server: a small plant, two questions asked through the page and
// straight to the API; the page shows the API's sentence, its plan as ask.ts reads it, and the
// chart its hint asks for.
await step("the real route: the page shows what POST /api/v1/ask answers", async () => {
  if (!hasRoute) {
    console.log(`  (not run: this server has no POST /api/v1/ask; it answered ${routeStatus})`);
    return;
  }
  await page.unroute("**/api/v1/ask", cannedAsk);
  const made = [
    await server.api("POST", "/api/v1/device-types", { name: "pump", metrics: { temperature: { unit: "°C" } } }),
    await server.api("POST", "/api/v1/devices", { name: "pump-01", type: "pump" }),
    await server.api("POST", "/api/v1/devices", { name: "pump-02", type: "pump" }),
  ];
  expect(
    made.every((r) => r.status === 201),
    "plant made: " + made.map((r) => r.status + " " + r.text).join(", "),
  );
  const t = Date.now() - 60000;
  const lines = [`telemetry,device=pump-01 temperature=71.5 ${t}`, `telemetry,device=pump-02 temperature=64.25 ${t}`];
  const w = await server.api("POST", "/api/v1/write?precision=ms", lines.join("\n") + "\n");
  expect(w.status === 204, "written: " + w.status + " " + w.text);
  for (const q of ["what is the temperature of pump-01 now?", "what is the temperature of the pumps now?"]) {
    const direct = (await server.api("POST", "/api/v1/ask", { question: q })).json;
    expect(direct && direct.understood === true, `${q}: the API understood it: ${JSON.stringify(direct)}`);
    await field.fill(q);
    await field.press("Enter");
    await page.waitForFunction(
      (want) => document.querySelector('[data-testid="ask-sentence"]')?.textContent === want,
      direct.answer,
    );
    // The chips' words; not their absolute times, which for "now" move between the two asks.
    const chips = ask.planChips(direct.plan).map((c) => `${c.label}: ${c.text}`);
    const shown = await box.getByTestId("ask-chip").evaluateAll((els) =>
      els.map((e) =>
        [...e.childNodes]
          .filter((n) => !(n instanceof Element && n.classList.contains("sr-only")))
          .map((n) => n.textContent)
          .join(""),
      ),
    );
    expectEqual(shown, chips, `${q}: the chips`);
    const kind = ask.chartKind(direct);
    const unit = direct.chart?.unit ?? direct.plan.unit ?? "";
    if (kind === "number") {
      expectEqual(
        await box.getByTestId("ask-number").textContent(),
        ask.answerValue(ask.bigNumber(direct)) + unit,
        `${q}: the number`,
      );
    } else if (kind === "bar") {
      expectEqual(
        await box.getByTestId("ask-bar-value").allTextContents(),
        ask.barRows(direct).map((b) => ask.answerValue(b.value) + (unit ? " " + unit : "")),
        `${q}: the bars`,
      );
    } else {
      throw new Error(`${q}: expected a number or bars, the hint was ${JSON.stringify(direct.chart)}`);
    }
  }
  await page.screenshot({ path: path.join(out, "ask-real.png"), fullPage: false });
});

await step("no CSP violation or uncaught error", async () => {
  expect(problems.length === 0, problems.join("\n"));
});

await browser.close();
await server.stop();
console.log(
  `\nask: ${counts.passed} passed, ${counts.failed} failed` +
    (hasRoute ? "" : " (the real-route step had no route to ask)"),
);
process.exit(counts.failed ? 1 : 0);
