import { CHART_SIZE, PLOT_AREA, svgChart, svgCharts } from '../../bench/lib/svgChart';

/** Every tag closes in order, attributes are quoted, and `&` only starts an entity. */
function expectWellFormed(svg: string): void {
  expect(svg.startsWith('<?xml version="1.0" encoding="UTF-8"?>\n<svg ')).toBe(true);
  const body = svg.replace(/^<\?xml[^>]*\?>/, '');
  const tag = /^<(\/?)([a-zA-Z]+)((?:\s+[a-zA-Z][\w:-]*="[^"<>]*")*)\s*(\/?)>$/;
  const stack: string[] = [];
  for (const text of body.match(/<[^>]*>/g) ?? []) {
    const m = tag.exec(text);
    expect(m && text).toBe(text);
    const [, closing, name, , selfClosing] = m!;
    if (closing) expect(stack.pop()).toBe(name);
    else if (!selfClosing) stack.push(name!);
  }
  expect(stack).toEqual([]);
  expect(body.trim().endsWith('</svg>')).toBe(true);
  expect(body).not.toMatch(/&(?!(amp|lt|gt|quot|apos);)/);
  expect(body).not.toMatch(/NaN|Infinity|undefined/);
}

/** The `points` of each polyline, as [x, y] pairs. */
function polylines(svg: string): [number, number][][] {
  return [...svg.matchAll(/<polyline points="([^"]*)"/g)].map((m) =>
    m[1]!.split(' ').map((p) => p.split(',').map(Number) as [number, number]),
  );
}

describe('svgChart', () => {
  it('draws one polyline per series, with one point per bucket', () => {
    const svg = svgChart({
      title: 'flood',
      bucketMs: 1000,
      series: { noisy: [100, 200, 300, 250], quiet: [5, 5, 4, 6] },
    });
    expectWellFormed(svg);
    const lines = polylines(svg);
    expect(lines).toHaveLength(2);
    expect(lines.map((l) => l.length)).toEqual([4, 4]);
    expect(svg).toContain(`width="${CHART_SIZE.width}" height="${CHART_SIZE.height}"`);
  });

  it('scales every point into the plot area, highest rate at the top and zero on the axis', () => {
    const svg = svgChart({ title: 't', bucketMs: 1000, series: { a: [0, 5, 10, 3] } });
    const [line] = polylines(svg);
    for (const [x, y] of line!) {
      expect(x).toBeGreaterThan(PLOT_AREA.left);
      expect(x).toBeLessThan(PLOT_AREA.right);
      expect(y).toBeGreaterThanOrEqual(PLOT_AREA.top);
      expect(y).toBeLessThanOrEqual(PLOT_AREA.bottom);
    }
    const ys = line!.map(([, y]) => y);
    expect(ys[0]).toBeCloseTo(PLOT_AREA.bottom, 0);
    // 10/s is a round axis maximum: the peak touches the top of the plot.
    expect(ys[2]).toBeCloseTo(PLOT_AREA.top, 0);
    const xs = line!.map(([x]) => x);
    expect([...xs].sort((a, b) => a - b)).toEqual(xs);
    // Points sit at the middle of their bucket: the gaps are one bucket, the first half a bucket.
    const bucket = (PLOT_AREA.right - PLOT_AREA.left) / 4;
    expect(xs[0]! - PLOT_AREA.left).toBeCloseTo(bucket / 2, 0);
    expect(xs[1]! - xs[0]!).toBeCloseTo(bucket, 0);
  });

  it('plots counts per bucket as rates per second on one shared scale', () => {
    const svg = svgChart({ title: 't', bucketMs: 500, series: { a: [10, 10], b: [5, 5] } });
    const [a, b] = polylines(svg);
    const height = (y: number) => PLOT_AREA.bottom - y;
    expect(height(b![0]![1])).toBeCloseTo(height(a![0]![1]) / 2, 0);
    // 10 per 500 ms = 20/s: the y axis is labelled in per-second rates.
    expect(svg).toMatch(/>20<\/text>/);
    expect(svg).toContain('a: mean 20/s');
  });

  it('plots levels as given when a unit is named', () => {
    const svg = svgChart({ title: 't', bucketMs: 5000, unit: 'ms', series: { p99: [40, 80] } });
    const [line] = polylines(svg);
    // 80 ms is the axis maximum (not 80 per 5 s = 16/s): the second point touches the top.
    expect(line![1]![1]).toBeCloseTo(PLOT_AREA.top, 0);
    expect(svg).toMatch(/>80<\/text>/);
    expect(svg).toContain('p99: mean 60 ms');
  });

  it('gives each decade the same height on the log scale', () => {
    const svg = svgChart({ title: 't', bucketMs: 1000, series: { a: [0, 9, 99] }, yScale: 'log' });
    const ys = polylines(svg)[0]!.map(([, y]) => y);
    expect(ys[0]).toBeCloseTo(PLOT_AREA.bottom, 0);
    expect(ys[0]! - ys[1]!).toBeGreaterThan(10);
    expect(ys[0]! - ys[1]!).toBeCloseTo(ys[1]! - ys[2]!, 0);
    expect(svg).toContain('jobs/s (log scale)');
  });

  it('escapes the title, the axis label and series names', () => {
    const svg = svgChart({
      title: 'a < b & "c"',
      bucketMs: 1000,
      yLabel: "jobs/s <'x'>",
      series: { '<script>alert(1)</script>': [1, 2] },
    });
    expectWellFormed(svg);
    expect(svg).toContain('a &lt; b &amp; &quot;c&quot;');
    expect(svg).toContain('jobs/s &lt;&apos;x&apos;&gt;');
    expect(svg).toContain('&lt;script&gt;alert(1)&lt;/script&gt;');
    expect(svg).not.toContain('<script>');
  });

  it('handles no series, empty series and all-zero series', () => {
    const none = svgChart({ title: 'nothing', bucketMs: 1000, series: {} });
    expectWellFormed(none);
    expect(polylines(none)).toHaveLength(0);
    expect(none).toContain('no data');
    // An idle chart still gets a 0–1/s axis rather than a degenerate one.
    expect(none).toMatch(/>1<\/text>/);

    const mixed = svgChart({ title: 'mixed', bucketMs: 1000, series: { empty: [], zeros: [0, 0, 0] } });
    expectWellFormed(mixed);
    const lines = polylines(mixed);
    expect(lines).toHaveLength(1);
    for (const [, y] of lines[0]!) expect(y).toBeCloseTo(PLOT_AREA.bottom, 0);
    expect(mixed).toContain('empty: no data');
    expect(mixed).toContain('zeros: mean 0.0/s');
  });

  it('lists at most what fits in the legend and dashes lines past the tenth colour', () => {
    const series = Object.fromEntries(Array.from({ length: 20 }, (_, i) => [`t${i}`, [i, i + 1]]));
    const svg = svgChart({ title: 'many', bucketMs: 1000, series });
    expectWellFormed(svg);
    expect(polylines(svg)).toHaveLength(20);
    // 14 rows fit: 13 names and the count of the rest.
    expect(svg).toContain('t12: mean');
    expect(svg).not.toContain('t13: mean');
    expect(svg).toContain('+7 more');
    expect(svg.match(/<polyline[^>]*stroke-dasharray/g)).toHaveLength(10);
  });

  it('rejects a bucket width that is not positive', () => {
    expect(() => svgChart({ title: 't', bucketMs: 0, series: { a: [1] } })).toThrow(RangeError);
  });
});

describe('svgCharts', () => {
  it('stacks the charts vertically in one document', () => {
    const svg = svgCharts([
      { title: 'first', bucketMs: 1000, series: { a: [1, 2] } },
      { title: 'second', bucketMs: 500, series: { b: [3], c: [4] } },
    ]);
    expectWellFormed(svg);
    expect(svg).toContain(`height="${CHART_SIZE.height * 2}"`);
    expect(svg).toContain('<g transform="translate(0 0)">');
    expect(svg).toContain(`<g transform="translate(0 ${CHART_SIZE.height})">`);
    expect(svg.match(/<svg /g)).toHaveLength(1);
    expect(polylines(svg)).toHaveLength(3);
    expect(svg.indexOf('first')).toBeLessThan(svg.indexOf('second'));
  });
});
