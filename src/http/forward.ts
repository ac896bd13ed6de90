/**
 * Calls for an instance that lives on another node (issue 13). An instance id names its node
 * (sandbox/instance-id.ts); a node that receives a call or an end for another node's
 * instance sends the same request (method, path, Authorization, JSON body) to that node's
 * API address (PostgreSQL `nodes`, storage/postgres/node-directory.ts) and relays its answer
 * as it came: status, content type and body. The token was verified here and is verified
 * again there: the owner trusts nothing of this node.
 *
 * A forwarded request carries FORWARDED_BY; its receiver never forwards again, so two nodes
 * that disagree about an owner cannot bounce a request between them. An owner that is unknown,
 * silent or refusing connections is a coded `unavailable` naming the node, never a `not_found`
 * (the instance may well be alive there).
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import { Counter, type Registry } from 'prom-client';
import { Agent, request } from 'undici';
import { IsohostError } from '../errors.ts';
import type { Platform } from '../platform.ts';
import { ownerOf } from '../sandbox/instance-id.ts';

/** Set on a forwarded request to the forwarding node's id. */
export const FORWARDED_BY = 'x-isohost-forwarded-by';

/** A dead owner must fail fast; a slow call on a live one runs as long as the owner lets it. */
const CONNECT_TIMEOUT_MS = 3_000;

export interface Forwarder {
  /** The node owning `instanceId` when it is another node of this platform; null when the call is ours. */
  remoteOwner(instanceId: string, req: FastifyRequest): string | null;
  /** Sends `req` to `owner` and relays its answer on `reply`. */
  relay(req: FastifyRequest, reply: FastifyReply, owner: string): Promise<FastifyReply>;
  close(): Promise<void>;
}

/**
 * @example
 * const owner = forwarder.remoteOwner(req.params.instance, req);
 * if (owner !== null) return forwarder.relay(req, reply, owner);
 */
export function createForwarder(platform: Pick<Platform, 'nodeId' | 'nodes'>, registry: Registry): Forwarder {
  const agent = new Agent({ connect: { timeout: CONNECT_TIMEOUT_MS } });
  // `to` is a node id of this platform (a handful), `status` the owner's HTTP status or 0 when unreachable.
  const forwarded = new Counter({
    name: 'isohost_forwarded_requests_total',
    help: "Instance calls and ends sent on to the instance's node, by that node and the HTTP status it answered (0: not reached)",
    labelNames: ['to', 'status'],
    registers: [registry],
  });
  return {
    remoteOwner(instanceId, req) {
      const owner = ownerOf(instanceId);
      // LevelDB (no directory) is one node: every instance is ours, an unknown one not_found as before.
      if (owner === null || owner === platform.nodeId || platform.nodes === null) return null;
      if (req.headers[FORWARDED_BY] !== undefined) {
        throw new IsohostError('unavailable', `the instance's node ${owner} is not this node (${platform.nodeId}); a forwarded request is not forwarded again`, {
          details: { reason: 'node_unreachable', node: owner },
        });
      }
      return owner;
    },
    async relay(req, reply, owner) {
      const nodes = platform.nodes!;
      const address = await nodes.addressOf(owner).catch((err: unknown) => {
        forwarded.inc({ to: owner, status: '0' });
        throw err;
      });
      const headers: Record<string, string> = { [FORWARDED_BY]: platform.nodeId, 'x-request-id': String(req.id) };
      if (typeof req.headers.authorization === 'string') headers.authorization = req.headers.authorization;
      let body: string | undefined;
      if (req.method !== 'GET' && req.method !== 'DELETE') {
        // Already parsed and size-checked here; the owner parses and checks it again.
        try {
          body = req.body === undefined ? 'null' : JSON.stringify(req.body);
        } catch {
          throw new IsohostError('invalid_request', 'the JSON arguments are nested too deeply');
        }
        headers['content-type'] = 'application/json';
      }
      let answer;
      let text: string;
      try {
        answer = await request(`${address}${req.url}`, { method: req.method as 'POST' | 'DELETE', headers, body, dispatcher: agent });
        // Read whole before answering: an owner that dies mid-answer is unreachable, not half a reply.
        text = await answer.body.text();
      } catch (err) {
        nodes.forget(owner);
        forwarded.inc({ to: owner, status: '0' });
        throw new IsohostError('unavailable', `the instance's node ${owner} is not reachable`, { cause: err, details: { reason: 'node_unreachable', node: owner } });
      }
      forwarded.inc({ to: owner, status: String(answer.statusCode) });
      for (const name of ['content-type', 'retry-after']) {
        const value = answer.headers[name];
        if (typeof value === 'string') reply.header(name, value);
      }
      return reply.status(answer.statusCode).send(answer.statusCode === 204 ? undefined : text);
    },
    close: () => agent.close(),
  };
}
