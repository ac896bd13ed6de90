/**
 * A request's logger is built only when the request logs (request-logger.ts): a failed
 * request's line still carries its request id and the server's bindings; a request that
 * logs nothing writes nothing.
 */
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deferredChildLogger } from '../../src/http/request-logger.ts';
import { startTestServer, type TestServer } from '../helpers/http-server.ts';

const lines: Record<string, unknown>[] = [];
let s: TestServer;
beforeAll(async () => {
  const logger = pino({ level: 'info' }, { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) });
  s = await startTestServer({ tenants: [{ id: 'tenant-a' }], logger });
  await s.deploy('tenant-a', 'echo', 'export function echo(a) { return a; }');
});
afterAll(() => s.dispose());

describe('request logger', () => {
  it('should log a refused request with its request id and the server logger bindings', async () => {
    const res = await s.inject({ method: 'POST', url: '/v1/tenants/tenant-a/apps/echo/calls/echo', headers: { authorization: 'Bearer nope', 'x-request-id': 'req-refused-1' }, payload: {} });
    expect(res.statusCode).toBe(401);
    const line = lines.find((l) => l.reqId === 'req-refused-1');
    expect(line).toMatchObject({ reqId: 'req-refused-1', component: 'http', code: 'unauthenticated', level: 30 });
  });

  it('should write nothing for a request that does not log', async () => {
    const res = await s.inject({ method: 'POST', url: '/v1/tenants/tenant-a/apps/echo/calls/echo', headers: { authorization: `Bearer ${await s.token('tenant-a')}`, 'x-request-id': 'req-ok-1' }, payload: { a: 1 } });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ result: { a: 1 } });
    expect(lines.some((l) => l.reqId === 'req-ok-1')).toBe(false);
  });

  it('should stand for parent.child(bindings): same level, children and lines, and build it once', () => {
    const out: Record<string, unknown>[] = [];
    const parent = pino({ level: 'warn' }, { write: (line: string) => void out.push(JSON.parse(line) as Record<string, unknown>) });
    let built = 0;
    const counting = Object.assign(Object.create(parent) as typeof parent, {
      child: (b: pino.Bindings, o?: pino.ChildLoggerOptions) => {
        built++;
        return parent.child(b, o);
      },
    });
    const log = deferredChildLogger(counting, { reqId: 'r-1' }, {});
    expect(built).toBe(0);
    expect(log.level).toBe('warn');
    log.info('below the level');
    log.warn({ n: 1 }, 'kept');
    log.child({ extra: 2 }).error('from a child');
    expect(built).toBe(1);
    expect(out).toMatchObject([
      { reqId: 'r-1', n: 1, msg: 'kept', level: 40 },
      { reqId: 'r-1', extra: 2, msg: 'from a child', level: 50 },
    ]);
    expect(out).toHaveLength(2);
  });
});
