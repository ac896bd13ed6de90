/**
 * `isohost init DIR [--tenant ID] [--app ID]`: a partner's TypeScript starter (issue 12).
 * Writes templates/starter/ into DIR with the app and tenant filled in, and copies
 * runtime-api/fc.d.ts to `types/fc.d.ts`, the one file the project type-checks against
 * (lib es2023, types [], no skipLibCheck). DIR must be absent or empty: init never
 * overwrites a partner's files.
 */
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { checkAppId } from '../apps/registry.ts';
import { parse, UsageError } from './args.ts';

const TEMPLATE = new URL('../../templates/starter/', import.meta.url);
const FC_TYPES = new URL('../../runtime-api/fc.d.ts', import.meta.url);
const PACKAGE = new URL('../../package.json', import.meta.url);

/** Template path → path in the project (npm drops a `.gitignore` from packages, so it is stored without the dot). */
const FILES: Record<string, string> = {
  'src/index.ts': 'src/index.ts',
  'tsconfig.json': 'tsconfig.json',
  'package.json': 'package.json',
  'README.md': 'README.md',
  gitignore: '.gitignore',
};

/** The default tenant: the built-in config's iam-internal tenant, so `dev` works with no config. */
const DEFAULT_TENANT = 'business-unit-a';

async function isEmptyOrAbsent(dir: string): Promise<boolean> {
  try {
    return (await readdir(dir)).length === 0;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return true;
    if ((err as NodeJS.ErrnoException).code === 'ENOTDIR') return false;
    throw err;
  }
}

/** An app id from a directory name: lowercase, runs of other characters as one `-`. */
function appIdFrom(dir: string): string {
  return basename(resolve(dir)).toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 63);
}

function checkedApp(id: string, hint: string): string {
  try {
    return checkAppId(id);
  } catch {
    throw new UsageError(`--app "${id}" must match [a-z0-9][a-z0-9-]{0,62}${hint}`);
  }
}

function checkedTenant(id: string): string {
  if (!/^[a-z0-9-]{1,63}$/.test(id)) throw new UsageError(`--tenant "${id}" must match [a-z0-9-]{1,63}`);
  return id;
}

/**
 * Writes the starter into `dir` and returns the files written (project-relative).
 *
 * @example
 * await initProject('my-app', { app: 'my-app', tenant: 'business-unit-a' });
 */
export async function initProject(dir: string, o: { app: string; tenant: string }): Promise<string[]> {
  if (!(await isEmptyOrAbsent(dir))) throw new UsageError(`${dir} is not empty: init writes a new project only into an empty or new directory`);
  const typescript = (JSON.parse(await readFile(PACKAGE, 'utf8')) as { devDependencies: Record<string, string> }).devDependencies.typescript ?? 'latest';
  const fill = (text: string) => text.replaceAll('{{app}}', o.app).replaceAll('{{tenant}}', o.tenant).replaceAll('{{typescript}}', typescript);
  const written: string[] = [];
  for (const [from, to] of Object.entries(FILES)) {
    await mkdir(dirname(join(dir, to)), { recursive: true });
    await writeFile(join(dir, to), fill(await readFile(new URL(from, TEMPLATE), 'utf8')), { flag: 'wx' });
    written.push(to);
  }
  await mkdir(join(dir, 'types'), { recursive: true });
  await writeFile(join(dir, 'types/fc.d.ts'), await readFile(FC_TYPES), { flag: 'wx' });
  written.push('types/fc.d.ts');
  return written;
}

export async function initCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, { tenant: { type: 'string' }, app: { type: 'string' } }, 1);
  const dir = positionals[0];
  if (dir === undefined) throw new UsageError('usage: isohost init DIR [--tenant ID] [--app ID]');
  const app = checkedApp(values.app ?? appIdFrom(dir), values.app === undefined ? ' (it defaults to the directory name; pass --app)' : '');
  const tenant = checkedTenant(values.tenant ?? DEFAULT_TENANT);
  const files = await initProject(dir, { app, tenant });
  process.stdout.write(JSON.stringify({ dir, app, tenant, files }) + '\n');
  return 0;
}
