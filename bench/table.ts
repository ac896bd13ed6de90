/**
 * The human-readable table `npm run bench` prints on stdout (CONTRACT §6). The JSON file
 * carries the raw records; the ratio column exists only here, computed from the p50s of
 * the same run.
 */
import type { Result } from './stats.ts';

const HEADERS = ['name', 'unit', 'p50', 'p99', 'n', 'p50 vs baseline', 'extra'];

/** Enough significant digits to compare rows, without ns noise on large values. */
export function formatNumber(x: number): string {
  const abs = Math.abs(x);
  if (abs >= 1000) return x.toFixed(0);
  if (abs >= 100) return x.toFixed(1);
  if (abs >= 10) return x.toFixed(2);
  return x.toFixed(3);
}

function ratioCell(r: Result, byName: Map<string, Result>, baselineOf: Readonly<Record<string, string>>): string {
  const baselineName = baselineOf[r.name];
  if (baselineName === undefined) return '';
  const baseline = byName.get(baselineName);
  if (baseline === undefined) return `(no ${baselineName})`;
  if (baseline.unit !== r.unit) return `(unit differs from ${baselineName})`;
  if (baseline.p50 === 0) return '';
  return `${(r.p50 / baseline.p50).toFixed(2)}x ${baselineName}`;
}

/** formatNumber without trailing fractional zeros: `rps=21034`, `concurrency=32`. */
function compactNumber(x: number): string {
  const s = formatNumber(x);
  return s.includes('.') ? s.replace(/\.?0+$/, '') : s;
}

function extraCell(extra: Result['extra']): string {
  if (extra === undefined) return '';
  return Object.entries(extra)
    .map(([k, v]) => `${k}=${typeof v === 'number' ? compactNumber(v) : v}`)
    .join(' ');
}

/**
 * Formats results as an aligned text table, one row per result, ratio to the baseline
 * (p50 / baseline p50) where `baselineOf` names one present in `results`.
 *
 * @example
 * process.stdout.write(formatTable(results, { 'call.noop': 'baseline.ivm.call' }));
 */
export function formatTable(results: readonly Result[], baselineOf: Readonly<Record<string, string>>): string {
  const byName = new Map(results.map((r) => [r.name, r]));
  const rows = results.map((r) => [
    r.name,
    r.unit,
    formatNumber(r.p50),
    formatNumber(r.p99),
    String(r.n),
    ratioCell(r, byName, baselineOf),
    extraCell(r.extra),
  ]);
  if (rows.length === 0) return '(no results)\n';
  const widths = HEADERS.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i].length)));
  // Numbers right-aligned so digits line up; text left-aligned.
  const numeric = new Set([2, 3, 4]);
  const line = (cells: string[]): string =>
    cells
      .map((c, i) => (numeric.has(i) ? c.padStart(widths[i]) : c.padEnd(widths[i])))
      .join('  ')
      .trimEnd();
  const rule = widths.map((w) => '-'.repeat(w)).join('  ');
  return `${[line(HEADERS), rule, ...rows.map(line)].join('\n')}\n`;
}
