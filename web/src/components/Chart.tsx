// One metric as a uPlot line chart, with its anomaly score (0..1) as a band underneath that
// shares the cursor and the time axis. Drag across either to zoom; the page decides what
// to fetch for the new range.
import { useEffect, useRef } from "react";
import uPlot from "uplot";

export interface ChartData {
  xs: number[]; // seconds
  ys: (number | null)[];
}

interface Props {
  metric: string;
  data: ChartData;
  anomaly?: ChartData;
  range: [number, number]; // seconds
  dark: boolean;
  onZoom: (from: number, to: number) => void; // seconds
}

function axisColors(dark: boolean) {
  return {
    stroke: dark ? "#cbd5e1" : "#334155",
    grid: { stroke: dark ? "#334155" : "#e2e8f0", width: 1 },
    ticks: { stroke: dark ? "#475569" : "#cbd5e1", width: 1 },
  };
}

export function Chart({ metric, data, anomaly, range, dark, onZoom }: Props) {
  const box = useRef<HTMLDivElement>(null);
  const bandBox = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  const band = useRef<uPlot | null>(null);
  const zoomRef = useRef(onZoom);
  zoomRef.current = onZoom;
  const rangeRef = useRef(range);
  rangeRef.current = range;

  useEffect(() => {
    const el = box.current!;
    const bel = bandBox.current!;
    const width = Math.max(200, el.clientWidth);
    const sync = uPlot.sync("device");
    const zoomHook = (u: uPlot) => {
      const { left, width } = u.select;
      if (width < 4) return;
      const from = u.posToVal(left, "x");
      const to = u.posToVal(left + width, "x");
      u.setSelect({ left: 0, top: 0, width: 0, height: 0 }, false);
      zoomRef.current(from, to);
    };
    const common = {
      width,
      cursor: { sync: { key: sync.key }, drag: { x: true, y: false, setScale: false } },
      hooks: { setSelect: [zoomHook] },
      legend: { show: false },
    };
    const colors = axisColors(dark);
    plot.current = new uPlot(
      {
        ...common,
        height: 180,
        scales: { x: { time: true, range: () => rangeRef.current } },
        axes: [colors, { ...colors, size: 56 }],
        series: [{}, { label: metric, stroke: dark ? "#22d3ee" : "#0e7490", width: 1.5, spanGaps: false }],
      },
      [data.xs, data.ys],
      el,
    );
    band.current = new uPlot(
      {
        ...common,
        height: 56,
        scales: { x: { time: true, range: () => rangeRef.current }, y: { range: [0, 1] } },
        axes: [
          { ...colors, show: false },
          { ...colors, size: 56, values: (_u, v) => v.map((x) => x.toFixed(1)), splits: () => [0, 0.5, 1] },
        ],
        series: [
          {},
          {
            label: metric + " anomaly score",
            stroke: "#dc2626",
            fill: "rgba(220,38,38,0.35)",
            width: 1,
            paths: uPlot.paths.stepped!({ align: 1 }),
          },
        ],
      },
      [anomaly?.xs ?? [], anomaly?.ys ?? []],
      bel,
    );
    const ro = new ResizeObserver(() => {
      const w = Math.max(200, el.clientWidth);
      plot.current?.setSize({ width: w, height: 180 });
      band.current?.setSize({ width: w, height: 56 });
    });
    ro.observe(el);
    return () => {
      ro.disconnect();
      plot.current?.destroy();
      band.current?.destroy();
      plot.current = null;
      band.current = null;
    };
    // Rebuilt only when the look changes; data and range go through setData below.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [metric, dark]);

  useEffect(() => {
    plot.current?.setData([data.xs, data.ys]);
  }, [data, range]);
  useEffect(() => {
    band.current?.setData([anomaly?.xs ?? [], anomaly?.ys ?? []]);
  }, [anomaly, range]);

  const last = data.ys.length ? data.ys[data.ys.length - 1] : null;
  const lastScore = anomaly && anomaly.ys.length ? anomaly.ys[anomaly.ys.length - 1] : null;
  return (
    <figure
      className="chart rounded-lg border border-slate-200 bg-white p-3 dark:border-slate-700 dark:bg-slate-900"
      data-metric={metric}
      data-points={data.xs.length}
    >
      <figcaption className="mb-1 flex flex-wrap justify-between gap-2 text-sm">
        <span className="font-semibold">{metric}</span>
        <span className="text-slate-600 dark:text-slate-400">
          latest <span className="chart-last font-mono">{last === null ? "—" : Number(last).toPrecision(5)}</span>
          {" · "}
          {data.xs.length} points
          {lastScore !== null && (
            <>
              {" · "}anomaly <span className="font-mono">{Number(lastScore).toFixed(2)}</span>
            </>
          )}
        </span>
      </figcaption>
      <div ref={box} role="img" aria-label={`${metric} over time, ${data.xs.length} points`} />
      <div ref={bandBox} role="img" aria-label={`Anomaly score of ${metric}, 0 to 1`} />
    </figure>
  );
}
