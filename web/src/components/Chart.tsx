// One metric as a uPlot line chart, with its anomaly score (0..1) as a band underneath that
// shares the cursor and the time axis. Drag across either to zoom; the page decides what
// to fetch for the new range. With a forecast, the chart goes on past the last point: the
// point forecast as a dashed line inside its 50 % and 95 % intervals (uPlot bands).
import { useEffect, useMemo, useRef, type ReactNode } from "react";
import uPlot from "uplot";
import { alignForecast, fmtDuration, type Forecast } from "../forecast";

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
  forecast?: Forecast | null;
  forecastNote?: ReactNode; // under the caption: the crossing hint, or why there is no forecast
  anomalyBand?: boolean; // false: no anomaly band under the chart (a series without scores)
}

function axisColors(dark: boolean) {
  return {
    stroke: dark ? "#cbd5e1" : "#334155",
    grid: { stroke: dark ? "#334155" : "#e2e8f0", width: 1 },
    ticks: { stroke: dark ? "#475569" : "#cbd5e1", width: 1 },
  };
}

// Series 2..6 of the main plot: the forecast and its interval bounds (see alignForecast).
function forecastSeries(dark: boolean): uPlot.Series[] {
  const edge = { stroke: "transparent", width: 0, points: { show: false }, spanGaps: false };
  return [
    { label: "forecast", stroke: dark ? "#a5f3fc" : "#155e75", width: 1.5, dash: [5, 4], spanGaps: false },
    { ...edge, label: "forecast lower 95 %" },
    { ...edge, label: "forecast upper 95 %" },
    { ...edge, label: "forecast lower 50 %" },
    { ...edge, label: "forecast upper 50 %" },
  ];
}

function forecastBands(dark: boolean): uPlot.Band[] {
  return [
    { series: [4, 3], fill: dark ? "rgba(34,211,238,0.16)" : "rgba(14,116,144,0.13)" },
    { series: [6, 5], fill: dark ? "rgba(34,211,238,0.32)" : "rgba(14,116,144,0.28)" },
  ];
}

export function Chart({
  metric,
  data,
  anomaly,
  range,
  dark,
  onZoom,
  forecast,
  forecastNote,
  anomalyBand = true,
}: Props) {
  const figure = useRef<HTMLElement>(null);
  const box = useRef<HTMLDivElement>(null);
  const bandBox = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  const band = useRef<uPlot | null>(null);
  const zoomRef = useRef(onZoom);
  zoomRef.current = onZoom;
  const rangeRef = useRef(range);
  rangeRef.current = range;
  const aligned = useMemo(() => alignForecast(data, forecast ?? null), [data, forecast]);
  const alignedRef = useRef(aligned);
  alignedRef.current = aligned;

  useEffect(() => {
    const el = box.current!;
    const bel = bandBox.current;
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
    // After each draw, where the forecast band and the last point are on the canvas, in pixels
    // (data-band-px, data-last-px on the figure): what the browser tests check.
    const markDrawn = (u: uPlot) => {
      const fig = figure.current;
      if (!fig) return;
      const xs = u.data[0];
      const lower = u.data[3];
      const firstBand = lower.findIndex((v) => v !== null && v !== undefined);
      let lastPoint = -1;
      for (let i = 0; i < xs.length; i++) if (u.data[1][i] !== null && u.data[1][i] !== undefined) lastPoint = i;
      const px = (i: number) => (i < 0 ? "" : u.valToPos(xs[i], "x").toFixed(2));
      fig.dataset.bandPx = px(firstBand);
      fig.dataset.lastPx = px(lastPoint);
    };
    plot.current = new uPlot(
      {
        ...common,
        hooks: { ...common.hooks, draw: [markDrawn] },
        height: 180,
        scales: { x: { time: true, range: () => rangeRef.current } },
        axes: [colors, { ...colors, size: 56 }],
        series: [
          {},
          { label: metric, stroke: dark ? "#22d3ee" : "#0e7490", width: 1.5, spanGaps: false },
          ...forecastSeries(dark),
        ],
        bands: forecastBands(dark),
      },
      alignedRef.current.columns,
      el,
    );
    band.current = !bel
      ? null
      : new uPlot(
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
  }, [metric, dark, anomalyBand]);

  useEffect(() => {
    plot.current?.setData(aligned.columns);
  }, [aligned, range]);
  useEffect(() => {
    band.current?.setData([anomaly?.xs ?? [], anomaly?.ys ?? []]);
  }, [anomaly, range]);

  const last = data.ys.length ? data.ys[data.ys.length - 1] : null;
  const lastScore = anomaly && anomaly.ys.length ? anomaly.ys[anomaly.ys.length - 1] : null;
  const drawn = aligned.bandFrom !== null;
  const ms = (sec: number | null) => (sec === null ? undefined : Math.round(sec * 1000));
  return (
    <figure
      ref={figure}
      className="chart rounded-lg border border-slate-200 bg-white p-3 dark:border-slate-700 dark:bg-slate-900"
      data-metric={metric}
      data-points={data.xs.length}
      data-forecast={drawn ? "drawn" : "none"}
      data-forecast-from-ms={ms(aligned.bandFrom)}
      data-last-ms={ms(aligned.lastX)}
    >
      <figcaption className="mb-1 text-sm">
        <div className="flex flex-wrap justify-between gap-2">
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
        </div>
        {drawn && forecast && <ForecastLegend forecast={forecast} />}
        {forecastNote}
      </figcaption>
      <div
        ref={box}
        role="img"
        aria-label={
          `${metric} over time, ${data.xs.length} points` +
          (drawn && forecast ? `, with a forecast for the next ${fmtDuration(forecast.horizon_ms)}` : "")
        }
      />
      {anomalyBand && <div ref={bandBox} role="img" aria-label={`Anomaly score of ${metric}, 0 to 1`} />}
    </figure>
  );
}

// What the dashed line and the shading are, which model drew them and how wrong it has
// recently been on this very series (its out-of-sample error over the last part of the history).
function ForecastLegend({ forecast }: { forecast: Forecast }) {
  const mae = Number(forecast.error?.mae);
  const smape = Number(forecast.error?.smape);
  const error =
    (Number.isFinite(mae) ? `MAE ${mae.toPrecision(3)}` : "") +
    (Number.isFinite(smape) ? ` · sMAPE ${smape.toFixed(1)} %` : "");
  const tip =
    `Forecast by ${forecast.model} from ${forecast.history_points} steps of history` +
    (forecast.season_steps > 1 ? `, seasonal period ${forecast.season_steps} steps` : "") +
    `. Recent error on this series: ${error || "unknown"} (mean absolute error in the metric's unit; ` +
    "symmetric mean absolute percentage error). Shaded: where the values should be, 50 % and 95 % of the time.";
  return (
    <div
      className="mt-1 flex flex-wrap items-center gap-x-3 gap-y-1 text-xs text-slate-600 dark:text-slate-400"
      title={tip}
      data-testid="forecast-legend"
    >
      <span className="flex items-center gap-1">
        <span className="inline-block h-0 w-4 border-t-2 border-dashed border-cyan-800 dark:border-cyan-200" />
        forecast, next {fmtDuration(forecast.horizon_ms)}
      </span>
      <span className="flex items-center gap-1">
        <span className="inline-block h-2.5 w-4 rounded-sm bg-cyan-700/30 dark:bg-cyan-400/30" />
        50 %
      </span>
      <span className="flex items-center gap-1">
        <span className="inline-block h-2.5 w-4 rounded-sm bg-cyan-700/15 dark:bg-cyan-400/15" />
        95 %
      </span>
      <span className="font-mono" data-testid="forecast-model">
        {forecast.model}
      </span>
      {error && <span data-testid="forecast-error">{error}</span>}
    </div>
  );
}
