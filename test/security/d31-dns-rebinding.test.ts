/**
 * THREATS D31, the rebinding half (test/egress/proxy.test.ts covers private and mixed
 * answers): a name whose answer changes between the check and the connect. The proxy
 * resolves once per request and connects to exactly the address it checked — it never
 * resolves again at connect time — so a rebound answer reaches nothing; the next
 * request sees the new answer and is checked (and refused) on its own.
 *
 * Loopback only: the "good" answer is 127.0.0.1 (named by an IP rule), the "rebound"
 * answer 127.0.0.2, where a listening decoy would record any connection.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rawRequest, startTestProxy, startUpstream, type TestProxy, type Upstream, watchConnections } from '../helpers/egress-fixtures.ts';

let up: Upstream;
let decoy: Upstream;
let t: TestProxy;
let P: number;
let answers = 0;

beforeAll(async () => {
  up = await startUpstream('checked');
  P = up.port;
  decoy = await startUpstream('rebound', undefined, { host: '127.0.0.2', port: P });
  // Each lookup of rebind.test gets the next answer: first the checked one, then the rebound one.
  const dns = {
    get 'rebind.test'() {
      return answers === 0 ? ['127.0.0.1'] : ['127.0.0.2'];
    },
  };
  t = await startTestProxy({ victim: { rules: [`rebind.test:${P}`, `127.0.0.1:${P}`] } }, dns as unknown as Record<string, string[]>);
});
afterAll(async () => {
  await Promise.all([up?.close(), decoy?.close(), t?.close()]);
});

const lookupsOf = (name: string) => t.lookups.filter((h) => h === name).length;

function request(kind: 'absolute' | 'connect') {
  const cred = t.credential('victim');
  return kind === 'absolute'
    ? rawRequest(t.proxy.port, [`GET http://rebind.test:${P}/ HTTP/1.1`, `Host: rebind.test:${P}`, `Proxy-Authorization: Bearer ${cred}`, 'Connection: close'])
    : rawRequest(t.proxy.port, [`CONNECT rebind.test:${P} HTTP/1.1`, `Host: rebind.test:${P}`, `Proxy-Authorization: Bearer ${cred}`]);
}

describe.each(['absolute', 'connect'] as const)('a name that rebinds after the check (%s)', (kind) => {
  it('should connect to the address it checked, resolving once, and never to the rebound one', async () => {
    answers = 0;
    const before = lookupsOf('rebind.test');
    const watch = watchConnections();
    let res;
    try {
      res = await request(kind);
      answers = 1; // from now on the name "rebinds"
      if (kind === 'connect') {
        // Speak through the tunnel: the bytes must reach the checked server.
        res.socket.write(`GET / HTTP/1.1\r\nHost: rebind.test\r\nConnection: close\r\n\r\n`);
        const reply = await new Promise<string>((resolve) => {
          let buf = res!.rest.toString();
          res!.socket.on('data', (d: Buffer) => (buf += d.toString()));
          res!.socket.on('end', () => resolve(buf));
          res!.socket.on('close', () => resolve(buf));
        });
        expect(reply).toContain('ok from checked');
      } else {
        expect(res.body).toBe('ok from checked');
      }
    } finally {
      watch.stop();
    }
    expect(res.status).toBe(200);
    expect(lookupsOf('rebind.test') - before).toBe(1);
    expect(watch.attempts).toContain(`127.0.0.1:${P}`);
    expect(watch.attempts.filter((a) => a.endsWith(`:${P}`) && !a.startsWith('127.0.0.1:'))).toEqual([]);
    expect(decoy.connections).toBe(0);
  });

  it('should check the rebound answer on the next request, and refuse it', async () => {
    answers = 1;
    const res = await request(kind);
    expect(res.status).toBe(403);
    expect(res.headers['x-isohost-egress-message'] ?? res.body).toMatch(/rebind\.test resolves to a loopback address/);
    expect(decoy.connections).toBe(0);
  });
});
