// Interop and browser test of the device authorization grant (RFC 8628): the real `openid-client`
// (v6) starts a device authorization at `doorward serve` and polls while a real (Debian) Chromium,
// as the user on another screen, signs in at the verification URI, enters the user code and
// approves; openid-client then gets the tokens. A refusal, a mistyped code and guessing are
// covered too.
// Run: DOORWARD_BIN=$PWD/target/debug/doorward node --test tests/browser/device.test.mjs
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as client from 'openid-client';
import { DOORWARD_BIN, freePort, launchChromium, startServer, stopServer } from './doorward-server.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const SCREENSHOTS = path.join(HERE, 'screenshots');
const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';

// A public client with no redirect URI: a TV app or a terminal.
const TV = { name: 'tv_app', id: 'tv_app@clients' };
const USER = { username: 'dana', password: 'dana-password-1' };
const DEVICE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code';

const s = (v) => JSON.stringify(v);
const CONFIG = [
  '[oauth]',
  'scopes = ["base", "openid", "profile", "email"]',
  '',
  `[clients.${TV.name}]`,
  'display_name = "Living-room TV"',
  'app_uri = "http://localhost:8000"',
  'redirect_uris = []',
  'token_endpoint_auth_method = "none"',
  `grant_types = [${s(DEVICE_GRANT)}, "refresh_token"]`,
  '',
  `[seed.user.${USER.username}]`,
  `username = ${s(USER.username)}`,
  `password = ${s(USER.password)}`,
  'display_name = "Dana"',
  '',
].join('\n');

let server;
let workdir;
let browser;

before(async () => {
  assert.ok(fs.existsSync(DOORWARD_BIN), `doorward binary not found: ${DOORWARD_BIN} (set DOORWARD_BIN)`);
  assert.ok(fs.existsSync(CHROMIUM), `chromium not found at ${CHROMIUM} (apt-get install chromium)`);
  workdir = fs.mkdtempSync(path.join(os.tmpdir(), 'doorward-device-'));
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

function discover() {
  return client.discovery(new URL(server.origin), TV.id, { token_endpoint_auth_method: 'none' },
    client.None(), { execute: [client.allowInsecureRequests] });
}

async function signIn(page) {
  await page.locator('input[name="username"]').fill(USER.username);
  await page.locator('input[name="password"]').fill(USER.password);
  await Promise.all([
    page.waitForURL((u) => u.pathname === '/device'),
    page.getByRole('button', { name: 'Sign in' }).click(),
  ]);
}

test('openid-client polls while Chromium enters the user code and approves', async (t) => {
  const config = await discover();
  assert.equal(config.serverMetadata().device_authorization_endpoint, `${server.origin}/oauth/device_authorization`);
  assert.ok(config.serverMetadata().grant_types_supported.includes(DEVICE_GRANT));
  const started = await client.initiateDeviceAuthorization(config, { scope: 'openid profile base' });
  assert.match(started.user_code, /^[BCDFGHJKLMNPQRSTVWXZ]{4}-[BCDFGHJKLMNPQRSTVWXZ]{4}$/);
  assert.equal(started.verification_uri, `${server.origin}/device`);
  assert.equal(started.interval, 5);
  const controller = new AbortController();
  t.after(() => controller.abort());
  const polling = client.pollDeviceAuthorizationGrant(config, started, undefined, { signal: controller.signal });

  const context = await browser.newContext();
  t.after(() => context.close());
  const page = await context.newPage();
  // The user types the address and the code by hand: lower case, with a space.
  await page.goto(started.verification_uri);
  assert.equal(new URL(page.url()).pathname, '/login');
  await signIn(page);
  await page.locator('input[name="user_code"]').fill(started.user_code.toLowerCase().replace('-', ' '));
  await page.getByRole('button', { name: 'Continue' }).click();
  await page.getByRole('button', { name: 'Allow' }).waitFor();
  const question = await page.content();
  assert.ok(question.includes('Living-room TV'), 'the page names the application');
  assert.ok(question.includes(started.user_code), 'the page shows the code to compare');
  await page.screenshot({ path: path.join(SCREENSHOTS, 'device.png'), fullPage: true });
  await page.getByRole('button', { name: 'Allow' }).click();
  await page.getByText('Device connected').waitFor();

  const tokens = await polling;
  assert.equal(tokens.token_type.toLowerCase(), 'bearer');
  assert.ok(tokens.refresh_token);
  assert.equal(tokens.claims().aud, TV.id);
  const info = await client.fetchUserInfo(config, tokens.access_token, tokens.claims().sub);
  assert.equal(info.preferred_username, USER.username);
  const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token);
  assert.ok(refreshed.access_token);

  // The device code gave its tokens once.
  const again = await fetch(`${server.origin}/oauth/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: DEVICE_GRANT, device_code: started.device_code, client_id: TV.id }),
  });
  assert.equal(again.status, 400);
  assert.equal((await again.json()).error, 'invalid_grant');
});

test('a refusal reaches the device as access_denied; a wrong code is explained', async (t) => {
  const config = await discover();
  const started = await client.initiateDeviceAuthorization(config, { scope: 'base' });
  const context = await browser.newContext();
  t.after(() => context.close());
  const page = await context.newPage();
  // verification_uri_complete: the code comes prefilled.
  await page.goto(started.verification_uri_complete);
  await signIn(page);
  assert.equal(await page.locator('input[name="user_code"]').inputValue(), started.user_code);
  // A mistyped code first.
  await page.locator('input[name="user_code"]').fill('BBBB-BBBB');
  await page.getByRole('button', { name: 'Continue' }).click();
  await page.getByText('This code is not valid').waitFor();
  await page.locator('input[name="user_code"]').fill(started.user_code);
  await page.getByRole('button', { name: 'Continue' }).click();
  await page.getByRole('button', { name: 'Deny' }).click();
  await page.getByText('Request denied').waitFor();
  await assert.rejects(
    client.pollDeviceAuthorizationGrant(config, started),
    (e) => e.error === 'access_denied',
  );
});

test('the device endpoints answer RFC errors', async () => {
  const post = async (pathname, params) => {
    const r = await fetch(`${server.origin}${pathname}`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams(params),
    });
    const text = await r.text();
    assert.ok(r.status < 500, text);
    return { status: r.status, body: JSON.parse(text), cache: r.headers.get('cache-control') };
  };
  const started = await post('/oauth/device_authorization', { client_id: TV.id, scope: 'base' });
  assert.equal(started.status, 200);
  assert.match(started.cache, /no-store/);
  const pollIt = () => post('/oauth/token', { grant_type: DEVICE_GRANT, client_id: TV.id, device_code: started.body.device_code });
  assert.equal((await pollIt()).body.error, 'authorization_pending');
  const fast = await pollIt();
  assert.equal(fast.status, 400);
  assert.equal(fast.body.error, 'slow_down');
  for (const [params, error] of [
    [{ client_id: TV.id, scope: 'admin' }, 'invalid_scope'],
    [{ client_id: 'nobody@clients' }, 'invalid_client'],
  ]) {
    assert.equal((await post('/oauth/device_authorization', params)).body.error, error);
  }
  assert.equal((await post('/oauth/token', { grant_type: DEVICE_GRANT, client_id: TV.id, device_code: 'dwdc_forged' })).body.error, 'invalid_grant');
  assert.equal((await post('/oauth/token', { grant_type: DEVICE_GRANT, client_id: TV.id })).body.error, 'invalid_request');
});
