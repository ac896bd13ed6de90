/**
 * Real parts for egress tests: loopback upstream servers that count what reaches them,
 * the real proxy on an ephemeral port with an injected resolver (test names map to
 * 127.0.0.1, every lookup recorded), captured audit lines, a raw socket client for
 * request targets no URL-normalising client would send, and a watcher that records every
 * outbound TCP connection attempt made by this process (node:diagnostics_channel).
 */
import { randomBytes } from 'node:crypto';
import dc from 'node:diagnostics_channel';
import { type IncomingMessage, type ServerResponse, createServer } from 'node:http';
import { type AddressInfo, type Socket, connect } from 'node:net';
import pino from 'pino';
import { Registry } from 'prom-client';
import type { CallScope } from '../../src/bindings/types.ts';
import { mintEgressCredential } from '../../src/egress/credential.ts';
import { type EgressProxy, type TenantEgressPolicy, startEgressProxy } from '../../src/egress/proxy.ts';

export interface SeenRequest {
  method: string;
  url: string;
  headers: Record<string, string | string[] | undefined>;
  rawHeaders: string[];
  body: Buffer;
}

export interface Upstream {
  readonly port: number;
  readonly origin: string;
  readonly requests: SeenRequest[];
  /** TCP connections accepted (CONNECT tunnels count here even without a request). */
  connections: number;
  close(): Promise<void>;
}

type Handler = (req: IncomingMessage, res: ServerResponse, body: Buffer) => void;

/** A loopback HTTP server; the default handler answers 200 "ok from <name>". */
export async function startUpstream(name: string, handler?: Handler, at: { host?: string; port?: number } = {}): Promise<Upstream> {
  const requests: SeenRequest[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      requests.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, rawHeaders: req.rawHeaders, body });
      if (handler) handler(req, res, body);
      else res.end(`ok from ${name}`);
    });
  });
  const up: Upstream = { port: 0, origin: '', requests, connections: 0, close: async () => {} };
  server.on('connection', () => { up.connections++; });
  const host = at.host ?? '127.0.0.1';
  await new Promise<void>((resolve) => server.listen(at.port ?? 0, host, resolve));
  const port = (server.address() as AddressInfo).port;
  return Object.assign(up, {
    port,
    origin: `http://${host}:${port}`,
    close: () => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }),
  });
}

export interface TestProxy {
  readonly proxy: EgressProxy;
  readonly key: Buffer;
  readonly registry: Registry;
  readonly logs: Record<string, unknown>[];
  /** Every host name the proxy asked the resolver for. */
  readonly lookups: string[];
  credential(tenant: string, opts?: { app?: string; instance?: string; exp?: number }): string;
  close(): Promise<void>;
}

/** `*.test` and `*.example` names resolve to 127.0.0.1 unless `dns` says otherwise. */
export async function startTestProxy(tenants: Record<string, TenantEgressPolicy>, dns: Record<string, string[]> = {}): Promise<TestProxy> {
  const key = randomBytes(32);
  const logs: Record<string, unknown>[] = [];
  const lookups: string[] = [];
  const registry = new Registry();
  const logger = pino({ level: 'debug' }, { write: (line: string) => void logs.push(JSON.parse(line)) });
  const proxy = await startEgressProxy({
    host: '127.0.0.1',
    port: 0,
    tenants: new Map(Object.entries(tenants)),
    credentialKey: key,
    logger,
    metrics: registry,
    resolver: async (host) => {
      lookups.push(host);
      if (dns[host]) return dns[host];
      if (/\.(test|example)$/.test(host)) return ['127.0.0.1'];
      throw Object.assign(new Error(`ENOTFOUND ${host}`), { code: 'ENOTFOUND' });
    },
  });
  return {
    proxy, key, registry, logs, lookups,
    credential: (tenant, o = {}) => mintEgressCredential(key, { tenant, app: o.app ?? 'app', instance: o.instance ?? 'i-1', exp: o.exp ?? Date.now() + 60_000 }),
    close: () => proxy.close(),
  };
}

export interface RawResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
  /** For CONNECT: the socket after a 200, to speak through the tunnel. */
  socket: Socket;
  rest: Buffer;
}

/** Sends `head` (lines joined by CRLF, blank line appended) and parses the answer's head. */
export function rawRequest(port: number, lines: string[], body = ''): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port });
    let buf = Buffer.alloc(0);
    let settled = false;
    const finish = () => {
      const end = buf.indexOf('\r\n\r\n');
      if (end === -1 || settled) return false;
      const [statusLine, ...headerLines] = buf.subarray(0, end).toString('latin1').split('\r\n');
      const headers: Record<string, string> = {};
      for (const l of headerLines) headers[l.slice(0, l.indexOf(':')).toLowerCase()] = l.slice(l.indexOf(':') + 1).trim();
      const status = Number(statusLine.split(' ')[1]);
      const rest = buf.subarray(end + 4);
      const length = headers['content-length'] === undefined ? null : Number(headers['content-length']);
      if (status === 200 && lines[0].startsWith('CONNECT')) { settled = true; socket.removeAllListeners('data'); resolve({ status, headers, body: '', socket, rest }); return true; }
      if (length !== null && rest.length < length) return false;
      settled = true;
      resolve({ status, headers, body: rest.toString('utf8'), socket, rest });
      socket.destroy();
      return true;
    };
    socket.on('data', (c: Buffer) => { buf = Buffer.concat([buf, c]); finish(); });
    socket.on('end', () => { if (!finish() && !settled) { settled = true; reject(new Error(`no complete answer: ${buf.toString('latin1')}`)); } });
    socket.on('error', (e) => { if (!settled) { settled = true; reject(e); } });
    socket.write(`${lines.join('\r\n')}\r\n\r\n${body}`);
  });
}

/** Records every outbound TCP connection attempt (ip:port) while active. */
export function watchConnections(): { attempts: string[]; stop(): void } {
  const attempts: string[] = [];
  const onSocket = (msg: unknown) => {
    (msg as { socket: Socket }).socket.on('connectionAttempt', (ip: string, port: number) => attempts.push(`${ip}:${port}`));
  };
  dc.subscribe('net.client.socket', onSocket);
  return { attempts, stop: () => dc.unsubscribe('net.client.socket', onSocket) };
}

/** A call scope as the instance host builds it; `end()` aborts it like a finished call. */
export function testScope(opts: { deadlineMs?: number; appId?: string; instanceId?: string } = {}): CallScope & { end(): void } {
  const controller = new AbortController();
  return {
    instanceId: opts.instanceId ?? 'i-1', appId: opts.appId ?? 'app', appVersion: 'v1', tenantId: 'logs-only',
    signal: controller.signal, deadline: Date.now() + (opts.deadlineMs ?? 10_000), end: () => controller.abort(),
  };
}

/** The §D 29 address forms (THREATS.md), with `PORT` where a loopback form should aim at a live server. */
export const ADDRESS_FORMS = [
  'http://127.0.0.1:PORT/', 'http://127.1:PORT/', 'http://0:PORT/', 'http://0.0.0.0:PORT/', 'http://2130706433:PORT/',
  'http://0x7f000001:PORT/', 'http://0177.0.0.1:PORT/', 'http://0x7f.1:PORT/', 'http://[::1]:PORT/', 'http://[::]:PORT/',
  'http://[::ffff:127.0.0.1]:PORT/', 'http://[::ffff:a9fe:a9fe]/', 'http://[64:ff9b::a9fe:a9fe]/', 'http://[2002:a9fe:a9fe::]/',
  'http://169.254.169.254/latest/meta-data/', 'http://[fd00:ec2::254]/', 'http://100.64.0.1/', 'http://10.0.0.1/',
  'http://172.16.0.1/', 'http://192.168.1.1/', 'http://[fe80::1%25eth0]/', 'http://224.0.0.1/',
] as const;
