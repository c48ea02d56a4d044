// A Sparkplug B edge node for tests/sparkplug: Eclipse Tahu's sparkplug-client (npm, from
// tests/peers) against the broker of a real `clisonix serve`. Usage:
//   node edge_node.js <scenario> <mqtt port> <api key> <group> <edge node> [<device>]
// Prints one JSON line per thing the test checks ({"event":...}) and exits 0 when the
// scenario ran to its end, 1 on an error or after 40 s.
"use strict";
const path = require("path");
const sparkplug = require(path.join(__dirname, "../peers/node_modules/sparkplug-client"));

const [scenario, port, key, group, edgeNode, device = "sp-pump-1"] = process.argv.slice(2);
const ts0 = 1704067200000; // 2024-01-01T00:00:00Z

// The test lets a scenario go on past a checkpoint with SIGUSR2 (one per checkpoint).
let goes = 0;
let wake = null;
process.on("SIGUSR2", () => {
  goes += 1;
  if (wake) wake();
});
async function checkpoint() {
  while (goes === 0) await new Promise((r) => (wake = r));
  goes -= 1;
}

const say = (event, extra = {}) => console.log(JSON.stringify({ event, ...extra }));
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
setTimeout(() => {
  say("timeout");
  process.exit(1);
}, 40000).unref();

// The host application's state as a Sparkplug application reads it: subscribe, print the
// retained message, exit.
if (scenario === "state") {
  const mqtt = require(path.join(__dirname, "../peers/node_modules/mqtt"));
  const reader = mqtt.connect(`mqtt://127.0.0.1:${port}`, { username: key, password: key, reconnectPeriod: 0 });
  reader.on("connect", () => reader.subscribe("spBv1.0/STATE/+"));
  reader.on("message", (topic, message, packet) => {
    const state = JSON.parse(message.toString());
    say("state", { topic, retain: packet.retain, online: state.online, timestamp: state.timestamp });
    reader.end(false, {}, () => process.exit(0));
  });
  reader.on("error", (e) => {
    say("error", { message: String(e.message) });
    process.exit(1);
  });
  return;
}

const client = sparkplug.newClient({
  serverUrl: `mqtt://127.0.0.1:${port}`,
  username: key,
  password: key,
  groupId: group,
  edgeNode,
  clientId: `${edgeNode}-${process.pid}`,
  publishDeath: true,
  mqttOptions: { reconnectPeriod: 0 },
});

const unit = (u) => ({ engUnit: { type: "String", value: u } });

function nodeBirth() {
  client.publishNodeBirth({
    timestamp: ts0,
    metrics: [
      { name: "Node Control/Rebirth", type: "Boolean", value: false },
      { name: "uptime", alias: 100, type: "Int64", value: 3600, timestamp: ts0 },
    ],
  });
}

function deviceBirth(temperature) {
  client.publishDeviceBirth(device, {
    timestamp: ts0,
    metrics: [
      { name: "temperature", alias: 1, type: "Float", value: temperature, timestamp: ts0, properties: unit("°C") },
      { name: "running", alias: 2, type: "Boolean", value: true, timestamp: ts0 },
      { name: "offset", alias: 3, type: "Int32", value: -5, timestamp: ts0, properties: unit("mm") },
      { name: "state", alias: 4, type: "String", value: "starting", timestamp: ts0 },
      { name: "speed", alias: 5, type: "Double", value: 1450.25, timestamp: ts0, properties: { EngUnit: { type: "String", value: "rpm" } } },
    ],
  });
}

// Data by alias only, as Ignition sends it.
function deviceData(at, temperature) {
  client.publishDeviceData(device, {
    timestamp: at,
    metrics: [
      { alias: 1, value: temperature, type: "Float", timestamp: at },
      { alias: 2, value: false, type: "Boolean", timestamp: at },
      { alias: 3, value: -7, type: "Int32", timestamp: at },
      { alias: 4, value: "running", type: "String", timestamp: at },
      { alias: 5, value: 1500.5, type: "Double", timestamp: at },
    ],
  });
}

// Resolves on the next NCMD (the rebirth request), with what it asked for.
function nextCommand() {
  return new Promise((resolve) =>
    client.once("ncmd", (payload) => {
      const m = (payload.metrics || []).map((x) => ({ name: x.name, value: x.value }));
      resolve(m);
    }),
  );
}

async function run() {
  await new Promise((resolve, reject) => {
    client.once("birth", resolve);
    client.once("error", reject);
  });
  say("connected");
  await sleep(200); // the NCMD subscription is in place
  switch (scenario) {
    case "lifecycle": {
      nodeBirth();
      deviceBirth(20.5);
      deviceData(ts0 + 1000, 21.3);
      await sleep(500);
      say("data sent");
      await checkpoint(); // the test checks births and data
      client.publishDeviceDeath(device, { timestamp: ts0 + 2000, metrics: [] });
      await sleep(500);
      say("device death sent");
      await checkpoint(); // the test checks the device is offline
      client.stop(); // NDEATH, then the connection closes
      await sleep(300);
      say("node death sent");
      break;
    }
    case "gap": {
      nodeBirth();
      deviceBirth(20.5);
      deviceData(ts0 + 1000, 21.5);
      const asked = nextCommand();
      client.seq += 3; // three messages lost on the way
      deviceData(ts0 + 2000, 66.6); // refused: not applied until the rebirth
      say("rebirth requested", { metrics: await asked });
      nodeBirth();
      deviceBirth(22.5);
      deviceData(ts0 + 3000, 23.5);
      await sleep(500);
      say("reborn");
      client.stop();
      await sleep(300);
      break;
    }
    case "no-birth": {
      const asked = nextCommand();
      client.publishDeviceData(device, {
        timestamp: ts0 + 1000,
        metrics: [{ name: "temperature", value: 99.5, type: "Float", timestamp: ts0 + 1000 }],
      });
      say("rebirth requested", { metrics: await asked });
      nodeBirth();
      deviceBirth(30.5);
      await sleep(500);
      say("born");
      client.stop();
      await sleep(300);
      break;
    }
    case "births": {
      nodeBirth();
      deviceBirth(20.5);
      await sleep(500);
      say("born");
      client.stop();
      await sleep(300);
      break;
    }
    case "vanish": {
      nodeBirth();
      deviceBirth(20.5);
      await sleep(500);
      say("born");
      await checkpoint(); // the test checks both are online
      client.client.end(); // a clean DISCONNECT: no will, no NDEATH
      await sleep(300);
      say("gone");
      break;
    }
    default:
      throw new Error(`unknown scenario ${scenario}`);
  }
  process.exit(0);
}

run().catch((e) => {
  say("error", { message: String(e && e.message) });
  process.exit(1);
});
