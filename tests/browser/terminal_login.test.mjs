// `doorward login` (a terminal signing in with a loopback redirect, RFC 8252 §7.3) with the
// browser step done by a real (Debian) Chromium: against `doorward serve` (its sign-in and consent
// pages), node-oidc-provider (its development sign-in and consent) and the Eternaltwin server
// (signed in through its API in the same browser). Each time the command prints the address,
// Chromium follows it to the command's loopback listener, and the kept token then works.
// Run: DOORWARD_BIN=$PWD/target/debug/doorward node --test tests/browser/terminal_login.test.mjs
// (the Eternaltwin case needs DOORWARD_TEST_ETERNALTWIN_BIN, which scripts/test.sh sets).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { DOORWARD_BIN, REPO_ROOT, freePort, launchChromium, startServer, stopServer } from './doorward-server.mjs';

const USER = { username: 'lena', password: 'lena-password-1' };
const s = (v) => JSON.stringify(v);
const CONFIG = [
  '[clients.cli]',
  'display_name = "Doorward CLI"',
  'app_uri = "http://127.0.0.1"',
  'redirect_uris = ["http://127.0.0.1/callback"]',
  'token_endpoint_auth_method = "none"',
  '',
  `[seed.user.${USER.username}]`,
  `username = ${s(USER.username)}`,
  `password = ${s(USER.password)}`,
  '',
].join('\n');

let workdir;
let browser;
const children = [];

before(async () => {
  assert.ok(fs.existsSync(DOORWARD_BIN), `doorward binary not found: ${DOORWARD_BIN} (set DOORWARD_BIN)`);
  workdir = fs.mkdtempSync(path.join(os.tmpdir(), 'doorward-login-'));
  browser = await launchChromium();
});

after(async () => {
  if (browser) await browser.close();
  for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
  if (workdir) fs.rmSync(workdir, { recursive: true, force: true });
});

/**
 * Starts `doorward login --no-browser …args --store <store>` and resolves with the address it
 * prints and a promise of its exit code. The token file is kept out of any OS keyring.
 */
function startLogin(args, store) {
  const child = spawn(DOORWARD_BIN, ['login', '--no-browser', ...args, '--store', store], {
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { ...process.env, DOORWARD_NO_KEYRING: '1' },
  });
  children.push(child);
  const exited = new Promise((resolve) => child.once('exit', (code) => resolve(code)));
  const lines = readline.createInterface({ input: child.stderr });
  const said = [];
  const url = new Promise((resolve, reject) => {
    lines.on('line', (line) => {
      said.push(line);
      if (/^https?:\/\//.test(line)) resolve(new URL(line));
    });
    child.once('exit', () => reject(new Error(`doorward login printed no address:\n${said.join('\n')}`)));
  });
  return { url, exited, said };
}

function token(args, store) {
  const out = spawnSync(DOORWARD_BIN, ['token', ...args, '--store', store], {
    encoding: 'utf8',
    env: { ...process.env, DOORWARD_NO_KEYRING: '1' },
  });
  assert.equal(out.status, 0, out.stderr);
  return out.stdout.trim();
}

/** The browser is back at the command's listener: its page, then the command's success. */
async function backAtTheTerminal(page, login) {
  await page.getByText('You may close this window').waitFor();
  assert.equal(new URL(page.url()).hostname, '127.0.0.1');
  assert.equal(await login.exited, 0, login.said.join('\n'));
}

test('doorward serve: Chromium signs in and consents, the terminal gets the token', async (t) => {
  const server = startServer(await freePort(), workdir, CONFIG);
  t.after(() => stopServer(server));
  await server.ready;
  const store = path.join(workdir, 'doorward-serve.json');
  const login = startLogin(['--issuer', server.origin, '--client-id', 'cli@clients', '--scope', 'openid'], store);
  const url = await login.url;
  assert.match(url.searchParams.get('redirect_uri'), /^http:\/\/127\.0\.0\.1:\d+\/callback$/);
  const context = await browser.newContext();
  t.after(() => context.close());
  const page = await context.newPage();
  await page.goto(url.href);
  await page.locator('input[name="username"]').fill(USER.username);
  await page.locator('input[name="password"]').fill(USER.password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('button', { name: 'Allow' }).click();
  await backAtTheTerminal(page, login);
  const access = token(['print'], store);
  const me = await fetch(`${server.origin}/oauth/userinfo`, { headers: { authorization: `Bearer ${access}` } });
  assert.equal(me.status, 200);
  assert.match((await me.json()).sub, /^[0-9a-f-]{36}$/);
});

test('node-oidc-provider: Chromium through its sign-in and consent', async (t) => {
  const providerScript = path.join(REPO_ROOT, 'tests', 'node-oidc', 'provider.mjs');
  const provider = spawn(process.execPath, [providerScript], { stdio: ['ignore', 'pipe', 'inherit'] });
  children.push(provider);
  t.after(() => provider.kill());
  const { issuer } = JSON.parse(await new Promise((resolve) => {
    readline.createInterface({ input: provider.stdout }).once('line', resolve);
  }));
  const store = path.join(workdir, 'node-oidc.json');
  const login = startLogin(['--issuer', issuer, '--client-id', 'rp-cli', '--scope', 'openid', '--scope', 'offline_access'], store);
  const url = await login.url;
  const context = await browser.newContext();
  t.after(() => context.close());
  const page = await context.newPage();
  await page.goto(url.href);
  await page.locator('input[name="login"]').fill('terminal-user');
  await page.locator('input[name="password"]').fill('any');
  await page.locator('button[type="submit"]').click();
  await page.locator('button[type="submit"]').click(); // the consent prompt
  await backAtTheTerminal(page, login);
  const shown = JSON.parse(token(['show'], store));
  assert.equal(shown.refresh_token, true);
  const me = await fetch(`${issuer}/me`, { headers: { authorization: `Bearer ${token(['print'], store)}` } });
  assert.equal(me.status, 200);
  assert.equal((await me.json()).sub, 'terminal-user');
});

test('the Eternaltwin server: Chromium signed in there, the registered loopback port', async (t) => {
  const binary = process.env.DOORWARD_TEST_ETERNALTWIN_BIN;
  if (!binary) {
    t.skip('DOORWARD_TEST_ETERNALTWIN_BIN is not set (scripts/test.sh sets it)');
    return;
  }
  const port = await freePort();
  const cliPort = await freePort();
  const dir = fs.mkdtempSync(path.join(workdir, 'etw-'));
  fs.writeFileSync(path.join(dir, 'eternaltwin.toml'), [
    '[backend]', `listen = "127.0.0.1:${port}"`, 'secret = "dev"', 'clock = "System"', 'mailer = "Mock"',
    'store = "Memory"', 'oauth_client = "Mock"', '', '[opentelemetry]', 'enabled = false', '',
    '[seed.app.doorward_cli]', 'display_name = "Doorward CLI"', `uri = "http://127.0.0.1:${cliPort}/"`,
    `oauth_callback = "http://127.0.0.1:${cliPort}/callback"`, 'secret = "cli_secret"', '',
    '[seed.user.alice]', 'username = "alice"', 'password = "1234567891"', '',
  ].join('\n'));
  const etw = spawn(binary, ['backend'], { cwd: dir, stdio: 'ignore' });
  children.push(etw);
  t.after(() => etw.kill());
  const origin = `http://127.0.0.1:${port}`;
  for (let i = 0; ; i++) {
    const up = await fetch(`${origin}/api/v1`).then((r) => r.ok, () => false);
    if (up) break;
    assert.ok(i < 240, 'Eternaltwin did not answer within 60 s');
    await new Promise((r) => setTimeout(r, 250));
  }
  const store = path.join(workdir, 'eternaltwin.json');
  const login = startLogin(['--eternaltwin', `${origin}/`, '--client-id', 'doorward_cli@clients',
    '--client-secret', 'cli_secret', '--redirect-uri', `http://127.0.0.1:${cliPort}/callback`], store);
  const url = await login.url;
  const context = await browser.newContext();
  t.after(() => context.close());
  // Eternaltwin's own sign-in, in this browser (its session cookie; the password hex-encoded).
  const password = Buffer.from('1234567891').toString('hex');
  const signedIn = await context.request.put(`${origin}/api/v1/auth/self?method=Etwin`, {
    data: { login: 'alice', password },
  });
  assert.equal(signedIn.status(), 200);
  const page = await context.newPage();
  await page.goto(url.href);
  await backAtTheTerminal(page, login);
  const me = await fetch(`${origin}/api/v1/auth/self`, { headers: { authorization: `Bearer ${token(['print'], store)}` } });
  assert.equal((await me.json()).type, 'AccessToken');
});
