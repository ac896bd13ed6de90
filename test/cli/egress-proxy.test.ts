/**
 * `isohost egress-proxy` as its own process (for `egress_proxy.external: true`): it
 * prints its address, refuses a request without a credential (407, nothing forwarded)
 * and exits 0 on SIGTERM.
 */
import { spawn } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Pool } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer, type AddressInfo } from 'node:net';
import { BIN, ROOT, cli } from '../helpers/cli.ts';
import { testConfigObject } from '../helpers/platform.ts';
import { tempDir } from '../helpers/tmp.ts';

let dir: Awaited<ReturnType<typeof tempDir>>;
beforeAll(async () => {
  dir = await tempDir();
});
afterAll(() => dir.dispose());

/** A loopback port nothing listens on right now. */
function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

describe('isohost egress-proxy', () => {
  it('should refuse an external proxy without its port (0 means any free port, in-process only)', async () => {
    const raw = testConfigObject(dir.path, [{ id: 'a' }]) as Record<string, any>;
    raw.deployment.egress_proxy = { host: '127.0.0.1', port: 0, external: true };
    const file = join(dir.path, 'external-0.json');
    await writeFile(file, JSON.stringify(raw));
    const r = await cli(['config', 'check', file]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('deployment.egress_proxy.port: an external egress proxy needs its port');
  });

  it('should serve the proxy, refuse an unauthenticated request with 407 and stop on SIGTERM', async () => {
    const raw = testConfigObject(dir.path, [{ id: 'a', allow: ['127.0.0.1:1'] }]) as Record<string, any>;
    raw.deployment.egress_proxy = { host: '127.0.0.1', port: await freePort(), external: true };
    const file = join(dir.path, 'config.json');
    await writeFile(file, JSON.stringify(raw));
    const child = spawn(process.execPath, [BIN, 'egress-proxy', '--config', file], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    let out = '';
    const url = await new Promise<string>((resolve, reject) => {
      child.stdout.on('data', (d) => {
        out += d;
        const m = /"egress_proxy":"([^"]+)"/.exec(out);
        if (m) resolve(m[1]!);
      });
      void exited.then(() => reject(new Error('egress-proxy exited before listening')));
    });
    // absolute-form, as a forward proxy receives it (RFC 9112 §3.2.2)
    const pool = new Pool(url);
    const res = await pool.request({ method: 'GET', path: 'http://127.0.0.1:1/' });
    expect(res.statusCode).toBe(407);
    await res.body.dump();
    await pool.close();
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
  });
});
