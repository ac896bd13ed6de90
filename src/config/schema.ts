/**
 * The platform config (CONTRACT §1), one zod schema. Strict objects everywhere:
 * an unknown key is an error, not silently ignored. Cross-field rules (unique id,
 * namespace, realm) live in `superRefine` so their errors name the path too.
 */
import { hostname } from 'node:os';
import { z } from 'zod';
import { parseRule } from '../egress/allowlist.ts';

const slug = z.string().regex(/^[a-z0-9-]{1,63}$/, 'expected [a-z0-9-]{1,63}');

/** The host name as a node id: lowercase, [a-z0-9-] only, at most 63 characters. */
export function defaultNodeId(): string {
  const name = hostname().toLowerCase().replace(/[^a-z0-9-]/g, '-').slice(0, 63);
  return name === '' ? 'node' : name;
}

export const hostPort = z.strictObject({
  host: z.string().min(1),
  port: z.number().int().min(0).max(65535),
});

/**
 * A network allow rule: `host`, `host:port`, `*.suffix`, `*.suffix:port`, an IP
 * (v4, or v6 in brackets with an optional port) or a CIDR. Checked by the egress proxy's
 * own parser (src/egress/allowlist.ts parseRule), so `config check` refuses exactly what
 * `serve` would (`*.com`, `127.1`, a port over 65535), with the rule's path.
 */
export const allowRule = z
  .string()
  .min(1)
  .max(300)
  .superRefine((text, ctx) => {
    try {
      parseRule(text);
    } catch (err) {
      ctx.addIssue({ code: 'custom', message: err instanceof Error ? err.message.replace(/^network\.allow rule /, 'rule ') : 'not a valid allow rule' });
    }
  });

export const limitsSchema = z.strictObject({
  memory_mb: z.number().int().min(8).max(4096).default(64),
  cpu_ms: z.number().int().min(1).max(600_000).default(50),
  wall_ms: z.number().int().min(1).max(3_600_000).default(5000),
  storage_mb: z.number().min(0).max(1_048_576).default(100),
  instances: z.number().int().min(1).max(100_000).default(200),
  fetch_per_call: z.number().int().min(0).max(10_000).default(50),
  fetch_response_mb: z.number().min(0).max(1024).default(10),
  /** Calls running at once for the tenant; more wait (up to a bound) or get resource_exhausted. */
  concurrency: z.number().int().min(1).max(10_000).default(16),
  /** Calls per second for the tenant (token bucket, burst = 2x); 0 = no rate limit. */
  rate_per_sec: z.number().min(0).max(1_000_000).default(0),
  /**
   * Limit breaches (CPU, wall time, memory) the tenant may cause per minute, burst 3;
   * past that its calls and launches are refused with resource_exhausted until the
   * budget refills. Each breach disposes an isolate and the host replaces it, work that
   * would otherwise let one tenant slow every other (THREATS B17).
   */
  breaches_per_min: z.number().min(1).max(100_000).default(30),
});

const internalIdentity = z.strictObject({
  provider: z.literal('iam-internal'),
  realm: slug,
  /** Issuer URL put in `iss`; default `isohost:realm:<realm>`. */
  issuer: z.string().min(1).optional(),
  audience: z.string().min(1).optional(),
});

const jwk = z.record(z.string(), z.unknown());
const externalIdentity = z
  .strictObject({
    provider: z.literal('oidc-external'),
    realm: slug,
    issuer: z.string().min(1),
    audience: z.string().min(1),
    jwks_file: z.string().min(1).optional(),
    jwks_uri: z.url({ protocol: /^https?$/ }).optional(),
    jwks: z.strictObject({ keys: z.array(jwk).min(1) }).optional(),
    algorithms: z.array(z.enum(['EdDSA', 'ES256', 'ES384', 'RS256', 'RS384', 'RS512', 'PS256'])).min(1).default(['RS256', 'ES256', 'EdDSA']),
  })
  .refine((v) => [v.jwks_file, v.jwks_uri, v.jwks].filter((x) => x !== undefined).length === 1, {
    message: 'exactly one of jwks_file, jwks_uri or jwks is required',
  });

export const tenantSchema = z.strictObject({
  id: slug,
  storage: z.strictObject({
    namespace: slug,
    isolation: z.enum(['schema', 'database']),
  }),
  identity: z.discriminatedUnion('provider', [internalIdentity, externalIdentity]),
  network: z
    .strictObject({
      default: z.literal('deny').default('deny'),
      allow: z.array(allowRule).max(1000).default([]),
    })
    .prefault({}),
  limits: limitsSchema.prefault({}),
  /**
   * Where the tenant's isolates run (THREATS F, cordons): `shared` in the host process
   * with every other shared tenant; `process` only in supervised sandbox processes
   * that hold this tenant alone. `priority` (process tenants only) is the CPU priority
   * of those processes: `low` (default) is nice 10; `idle` is the kernel's SCHED_IDLE
   * policy, which runs them only on CPU time no normal thread wants (process/protections.ts).
   */
  compute: z
    .strictObject({
      isolation: z.enum(['shared', 'process']).default('shared'),
      priority: z.enum(['low', 'idle']).optional(),
    })
    .refine((c) => c.isolation === 'process' || c.priority === undefined, {
      message: 'priority applies to `isolation: process` only: a shared tenant runs at the host\'s priority',
      path: ['priority'],
    })
    .prefault({}),
  /**
   * `required`: new app versions are `pending` and serve nobody until a token of the
   * operator realm (`deployment.operator_realm`, scope apps:review) approves them, so a
   * partner never ships code the host's operator has not seen (issue 12).
   */
  review: z.enum(['none', 'required']).default('none'),
});

export const configSchema = z
  .strictObject({
    deployment: z
      .strictObject({
        mode: z.enum(['on-premise', 'private-cloud']).default('on-premise'),
        data_residency: z.string().min(1).max(100).default('self-hosted'),
        control_plane: z.literal('self-managed').default('self-managed'),
        egress: z.literal('deny-by-default').default('deny-by-default'),
        data_dir: z.string().min(1).default('./data'),
        listen: hostPort.prefault({ host: '127.0.0.1', port: 8080 }),
        /** `port: 0` = any free port, for the in-process proxy only (an external one must be named). */
        egress_proxy: z
          .strictObject({
            host: z.string().min(1),
            port: z.number().int().min(0).max(65535),
            external: z.boolean().default(false),
          })
          .refine((p) => !(p.external && p.port === 0), { message: 'an external egress proxy needs its port (0 means any free port, in-process only)', path: ['port'] })
          .prefault({ host: '127.0.0.1', port: 0 }),
        /** `/metrics`, `/healthz`, `/readyz` on a listener of their own; then `/metrics` is not served on `listen`. */
        ops_listen: hostPort.optional(),
        /**
         * An iam-internal realm of no tenant: operators' tokens (app review). Its keys live under
         * data_dir like the tenants' realms; its tokens carry no authority in any tenant's realm.
         */
        operator_realm: slug.optional(),
        /** Deploy the sample mini-apps into every tenant at start. True only in the built-in default config. */
        samples: z.boolean().default(false),
        /** Bundle size limit in bytes (CONTRACT §2: 5 MiB unless configured). */
        max_bundle_bytes: z.number().int().min(1024).max(64 * 1024 * 1024).default(5 * 1024 * 1024),
        /** Blank isolates kept ready per memory limit. */
        warm_pool: z.number().int().min(0).max(1000).default(4),
        /** Idle instances are disposed after this many ms. */
        instance_idle_ms: z.number().int().min(1000).default(300_000),
        /**
         * This node's name (issue 13, README "More than one machine"): in its instance ids
         * (`i_<node_id>_<random>`, so any node knows an instance's owner), its log lines and its
         * metrics. Default: the host name, lowercased, other characters as `-`.
         */
        node_id: slug.default(defaultNodeId),
        /**
         * Where the other nodes reach this node's HTTP API (forwarded instance calls). Default:
         * the listen address, a wildcard host (0.0.0.0, ::) replaced by the host name.
         */
        advertise_url: z.string().regex(/^https?:\/\/[^\s/]+$/, 'must be http(s)://HOST:PORT').optional(),
        /** The storage engine: LevelDB under data_dir (default) or PostgreSQL (issue 13; README "PostgreSQL storage"). */
        storage: z
          .discriminatedUnion('engine', [
            z.strictObject({ engine: z.literal('leveldb') }),
            z.strictObject({
              engine: z.literal('postgres'),
              /** The platform user and database: postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE */
              url: z.string().regex(/^postgres(ql)?:\/\/\S+$/, 'must be a postgres:// URL'),
              /** Connections per tenant pool. */
              pool_max: z.number().int().min(1).max(100).default(10),
            }),
          ])
          .prefault({ engine: 'leveldb' }),
      })
      .prefault({}),
    tenants: z.array(tenantSchema).min(1),
  })
  .superRefine((cfg, ctx) => {
    for (const field of ['id', 'namespace', 'realm'] as const) {
      const seen = new Map<string, number>();
      cfg.tenants.forEach((t, i) => {
        const value = field === 'id' ? t.id : field === 'namespace' ? t.storage.namespace : t.identity.realm;
        const path = field === 'id' ? ['tenants', i, 'id'] : field === 'namespace' ? ['tenants', i, 'storage', 'namespace'] : ['tenants', i, 'identity', 'realm'];
        const first = seen.get(value);
        if (first !== undefined) {
          ctx.addIssue({ code: 'custom', path, message: `duplicate ${field} "${value}" (also tenants[${first}])` });
        } else seen.set(value, i);
      });
    }
    const operatorRealm = cfg.deployment.operator_realm;
    cfg.tenants.forEach((t, i) => {
      if (operatorRealm !== undefined && t.identity.realm === operatorRealm) {
        ctx.addIssue({ code: 'custom', path: ['tenants', i, 'identity', 'realm'], message: `realm "${operatorRealm}" is deployment.operator_realm, which belongs to no tenant` });
      }
    });
  });

export type PlatformConfig = z.infer<typeof configSchema>;
export type TenantConfig = z.infer<typeof tenantSchema>;
export type TenantLimits = z.infer<typeof limitsSchema>;
export type DeploymentConfig = PlatformConfig['deployment'];
export type IdentityConfig = TenantConfig['identity'];
