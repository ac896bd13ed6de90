/**
 * The built-in config used when no `--config` is given (CONTRACT §5): two tenants,
 * an internal business unit on a shared store and a partner on a database of its own,
 * each with its own iam-internal realm.
 */
export const DEFAULT_CONFIG = {
  deployment: {
    mode: 'on-premise',
    data_residency: 'self-hosted',
    control_plane: 'self-managed',
    egress: 'deny-by-default',
    data_dir: './data',
    listen: { host: '127.0.0.1', port: 8080 },
    egress_proxy: { host: '127.0.0.1', port: 0 },
    operator_realm: 'ops',
    samples: true,
  },
  tenants: [
    {
      id: 'business-unit-a',
      storage: { namespace: 'bu-a', isolation: 'schema' },
      identity: { provider: 'iam-internal', realm: 'bu-a' },
      network: { default: 'deny', allow: [] },
    },
    {
      id: 'partner-acme',
      storage: { namespace: 'acme', isolation: 'database' },
      identity: { provider: 'iam-internal', realm: 'acme' },
      network: { default: 'deny', allow: ['api.acme-partner.com', '*.cdn.acme.example:443'] },
      limits: { memory_mb: 32, cpu_ms: 50, wall_ms: 5000, storage_mb: 50, instances: 100 },
      compute: { isolation: 'process' },
    },
  ],
} as const;
