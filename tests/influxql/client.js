// An InfluxDB 1.x client for tests/influxql: node-influx (npm `influx`, from tests/peers)
// against `clisonix serve`. Usage:
//   node client.js <http port> <spec.json>
// spec.json: {"write_key":..,"read_key":..,"points":[{"measurement","tags","fields","ts_ms"}],
//             "queries":[{"id","q","epoch"}]}
// Writes the points with writePoints (user name + password = the write key), then runs each
// query with queryRaw (password = the read key) and the client's own SHOW helpers. Prints one
// JSON line per answer: {"id":..,"raw":<the JSON answer>} or {"id":..,"status":..,"error":..},
// then {"id":"done"}. Exits 1 on anything unexpected or after 60 s.
"use strict";
const fs = require("fs");
const path = require("path");
const Influx = require(path.join(__dirname, "../peers/node_modules/influx"));

const [port, specFile] = process.argv.slice(2);
const spec = JSON.parse(fs.readFileSync(specFile, "utf8"));
setTimeout(() => {
  console.log(JSON.stringify({ id: "timeout" }));
  process.exit(1);
}, 60000).unref();

const client = (password) =>
  new Influx.InfluxDB({
    host: "127.0.0.1",
    port: Number(port),
    database: "plant", // any name: Clisonix has one store
    username: "grafana", // not read: the password is the API key
    password,
    schema: [
      {
        measurement: "machine",
        fields: {
          temperature: Influx.FieldType.FLOAT,
          cycles: Influx.FieldType.INTEGER,
          state: Influx.FieldType.STRING,
        },
        tags: ["device", "line"],
      },
    ],
  });

const say = (o) => console.log(JSON.stringify(o));
const failure = (id, e) => ({
  id,
  status: e.res ? e.res.statusCode : 0,
  error: e.message,
});

async function main() {
  const writer = client(spec.write_key);
  await writer.writePoints(
    spec.points.map((p) => ({
      measurement: p.measurement,
      tags: p.tags,
      fields: p.fields,
      timestamp: p.ts_ms,
    })),
    { precision: "ms" },
  );
  say({ id: "written" });

  const reader = client(spec.read_key);
  for (const { id, q, epoch } of spec.queries) {
    try {
      say({ id, raw: await reader.queryRaw(q, epoch ? { precision: epoch } : {}) });
    } catch (e) {
      say(failure(id, e));
    }
  }
  // The client's own helpers, which parse the SHOW answers themselves.
  say({ id: "getDatabaseNames", value: await reader.getDatabaseNames() });
  say({ id: "getMeasurements", value: await reader.getMeasurements() });
  say({ id: "getSeries", value: await reader.getSeries({ measurement: "machine" }) });
  const rows = await reader.query(
    `SELECT last("temperature") FROM "machine" WHERE "device" = 'press-1' GROUP BY "device"`,
  );
  say({
    id: "query rows",
    value: rows.map((r) => ({ time: r.time.toISOString(), last: r.last, device: r.device })),
  });
  try {
    await client("cxk_not-a-key").queryRaw("SHOW DATABASES");
    say({ id: "bad key" });
  } catch (e) {
    say(failure("bad key", e));
  }
  say({ id: "done" });
}

main().catch((e) => {
  say({ id: "crashed", error: String(e && e.stack ? e.stack : e) });
  process.exit(1);
});
