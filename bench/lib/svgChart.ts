/**
 * Line charts of per-series rates over time as SVG text, for the benchmarks' result files (the
 * same bucketed counts `rateChart` draws as sparklines). Pure: no I/O, no dependencies; the output
 * opens in a browser or converts with `rsvg-convert`.
 */

/** One chart: counts per time bucket for each series, all starting at the same t0. */
export interface SvgChartOptions {
  /** Heading above the plot. */
  title: string;
  /** Width of one bucket in ms: a count c is drawn as c × 1000 / bucketMs per second, at the bucket's middle. */
  bucketMs: number;
  /** Series name → count per bucket (non-finite counts as 0). Insertion order sets colours and legend order. */
  series: Record<string, readonly number[]>;
  /** Caption of the y axis; default `jobs/s`. */
  yLabel?: string;
  /**
   * `log` plots log10(1 + rate), so a 40/s series stays readable next to a 2,000/s one;
   * default `linear`.
   */
  yScale?: 'linear' | 'log';
  /**
   * When set, series values are levels in this unit (e.g. `ms`), drawn as given rather than as
   * counts per bucket turned into rates; the legend shows their mean in it. Default: rates.
   */
  unit?: string;
}

/** Size of one chart in px; charts stacked by `svgCharts` are this wide and this tall each. */
export const CHART_SIZE = { width: 900, height: 360 } as const;

/** The plot rectangle inside one chart, in px; the legend sits to its right. */
export const PLOT_AREA = { left: 70, top: 44, right: 670, bottom: 306 } as const;

/** Tableau 10: distinct on white and in print; series past the tenth repeat them, dashed. */
const COLOURS = [
  '#4e79a7',
  '#f28e2b',
  '#e15759',
  '#76b7b2',
  '#59a14f',
  '#edc948',
  '#b07aa1',
  '#ff9da7',
  '#9c755f',
  '#bab0ac',
];
const LEGEND_ROW = 18;

/** Text and attribute values both go through this; series names come from tenant ids. */
export function escapeXml(text: string): string {
  return text.replace(
    /[&<>"']/g,
    (c) => `&${{ '&': 'amp', '<': 'lt', '>': 'gt', '"': 'quot', "'": 'apos' }[c]!};`,
  );
}

/** A 1, 2 or 5 × 10^k step giving about `target` intervals up to `max`. */
function niceStep(max: number, target: number): number {
  const raw = max / target;
  const magnitude = 10 ** Math.floor(Math.log10(raw));
  const norm = raw / magnitude;
  return (norm <= 1 ? 1 : norm <= 2 ? 2 : norm <= 5 ? 5 : 10) * magnitude;
}

function formatTick(value: number): string {
  return value.toLocaleString('en-US', { maximumFractionDigits: 6 });
}

const px = (v: number) => v.toFixed(1);

interface YAxis {
  /** Rate → px from the bottom of the plot, clamped into it. */
  scale: (rate: number) => number;
  ticks: number[];
}

function yAxis(maxRate: number, kind: 'linear' | 'log'): YAxis {
  const height = PLOT_AREA.bottom - PLOT_AREA.top;
  const clamp = (h: number) => Math.min(height, Math.max(0, h));
  if (kind === 'log') {
    // Decades, topped by the first 1, 2 or 5 × 10^k at or above the highest rate.
    const magnitude = 10 ** Math.floor(Math.log10(Math.max(maxRate, 10)));
    const top = [1, 2, 5, 10].map((m) => m * magnitude).find((t) => t >= maxRate - 1e-9)!;
    const f = (v: number) => Math.log10(1 + Math.max(0, v));
    const ticks = [0];
    for (let t = 1; t <= top; t *= 10) ticks.push(t);
    if (ticks[ticks.length - 1] !== top) ticks.push(top);
    return { scale: (r) => clamp((f(r) / f(top)) * height), ticks };
  }
  // At least 1/s, as `rateChart` does, so that an idle chart still has a readable axis.
  const step = niceStep(Math.max(maxRate, 1), 5);
  const top = Math.ceil(Math.max(maxRate, 1) / step - 1e-9) * step;
  const ticks: number[] = [];
  for (let i = 0; i * step <= top + step / 1e6; i++) ticks.push(i * step);
  return { scale: (r) => clamp((Math.max(0, r) / top) * height), ticks };
}

/** One chart's elements, shifted down by `offsetY`. */
function chartGroup(options: SvgChartOptions, offsetY: number): string {
  const { title, bucketMs, series } = options;
  if (!(bucketMs > 0)) throw new RangeError(`bucketMs must be positive, got ${bucketMs}`);
  const { left, top, right, bottom } = PLOT_AREA;
  const perBucket = options.unit === undefined ? 1000 / bucketMs : 1;
  const rates = Object.entries(series).map(
    ([name, counts]) => [name, counts.map((c) => (Number.isFinite(c) ? c * perBucket : 0))] as const,
  );
  const buckets = Math.max(0, ...rates.map(([, r]) => r.length));
  const maxRate = Math.max(0, ...rates.flatMap(([, r]) => r));
  const bucketS = bucketMs / 1000;
  const spanS = Math.max(buckets * bucketS, bucketS, 1e-3);
  const x = (seconds: number) => left + (seconds / spanS) * (right - left);
  const y = yAxis(maxRate, options.yScale ?? 'linear');
  const yPx = (rate: number) => bottom - y.scale(rate);

  const out: string[] = [`<g transform="translate(0 ${offsetY})">`];
  out.push(`<text x="16" y="26" font-size="15" font-weight="bold">${escapeXml(title)}</text>`);

  for (const t of y.ticks) {
    const ty = px(yPx(t));
    out.push(`<line x1="${left}" y1="${ty}" x2="${right}" y2="${ty}" stroke="#e5e5e5"/>`);
    out.push(`<text x="${left - 6}" y="${ty}" dy="4" text-anchor="end">${formatTick(t)}</text>`);
  }
  const xStep = niceStep(spanS, 8);
  for (let i = 0; i * xStep <= spanS + xStep / 1e6; i++) {
    const tx = px(x(i * xStep));
    out.push(`<line x1="${tx}" y1="${bottom}" x2="${tx}" y2="${bottom + 5}" stroke="#333"/>`);
    out.push(`<text x="${tx}" y="${bottom + 19}" text-anchor="middle">${formatTick(i * xStep)}</text>`);
  }
  out.push(
    `<path d="M${left} ${top}V${bottom}H${right}" fill="none" stroke="#333"/>`,
    `<text x="${(left + right) / 2}" y="${bottom + 40}" text-anchor="middle">time (s)</text>`,
    `<text transform="translate(18 ${(top + bottom) / 2}) rotate(-90)" text-anchor="middle">${escapeXml(
      `${options.yLabel ?? 'jobs/s'}${options.yScale === 'log' ? ' (log scale)' : ''}`,
    )}</text>`,
  );
  if (buckets === 0) {
    out.push(
      `<text x="${(left + right) / 2}" y="${(top + bottom) / 2}" text-anchor="middle" fill="#888">no data</text>`,
    );
  }

  // Lines, then the legend (name and mean rate, as the text chart prints).
  const rows = Math.floor((bottom - top) / LEGEND_ROW);
  const listed = rates.length > rows ? rows - 1 : rates.length;
  const legendY = (i: number) => top + i * LEGEND_ROW + 10;
  rates.forEach(([name, r], i) => {
    const colour = COLOURS[i % COLOURS.length]!;
    const dash = i >= COLOURS.length ? ' stroke-dasharray="6 3"' : '';
    if (r.length > 0) {
      const points = r.map((rate, k) => `${px(x((k + 0.5) * bucketS))},${px(yPx(rate))}`).join(' ');
      out.push(
        `<polyline points="${points}" fill="none" stroke="${colour}" stroke-width="1.8" stroke-linejoin="round"${dash}/>`,
      );
    }
    // A single point draws no visible line.
    if (r.length === 1) {
      out.push(`<circle cx="${px(x(bucketS / 2))}" cy="${px(yPx(r[0]!))}" r="3" fill="${colour}"/>`);
    }
    if (i >= listed) return;
    const mean = r.reduce((a, b) => a + b, 0) / Math.max(1, r.length);
    const unit = options.unit === undefined ? '/s' : ` ${options.unit}`;
    const label =
      r.length === 0 ? `${name}: no data` : `${name}: mean ${mean.toFixed(mean < 10 ? 1 : 0)}${unit}`;
    out.push(
      `<line x1="${right + 16}" y1="${legendY(i)}" x2="${right + 36}" y2="${legendY(i)}" stroke="${colour}" stroke-width="3"${dash}/>`,
      `<text x="${right + 42}" y="${legendY(i) + 4}">${escapeXml(label)}</text>`,
    );
  });
  if (listed < rates.length) {
    out.push(
      `<text x="${right + 16}" y="${legendY(listed) + 4}" fill="#555">+${rates.length - listed} more</text>`,
    );
  }
  out.push('</g>');
  return out.join('\n');
}

/** Several charts stacked vertically in one SVG document, each `CHART_SIZE` tall. */
export function svgCharts(charts: readonly SvgChartOptions[]): string {
  const { width, height } = CHART_SIZE;
  const total = height * Math.max(1, charts.length);
  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${total}" viewBox="0 0 ${width} ${total}" font-family="Helvetica, Arial, sans-serif" font-size="12" fill="#222">`,
    `<rect width="${width}" height="${total}" fill="#fff"/>`,
    ...charts.map((c, i) => chartGroup(c, i * height)),
    '</svg>',
    '',
  ].join('\n');
}

/** One chart as a whole SVG document, `CHART_SIZE` big. */
export function svgChart(options: SvgChartOptions): string {
  return svgCharts([options]);
}
