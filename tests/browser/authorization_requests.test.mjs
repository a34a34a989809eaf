// Interop and browser test of how authorization requests travel: pushed (RFC 9126), as signed
// request objects (RFC 9101, JAR), and answered with form_post (OAuth 2.0 Form Post Response
// Mode). The real `openid-client` (v6) pushes or signs its request for `doorward serve`, a real
// (Debian) Chromium signs in, consents and is carried back to the client (by Doorward's
// auto-submitting form for form_post); openid-client then redeems the code.
// Run: DOORWARD_BIN=$PWD/target/debug/doorward node --test tests/browser/authorization_requests.test.mjs
//
// The clients' redirect URIs are on localhost:8000, which Chromium resolves (--host-resolver-rules)
// to a callback server of this test: it records each hit with its method and body.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes, webcrypto as crypto } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as client from 'openid-client';
import { DOORWARD_BIN, freePort, launchChromium, startServer, stopServer } from './doorward-server.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const SCREENSHOTS = path.join(HERE, 'screenshots');
const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';

// Must push (require_pushed_authorization_requests), client_secret_basic.
const PAR = { name: 'par_rp', id: 'par_rp@clients', secret: 'par_rp_secret_1', redirectUri: 'http://localhost:8000/par/callback' };
// Pushes or not, as it likes.
const RP = { name: 'post_rp', id: 'post_rp@clients', secret: 'post_rp_secret_1', redirectUri: 'http://localhost:8000/post/callback' };
// Signs its request objects with an ES256 key whose public half is in its `jwks`.
const JAR = { name: 'jar_rp', id: 'jar_rp@clients', secret: 'jar_rp_secret_1', redirectUri: 'http://localhost:8000/jar/callback', kid: 'jar-key-1' };
const USER = { username: 'paula', password: 'paula-password-1' };
let jarKey; // the JAR client's private CryptoKey

const s = (v) => JSON.stringify(v);
const config = (jarJwk) => [
  '[oauth]',
  'scopes = ["base", "openid", "profile", "email"]',
  '',
  `[clients.${PAR.name}]`,
  'display_name = "Pushing RP"',
  'app_uri = "http://localhost:8000"',
  `callback_uri = ${s(PAR.redirectUri)}`,
  `secret = ${s(PAR.secret)}`,
  'require_pushed_authorization_requests = true',
  '',
  `[clients.${RP.name}]`,
  'display_name = "Form post RP"',
  'app_uri = "http://localhost:8000"',
  `callback_uri = ${s(RP.redirectUri)}`,
  `secret = ${s(RP.secret)}`,
  '',
  `[clients.${JAR.name}]`,
  'display_name = "Signing RP"',
  'app_uri = "http://localhost:8000"',
  `callback_uri = ${s(JAR.redirectUri)}`,
  `secret = ${s(JAR.secret)}`,
  `jwks = '${JSON.stringify({ keys: [jarJwk] })}'`,
  '',
  `[seed.user.${USER.username}]`,
  `username = ${s(USER.username)}`,
  `password = ${s(USER.password)}`,
  'display_name = "Paula"',
  'email = "paula@example.com"',
  '',
].join('\n');

let server;
let workdir;
let browser;
let callbackServer;
const hits = [];

/** Stands in for the clients at localhost:8000: records every hit (method, URL, form body). */
function startCallbackServer() {
  const srv = http.createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (d) => { body += d; });
    req.on('end', () => {
      hits.push({ method: req.method, url: `http://${req.headers.host}${req.url}`, type: req.headers['content-type'], body });
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
      res.end('<!doctype html><title>Client callback</title><p>callback reached</p>');
    });
  });
  return new Promise((resolve, reject) => {
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => resolve(srv));
  });
}

before(async () => {
  assert.ok(fs.existsSync(DOORWARD_BIN), `doorward binary not found: ${DOORWARD_BIN} (set DOORWARD_BIN)`);
  assert.ok(fs.existsSync(CHROMIUM), `chromium not found at ${CHROMIUM} (apt-get install chromium)`);
  workdir = fs.mkdtempSync(path.join(os.tmpdir(), 'doorward-requests-'));
  const pair = await crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, ['sign', 'verify']);
  jarKey = pair.privateKey;
  const jwk = await crypto.subtle.exportKey('jwk', pair.publicKey);
  server = startServer(await freePort(), workdir, config({ ...jwk, kid: JAR.kid, alg: 'ES256', use: 'sig' }));
  await server.ready;
  callbackServer = await startCallbackServer();
  browser = await launchChromium([`--host-resolver-rules=MAP localhost:8000 127.0.0.1:${callbackServer.address().port}`]);
  fs.mkdirSync(SCREENSHOTS, { recursive: true });
});

after(async () => {
  if (browser) await browser.close();
  if (callbackServer) await new Promise((resolve) => callbackServer.close(resolve));
  await stopServer(server);
  if (workdir) fs.rmSync(workdir, { recursive: true, force: true });
});

function discover(c) {
  return client.discovery(new URL(server.origin), c.id, c.secret, undefined, {
    execute: [client.allowInsecureRequests],
  });
}

/** Waits for the next hit of the callback server at `redirectUri`. */
async function nextHit(redirectUri, seen) {
  for (let i = 0; i < 200; i += 1) {
    const hit = hits.slice(seen).find((h) => h.url.startsWith(redirectUri));
    if (hit) return hit;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`no hit at ${redirectUri}: ${JSON.stringify(hits)}`);
}

/** The callback hit as the Request openid-client reads a form_post answer from. */
function asRequest(hit) {
  assert.equal(hit.method, 'POST', JSON.stringify(hit));
  assert.equal(hit.type, 'application/x-www-form-urlencoded');
  return new Request(hit.url, {
    method: 'POST',
    headers: { 'content-type': hit.type },
    body: hit.body,
  });
}

async function signIn(page) {
  await page.locator('input[name="username"]').fill(USER.username);
  await page.locator('input[name="password"]').fill(USER.password);
  await Promise.all([
    page.waitForURL((u) => u.pathname === '/oauth/authorize'),
    page.getByRole('button', { name: 'Sign in' }).click(),
  ]);
}

test('openid-client pushes its request; Chromium signs in and form_post carries the code back', async (t) => {
  const config = await discover(PAR);
  const metadata = config.serverMetadata();
  assert.equal(metadata.pushed_authorization_request_endpoint, `${server.origin}/oauth/par`);
  assert.ok(metadata.response_modes_supported.includes('form_post'));

  const codeVerifier = client.randomPKCECodeVerifier();
  const state = client.randomState();
  const nonce = client.randomNonce();
  const url = await client.buildAuthorizationUrlWithPAR(config, {
    redirect_uri: PAR.redirectUri,
    scope: 'openid profile base',
    code_challenge: await client.calculatePKCECodeChallenge(codeVerifier),
    code_challenge_method: 'S256',
    response_mode: 'form_post',
    state,
    nonce,
  });
  // Only client_id and request_uri travel through the browser (RFC 9126 §4).
  assert.deepEqual([...url.searchParams.keys()].sort(), ['client_id', 'request_uri']);
  assert.match(url.searchParams.get('request_uri'), /^urn:ietf:params:oauth:request_uri:/);

  const context = await browser.newContext();
  t.after(() => context.close());
  const page = await context.newPage();
  await page.goto(url.href);
  assert.equal(new URL(page.url()).pathname, '/login', page.url());
  await signIn(page);
  await page.getByRole('button', { name: 'Allow' }).waitFor();
  assert.ok((await page.content()).includes('Pushing RP'));

  // Allow: a page whose script posts the answer to the callback at once.
  const seen = hits.length;
  const [answer] = await Promise.all([
    page.waitForResponse((r) => r.url() === `${server.origin}/oauth/authorize` && r.request().method() === 'POST'),
    page.getByRole('button', { name: 'Allow' }).click(),
  ]);
  assert.equal(answer.status(), 200);
  const csp = answer.headers()['content-security-policy'];
  assert.match(csp, /script-src 'sha256-[A-Za-z0-9+/]+=*'/, csp);
  assert.match(answer.headers()['cache-control'], /no-store/);
  const hit = await nextHit(PAR.redirectUri, seen);
  await page.waitForURL((u) => u.href === PAR.redirectUri);
  // The code is in no URL the browser saw.
  assert.equal(new URL(hit.url).search, '');
  const form = new URLSearchParams(hit.body);
  assert.equal(form.get('state'), state);
  assert.equal(form.get('iss'), server.origin);
  assert.match(form.get('code'), /^dwc_/);

  const tokens = await client.authorizationCodeGrant(config, asRequest(hit), {
    pkceCodeVerifier: codeVerifier,
    expectedState: state,
    expectedNonce: nonce,
    idTokenExpected: true,
  });
  const claims = tokens.claims();
  assert.equal(claims.aud, PAR.id);
  assert.equal(claims.nonce, nonce);
  const info = await client.fetchUserInfo(config, tokens.access_token, claims.sub);
  assert.equal(info.preferred_username, USER.username);

  // The same request_uri again (the consent is remembered, so no page): spent, so the answer
  // is `invalid_request_uri`, posted the same way, and no code.
  const again = hits.length;
  await page.goto(url.href);
  const refused = new URLSearchParams((await nextHit(PAR.redirectUri, again)).body);
  assert.equal(refused.get('error'), 'invalid_request_uri');
  assert.equal(refused.get('code'), null);
  assert.equal(refused.get('state'), state);

  // This client must push: a plain authorization request is refused (RFC 9126 §5).
  const plain = client.buildAuthorizationUrl(config, {
    redirect_uri: PAR.redirectUri,
    scope: 'base',
    code_challenge: await client.calculatePKCECodeChallenge(codeVerifier),
    code_challenge_method: 'S256',
    state: 'plain',
  });
  const before = hits.length;
  await page.goto(plain.href);
  const plainHit = await nextHit(PAR.redirectUri, before);
  assert.equal(plainHit.method, 'GET');
  const plainAnswer = new URL(plainHit.url).searchParams;
  assert.equal(plainAnswer.get('error'), 'invalid_request');
  assert.equal(plainAnswer.get('state'), 'plain');
});

test('without script, the form_post page is a button that posts the answer', async (t) => {
  const config = await discover(RP);
  const codeVerifier = client.randomPKCECodeVerifier();
  const state = client.randomState();
  const url = client.buildAuthorizationUrl(config, {
    redirect_uri: RP.redirectUri,
    scope: 'base',
    code_challenge: await client.calculatePKCECodeChallenge(codeVerifier),
    code_challenge_method: 'S256',
    response_mode: 'form_post',
    state,
  });
  const context = await browser.newContext({ javaScriptEnabled: false });
  t.after(() => context.close());
  const page = await context.newPage();
  await page.goto(url.href);
  await signIn(page);
  await page.getByRole('button', { name: 'Allow' }).click();
  await page.getByRole('button', { name: 'Continue' }).waitFor();
  assert.equal(new URL(page.url()).origin, server.origin, 'the page waits for the button');
  assert.ok((await page.content()).includes('localhost:8000'), 'the page names where it goes');
  await page.screenshot({ path: path.join(SCREENSHOTS, 'form_post.png'), fullPage: true });
  const seen = hits.length;
  await page.getByRole('button', { name: 'Continue' }).click();
  const hit = await nextHit(RP.redirectUri, seen);
  const tokens = await client.authorizationCodeGrant(config, asRequest(hit), {
    pkceCodeVerifier: codeVerifier,
    expectedState: state,
  });
  assert.equal(tokens.token_type.toLowerCase(), 'bearer');

  // A request pushed by this client with the defaults (query): the code comes back in the URL.
  const pushed = await client.buildAuthorizationUrlWithPAR(config, {
    redirect_uri: RP.redirectUri,
    scope: 'base',
    code_challenge: await client.calculatePKCECodeChallenge(codeVerifier),
    code_challenge_method: 'S256',
    state: `${state}-2`,
  });
  const next = hits.length;
  await page.goto(pushed.href);
  const queryHit = await nextHit(RP.redirectUri, next);
  assert.equal(queryHit.method, 'GET');
  const callback = new URL(queryHit.url);
  const more = await client.authorizationCodeGrant(config, callback, {
    pkceCodeVerifier: codeVerifier,
    expectedState: `${state}-2`,
  });
  assert.ok(more.access_token);
});

test('the pushed request endpoint refuses bad requests with RFC errors', async () => {
  const par = `${server.origin}/oauth/par`;
  const basic = (c) => `Basic ${Buffer.from(`${encodeURIComponent(c.id)}:${encodeURIComponent(c.secret)}`).toString('base64')}`;
  const push = async (c, params, auth = basic(c)) => {
    const r = await fetch(par, {
      method: 'POST',
      headers: { authorization: auth, 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams(params),
    });
    const text = await r.text();
    assert.ok(r.status < 500, text);
    assert.match(r.headers.get('cache-control') ?? '', /no-store/);
    return { status: r.status, body: JSON.parse(text) };
  };
  const good = { response_type: 'code', client_id: RP.id, redirect_uri: RP.redirectUri, scope: 'base' };
  const ok = await push(RP, good);
  assert.equal(ok.status, 201);
  assert.equal(ok.body.expires_in, 300);
  for (const [params, auth, status, error] of [
    [good, basic({ ...RP, secret: 'wrong' }), 401, 'invalid_client'],
    [{ ...good, redirect_uri: 'https://evil.example/cb' }, undefined, 400, 'invalid_request'],
    [{ ...good, scope: 'admin' }, undefined, 400, 'invalid_scope'],
    [{ ...good, request_uri: ok.body.request_uri }, undefined, 400, 'invalid_request'],
    [{ ...good, response_mode: 'jwt' }, undefined, 400, 'invalid_request'],
    [{ ...good, client_id: PAR.id }, undefined, 400, 'invalid_request'],
    [{ ...good, response_type: 'token' }, undefined, 400, 'unsupported_response_type'],
  ]) {
    const r = await push(RP, params, auth);
    assert.equal(r.status, status, JSON.stringify([params, r.body]));
    assert.equal(r.body.error, error, JSON.stringify([params, r.body]));
  }
  // Another client's request_uri, a forged one, an expired-looking one: shown, never redirected.
  for (const [clientId, requestUri] of [
    [PAR.id, ok.body.request_uri],
    [RP.id, `urn:ietf:params:oauth:request_uri:${randomBytes(40).toString('base64url')}`],
    // A character in the middle changed: the last one may carry only padding bits, which a
    // base64url decoder ignores (the same bytes, spelled another way).
    [RP.id, tamperMiddle(ok.body.request_uri)],
  ]) {
    const u = new URL('/oauth/authorize', server.origin);
    u.search = new URLSearchParams({ client_id: clientId, request_uri: requestUri }).toString();
    const r = await fetch(u, { redirect: 'manual' });
    const text = await r.text();
    assert.equal(r.status, 400, text);
    assert.equal(r.headers.get('location'), null);
    assert.match(text, /request_uri/);
  }
});

/** `value` with its middle character replaced by another base64url character. */
function tamperMiddle(value) {
  const i = Math.floor(value.length / 2) + 20;
  return `${value.slice(0, i)}${value[i] === 'A' ? 'B' : 'A'}${value.slice(i + 1)}`;
}

test('openid-client signs its request object (JAR); it is verified once and goes on as a pushed request', async (t) => {
  const config = await discover(JAR);
  assert.equal(config.serverMetadata().request_parameter_supported, true);
  assert.ok(config.serverMetadata().request_object_signing_alg_values_supported.includes('ES256'));
  const codeVerifier = client.randomPKCECodeVerifier();
  const state = client.randomState();
  const nonce = client.randomNonce();
  const params = {
    redirect_uri: JAR.redirectUri,
    scope: 'openid base',
    code_challenge: await client.calculatePKCECodeChallenge(codeVerifier),
    code_challenge_method: 'S256',
    state,
    nonce,
  };
  const url = await client.buildAuthorizationUrlWithJAR(config, params, { key: jarKey, kid: JAR.kid });
  assert.deepEqual([...url.searchParams.keys()].sort(), ['client_id', 'request']);

  const context = await browser.newContext();
  t.after(() => context.close());
  const page = await context.newPage();
  await page.goto(url.href);
  assert.equal(new URL(page.url()).pathname, '/login', page.url());
  // The request came back as a pushed request: the object was verified once.
  const next = new URL(new URL(page.url()).searchParams.get('next'), server.origin);
  assert.deepEqual([...next.searchParams.keys()], ['client_id', 'request_uri']);
  await signIn(page);
  await page.getByRole('button', { name: 'Allow' }).waitFor();
  const seen = hits.length;
  await page.getByRole('button', { name: 'Allow' }).click();
  const hit = await nextHit(JAR.redirectUri, seen);
  assert.equal(hit.method, 'GET');
  const tokens = await client.authorizationCodeGrant(config, new URL(hit.url), {
    pkceCodeVerifier: codeVerifier,
    expectedState: state,
    expectedNonce: nonce,
    idTokenExpected: true,
  });
  assert.equal(tokens.claims().aud, JAR.id);

  // The same object again (from the browser's history, say): used already.
  const replayed = await fetch(url, { redirect: 'manual' });
  assert.equal(replayed.status, 302);
  assert.equal(new URL(replayed.headers.get('location')).searchParams.get('error'), 'invalid_request_object');

  // An object pushed (RFC 9126 §3): its claims are the request.
  const signed = (await client.buildAuthorizationUrlWithJAR(config, params, { key: jarKey, kid: JAR.kid }))
    .searchParams.get('request');
  const pushed = await fetch(`${server.origin}/oauth/par`, {
    method: 'POST',
    headers: {
      authorization: `Basic ${Buffer.from(`${JAR.id}:${JAR.secret}`).toString('base64')}`,
      'content-type': 'application/x-www-form-urlencoded',
    },
    body: new URLSearchParams({ client_id: JAR.id, request: signed }),
  });
  assert.equal(pushed.status, 201, await pushed.clone().text());
  const { request_uri: requestUri } = await pushed.json();
  const front = new URL('/oauth/authorize', server.origin);
  front.search = new URLSearchParams({ client_id: JAR.id, request_uri: requestUri }).toString();
  const again = hits.length;
  await page.goto(front.href);
  const second = new URL((await nextHit(JAR.redirectUri, again)).url);
  assert.equal(second.searchParams.get('state'), state);
  assert.ok(second.searchParams.get('code'));

  // Signed by a key the client never registered: invalid_request_object, at its redirect URI.
  const stranger = await crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, ['sign', 'verify']);
  const forged = await client.buildAuthorizationUrlWithJAR(config, params, { key: stranger.privateKey, kid: JAR.kid });
  const refused = await fetch(forged, { redirect: 'manual' });
  assert.equal(refused.status, 302);
  const location = new URL(refused.headers.get('location'));
  assert.equal(`${location.origin}${location.pathname}`, JAR.redirectUri);
  assert.equal(location.searchParams.get('error'), 'invalid_request_object');
  assert.equal(location.searchParams.get('code'), null);
});
