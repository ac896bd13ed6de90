import { randomBytes } from 'node:crypto';
import { chmod, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { bearerFrom, mintEgressCredential, verifyEgressCredential } from '../../src/egress/credential.ts';
import { loadOrCreateEgressKey } from '../../src/egress/main.ts';
import { IsohostError } from '../../src/errors.ts';
import { tempDir } from '../helpers/tmp.ts';

const key = randomBytes(32);
const claims = { tenant: 'business-unit-a', app: 'shop', instance: 'i-1', exp: Date.now() + 60_000 };

describe('egress credential', () => {
  it('should verify what it minted and return the claims', () => {
    expect(verifyEgressCredential(key, mintEgressCredential(key, claims))).toEqual(claims);
  });

  it('should refuse an expired credential, at the exact boundary too', () => {
    const cred = mintEgressCredential(key, claims);
    expect(verifyEgressCredential(key, cred, claims.exp)).toBeNull();
    expect(verifyEgressCredential(key, cred, claims.exp - 1)).toEqual(claims);
  });

  it('should refuse a credential from another key', () => {
    expect(verifyEgressCredential(randomBytes(32), mintEgressCredential(key, claims))).toBeNull();
  });

  it('should refuse a payload swapped to another tenant (MAC over the payload)', () => {
    const [v, , mac] = mintEgressCredential(key, claims).split('.');
    const forged = Buffer.from(JSON.stringify(['partner-acme', 'shop', 'i-1', claims.exp])).toString('base64url');
    expect(verifyEgressCredential(key, `${v}.${forged}.${mac}`)).toBeNull();
  });

  it.each([undefined, '', 'v1', 'v1..', 'v2.abc.def', 'x'.repeat(5000), 'v1.e30.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA'])('should refuse malformed %j', (token) => {
    expect(verifyEgressCredential(key, token)).toBeNull();
  });

  it('should refuse a correctly signed payload of the wrong shape', () => {
    const bad = mintEgressCredential(key, { ...claims, tenant: '' });
    expect(verifyEgressCredential(key, bad)).toBeNull();
  });

  it('should refuse a key shorter than 32 bytes', () => {
    expect(() => mintEgressCredential(randomBytes(16), claims)).toThrow(RangeError);
  });

  it.each([
    ['Bearer abc.def', 'abc.def'], ['bearer abc', 'abc'], ['Basic abc', null], ['Bearer', null], ['Bearer a b', null], [undefined, null],
  ])('should read %j from Proxy-Authorization as %j', (header, token) => {
    expect(bearerFrom(header)).toBe(token);
  });
});

describe('loadOrCreateEgressKey', () => {
  let dispose: (() => Promise<void>) | undefined;
  afterEach(async () => { await dispose?.(); });

  it('should create a 0600 key once and read the same key after', async () => {
    const dir = await tempDir();
    dispose = dir.dispose;
    const data = join(dir.path, 'data');
    const first = await loadOrCreateEgressKey(data);
    expect(first.length).toBe(32);
    expect((await stat(join(data, 'egress.key'))).mode & 0o777).toBe(0o600);
    expect((await loadOrCreateEgressKey(data)).equals(first)).toBe(true);
    expect((await readFile(join(data, 'egress.key'), 'utf8')).trim()).toBe(first.toString('hex'));
  });

  it('should refuse a key file readable by others, or too short', async () => {
    const dir = await tempDir();
    dispose = dir.dispose;
    const path = join(dir.path, 'egress.key');
    await writeFile(path, randomBytes(32).toString('hex'), { mode: 0o644 });
    await chmod(path, 0o644);
    await expect(loadOrCreateEgressKey(dir.path)).rejects.toMatchObject({ code: 'config_invalid' });
    await writeFile(path, 'abcd');
    await chmod(path, 0o600);
    const err = await loadOrCreateEgressKey(dir.path).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(IsohostError);
    expect((err as IsohostError).message).not.toContain(dir.path);
  });
});
