// The Ask box's canned answer, shared by its unit and browser tests: the example answer of
// issue #19's contract (POST /api/v1/ask), per-device maxima drawn as bars.
export const hotter = {
  understood: true,
  question: "which pumps on line 2 ran hotter than 80 °C yesterday?",
  answer: "2 of 4 pumps on line-2 went above 80 °C yesterday: pump-06 (max 83.1 °C) and pump-07 (max 81.4 °C).",
  plan: {
    kind: "telemetry",
    devices: [],
    device_type: "pump",
    asset: "line-2",
    metric: "temperature",
    unit: "°C",
    from: "2026-12-04T00:00:00+01:00",
    to: "2026-12-05T00:00:00+01:00",
    time_text: "yesterday",
    aggregate: "max",
    group_by: "device",
    filter: { op: ">", value: 80 },
    order: "desc",
    limit: null,
    threshold: null,
    source: "parser",
  },
  data: {
    columns: ["device", "max"],
    rows: [
      ["pump-06", 83.1],
      ["pump-07", 81.4],
    ],
  },
  chart: { type: "bar", x: "device", y: "max", unit: "°C" },
};
