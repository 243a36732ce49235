// The dashboard in real Chromium (playwright-core, /usr/bin/chromium) against the real server on
// loopback: log in, watch a session run, its log and its charts, a leaderboard after a submit,
// and another team's session refused. Each page is photographed into test-results/screenshots.
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EXIT } from '../../src/protocol/errors.js';
import { project } from '../helpers/projects.js';
import { ADMIN_PASSWORD, Participant, startTestServer, type TestServer } from '../helpers/server.js';
import { submitDataset, SUBMIT_PROJECT_PY } from '../helpers/submit-project.js';

const CHROMIUM = process.env.KHD_CHROMIUM ?? '/usr/bin/chromium';
const SHOTS = 'test-results/screenshots';

/** Prints a line (every fifth on stderr too) and reports metrics, every 0.3 s. */
const LIVE_PY = `
import sys, time
import nsml
steps = int(sys.argv[1])
for i in range(1, steps + 1):
    print('step', i, flush=True)
    if i % 5 == 0:
        print('warning at step', i, file=sys.stderr, flush=True)
    nsml.report(step=i, train__loss=1.0 / i, train__acc=i / steps, lr=0.1)
    time.sleep(0.3)
`;

let server: TestServer;
let admin: Participant;
let kim: Participant;
let lee: Participant;
let browser: Browser;
let root: string;
let live: string;
const contexts: BrowserContext[] = [];
const cleanups: (() => void)[] = [];

/** A fresh browser tab (its own session storage), logged in through the form. */
async function loggedIn(user: string, password: string): Promise<Page> {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  contexts.push(context);
  const page = await context.newPage();
  await page.goto(server.url);
  await page.getByLabel('User').fill(user);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Log in' }).click();
  await page.getByRole('heading', { name: 'Sessions' }).waitFor();
  return page;
}

const AXE = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

interface AxeViolation {
  id: string;
  impact: string | null;
  help: string;
  nodes: { target: string[] }[];
}

/**
 * Photographs the page into test-results/screenshots, and audits it with axe-core (WCAG 2 A and
 * AA rules): no serious or critical violation, such as a control without a label or text
 * without enough contrast.
 */
async function shot(page: Page, name: string): Promise<void> {
  await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });
  await page.evaluate(AXE);
  const violations = await page.evaluate(async () => {
    const axe = (globalThis as unknown as { axe: { run(options: object): Promise<{ violations: AxeViolation[] }> } }).axe;
    const result = await axe.run({ runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa'] } });
    return result.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map((n) => ({ target: n.target })) }));
  });
  const serious = violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  expect(serious.map((v) => `${v.id} (${v.impact}): ${v.help} at ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`), name).toEqual([]);
}

beforeAll(async () => {
  mkdirSync(SHOTS, { recursive: true });
  server = await startTestServer();
  admin = new Participant(server.url);
  await admin.login('admin', ADMIN_PASSWORD);
  kim = await admin.addUser('kim', 'team-a');
  lee = await admin.addUser('lee', 'team-b');
  const data = submitDataset();
  cleanups.push(data.cleanup);
  const push = await admin.khd(['dataset', 'push', 'toy', data.root, '--leaderboard', '-m', 'four hidden test items']);
  expect(push.code, push.stderr).toBe(EXIT.ok);
  const p = project({ 'main.py': SUBMIT_PROJECT_PY, 'live.py': LIVE_PY, 'many.py': "for i in range(1, 1201):\n    print('line', i)\n" });
  cleanups.push(p.cleanup);
  root = p.root;
  if (!existsSync(CHROMIUM)) throw new Error(`no Chromium at ${CHROMIUM}: apt-get install chromium, or set KHD_CHROMIUM to one`);
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
  });
}, 120_000);

afterAll(async () => {
  for (const c of contexts) await c.close();
  await browser?.close();
  for (const p of [admin, kim, lee]) p?.cleanup();
  cleanups.forEach((c) => c());
  await server.stop();
});

describe('the dashboard', () => {
  it('is served compressed, cached by content hash, and without any other origin', async () => {
    const page = await fetch(server.url, { headers: { 'accept-encoding': 'br' } });
    expect(page.status).toBe(200);
    expect(page.headers.get('content-encoding')).toBe('br');
    expect(page.headers.get('cache-control')).toBe('no-cache');
    expect(page.headers.get('content-security-policy')).toContain("default-src 'self'");
    const html = await page.text();
    const script = /src="(\/main-[A-Z0-9]{8}\.js)"/.exec(html)?.[1];
    expect(script).toBeDefined();
    expect(html).not.toMatch(/https?:\/\//);
    const js = await fetch(`${server.url}${script}`, { headers: { 'accept-encoding': 'gzip' } });
    expect(js.headers.get('content-encoding')).toBe('gzip');
    expect(js.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');
  });

  it('logs in, and shows a session that starts running', async () => {
    const page = await openLogin();
    await shot(page, 'login');
    await page.getByLabel('User').fill('kim');
    await page.getByLabel('Password').fill('wrong-password');
    await page.getByRole('button', { name: 'Log in' }).click();
    await expect.poll(() => page.getByRole('alert').textContent()).toContain('wrong user name or password');
    await page.getByLabel('Password').fill('kim-password');
    await page.getByRole('button', { name: 'Log in' }).click();
    await page.getByRole('heading', { name: 'Sessions' }).waitFor();
    expect(page.url()).not.toContain('token');

    const r = await kim.khd(['run', '-d', 'toy', '-e', 'live.py', '-a', '90', '-m', 'watch me'], { cwd: root });
    expect(r.code, r.stderr).toBe(EXIT.ok);
    live = /Session (\S+) is started/.exec(r.stdout)![1]!;
    const row = page.locator(`tr[data-session="${live}"]`);
    await row.waitFor();
    await expect.poll(() => row.locator('.status').textContent(), { timeout: 20_000 }).toBe('Running');
    expect(await row.textContent()).toContain('live.py 90');
    expect(await row.textContent()).toContain('watch me');
    await shot(page, 'sessions');

    // The memo, edited in place, as khd memo would.
    await row.getByRole('button', { name: `Edit the memo of ${live}` }).click();
    await page.getByLabel(`Memo of ${live}`).fill('watched from the browser');
    await page.getByRole('button', { name: 'Save' }).click();
    await expect.poll(async () => (await kim.khd(['ps', '--json'])).stdout).toContain('"memo": "watched from the browser"');
    // Filtered by dataset: there on toy, gone on sessions without one.
    await page.getByLabel('Dataset').selectOption('toy');
    await expect.poll(() => page.url()).toContain('#/sessions?dataset=toy');
    await row.waitFor();
    await page.getByLabel('Dataset').selectOption('None');
    await page.getByText('No sessions yet').waitFor();
  });

  it('streams the log live, stdout and stderr apart, and a metric chart gains points', async () => {
    const page = await loggedIn('kim', 'kim-password');
    await page.goto(`${server.url}/#/sessions/${live}`);
    const lines = page.locator('#log .line');
    await page.getByText('step 3', { exact: true }).waitFor({ timeout: 20_000 });
    const before = await lines.count();
    await expect.poll(() => lines.count(), { timeout: 20_000 }).toBeGreaterThan(before + 2);
    const err = page.locator('#log .line.err').first();
    await err.waitFor();
    expect(await err.textContent()).toMatch(/^stderrwarning at step \d+$/);

    const train = page.locator('figure.chart[data-group="train"]');
    await train.waitFor({ timeout: 20_000 });
    const points = async () => Number(await train.getAttribute('data-points'));
    const first = await points();
    await expect.poll(points, { timeout: 20_000 }).toBeGreaterThan(first);
    expect(await train.locator('.latest').textContent()).toMatch(/train\/loss [\d.]+, train\/acc [\d.]+/);
    expect(await page.locator('figure.chart[data-group="lr"]').count()).toBe(1);
    await shot(page, 'session');

    // Follow off: new lines arrive without moving the view; on again: back to the newest line.
    const log = page.locator('#log');
    const follow = page.getByLabel('Follow');
    expect(await follow.isChecked()).toBe(true);
    // Once the log is taller than its box, following has kept the newest line in view.
    await expect.poll(() => log.evaluate((el) => el.scrollHeight - el.clientHeight), { timeout: 20_000 }).toBeGreaterThan(100);
    expect(await log.evaluate((el) => el.scrollHeight - el.scrollTop - el.clientHeight)).toBeLessThan(8);
    await follow.uncheck();
    await log.evaluate((el) => (el.scrollTop = 0));
    const atTop = await lines.count();
    await expect.poll(() => lines.count(), { timeout: 20_000 }).toBeGreaterThan(atTop + 1);
    expect(await log.evaluate((el) => el.scrollTop)).toBe(0);
    await follow.check();
    expect(await log.evaluate((el) => el.scrollHeight - el.scrollTop - el.clientHeight)).toBeLessThan(8);

    // A dropped connection resumes where it left off: no line twice, and lines keep coming.
    const seen = await lines.count();
    server.app.server.closeAllConnections();
    await expect.poll(() => lines.count(), { timeout: 20_000 }).toBeGreaterThan(seen + 3);
    const ids = (await page.locator('#log .line').evaluateAll((els) => els.map((e) => e.getAttribute('data-id')))).map(Number);
    expect(new Set(ids).size).toBe(ids.length);
    expect(ids).toEqual([...ids].sort((a, b) => a - b));
    expect(ids[ids.length - 1]! - ids[0]! + 1).toBe(ids.length);

    await page.getByRole('button', { name: 'Stop' }).click();
    await expect.poll(() => page.locator('#log-state').textContent(), { timeout: 20_000 }).toContain('ended: Stopped');
  });

  it('shows the last 1,000 lines of a long log first, saying from which line', async () => {
    const r = await kim.khd(['run', '-d', 'toy', '-e', 'many.py', '-i'], { cwd: root });
    const name = /Session (\S+) is started/.exec(r.stdout)![1]!;
    const page = await loggedIn('kim', 'kim-password');
    await page.goto(`${server.url}/#/sessions/${name}`);
    await page.getByText('line 1200', { exact: true }).waitFor();
    expect(await page.locator('#log .line').count()).toBe(1000);
    expect(await page.locator('#log-note').textContent()).toBe(`Showing the log from line 201; earlier lines: khd logs ${name}`);
    expect(await page.locator('#log .line').first().textContent()).toBe('line 201');
  });

  it('lists datasets, and shows a leaderboard and the submission history after a submit', async () => {
    const trained = await kim.khd(['run', '-d', 'toy', '-i'], { cwd: root });
    expect(trained.code, trained.stderr).toBe(EXIT.ok);
    const session = /Session (\S+) is started/.exec(trained.stdout)![1]!;
    const submit = await kim.khd(['submit', session, 'best']);
    expect(submit.stdout).toBe('Score: 0.75\n');

    const page = await loggedIn('kim', 'kim-password');
    // Its checkpoints, with the summary reported before each save.
    await page.goto(`${server.url}/#/sessions/${session}`);
    const checkpoints = page.locator('section[aria-labelledby="models-title"] tbody tr');
    await expect.poll(() => checkpoints.count()).toBe(2);
    expect(await checkpoints.first().textContent()).toMatch(/^best.*epoch=1 train\/loss=0\.5\d+ B$/);

    await page.getByRole('link', { name: 'Datasets' }).click();
    const toy = page.locator('tr', { hasText: 'four hidden test items' });
    await toy.waitFor();
    expect(await toy.textContent()).toContain('yes (accuracy, higher is better)');
    await shot(page, 'datasets');

    await toy.getByRole('link', { name: /yes/ }).click();
    const best = page.locator('table.board tbody tr').first();
    await best.waitFor();
    const cells = await best.locator('td').allTextContents();
    expect(cells.slice(0, 6)).toEqual(['1', 'kim', 'team-a', '0.75', `/toy/${session.split('/')[2]}/best`, '1']);
    expect(await page.locator('section[aria-labelledby="board-title"] p.muted').textContent()).toBe('toy · accuracy · higher is better');
    const mine = page.locator('table.submits tbody tr').first();
    expect(await mine.textContent()).toContain('counted');
    expect(await mine.textContent()).toContain('0.75');
    await shot(page, 'leaderboard');
  });

  it('refuses another team’s session like a missing one', async () => {
    const page = await loggedIn('lee', 'lee-password');
    await page.goto(`${server.url}/#/sessions/${live}`);
    await expect.poll(() => page.getByRole('alert').textContent()).toBe(`session ${live} does not exist: see khd ps -a`);
    expect(await page.locator('#log').count()).toBe(0);
    expect(await page.locator('figure.chart').count()).toBe(0);
    await shot(page, 'refused');
    await page.getByRole('link', { name: 'Your sessions' }).click();
    await page.getByText('No sessions yet').waitFor();
    expect(await page.getByRole('link', { name: 'Organiser' }).count()).toBe(0);
  });

  it('asks the server nothing while the tab is in the background, and catches up when shown', async () => {
    const page = await loggedIn('kim', 'kim-password');
    const asked: string[] = [];
    page.on('request', (r) => asked.push(new URL(r.url()).pathname));
    const setHidden = (hidden: boolean) =>
      page.evaluate((h) => {
        // Runs in the page: its document, typed here without the DOM library.
        const doc = (globalThis as unknown as { document: EventTarget }).document;
        Object.defineProperty(doc, 'hidden', { configurable: true, get: () => h });
        doc.dispatchEvent(new Event('visibilitychange'));
      }, hidden);
    await setHidden(true);
    asked.length = 0;
    await page.waitForTimeout(4500);
    expect(asked).toEqual([]);
    await setHidden(false);
    await expect.poll(() => asked).toContain('/api/v1/sessions');
  });

  it('shows organisers every session, the users and teams, and each dataset’s rules', async () => {
    const page = await loggedIn('admin', ADMIN_PASSWORD);
    await page.getByRole('link', { name: 'Organiser' }).click();
    await page.getByRole('heading', { name: 'All sessions' }).waitFor();
    await expect.poll(() => page.getByRole('link', { name: live }).count()).toBe(1);
    const row = page.locator('section[aria-labelledby="all-sessions"] tbody tr', { has: page.getByRole('link', { name: live }) });
    expect((await row.locator('td').allTextContents()).slice(0, 3)).toEqual([live, 'team-a', 'normal']);
    const users = await page.locator('section[aria-labelledby="users"] tbody tr').allTextContents();
    expect(users).toEqual(['adminadminadmin', 'kimteam-aparticipant', 'leeteam-bparticipant']);
    const rules = await page.locator('section[aria-labelledby="rules"] tbody tr').first().textContent();
    expect(rules).toContain('one per team per 1 hour');
    expect(rules).toContain('300 MB');
    await shot(page, 'organiser');
  });
});

async function openLogin(): Promise<Page> {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  contexts.push(context);
  const page = await context.newPage();
  await page.goto(server.url);
  await page.getByRole('heading', { name: 'Log in to khd' }).waitFor();
  return page;
}
