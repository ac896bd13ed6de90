/**
 * The WPT URL vectors (test/fixtures/wpt) run inside a real isolate against the `URL` a
 * mini-app gets. The isolate must score exactly what Node's own `URL` scores on the
 * same vectors (CONTRACT §3, issue 2): same passes, same failures.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bundleOf } from '../helpers/bundle.ts';
import { callOnce, startTestPlatform } from '../helpers/platform.ts';
import { parsingVectors as parsing, runParsing, runSetters, setterGroups as setters } from '../helpers/wpt.ts';

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
