// Browser test of people's accounts: a real (Debian) Chromium, driven by playwright-core, signs
// up on Doorward's sign-up page, enrols an authenticator app from the account page (its codes
// computed by pyotp in the test venv), signs out and in again with the password and a code, and
// an admin then disables the account from the console, which ends the person's session.
// Screenshots of each page go to tests/browser/screenshots/.
// Run: DOORWARD_BIN=$PWD/target/debug/doorward node --test tests/browser/
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { DOORWARD_BIN, REPO_ROOT, freePort, launchChromium, startServer, stopServer } from './doorward-server.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const SCREENSHOTS = path.join(HERE, 'screenshots');
const PYTHON = process.env.DOORWARD_TEST_PYTHON || path.join(REPO_ROOT, '.venv', 'bin', 'python');
const PASSWORD = 'a long passphrase for zoe';
const ADMIN_PASSWORD = 'root console passphrase';

const CONFIG = `
[accounts]
sign_up = "open"

[seed.user.root]
username = "root"
password = "${ADMIN_PASSWORD}"
display_name = "Root"
admin = true
`;

let server;
let workdir;
let browser;

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
  browser = await launchChromium();
  fs.mkdirSync(SCREENSHOTS, { recursive: true });
});

after(async () => {
  if (browser) await browser.close();
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

  // 4. The admin disables the account from the console; the person's session ends.
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
});
