// Browser test: a real (Debian) Chromium, driven by playwright-core, signs in on Doorward's login
// page, approves on the consent page and lands on the client's callback with code and state.
// Run: DOORWARD_BIN=$PWD/target/debug/doorward node --test tests/browser/
//
// The client's callback is http://localhost:8000/oauth/callback, where nothing listens. Playwright's
// page.route() does not intercept the hops of a redirect chain (the 302 from POST /oauth/authorize is
// one), so instead Chromium is started with --host-resolver-rules mapping localhost:8000 to a small
// callback server of this test on a free port: the browser follows Doorward's real 302 and the page
// URL stays http://localhost:8000/oauth/callback?code=..&state=..
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { DOORWARD_BIN, freePort, launchChromium, startCallbackServer, startServer, stopServer } from './doorward-server.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const SCREENSHOTS = path.join(HERE, 'screenshots');
const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';

const CLIENT_ID = 'python_client@clients';
const CLIENT_SECRET = 'dev_secret';
const REDIRECT_URI = 'http://localhost:8000/oauth/callback';
const USERNAME = 'alice';
const PASSWORD = 'alice-password-1';

const CONFIG = `
[clients.python_client]
display_name = "Python Client"
app_uri = "http://localhost:8000"
callback_uri = "${REDIRECT_URI}"
secret = "${CLIENT_SECRET}"

[seed.app.other_app]
display_name = "Other App"
uri = "http://localhost:8001"
oauth_callback = "http://localhost:8001/oauth/callback"
secret = "other_secret"

[seed.user.alice]
username = "${USERNAME}"
password = "${PASSWORD}"
display_name = "Alice"
`;


let server;
let workdir;
let browser;
let callbackServer;
const callbacks = [];

before(async () => {
  assert.ok(fs.existsSync(DOORWARD_BIN), `doorward binary not found: ${DOORWARD_BIN} (set DOORWARD_BIN)`);
  assert.ok(fs.existsSync(CHROMIUM), `chromium not found at ${CHROMIUM} (apt-get install chromium)`);
  workdir = fs.mkdtempSync(path.join(os.tmpdir(), 'doorward-browser-'));
  server = startServer(await freePort(), workdir, CONFIG);
  await server.ready;
  callbackServer = await startCallbackServer(callbacks);
  browser = await launchChromium([`--host-resolver-rules=MAP localhost:8000 127.0.0.1:${callbackServer.address().port}`]);
  fs.mkdirSync(SCREENSHOTS, { recursive: true });
});

after(async () => {
  if (browser) await browser.close();
  if (callbackServer) await new Promise((resolve) => callbackServer.close(resolve));
  await stopServer(server);
  if (workdir) fs.rmSync(workdir, { recursive: true, force: true });
});

test('login, consent and callback in Chromium, then the code exchange', async (t) => {
  const context = await browser.newContext();
  t.after(() => context.close());
  const page = await context.newPage();
  const { origin } = server;

  const state = `browser-${randomBytes(8).toString('hex')}`;
  const authorize = new URL('/oauth/authorize', origin);
  authorize.search = new URLSearchParams({
    response_type: 'code',
    client_id: CLIENT_ID,
    redirect_uri: REDIRECT_URI,
    scope: 'base',
    state,
  }).toString();

  // 1. Not signed in: the authorize URL sends us to the login page.
  const first = await page.goto(authorize.href);
  assert.equal(first.status(), 200);
  const loginUrl = new URL(page.url());
  assert.equal(loginUrl.origin, origin);
  assert.equal(loginUrl.pathname, '/login');
  assert.ok(loginUrl.searchParams.get('next')?.startsWith('/oauth/authorize?'), page.url());
  await page.screenshot({ path: path.join(SCREENSHOTS, 'login.png'), fullPage: true });
  assert.ok((await context.cookies(origin)).some((c) => c.name === 'dw_csrf'), 'login page sets dw_csrf');

  // 2. Sign in.
  await page.locator('input[name="username"]').fill(USERNAME);
  await page.locator('input[name="password"]').fill(PASSWORD);
  await Promise.all([
    page.waitForURL((u) => u.pathname === '/oauth/authorize'),
    page.getByRole('button', { name: 'Sign in' }).click(),
  ]);
  const session = (await context.cookies(origin)).find((c) => c.name === 'dw_session');
  assert.ok(session, 'dw_session cookie set after login');
  assert.equal(session.httpOnly, true);
  assert.equal(session.sameSite, 'Lax');

  // 3. Consent page.
  await page.getByRole('button', { name: 'Allow' }).waitFor();
  assert.ok(await page.getByRole('button', { name: 'Deny' }).isVisible());
  assert.ok((await page.content()).includes('Python Client'), 'consent page names the client');
  await page.screenshot({ path: path.join(SCREENSHOTS, 'consent.png'), fullPage: true });

  // 4. Allow: Doorward redirects to the client's callback with code and state.
  await Promise.all([
    page.waitForURL((u) => u.href.startsWith(REDIRECT_URI)),
    page.getByRole('button', { name: 'Allow' }).click(),
  ]);
  const final = new URL(page.url());
  assert.equal(`${final.origin}${final.pathname}`, REDIRECT_URI);
  const code = final.searchParams.get('code');
  assert.ok(code, `no code in ${final.href}`);
  assert.equal(final.searchParams.get('state'), state);
  assert.equal(final.searchParams.get('error'), null);
  assert.deepEqual(callbacks, [final.href], 'the callback was reached exactly once, with the final URL');
  assert.ok((await page.content()).includes('callback reached'));

  // 5. The client exchanges the code (Basic auth) and uses the token.
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
  assert.match(tokenResp.headers.get('cache-control') ?? '', /no-store/);
  const token = JSON.parse(tokenText);
  assert.deepEqual(Object.keys(token).sort(), ['access_token', 'expires_in', 'refresh_token', 'token_type']);
  assert.equal(token.token_type, 'Bearer');
  assert.equal(token.expires_in, 7200);

  const me = await fetch(new URL('/api/v1/auth/self', origin), {
    headers: { Authorization: `Bearer ${token.access_token}` },
  });
  const meText = await me.text();
  assert.equal(me.status, 200, meText);
  const body = JSON.parse(meText);
  assert.equal(body.type, 'AccessToken');
  assert.equal(body.user.display_name.current.value, 'Alice');
  assert.equal(body.client.key, CLIENT_ID);

  // 6. Second authorization in the same browser: already approved, straight to the callback.
  const state2 = `${state}-again`;
  authorize.searchParams.set('state', state2);
  await page.goto(authorize.href);
  const again = new URL(page.url());
  assert.equal(`${again.origin}${again.pathname}`, REDIRECT_URI, page.url());
  assert.equal(again.searchParams.get('state'), state2);
  assert.ok(again.searchParams.get('code'));
  assert.notEqual(again.searchParams.get('code'), code);
  assert.equal(callbacks.length, 2);
});
