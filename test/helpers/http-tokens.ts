/**
 * The identity attacks of THREATS §C as Authorization header values, built from real keys:
 * each entry makes a header that a request to `victim`'s routes must answer with 401.
 * `undefined` means "no Authorization header at all". A static table, so test names exist
 * before any server starts.
 */
import { base64url } from 'jose';
import { craftToken, hs256With } from './identity-fixtures.ts';
import type { TestServer } from './http-server.ts';

export interface BadCredential {
  name: string;
  /** The 401 message: proves the request failed for this attack's reason, not by accident. */
  reason: string;
  make(s: TestServer, victim: string, other: string): Promise<string | undefined>;
}

function flipSignature(token: string): string {
  const [h, p, s] = token.split('.');
  const sig = base64url.decode(s!);
  sig[10]! ^= 0xff;
  return `${h}.${p}.${base64url.encode(sig)}`;
}

async function noneHeader(s: TestServer, victim: string) {
  const { keys: [pub] } = await s.identity.jwks(victim);
  return { header: { alg: 'none', kid: pub!.kid, typ: 'isohost+jwt' }, pub: pub! };
}

const bearerOf = async (token: Promise<string> | string) => `Bearer ${await token}`;

export const BAD_CREDENTIALS: readonly BadCredential[] = [
  { name: 'a valid token of another tenant (THREATS C19)', reason: 'unknown signing key', make: (s, _v, other) => bearerOf(s.token(other)) },
  { name: "another realm's key signing the victim's iss and aud", reason: 'unknown signing key', make: (s, victim, other) => bearerOf(s.signRaw(other, s.claims(victim))) },
  { name: 'a forged signature', reason: 'signature invalid', make: async (s, victim) => bearerOf(flipSignature(await s.token(victim))) },
  {
    name: 'a payload edited under a real signature', reason: 'signature invalid',
    make: async (s, victim) => {
      const [h, , sig] = (await s.token(victim)).split('.');
      return bearerOf(`${h}.${base64url.encode(JSON.stringify(s.claims(victim, { sub: 'root' })))}.${sig}`);
    },
  },
  { name: 'alg none (THREATS C21)', reason: 'algorithm not allowed', make: async (s, victim) => bearerOf(craftToken((await noneHeader(s, victim)).header, s.claims(victim))) },
  {
    name: 'HS256 keyed with the realm public key (THREATS C21)', reason: 'algorithm not allowed',
    make: async (s, victim) => {
      const { header, pub } = await noneHeader(s, victim);
      return bearerOf(craftToken({ ...header, alg: 'HS256' }, s.claims(victim), hs256With(Buffer.from(pub.x, 'base64url'))));
    },
  },
  { name: 'a wrong iss', reason: 'wrong issuer', make: (s, victim, other) => bearerOf(s.signRaw(victim, s.claims(victim, { iss: `isohost:realm:${other}` }))) },
  { name: 'a wrong aud (THREATS C20)', reason: 'wrong audience', make: (s, victim, other) => bearerOf(s.signRaw(victim, s.claims(victim, { aud: other }))) },
  {
    name: 'a token expired beyond the 60 s skew (THREATS C23)', reason: 'token expired',
    make: (s, victim) => bearerOf(s.identity.mint(victim, { sub: 'alice', scope: 'apps:call apps:deploy', ttl: 60, now: () => Date.now() - 122_000 })),
  },
  { name: 'an nbf beyond the 60 s skew (THREATS C23)', reason: 'token not yet valid', make: (s, victim) => bearerOf(s.signRaw(victim, s.claims(victim, { nbf: Math.floor(Date.now() / 1000) + 120 }))) },
  {
    name: 'a token without exp (THREATS C22)', reason: 'token has no "exp" claim',
    make: (s, victim) => {
      const claims = s.claims(victim);
      delete claims.exp;
      return bearerOf(s.signRaw(victim, claims));
    },
  },
  { name: 'an ID-token-like typ JWT (THREATS C26)', reason: 'wrong token type', make: (s, victim) => bearerOf(s.signRaw(victim, s.claims(victim), { typ: 'JWT' })) },
  { name: 'garbage', reason: 'malformed token', make: async () => 'Bearer not-a-jwt' },
  { name: 'garbage outside the base64url alphabet', reason: 'missing or malformed Authorization: Bearer token', make: async () => 'Bearer ey.?.%%' },
  { name: 'an empty bearer', reason: 'missing or malformed Authorization: Bearer token', make: async () => 'Bearer ' },
  { name: 'a missing Authorization header', reason: 'missing or malformed Authorization: Bearer token', make: async () => undefined },
  { name: 'the Basic scheme', reason: 'missing or malformed Authorization: Bearer token', make: async () => `Basic ${Buffer.from('alice:hunter2').toString('base64')}` },
  { name: 'a valid token without the Bearer scheme', reason: 'missing or malformed Authorization: Bearer token', make: (s, victim) => s.token(victim) },
];
