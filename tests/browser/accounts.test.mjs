// Browser test of people's accounts: a real (Debian) Chromium, driven by playwright-core, signs
// up on Doorward's sign-up page, enrols an authenticator app from the account page (its codes
// computed by pyotp in the test venv), signs out and in again with the password and a code,
// approves an application whose access token then works, and an admin disables the account from
// the console, which ends the person's session and the application's live token.
// Screenshots of each page go to tests/browser/screenshots/.
// Run: DOORWARD_BIN=$PWD/target/debug/doorward node --test tests/browser/
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { DOORWARD_BIN, REPO_ROOT, freePort, launchChromium, startCallbackServer, startServer, stopServer } from './doorward-server.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const SCREENSHOTS = path.join(HERE, 'screenshots');
const PYTHON = process.env.DOORWARD_TEST_PYTHON || path.join(REPO_ROOT, '.venv', 'bin', 'python');
const PASSWORD = 'a long passphrase for zoe';
const ADMIN_PASSWORD = 'root console passphrase';
const CLIENT_ID = 'zoe_app@clients';
const CLIENT_SECRET = 'zoe-app-secret';
// Nothing listens there: Chromium maps it to this test's small callback server.
const REDIRECT_URI = 'http://localhost:8000/oauth/callback';

const CONFIG = `
[accounts]
sign_up = "open"

[clients.zoe_app]
display_name = "Zoe's App"
app_uri = "http://localhost:8000"
callback_uri = "${REDIRECT_URI}"
secret = "${CLIENT_SECRET}"

[seed.user.root]
username = "root"
password = "${ADMIN_PASSWORD}"
display_name = "Root"
admin = true
`;

let server;
let workdir;
let browser;
let callbackServer;

/** The TOTP code of `secret` at `offset` seconds from now, from pyotp. */
function totp(secret, offset = 0) {
  return execFileSync(PYTHON, ['-c',
    'import sys, time, pyotp; print(pyotp.TOTP(sys.argv[1]).at(time.time() + float(sys.argv[2])))',
    secret, String(offset)], { encoding: 'utf8' }).trim();
}

before(async () => {
  assert.ok(fs.existsSync(DOORWARD_BIN), `doorward binary not found: ${DOORWARD_BIN} (set DOORWARD_BIN)`);
  assert.ok(fs.existsSync(PYTHON), `the test venv's python is missing: ${PYTHON} (bash scripts/test.sh makes it)`);
  workdir = fs.mkdtempSync(path.join(os.tmpdir(), 'doorward-accounts-'));
  server = startServer(await freePort(), workdir, CONFIG);
  await server.ready;
  callbackServer = await startCallbackServer();
  browser = await launchChromium([
    `--host-resolver-rules=MAP localhost:8000 127.0.0.1:${callbackServer.address().port}`]);
  fs.mkdirSync(SCREENSHOTS, { recursive: true });
});

after(async () => {
  if (browser) await browser.close();
  if (callbackServer) await new Promise((resolve) => callbackServer.close(resolve));
  await stopServer(server);
  if (workdir) fs.rmSync(workdir, { recursive: true, force: true });
});

test('sign up, enrol an authenticator app, sign in with it, be disabled by an admin', async (t) => {
  const { origin } = server;
  const person = await browser.newContext();
  t.after(() => person.close());
  const page = await person.newPage();

  // 1. Sign up from the sign-in page's link.
  await page.goto(`${origin}/login`);
  await page.getByRole('link', { name: 'Create one' }).click();
  await page.waitForURL((u) => u.pathname === '/signup');
  await page.locator('input[name="username"]').fill('Zoe.Q');
  await page.locator('input[name="display_name"]').fill('Zoë Q');
  await page.locator('input[name="email"]').fill('zoe@example.com');
  await page.locator('input[name="password"]').fill(PASSWORD);
  await page.locator('input[name="password2"]').fill(PASSWORD);
  await page.screenshot({ path: path.join(SCREENSHOTS, 'sign-up.png'), fullPage: true });
  await Promise.all([
    page.waitForURL((u) => u.pathname === '/account'),
    page.getByRole('button', { name: 'Create the account' }).click(),
  ]);
  assert.ok((await page.content()).includes('(zoe.q)'), 'signed in as the new account');
  await page.screenshot({ path: path.join(SCREENSHOTS, 'account.png'), fullPage: true });

  // 2. Enrol an authenticator app: the QR code is inline SVG, the key is shown as text.
  await page.getByRole('link', { name: /Second factor/ }).click();
  await page.waitForURL((u) => u.pathname === '/account/second-factor');
  assert.equal(await page.locator('div.qr svg').count(), 1, 'the QR code is drawn inline');
  const secret = (await page.locator('code.secret').textContent()).trim();
  assert.match(secret, /^[A-Z2-7]{32}$/);
  await page.screenshot({ path: path.join(SCREENSHOTS, 'second-factor-enrolment.png'), fullPage: true });
  await page.locator('input[name="code"]').fill(totp(secret));
  await Promise.all([
    page.waitForURL((u) => u.pathname === '/account/second-factor/enrol'),
    page.getByRole('button', { name: 'Turn it on' }).click(),
  ]);
  const codes = await page.locator('ul.codes code').allTextContents();
  assert.equal(codes.length, 10, 'ten recovery codes are shown once');
  await page.screenshot({ path: path.join(SCREENSHOTS, 'recovery-codes.png'), fullPage: true });

  // 3. Sign out, then in again: the password, then a code (the next step: the enrolment's is spent).
  await page.goto(`${origin}/logout`);
  await Promise.all([
    page.waitForURL((u) => u.pathname === '/login'),
    page.getByRole('button', { name: /Sign out/ }).click(),
  ]);
  await page.locator('input[name="username"]').fill('zoe.q');
  await page.locator('input[name="password"]').fill(PASSWORD);
  await Promise.all([
    page.waitForURL((u) => u.pathname === '/login/second-factor'),
    page.getByRole('button', { name: 'Sign in' }).click(),
  ]);
  assert.ok(!(await person.cookies(origin)).some((c) => c.name === 'dw_session'), 'no session before the code');
  await page.screenshot({ path: path.join(SCREENSHOTS, 'second-factor-prompt.png'), fullPage: true });
  await page.locator('input[name="code"]').fill(totp(secret, 30));
  await Promise.all([
    page.waitForURL((u) => u.pathname === '/account'),
    page.getByRole('button', { name: 'Continue' }).click(),
  ]);

  // 4. An application the person approves gets a token that works.
  const authorize = new URL('/oauth/authorize', origin);
  authorize.search = new URLSearchParams({
    response_type: 'code', client_id: CLIENT_ID, redirect_uri: REDIRECT_URI, scope: 'base', state: 'z1',
  }).toString();
  await page.goto(authorize.href);
  await Promise.all([
    page.waitForURL((u) => u.href.startsWith(REDIRECT_URI)),
    page.getByRole('button', { name: 'Allow' }).click(),
  ]);
  const code = new URL(page.url()).searchParams.get('code');
  assert.ok(code, page.url());
  const tokenResp = await fetch(new URL('/oauth/token', origin), {
    method: 'POST',
    headers: {
      Authorization: `Basic ${Buffer.from(`${CLIENT_ID}:${CLIENT_SECRET}`).toString('base64')}`,
      'Content-Type': 'application/x-www-form-urlencoded',
    },
    body: new URLSearchParams({ grant_type: 'authorization_code', code, redirect_uri: REDIRECT_URI }),
  });
  const tokenText = await tokenResp.text();
  assert.equal(tokenResp.status, 200, tokenText);
  const accessToken = JSON.parse(tokenText).access_token;
  const self = () => fetch(new URL('/api/v1/auth/self', origin), {
    headers: { Authorization: `Bearer ${accessToken}` },
  });
  assert.equal((await self()).status, 200, 'the live token works');

  // 5. The admin disables the account from the console; the person's session ends.
  const admin = await browser.newContext();
  t.after(() => admin.close());
  const console_ = await admin.newPage();
  await console_.goto(`${origin}/login?next=%2Fadmin`);
  await console_.locator('input[name="username"]').fill('root');
  await console_.locator('input[name="password"]').fill(ADMIN_PASSWORD);
  await Promise.all([
    console_.waitForURL((u) => u.pathname === '/admin'),
    console_.getByRole('button', { name: 'Sign in' }).click(),
  ]);
  await console_.screenshot({ path: path.join(SCREENSHOTS, 'admin-console.png'), fullPage: true });
  await console_.goto(`${origin}/admin/users?search=zoe`);
  await console_.getByRole('link', { name: 'zoe.q' }).click();
  await console_.waitForURL((u) => u.pathname.startsWith('/admin/users/'));
  await Promise.all([
    console_.waitForLoadState('load'),
    console_.getByRole('button', { name: /^Disable/ }).click(),
  ]);
  assert.ok((await console_.content()).includes('Disabled: its sessions, grants and tokens ended.'));
  await console_.screenshot({ path: path.join(SCREENSHOTS, 'admin-user.png'), fullPage: true });

  const after = await page.goto(`${origin}/account`);
  assert.equal(new URL(page.url()).pathname, '/login', 'the disabled person is signed out');
  assert.equal(after.status(), 200);
  const refused = await self();
  assert.equal(refused.status, 401, 'the application\'s live token stopped working');
  assert.match(refused.headers.get('www-authenticate') ?? '', /invalid_token/);
});
