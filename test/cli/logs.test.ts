/**
 * `isohost logs` and `isohost token --realm` as a user runs them (issue 12): the real CLI in a
 * child process against the HTTP API on a real port, tokens from ISOHOST_TOKEN.
 */
import { spawn } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bundleOf } from '../helpers/bundle.ts';
import { BIN, cli } from '../helpers/cli.ts';
import { startLifecycleServer, type LifecycleServer } from '../helpers/lifecycle-server.ts';

declare const fc: any;

const TALKER = bundleOf({
  say: (args: { text: string }) => {
    fc.log.warn(args.text);
    return 'said';
  },
});

let s: LifecycleServer;

beforeAll(async () => {
  s = await startLifecycleServer([{ id: 'tenant-a', review: 'required' }, { id: 'tenant-b' }]);
  // The operator realm's first key is made here, so the CLI signs with the key the server has read.
  await s.operatorToken();
  const up = await s.api('PUT', '/v1/tenants/tenant-b/apps/talker', { token: await s.token('tenant-b'), body: TALKER });
  expect(up.status, up.text).toBe(201);
});
afterAll(() => s?.dispose());

async function say(tenant: string, text: string) {
  const res = await s.api('POST', `/v1/tenants/${tenant}/apps/talker/calls/say`, { token: await s.token(tenant), body: { text } });
  expect(res.status, res.text).toBe(200);
}

describe('isohost token --realm', () => {
  it('should mint an operator-realm token that approves a pending version', async () => {
    const up = await s.api('PUT', '/v1/tenants/tenant-a/apps/talker', { token: await s.token('tenant-a'), body: TALKER });
    expect(up.json().state).toBe('pending');
    const minted = await cli(['token', '--realm', 'ops', '--sub', 'olga', '--scope', 'apps:review', '--config', s.configFile]);
    expect(minted.code, minted.stderr).toBe(0);
    const token = minted.stdout.trim();
    expect(token.split('.')).toHaveLength(3);
    const res = await s.api('POST', `/v1/tenants/tenant-a/apps/talker/versions/${up.json().version}/approve`, { token });
    expect(res.status, res.text).toBe(200);
    expect(s.logLines().find((l) => l.event === 'approve')?.by).toEqual({ sub: 'olga', realm: 'ops' });
  });

  it('should refuse an unknown realm (exit 1) and --tenant with --realm (exit 2)', async () => {
    const unknown = await cli(['token', '--realm', 'nope', '--sub', 'olga', '--config', s.configFile]);
    expect(unknown.code).toBe(1);
    expect(unknown.lastError?.error?.code).toBe('not_found');
    const both = await cli(['token', '--realm', 'ops', '--tenant', 'tenant-a', '--sub', 'olga', '--config', s.configFile]);
    expect(both.code).toBe(2);
  });
});

describe('isohost logs', () => {
  it("should print the tenant's lines as NDJSON and none of another tenant's", async () => {
    await say('tenant-a', 'only-for-a');
    await say('tenant-b', 'only-for-b');
    const res = await cli(['logs', '--tenant', 'tenant-b', '--server', s.url], { env: { ISOHOST_TOKEN: await s.token('tenant-b', 'reader', 'logs:read') } });
    expect(res.code, res.stderr).toBe(0);
    const lines = res.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, any>);
    expect(lines.find((l) => l.msg === 'only-for-b')).toMatchObject({ type: 'log', level: 'warn', app: 'talker' });
    expect(res.stdout).not.toContain('only-for-a');
  });

  it('should need ISOHOST_TOKEN (exit 2) and pass the server\'s 403 on', async () => {
    const none = await cli(['logs', '--tenant', 'tenant-b', '--server', s.url], { env: { ISOHOST_TOKEN: '' } });
    expect(none.code).toBe(2);
    const denied = await cli(['logs', '--tenant', 'tenant-b', '--server', s.url], { env: { ISOHOST_TOKEN: await s.token('tenant-b', 'reader', 'apps:call') } });
    expect(denied.code).toBe(1);
    expect(denied.lastError?.error?.code).toBe('forbidden');
  });

  it('should print a new line live with --follow and exit 0 on SIGINT', async () => {
    const child = spawn(process.execPath, [BIN, 'logs', '--tenant', 'tenant-b', '--app', 'talker', '--follow', '--server', s.url], {
      env: { ...process.env, ISOHOST_TOKEN: await s.token('tenant-b', 'reader', 'logs:read') },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    try {
      // The ring's lines come first: once they are out, the stream is open.
      await expect.poll(() => out.includes('only-for-b'), { timeout: 15_000 }).toBe(true);
      await say('tenant-b', 'live-for-b');
      await expect.poll(() => out.includes('live-for-b'), { timeout: 15_000 }).toBe(true);
      child.kill('SIGINT');
      expect(await exited).toBe(0);
    } finally {
      child.kill('SIGKILL');
    }
  }, 40_000);
});
