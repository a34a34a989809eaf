// Browser test of passkeys: a real (Debian) Chromium, driven by playwright-core, with
// Chromium's virtual WebAuthn authenticator (the DevTools protocol's WebAuthn domain: CTAP2,
// internal, resident keys, user verification) standing for a phone or a laptop's screen lock.
// The person signs in with a password, adds a passkey from the account page (and gets recovery
// codes: it is the account's first second factor), signs out, signs in with the passkey alone,
// then with the password and the passkey as the second factor, and removes it. The issuer is
// `http://localhost:PORT`: WebAuthn needs a domain (and localhost is a secure context).
// Screenshots of each page go to tests/browser/screenshots/.
// Run: DOORWARD_BIN=$PWD/target/debug/doorward node --test tests/browser/
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { DOORWARD_BIN, freePort, launchChromium, startServer, stopServer } from './doorward-server.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const SCREENSHOTS = path.join(HERE, 'screenshots');
const PASSWORD = 'pia keeps a long passphrase';

const CONFIG = `
[seed.user.pia]
username = "pia"
password = "${PASSWORD}"
display_name = "Pia"
`;

let server;
let workdir;
let browser;

before(async () => {
  assert.ok(fs.existsSync(DOORWARD_BIN), `doorward binary not found: ${DOORWARD_BIN} (set DOORWARD_BIN)`);
  workdir = fs.mkdtempSync(path.join(os.tmpdir(), 'doorward-passkeys-'));
  server = startServer(await freePort(), workdir, CONFIG, 'localhost');
  await server.ready;
  browser = await launchChromium();
  fs.mkdirSync(SCREENSHOTS, { recursive: true });
});

after(async () => {
  if (browser) await browser.close();
  await stopServer(server);
  if (workdir) fs.rmSync(workdir, { recursive: true, force: true });
});

async function signInWithPassword(page, origin) {
  await page.goto(`${origin}/login`);
  await page.locator('input[name="username"]').fill('pia');
  await page.locator('input[name="password"]').fill(PASSWORD);
  await page.getByRole('button', { name: 'Sign in', exact: true }).click();
}

async function signOut(page, origin) {
  await page.goto(`${origin}/logout`);
  await Promise.all([
    page.waitForURL((u) => u.pathname === '/login'),
    page.getByRole('button', { name: 'Sign out' }).click(),
  ]);
}

test('add a passkey, sign in with it alone and as the second factor, remove it', async (t) => {
  const { origin } = server;
  const context = await browser.newContext();
  t.after(() => context.close());
  const page = await context.newPage();
  const pageErrors = [];
  page.on('pageerror', (e) => pageErrors.push(e.message));
  const cdp = await context.newCDPSession(page);
  await cdp.send('WebAuthn.enable');
  const { authenticatorId } = await cdp.send('WebAuthn.addVirtualAuthenticator', {
    options: {
      protocol: 'ctap2',
      transport: 'internal',
      hasResidentKey: true,
      hasUserVerification: true,
      isUserVerified: true,
      automaticPresenceSimulation: true,
    },
  });

  // 1. A password sign-in, then the account's passkeys page.
  await signInWithPassword(page, origin);
  await page.waitForURL((u) => u.pathname === '/account');
  await page.getByRole('link', { name: 'Passkeys' }).click();
  await page.waitForURL((u) => u.pathname === '/account/passkeys');
  assert.ok((await page.content()).includes('No passkey yet.'));

  // 2. Add one: the password again, then the authenticator makes it.
  await page.locator('input[name="name"]').fill('Pia’s laptop');
  await page.locator('input[name="password"]').fill(PASSWORD);
  await page.screenshot({ path: path.join(SCREENSHOTS, 'passkeys.png'), fullPage: true });
  await page.getByRole('button', { name: 'Continue' }).click();
  const create = page.getByRole('button', { name: 'Create the passkey' });
  await create.waitFor({ state: 'visible' });
  await page.screenshot({ path: path.join(SCREENSHOTS, 'passkey-creation.png'), fullPage: true });
  await create.click();
  await page.getByRole('heading', { name: 'Your recovery codes' }).waitFor();
  assert.equal(await page.locator('ul.codes li').count(), 10, 'the first second factor brings recovery codes');
  const { credentials } = await cdp.send('WebAuthn.getCredentials', { authenticatorId });
  assert.equal(credentials.length, 1, 'the authenticator holds one credential');
  assert.equal(credentials[0].isResidentCredential, true, 'a discoverable credential');
  await page.getByRole('link', { name: 'Continue' }).click();
  await page.waitForURL((u) => u.pathname === '/account/passkeys');
  const listed = await page.content();
  assert.ok(listed.includes('Pia’s laptop') && listed.includes('never used'), 'the passkey is listed');

  // 3. Signed out, a passkey alone signs in: no username, no password.
  await signOut(page, origin);
  const passkeyButton = page.getByRole('button', { name: 'Sign in with a passkey' });
  await passkeyButton.waitFor({ state: 'visible' });
  await page.screenshot({ path: path.join(SCREENSHOTS, 'sign-in-with-passkey.png'), fullPage: true });
  await Promise.all([
    page.waitForURL((u) => u.pathname === '/account'),
    passkeyButton.click(),
  ]);
  assert.ok((await page.content()).includes('(pia)'), 'signed in as pia with the passkey');
  const after = await cdp.send('WebAuthn.getCredentials', { authenticatorId });
  assert.ok(after.credentials[0].signCount >= 1, 'the authenticator signed');

  // 4. A password now asks for the second factor: the passkey answers it.
  await signOut(page, origin);
  await signInWithPassword(page, origin);
  await page.waitForURL((u) => u.pathname === '/login/second-factor');
  const usePasskey = page.getByRole('button', { name: 'Use a passkey' });
  await usePasskey.waitFor({ state: 'visible' });
  await page.screenshot({ path: path.join(SCREENSHOTS, 'second-factor-passkey.png'), fullPage: true });
  await Promise.all([
    page.waitForURL((u) => u.pathname === '/account'),
    usePasskey.click(),
  ]);

  // 5. Without user verification the authenticator's answer is refused, nothing signed in.
  await signOut(page, origin);
  await cdp.send('WebAuthn.setUserVerified', { authenticatorId, isUserVerified: false });
  await page.getByRole('button', { name: 'Sign in with a passkey' }).click();
  await page.waitForLoadState();
  const refused = page.locator('p.error[role="alert"]');
  await refused.first().waitFor({ state: 'visible' });
  assert.equal(new URL(page.url()).pathname.startsWith('/account'), false, 'not signed in');
  await cdp.send('WebAuthn.setUserVerified', { authenticatorId, isUserVerified: true });

  // 6. Removed with the password: the list is empty, the password alone signs in again.
  await signInWithPassword(page, origin);
  await page.waitForURL((u) => u.pathname === '/login/second-factor');
  await Promise.all([
    page.waitForURL((u) => u.pathname === '/account'),
    page.getByRole('button', { name: 'Use a passkey' }).click(),
  ]);
  await page.goto(`${origin}/account/passkeys`);
  await page.locator('form[action="/account/passkeys/remove"] input[name="password"]').fill(PASSWORD);
  await page.getByRole('button', { name: 'Remove Pia’s laptop' }).click();
  await page.waitForURL((u) => u.pathname === '/account/passkeys');
  assert.ok((await page.content()).includes('No passkey yet.'));
  await signOut(page, origin);
  await signInWithPassword(page, origin);
  await page.waitForURL((u) => u.pathname === '/account');
  assert.deepEqual(pageErrors, [], 'no script error on any page');
});
