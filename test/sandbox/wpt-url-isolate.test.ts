/**
 * The WPT URL vectors (../shared/wpt) run inside a real isolate against the `URL` a
 * mini-app gets. The isolate must score exactly what Node's own `URL` scores on the
 * same vectors (CONTRACT §3, issue 2): same passes, same failures.
 */
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bundleOf } from '../helpers/bundle.ts';
import { callOnce, startTestPlatform } from '../helpers/platform.ts';

const WPT = new URL('../../../shared/wpt/', import.meta.url);
const parsing = (JSON.parse(readFileSync(new URL('urltestdata.json', WPT), 'utf8')) as unknown[]).filter((x) => typeof x === 'object');
const setters = JSON.parse(readFileSync(new URL('setters_tests.json', WPT), 'utf8')) as Record<string, unknown>;

/** Runs in the isolate and, with Node's URL passed in, on the host: one verdict per vector. */
function runParsing(vectors: any[], U: any = URL): boolean[] {
  const attrs = ['href', 'origin', 'protocol', 'username', 'password', 'host', 'hostname', 'port', 'pathname', 'search', 'hash'];
  return vectors.map((v) => {
    let url: any;
    try {
      url = v.base === null || v.base === undefined ? new U(v.input) : new U(v.input, v.base);
    } catch {
      return v.failure === true;
    }
    if (v.failure === true) return false;
    return attrs.every((a) => v[a] === undefined || url[a] === v[a]);
  });
}

function runSetters(groups: Record<string, any>, U: any = URL): boolean[] {
  const out: boolean[] = [];
  for (const attr of Object.keys(groups)) {
    if (attr === 'comment') continue;
    for (const t of groups[attr]) {
      try {
        const url = new U(t.href);
        url[attr] = t.new_value;
        out.push(Object.keys(t.expected).every((k) => url[k] === t.expected[k]));
      } catch {
        out.push(false);
      }
    }
  }
  return out;
}

const app = bundleOf({ runParsing, runSetters });

let p: Awaited<ReturnType<typeof startTestPlatform>>;
beforeAll(async () => {
  p = await startTestPlatform([{ id: 'wpt', limits: { cpu_ms: 60_000, wall_ms: 120_000, memory_mb: 128 } }]);
});
afterAll(() => p.dispose());

describe('WPT URL vectors inside the isolate', () => {
  it('should pass exactly the urltestdata vectors Node passes', async () => {
    const node = runParsing(parsing, URL);
    const isolate: boolean[] = await callOnce(p, 'wpt', 'wpt', app, 'runParsing', parsing);
    const passed = (r: boolean[]) => r.filter(Boolean).length;
    console.info(`urltestdata: isolate ${passed(isolate)}/${isolate.length}, node ${passed(node)}/${node.length}`);
    expect(isolate).toHaveLength(parsing.length);
    expect(isolate).toEqual(node);
  });

  it('should pass exactly the setters vectors Node passes', async () => {
    const node = runSetters(setters, URL);
    const isolate: boolean[] = await callOnce(p, 'wpt', 'wpt', app, 'runSetters', setters);
    const passed = (r: boolean[]) => r.filter(Boolean).length;
    console.info(`setters: isolate ${passed(isolate)}/${isolate.length}, node ${passed(node)}/${node.length}`);
    expect(isolate).toEqual(node);
  });
});
