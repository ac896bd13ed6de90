/**
 * A tenant's log stream through the HTTP API on a real port (issue 12): its mini-apps' lines
 * and its calls' outcomes as NDJSON, each naming request id, app, version and instance;
 * never another tenant's; live with follow=true until the client closes.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tenantLogHub } from '../../src/bindings/log/hub.ts';
import { bundleOf } from '../helpers/bundle.ts';
import { startLifecycleServer, type LifecycleServer } from '../helpers/lifecycle-server.ts';

declare const fc: any;

const LOGGER = bundleOf({
  say: (args: { text: string }) => {
    fc.log.info(args.text, { n: 1 });
    return 'said';
  },
});

let s: LifecycleServer;
const versions: Record<string, string> = {};

beforeAll(async () => {
  s = await startLifecycleServer([{ id: 'tenant-a' }, { id: 'tenant-b' }]);
  for (const t of ['tenant-a', 'tenant-b']) {
    const res = await s.api('PUT', `/v1/tenants/${t}/apps/talker`, { token: await s.token(t), body: LOGGER });
    expect(res.status, res.text).toBe(201);
    versions[t] = res.json().version;
  }
  await s.api('PUT', '/v1/tenants/tenant-a/apps/other', { token: await s.token('tenant-a'), body: LOGGER });
});
afterAll(() => s?.dispose());

async function say(tenant: string, text: string, app = 'talker'): Promise<string> {
  const res = await s.api('POST', `/v1/tenants/${tenant}/apps/${app}/calls/say`, { token: await s.token(tenant, 'alice'), body: { text } });
  expect(res.status, res.text).toBe(200);
  return res.headers.get('x-request-id')!;
}

async function readLogs(tenant: string, query = '', token?: string) {
  return s.api('GET', `/v1/tenants/${tenant}/logs${query}`, { token: token ?? (await s.token(tenant, 'reader', 'logs:read')) });
}
const parse = (text: string) => text.split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as Record<string, any>);

describe('GET /v1/tenants/:tenant/logs', () => {
  it("should give each line its request id, app, version and instance, and the call's outcome", async () => {
    const requestId = await say('tenant-a', 'secret-of-a');
    const res = await readLogs('tenant-a');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^application\/x-ndjson/);
    const lines = parse(res.text).filter((l) => l.request_id === requestId);
    const log = lines.find((l) => l.type === 'log')!;
    expect(log).toMatchObject({ app: 'talker', version: versions['tenant-a'], level: 'info', msg: 'secret-of-a', fields: { n: 1 } });
    expect(log.instance).toMatch(/.+/);
    expect(lines.find((l) => l.type === 'call')).toMatchObject({ app: 'talker', version: versions['tenant-a'], method: 'say', outcome: 'ok' });
  });

  it("should never show tenant A's lines in tenant B's stream", async () => {
    await say('tenant-a', 'another-secret-of-a');
    await say('tenant-b', 'hello-from-b');
    const text = (await readLogs('tenant-b')).text;
    expect(text).toContain('hello-from-b');
    expect(text).not.toContain('secret-of-a');
    expect(parse(text).every((l) => l.version === versions['tenant-b'])).toBe(true);
  });

  it("should refuse another tenant's token (401) and a token without logs:read (403)", async () => {
    expect((await readLogs('tenant-b', '', await s.token('tenant-a', 'reader', 'logs:read'))).status).toBe(401);
    expect((await readLogs('tenant-b', '', await s.operatorToken('olga', 'logs:read apps:review'))).status).toBe(401);
    expect((await readLogs('tenant-b', '', await s.token('tenant-b', 'reader', 'apps:call apps:deploy'))).status).toBe(403);
  });

  it('should keep only the named app with ?app=', async () => {
    await say('tenant-a', 'from-other', 'other');
    const lines = parse((await readLogs('tenant-a', '?app=other')).text);
    expect(lines.length).toBeGreaterThan(0);
    expect(lines.every((l) => l.app === 'other')).toBe(true);
    expect(lines.some((l) => l.msg === 'from-other')).toBe(true);
  });

  it('should stream a new line live with follow=true, and let go when the client closes', async () => {
    const hub = tenantLogHub(s.platform.tenants.get('tenant-a'));
    const before = hub.subscribers;
    const stop = new AbortController();
    const res = await fetch(`${s.url}/v1/tenants/tenant-a/logs?follow=true&app=talker`, {
      headers: { authorization: `Bearer ${await s.token('tenant-a', 'reader', 'logs:read')}` },
      signal: stop.signal,
    });
    expect(res.status).toBe(200);
    const reader = res.body!.getReader();
    const decoder = new TextDecoder();
    let buffered = '';
    // Sent only after the stream is open: this line can reach the client only live.
    const requestId = await say('tenant-a', 'live-line');
    let found: Record<string, any> | undefined;
    while (found === undefined) {
      const { value, done } = await reader.read();
      expect(done).toBe(false);
      buffered += decoder.decode(value, { stream: true });
      found = parse(buffered.slice(0, buffered.lastIndexOf('\n') + 1)).find((l) => l.msg === 'live-line');
    }
    expect(found).toMatchObject({ type: 'log', request_id: requestId, app: 'talker' });
    expect(buffered).not.toContain('from-other');
    stop.abort();
    await expect.poll(() => hub.subscribers, { timeout: 5000 }).toBe(before);
  });
});
