/**
 * `isohost <command>`: one file per command. Results go to stdout; logs are pino JSON
 * lines on stderr; on failure the last stderr line is `{"error":{"code","message"}}`
 * and the exit code is 1, or 2 for usage and config errors (CONTRACT §5).
 */
import { readFileSync } from 'node:fs';
import { IsohostError, toIsohostError } from '../errors.ts';
import { UsageError } from './args.ts';

type Command = (argv: string[]) => Promise<number>;

const COMMANDS: Record<string, () => Promise<Command>> = {
  serve: async () => (await import('./serve.ts')).serveCommand,
  run: async () => (await import('./run.ts')).runCommand,
  token: async () => (await import('./token.ts')).tokenCommand,
  realm: async () => (await import('./token.ts')).realmCommand,
  config: async () => (await import('./config.ts')).configCommand,
  tenant: async () => (await import('./tenant.ts')).tenantCommand,
  'egress-proxy': async () => (await import('./egress-proxy.ts')).egressProxyCommand,
  storage: async () => (await import('./storage.ts')).storageCommand,
  build: async () => (await import('./build.ts')).buildCommand,
  init: async () => (await import('./init.ts')).initCommand,
  dev: async () => (await import('./dev.ts')).devCommand,
  deploy: async () => (await import('./deploy.ts')).deployCommand,
  logs: async () => (await import('./logs.ts')).logsCommand,
  console: async () => (await import('./console.ts')).consoleCommand,
};

/** One usage text per command: `isohost COMMAND --help` prints it and exits 0. */
export const COMMAND_USAGE: Record<string, string> = {
  serve: `isohost serve [--port N] [--egress-port N] [--config FILE] [--data DIR]
  Serves the HTTP API and starts the in-process egress proxy. Without --config: the built-in
  default config (two tenants, samples deployed, data under ./data).
  --port N          the API port (default deployment.listen.port; 0 = any free port)
  --egress-port N   the egress proxy's port (default deployment.egress_proxy.port; 0 = any free port)
  Signals: SIGTERM/SIGINT drain (readiness 503, in-flight requests finish) and exit 0;
  SIGHUP re-reads --config (tenants added, removed or changed; an invalid file is refused).
  Environment: ISOHOST_LOG_LEVEL (trace|debug|info|warn|error|fatal|silent; default info).`,
  run: `isohost run BUNDLE --tenant ID --call METHOD [--args JSON] [--sub USER] [--app ID]
  Launches one instance of BUNDLE for the tenant, calls METHOD once, prints the result as one
  JSON line. --app defaults to the bundle's file name without extension.`,
  token: `isohost token --tenant ID --sub USER [--scope "apps:call apps:deploy"] [--ttl 1h]
isohost token --realm REALM --sub USER [--scope "apps:review"] [--ttl 1h]
  Prints a JWT of the tenant's iam-internal realm (tenants with an external identity provider
  get their tokens from that provider), or of an iam-internal realm named directly: e.g. the
  operator realm (deployment.operator_realm), whose apps:review tokens approve app versions.
  Scopes: apps:call, apps:deploy, logs:read (tenant realms); apps:review (operator realm).`,
  realm: `isohost realm rotate REALM | isohost realm retire REALM [--] KID
  rotate: a new signing key (older keys verify until retired); retire: a key never verifies again.
  A kid is base64url and may begin with -: put it after --, as in realm retire REALM -- -Tq3….`,
  config: `isohost config check [FILE] | isohost config schema
  check: validates a config (the built-in default without FILE); exit 0 when valid, exit 2 with
  one path-named error per line when not. schema: the JSON Schema of the config.`,
  tenant: `isohost tenant export ID [--out FILE] | isohost tenant import FILE --tenant ID | isohost tenant purge ID --yes
  Works while serve runs (through its admin socket in data_dir) or on a stopped store.`,
  'egress-proxy': `isohost egress-proxy
  The egress proxy as its own process (for deployment.egress_proxy.external: true).`,
  storage: `isohost storage init [--print-sql]
  With deployment.storage.engine: postgres: creates each tenant's role and schema or database
  (the platform user needs CREATEROLE, and CREATEDB for isolation: database); --print-sql
  connects nowhere and prints the statements for a superuser to run by hand instead.`,
  build: `isohost build SRC [--out FILE]
  Bundles a mini-app's source (TypeScript or JavaScript) with esbuild into one self-contained ES
  module with an inline source map (errors then cite src/file.ts:line); prints { out, bytes, sha256 }.
  Flags used: --bundle --format=esm --platform=neutral --target=es2023 --sourcemap=inline.
  --out FILE   the bundle (default dist/NAME.js, NAME from SRC)`,
  init: `isohost init DIR [--tenant ID] [--app ID]
  A TypeScript starter in DIR (new or empty): src/index.ts, types/fc.d.ts, a tsconfig.json that
  type-checks against it (lib es2023, no skipLibCheck), package.json scripts build, dev, deploy and
  typecheck, a README. --app defaults to DIR's name, --tenant to business-unit-a.`,
  dev: `isohost dev SRC --tenant ID [--app ID] [--port N] [--config FILE] [--data DIR]
  Serves one app on 127.0.0.1:N (default 8787) with the tenant's limits, egress rules and storage
  from --config (or the built-in default), rebuilding and redeploying through the upload route on
  every save under SRC's directory. Data in .isohost-dev/ beside the project (or --data); review off.
  Stdout: one JSON line per event: ready { url, token, version }, reloaded { version }, failed { error }.`,
  deploy: `isohost deploy BUNDLE --tenant ID [--app ID] [--server URL]
  Uploads BUNDLE through the HTTP API (PUT /v1/tenants/ID/apps/APP) with the token in ISOHOST_TOKEN
  (scope apps:deploy); prints { app, version, sha256, size, state }. --app defaults to the bundle's
  file name without extension; --server to http://127.0.0.1:8080.`,
  logs: `isohost logs --tenant ID [--app ID] [--follow] [--server URL]
  Prints the tenant's mini-app log lines and call outcomes (GET /v1/tenants/ID/logs) as NDJSON,
  each naming request_id, app, version and instance; the token (scope logs:read) comes from
  ISOHOST_TOKEN. --follow keeps printing new lines until interrupted; --server defaults to
  http://127.0.0.1:8080.`,
  console: `isohost console [--open] [--sub NAME] [--ttl 30m] [--url BASE]
  Mints a short-lived token of the operator realm (deployment.operator_realm; scopes console:read
  apps:review apps:rollout) and prints the console's URL with it in the fragment (#token=…, never
  sent to a server). The console is on deployment.ops_listen when set, else on the API listener;
  --url names another base (a proxy in front). --open also hands the URL to the desktop's browser.`,
};

export const USAGE = `usage: isohost <command> [options]   (every command takes --config FILE and --data DIR)
  serve [--port N] [--egress-port N]                run the HTTP API and the egress proxy
  run BUNDLE --tenant ID --call METHOD [--args JSON] [--sub USER] [--app ID]
  token --tenant ID | --realm REALM --sub USER [--scope "apps:call apps:deploy"] [--ttl 1h]
  realm rotate REALM | realm retire REALM KID
  config check [FILE] | config schema
  tenant export ID [--out FILE] | tenant import FILE --tenant ID | tenant purge ID --yes
  egress-proxy                                      the egress proxy as its own process
  storage init [--print-sql]                        PostgreSQL roles, schemas, databases of the tenants
  init DIR [--tenant ID] [--app ID]                 a partner's TypeScript starter
  build SRC [--out FILE]                            esbuild to one ESM bundle with an inline source map
  dev SRC --tenant ID [--app ID] [--port N]         one app, production limits, reload on save
  deploy BUNDLE --tenant ID [--app ID] [--server URL]   upload through the HTTP API (ISOHOST_TOKEN)
  logs --tenant ID [--app ID] [--follow] [--server URL]  the tenant's log stream as NDJSON (ISOHOST_TOKEN)
  console [--open]                                  the operator console's URL with a short-lived token
  help [COMMAND] | COMMAND --help | --version
exit codes: 0 ok, 1 failure, 2 usage or config error. Logs: JSON lines on stderr (ISOHOST_LOG_LEVEL).`;

/** The package's version, for `isohost --version`. */
function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  return `isohost ${pkg.version} (node ${process.versions.node})`;
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === '--version' || name === '-v' || name === 'version') {
    process.stdout.write(version() + '\n');
    return 0;
  }
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    const topic = name === 'help' ? rest[0] : undefined;
    process.stdout.write((topic !== undefined && COMMAND_USAGE[topic] !== undefined ? COMMAND_USAGE[topic] : USAGE) + '\n');
    return name === undefined ? 2 : 0;
  }
  const load = Object.hasOwn(COMMANDS, name) ? COMMANDS[name] : undefined;
  try {
    if (load === undefined) throw new UsageError(`unknown command "${name}" (isohost help lists them)`);
    // Help before anything else: no config is read, no required flag is checked.
    if (rest.includes('--help') || rest.includes('-h')) {
      process.stdout.write(COMMAND_USAGE[name] + '\n');
      return 0;
    }
    return await (await load())(rest);
  } catch (err) {
    return reportError(err);
  }
}

/** Writes the closing error line and returns the exit code. */
export function reportError(err: unknown): number {
  const e = toIsohostError(err);
  if (e.code === 'internal') process.stderr.write(`${JSON.stringify({ level: 50, msg: 'internal error', err: String((err as Error)?.stack ?? err) })}\n`);
  process.stderr.write(JSON.stringify(e.toJSON()) + '\n');
  return err instanceof UsageError || (err instanceof IsohostError && err.code === 'config_invalid') ? 2 : 1;
}
