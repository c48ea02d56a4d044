// Shared by the browser tests and the bench: starts the real `clisonix serve` on a free
// loopback port with a fresh data dir, talks to its API, and launches Debian's Chromium
// through playwright-core (never a downloaded browser).
import { spawn } from "node:child_process";
import { createRequire } from "node:module";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

export const here = path.dirname(fileURLToPath(import.meta.url));
export const sourceDir = path.resolve(here, "../..");
export const webDir = path.join(sourceDir, "web");
export const adminPassword = "test-admin-password-1";
export const chromiumPath = process.env.CLISONIX_CHROMIUM ?? "/usr/bin/chromium";

export function parseArgs(argv) {
  const out = {};
  for (let i = 0; i < argv.length; i++) {
    if (!argv[i].startsWith("--")) continue;
    const key = argv[i].slice(2);
    const next = argv[i + 1];
    if (next === undefined || next.startsWith("--")) out[key] = true;
    else out[key] = argv[++i];
  }
  return out;
}

// Exit code 77: ctest's SKIP_RETURN_CODE for this test.
export function skipAll(reason) {
  console.log(`SKIPPED: ${reason}`);
  process.exit(77);
}

export function loadModules() {
  const require = createRequire(path.join(webDir, "package.json"));
  try {
    return {
      playwright: require("playwright-core"),
      axeSource: require("fs").readFileSync(require.resolve("axe-core/axe.min.js"), "utf8"),
    };
  } catch (e) {
    skipAll(`web/node_modules is missing playwright-core or axe-core (run scripts/setup): ${e.message}`);
  }
}

// A module of web/src (TypeScript) for a unit test: turned into JavaScript by Vite's esbuild
// (already in web/node_modules) in a temp dir, then imported. Skips (77) without vite.
export async function importWebSource(relative) {
  let vite;
  try {
    vite = await import(pathToFileURL(createRequire(path.join(webDir, "package.json")).resolve("vite")).href);
  } catch (e) {
    skipAll(`web/node_modules has no vite (run scripts/setup): ${e.message}`);
  }
  const source = path.join(webDir, "src", relative);
  const { code } = await vite.transformWithEsbuild(readFileSync(source, "utf8"), source, { loader: "ts" });
  const dir = mkdtempSync(path.join(os.tmpdir(), "clisonix-web-unit-"));
  try {
    const file = path.join(dir, path.basename(relative).replace(/\.ts$/, ".mjs"));
    writeFileSync(file, code);
    return await import(pathToFileURL(file).href);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

export async function startServer({ binary, webDist, extraArgs = [] }) {
  const port = await freePort();
  const data = mkdtempSync(path.join(os.tmpdir(), "clisonix-web-"));
  const args = [
    "serve",
    "--port",
    String(port),
    "--data",
    data,
    "--set",
    "http.bind=127.0.0.1",
    "--set",
    `web.dir=${webDist}`,
    "--set",
    "mqtt.port=0",
    "--set",
    "coap.port=0",
    ...extraArgs,
  ];
  const proc = spawn(binary, args, {
    env: { ...process.env, CLISONIX_ADMIN_PASSWORD: adminPassword },
    stdio: ["ignore", "pipe", "pipe"],
  });
  // Never leave the server behind, whatever ends this process (a failed launch, a throw).
  process.on("exit", () => {
    if (proc.exitCode === null) proc.kill("SIGKILL");
  });
  let output = "";
  proc.stdout.on("data", (d) => (output += d));
  proc.stderr.on("data", (d) => (output += d));
  const base = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 30000;
  for (;;) {
    if (proc.exitCode !== null) throw new Error(`clisonix serve exited early (${proc.exitCode}): ${output}`);
    try {
      const r = await fetch(base + "/healthz");
      if (r.status === 200) break;
    } catch {
      /* not listening yet */
    }
    if (Date.now() > deadline) throw new Error("clisonix serve did not answer /healthz in 30 s: " + output);
    await new Promise((r) => setTimeout(r, 50));
  }
  const login = await fetch(base + "/api/v1/auth/login", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ username: "admin", password: adminPassword }),
  });
  if (login.status !== 200) throw new Error("admin login failed: " + login.status + " " + (await login.text()));
  const token = (await login.json()).access_token;

  async function call(method, target, body, contentType) {
    const headers = { Authorization: "Bearer " + token };
    let payload;
    if (typeof body === "string") {
      payload = body;
      headers["Content-Type"] = contentType ?? "text/plain";
    } else if (body !== undefined) {
      payload = JSON.stringify(body);
      headers["Content-Type"] = "application/json";
    }
    const r = await fetch(base + target, { method, headers, body: payload });
    const text = await r.text();
    let json = null;
    try {
      json = text ? JSON.parse(text) : null;
    } catch {
      /* not JSON */
    }
    return { status: r.status, json, text };
  }

  return {
    base,
    port,
    api: call,
    output: () => output,
    async stop() {
      proc.kill("SIGTERM");
      await new Promise((resolve) => {
        if (proc.exitCode !== null) return resolve();
        const t = setTimeout(() => {
          proc.kill("SIGKILL");
          resolve();
        }, 10000);
        proc.once("exit", () => {
          clearTimeout(t);
          resolve();
        });
      });
      rmSync(data, { recursive: true, force: true });
    },
  };
}

// Debian's Chromium, headless, with a fresh profile and no background traffic (the machine
// has no network beyond loopback; see the env notes).
export async function launchBrowser(playwright, viewport = { width: 1280, height: 900 }) {
  if (!existsSync(chromiumPath)) skipAll(`${chromiumPath} is missing (apt-get install chromium; scripts/setup does)`);
  const profile = mkdtempSync(path.join(os.tmpdir(), "clisonix-chromium-"));
  const context = await playwright.chromium.launchPersistentContext(profile, {
    executablePath: chromiumPath,
    headless: true,
    viewport,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
  return {
    context,
    async close() {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

export async function uiLogin(page, base, password = adminPassword) {
  await page.goto(base + "/");
  await page.waitForURL(/\/login$/);
  await page.getByLabel("Username").fill("admin");
  await page.getByLabel("Password").fill(password);
  await page.getByRole("button", { name: "Log in" }).click();
  await page.getByRole("heading", { name: "Overview", level: 1 }).waitFor();
}

// The arguments every browser test takes (--binary, --web-dist, --out), with the skips when
// the binary, web/dist or the browser modules are missing.
export function browserTestArgs(argv = process.argv.slice(2)) {
  const args = parseArgs(argv);
  const binary = args.binary ?? path.resolve("build/clisonix");
  const webDist = args["web-dist"] ?? path.join(webDir, "dist");
  const out = args.out ?? path.resolve("build/screenshots");
  mkdirSync(out, { recursive: true });
  const { playwright, axeSource } = loadModules();
  if (!existsSync(path.join(webDist, "index.html")))
    skipAll(`${webDist}/index.html is missing (npm ci && npm run build in web/)`);
  if (!existsSync(binary)) skipAll(`${binary} is missing`);
  return { args, binary, webDist, out, playwright, axeSource };
}

// Named steps: each runs to its end, its failure printed with the reason, the next one runs.
export function stepRunner() {
  const counts = { passed: 0, failed: 0 };
  async function step(name, fn) {
    const started = Date.now();
    try {
      await fn();
      counts.passed++;
      console.log(`[PASS] ${name} (${Date.now() - started} ms)`);
    } catch (e) {
      counts.failed++;
      console.log(`[FAIL] ${name}: ${e.stack ?? e}`);
    }
  }
  return { step, counts };
}

export function expect(cond, message) {
  if (!cond) throw new Error(message);
}

export function expectEqual(got, want, what) {
  const g = JSON.stringify(got);
  const w = JSON.stringify(want);
  if (g !== w) throw new Error(`${what}: got ${g}, want ${w}`);
}

// No serious or critical accessibility violation on the page as it is (axe-core, WCAG 2.1 AA).
export async function axeCheck(page, axeSource, name) {
  await page.evaluate(axeSource);
  // eslint-disable-next-line no-undef
  const r = await page.evaluate(() => axe.run(document, { runOnly: { type: "tag", values: ["wcag2a", "wcag2aa"] } }));
  const bad = r.violations.filter((v) => v.impact === "serious" || v.impact === "critical");
  expect(bad.length === 0, `${name}: ${bad.map((v) => v.id + " " + v.nodes[0]?.target).join(", ")}`);
}

