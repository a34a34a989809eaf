// Past 700 lines, still one idea: openid-client as one relying party of `doorward serve`, its
// scripted browser and every flow it drives share the one server and its state.
// Interop test: the real `openid-client` (v6, panva) as the Relying Party against `doorward serve`.
// Run: DOORWARD_BIN=$PWD/target/debug/doorward node --test tests/browser/openid_client.test.mjs
//
// openid-client does discovery, builds the authorization and end-session URLs, exchanges the code
// (PKCE + nonce + RFC 9207 `iss` check), validates ID tokens, calls userinfo, refresh, introspection
// and revocation. The "browser" in between is fetch with redirect: 'manual' and a tiny cookie jar
// that submits Doorward's HTML forms (login, consent, end-session confirmation) the way a browser
// would: every hidden input of the form, the visible fields, and the clicked submit button. Nothing
// listens on the clients' redirect URIs: the callback URL is read from the Location header and
// handed to authorizationCodeGrant() as a URL.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import * as client from 'openid-client';
import { DOORWARD_BIN, freePort, startServer } from './doorward-server.mjs';

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const OIDC_SCOPE = 'openid profile email base';

// The default client: ID tokens in RS256 (the OpenID Registration default), client_secret_basic.
// openid-client form-urlencodes Basic credentials (RFC 6749 §2.3.1): the '_' and '@' of the id
// and the '_' of the secret go out as %5F / %40.
const RP = {
  name: 'openid_rp',
  id: 'openid_rp@clients',
  secret: 'rp_secret_1',
  displayName: 'OpenID RP',
  redirectUri: 'http://localhost:8000/oauth/callback',
  postLogoutRedirectUri: 'http://localhost:8000/logged-out',
  alg: 'RS256',
};
// A client registered with id_token_signed_response_alg = "ES256", client_secret_post.
const ES = {
  name: 'openid_es',
  id: 'openid_es@clients',
  secret: 'es_secret_1',
  displayName: 'OpenID ES256 RP',
  redirectUri: 'http://localhost:8001/oauth/callback',
  postLogoutRedirectUri: 'http://localhost:8001/logged-out',
  alg: 'ES256',
};

// A public client (a single-page or native app): no secret, token_endpoint_auth_method = "none",
// PKCE S256 required, a loopback redirect URI (RFC 8252 §7.3; http://localhost is refused for
// public clients, §8.3).
const PUB = {
  name: 'openid_pub',
  id: 'openid_pub@clients',
  displayName: 'OpenID public RP',
  redirectUri: 'http://127.0.0.1:8002/oauth/callback',
  postLogoutRedirectUri: 'http://127.0.0.1:8002/logged-out',
  alg: 'RS256',
};

// One user per test area, so that sessions and consents do not leak between tests.
const USERS = Object.fromEntries(['alice', 'bob', 'carol', 'dave', 'erin'].map((u) => [u, {
  username: u,
  password: `${u}-password-1`,
  displayName: u[0].toUpperCase() + u.slice(1),
  email: `${u}@example.com`,
}]));

const s = (v) => JSON.stringify(v); // a TOML basic string (JSON escaping is valid TOML here)

function configToml({ port, workdir }) {
  const origin = `http://127.0.0.1:${port}`;
  const clientBlock = (c, extra = []) => [
    `[clients.${c.name}]`,
    `display_name = ${s(c.displayName)}`,
    `app_uri = ${s(new URL(c.redirectUri).origin)}`,
    `callback_uri = ${s(c.redirectUri)}`,
    ...(c.secret ? [`secret = ${s(c.secret)}`] : []),
    'scopes = ["base", "openid", "profile", "email"]',
    `post_logout_redirect_uris = [${s(c.postLogoutRedirectUri)}]`,
    ...extra,
    '',
  ];
  return [
    // listen / external_uri / database live in the file (not only on the command line) so that
    // `doorward keys rotate --config FILE` reaches the very database the running server uses.
    '[server]',
    `listen = ${s(`127.0.0.1:${port}`)}`,
    `external_uri = ${s(origin)}`,
    `database = ${s(`sqlite:${path.join(workdir, 'doorward.sqlite')}`)}`,
    '',
    '[oauth]',
    'scopes = ["base", "openid", "profile", "email"]',
    'default_scopes = ["base"]',
    // DPoP proofs must carry a server nonce: openid-client retries with it (RFC 9449 §8).
    'dpop_require_nonce = true',
    '',
    '[keys]',
    'algorithms = ["ES256", "RS256"]',
    'publish_delay = 2',
    '',
    '[tokens]',
    'id_token = 3600',
    '',
    ...clientBlock(RP),
    ...clientBlock(ES, [
      `id_token_signed_response_alg = ${s(ES.alg)}`,
      'token_endpoint_auth_method = "client_secret_post"',
    ]),
    ...clientBlock(PUB, ['token_endpoint_auth_method = "none"']),
    ...Object.values(USERS).flatMap((u) => [
      `[seed.user.${u.username}]`,
      `username = ${s(u.username)}`,
      `password = ${s(u.password)}`,
      `display_name = ${s(u.displayName)}`,
      `email = ${s(u.email)}`,
      'email_verified = true',
      '',
    ]),
  ].join('\n');
}

// ---------------------------------------------------------------------------------------------
// The server


/** Run `DOORWARD_BIN ...args` to completion; reject with its output unless it exits 0. */
function runDoorward(args, { timeoutMs = 60_000 } = {}) {
  return new Promise((resolve, reject) => {
    const out = { stdout: '', stderr: '' };
    const cmd = `${DOORWARD_BIN} ${args.join(' ')}`;
    const dump = () => `command: ${cmd}\n--- stdout ---\n${out.stdout}\n--- stderr ---\n${out.stderr}`;
    let child;
    try {
      child = spawn(DOORWARD_BIN, args, { cwd: workdir, stdio: ['ignore', 'pipe', 'pipe'] });
    } catch (e) {
      reject(new Error(`cannot spawn \`${cmd}\`: ${e.message}`));
      return;
    }
    child.stdout.setEncoding('utf8');
    child.stderr.setEncoding('utf8');
    child.stdout.on('data', (d) => { out.stdout += d; });
    child.stderr.on('data', (d) => { out.stderr += d; });
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`\`${cmd}\` did not finish within ${timeoutMs / 1000} s\n${dump()}`));
    }, timeoutMs);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(new Error(`cannot spawn \`${cmd}\`: ${e.message}\n${dump()}`));
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve(out);
      else reject(new Error(`\`${cmd}\` failed (exit code ${code}, signal ${signal})\n${dump()}`));
    });
  });
}

// ---------------------------------------------------------------------------------------------
// A cookie-keeping, never-redirect-following "browser" that submits HTML forms

function describe(r, bodyChars = 1500) {
  return `${r.method} ${r.url} -> ${r.status}${r.location ? ` (Location: ${r.location})` : ''}\n` +
    `  body: ${JSON.stringify(r.text.slice(0, bodyChars))}`;
}

const ENTITIES = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'", nbsp: '\u00a0' };
function decodeEntities(text) {
  return text.replace(/&(#x[0-9a-f]+|#[0-9]+|[a-z]+);/gi, (m, e) => {
    if (e[0] === '#') {
      const cp = e[1] === 'x' || e[1] === 'X' ? parseInt(e.slice(2), 16) : parseInt(e.slice(1), 10);
      return String.fromCodePoint(cp);
    }
    return ENTITIES[e.toLowerCase()] ?? m;
  });
}

function parseAttrs(src) {
  const attrs = {};
  const re = /([^\s"'<>\/=]+)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'=<>`]+)))?/g;
  let m;
  while ((m = re.exec(src))) {
    attrs[m[1].toLowerCase()] = decodeEntities(m[2] ?? m[3] ?? m[4] ?? '');
  }
  return attrs;
}

/** Every <form> of a page: method, action, hidden inputs, all inputs, submit buttons. */
function parseForms(html) {
  const forms = [];
  for (const fm of html.matchAll(/<form\b([^>]*)>([\s\S]*?)<\/form>/gi)) {
    const a = parseAttrs(fm[1]);
    const form = { method: (a.method || 'get').toLowerCase(), action: a.action ?? '', hidden: [], inputs: [], buttons: [] };
    for (const el of fm[2].matchAll(/<input\b([^>]*?)\/?>|<button\b([^>]*)>([\s\S]*?)<\/button>/gi)) {
      if (el[1] !== undefined) {
        const ia = parseAttrs(el[1]);
        form.inputs.push(ia);
        const type = (ia.type || 'text').toLowerCase();
        if (type === 'hidden' && ia.name) form.hidden.push([ia.name, ia.value ?? '']);
        else if (type === 'submit') form.buttons.push({ name: ia.name, value: ia.value ?? '', text: ia.value ?? '' });
      } else {
        const ba = parseAttrs(el[2]);
        if ((ba.type || 'submit').toLowerCase() === 'submit') {
          const text = decodeEntities(el[3].replace(/<[^>]*>/g, '')).trim();
          form.buttons.push({ name: ba.name, value: ba.value ?? '', text });
        }
      }
    }
    forms.push(form);
  }
  return forms;
}

function findForm(page, actionPath, method = 'post') {
  const form = parseForms(page.text).find(
    (f) => f.method === method && new URL(f.action || page.url, page.url).pathname === actionPath);
  assert.ok(form, `no <form method=${method} action=${actionPath}> on the page\n${describe(page, 4000)}`);
  return form;
}

class Browser {
  constructor(origin) {
    this.origin = origin;
    this.cookies = new Map();
  }

  cookie(name) {
    return this.cookies.get(name);
  }

  #store(response) {
    for (const line of response.headers.getSetCookie()) {
      const [pair, ...attrs] = line.split(';');
      const eq = pair.indexOf('=');
      if (eq < 1) continue;
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      let expired = false;
      for (const attr of attrs) {
        const [k, v = ''] = attr.split('=');
        const key = k.trim().toLowerCase();
        if (key === 'max-age' && Number(v.trim()) <= 0) expired = true;
        if (key === 'expires' && Date.parse(v.trim()) <= Date.now()) expired = true;
      }
      if (expired) this.cookies.delete(name);
      else this.cookies.set(name, value);
    }
  }

  async request(url, { method = 'GET', body } = {}) {
    const u = new URL(url, this.origin);
    assert.equal(u.origin, this.origin, `the browser only talks to Doorward here, not ${u.href}`);
    const headers = new Headers();
    if (this.cookies.size) headers.set('cookie', [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; '));
    if (body !== undefined) headers.set('content-type', 'application/x-www-form-urlencoded');
    const response = await fetch(u, { method, headers, body, redirect: 'manual' });
    this.#store(response);
    const loc = response.headers.get('location');
    const r = {
      method,
      url: u.href,
      status: response.status,
      headers: response.headers,
      location: loc === null ? null : new URL(loc, u).href,
      text: await response.text(),
    };
    assert.ok(r.status < 500, `server error\n${describe(r)}`);
    return r;
  }

  get(url) {
    return this.request(url);
  }

  /** Submit `form` as a browser does: hidden inputs, then `fields`, then the clicked button. */
  submit(page, form, fields = {}, button = undefined) {
    const data = new URLSearchParams(form.hidden);
    for (const [k, v] of Object.entries(fields)) data.append(k, v);
    const clicked = button ?? form.buttons.find((b) => b.name);
    if (clicked?.name) data.append(clicked.name, clicked.value);
    const action = new URL(form.action || page.url, page.url);
    if (form.method === 'post') return this.request(action, { method: 'POST', body: data.toString() });
    action.search = data.toString();
    return this.get(action);
  }
}

/**
 * Drive /oauth/authorize in `browser` through Doorward's pages: the login form when there is no
 * session, the consent page when asked, and stop at the redirect to `redirectUri` (not followed).
 * Returns the callback URL (a URL) and which pages were shown.
 */
async function authorizeThroughPages(browser, authorizationUrl, user, redirectUri) {
  let loginShown = false;
  let consentShown = false;
  let r = await browser.get(authorizationUrl);
  if ((r.status === 302 || r.status === 303) && r.location && new URL(r.location).pathname === '/login') {
    loginShown = true;
    const page = await browser.get(r.location);
    assert.equal(page.status, 200, describe(page));
    const form = findForm(page, '/login');
    const names = new Set(form.inputs.map((i) => i.name).filter(Boolean));
    for (const n of ['csrf', 'next', 'username', 'password']) assert.ok(names.has(n), `login form lacks ${n}: ${[...names]}`);
    r = await browser.submit(page, form, { username: user.username, password: user.password });
    assert.equal(r.status, 303, `sign-in as ${user.username} failed\n${describe(r)}`);
    assert.ok(browser.cookie('dw_session'), 'no dw_session cookie after signing in');
    r = await browser.get(r.location);
  }
  if (r.status === 200) {
    consentShown = true;
    const form = findForm(r, '/oauth/authorize');
    assert.ok(form.hidden.some(([n]) => n === 'csrf'), `consent form has no csrf\n${describe(r)}`);
    const allow = form.buttons.find((b) => b.name === 'decision' && b.value === 'approve');
    assert.ok(allow, `no Allow button (decision=approve) on the consent page\n${describe(r)}`);
    r = await browser.submit(r, form, {}, allow);
  }
  assert.ok(r.status === 302 || r.status === 303, `expected a redirect to the client\n${describe(r)}`);
  const callback = new URL(r.location);
  assert.equal(`${callback.origin}${callback.pathname}`, redirectUri, `redirected to ${r.location}`);
  return { callback, loginShown, consentShown };
}

// ---------------------------------------------------------------------------------------------
// openid-client helpers

function b64uJson(part) {
  return JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));
}

function jwtHeader(jwt) {
  return b64uJson(jwt.split('.')[0]);
}

/**
 * The RP configuration openid-client builds from discovery. RP leaves id_token_signed_response_alg
 * out of its client metadata (openid-client then accepts any alg of the server's
 * id_token_signing_alg_values_supported; the tests check RS256 themselves); ES sets it, and
 * openid-client then rejects an ID token with any other alg. `alg` overrides it.
 */
async function discover(c, { alg = c === ES ? ES.alg : undefined } = {}) {
  const metadata = { client_secret: c.secret };
  if (alg) metadata.id_token_signed_response_alg = alg;
  const auth = c === ES ? client.ClientSecretPost(c.secret) : client.ClientSecretBasic(c.secret);
  const config = await client.discovery(new URL(server.origin), c.id, metadata, auth, {
    execute: [client.allowInsecureRequests],
  });
  // openid-client does not check the signature of an ID token that comes straight from the
  // token endpoint unless asked to; ask, so that every ID token is verified against jwks_uri.
  client.enableNonRepudiationChecks(config);
  return config;
}

async function getJwks() {
  const r = await fetch(new URL('/oauth/jwks', server.origin));
  const text = await r.text();
  assert.equal(r.status, 200, `GET /oauth/jwks -> ${r.status}: ${text}`);
  const jwks = JSON.parse(text);
  assert.ok(Array.isArray(jwks.keys), text);
  return jwks;
}

/** An independent check of a JWS with node:crypto against a JWKS (kid must be published). */
function verifyWithJwks(jwt, jwks) {
  const [h, p, sig] = jwt.split('.');
  const header = b64uJson(h);
  assert.ok(header.kid, `no kid in the JWT header ${JSON.stringify(header)}`);
  const jwk = jwks.keys.find((k) => k.kid === header.kid);
  assert.ok(jwk, `kid ${header.kid} is not in /oauth/jwks (${jwks.keys.map((k) => k.kid).join(', ')})`);
  assert.equal(jwk.alg, header.alg, `JWK ${jwk.kid} has alg ${jwk.alg}, the token says ${header.alg}`);
  assert.equal(jwk.use, 'sig');
  for (const priv of ['d', 'p', 'q', 'dp', 'dq', 'qi', 'k']) assert.equal(jwk[priv], undefined, `JWK ${jwk.kid} leaks "${priv}"`);
  const { kty, n, e, crv, x, y } = jwk;
  const key = crypto.createPublicKey({ key: JSON.parse(JSON.stringify({ kty, n, e, crv, x, y })), format: 'jwk' });
  const data = Buffer.from(`${h}.${p}`);
  const signature = Buffer.from(sig, 'base64url');
  let ok;
  switch (header.alg) {
    case 'RS256': ok = crypto.verify('sha256', data, key, signature); break;
    case 'ES256': ok = crypto.verify('sha256', data, { key, dsaEncoding: 'ieee-p1363' }, signature); break;
    case 'EdDSA': ok = crypto.verify(null, data, key, signature); break;
    default: assert.fail(`unexpected alg ${header.alg}`);
  }
  assert.ok(ok, `bad ${header.alg} signature (kid ${header.kid})`);
  return header;
}

/** OIDC Core §3.1.3.6: at_hash = base64url(left half of SHA-256(access_token)) for *256 algs. */
function atHash(accessToken) {
  const digest = crypto.createHash('sha256').update(accessToken, 'ascii').digest();
  return digest.subarray(0, digest.length / 2).toString('base64url');
}

/**
 * One full sign-in with openid-client: authorization URL (PKCE S256 + nonce + state), the HTML
 * pages, the callback (iss + state checked by openid-client), the code exchange (ID token checked:
 * alg, signature, iss, aud, exp, nonce).
 */
async function signIn(config, c, browser, user, { scope = OIDC_SCOPE, DPoP, extra = {} } = {}) {
  const codeVerifier = client.randomPKCECodeVerifier();
  const codeChallenge = await client.calculatePKCECodeChallenge(codeVerifier);
  const nonce = client.randomNonce();
  const state = client.randomState();
  const authorizationUrl = client.buildAuthorizationUrl(config, {
    redirect_uri: c.redirectUri,
    scope,
    code_challenge: codeChallenge,
    code_challenge_method: 'S256',
    nonce,
    state,
    ...extra,
  });
  assert.equal(authorizationUrl.origin + authorizationUrl.pathname, `${server.origin}/oauth/authorize`);
  const pages = await authorizeThroughPages(browser, authorizationUrl, user, c.redirectUri);
  const { callback } = pages;
  const names = [...callback.searchParams.keys()];
  assert.equal(callback.searchParams.get('error'), null, `authorization error: ${callback.href}`);
  assert.equal(callback.searchParams.get('iss'), server.origin, `RFC 9207 iss missing or wrong in ${callback.href}`);
  assert.ok(names.indexOf('state') < names.indexOf('iss'), `iss should come after state: ${callback.href}`);
  const tokens = await client.authorizationCodeGrant(config, callback, {
    pkceCodeVerifier: codeVerifier,
    expectedNonce: nonce,
    expectedState: state,
    idTokenExpected: true,
  }, undefined, DPoP ? { DPoP } : undefined);
  return { tokens, nonce, state, callback, ...pages };
}

// ---------------------------------------------------------------------------------------------

let server;
let workdir;
let rp; // openid-client Configuration for RP (RS256, client_secret_basic)
let es; // openid-client Configuration for ES (ES256, client_secret_post)
let discovered;
/** Discovery for both clients, once (so that --test-name-pattern can pick any test). */
function discoverAll() {
  discovered ??= Promise.all([discover(RP), discover(ES)]).then(([a, b]) => { rp = a; es = b; });
  return discovered;
}

before(async () => {
  assert.ok(fs.existsSync(DOORWARD_BIN), `doorward binary not found: ${DOORWARD_BIN} (set DOORWARD_BIN)`);
  workdir = fs.mkdtempSync(path.join(os.tmpdir(), 'doorward-openid-client-'));
  const port = await freePort();
  server = startServer(port, workdir, configToml({ port, workdir }));
  await server.ready;
});

after(async () => {
  if (server && server.child.exitCode === null) {
    server.child.removeAllListeners('exit');
    const exited = new Promise((resolve) => server.child.once('exit', resolve));
    server.child.kill('SIGTERM');
    const timer = setTimeout(() => server.child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
  }
  if (workdir) fs.rmSync(workdir, { recursive: true, force: true });
});

test('discovery: openid-client accepts the metadata', async () => {
  await discoverAll();
  const md = rp.serverMetadata();
  assert.equal(md.issuer, server.origin);
  assert.equal(md.authorization_endpoint, `${server.origin}/oauth/authorize`);
  assert.equal(md.token_endpoint, `${server.origin}/oauth/token`);
  assert.equal(md.userinfo_endpoint, `${server.origin}/oauth/userinfo`);
  assert.equal(md.jwks_uri, `${server.origin}/oauth/jwks`);
  assert.equal(md.introspection_endpoint, `${server.origin}/oauth/introspect`);
  assert.equal(md.revocation_endpoint, `${server.origin}/oauth/revoke`);
  assert.equal(md.end_session_endpoint, `${server.origin}/oauth/end_session`);
  assert.equal(md.authorization_response_iss_parameter_supported, true);
  assert.deepEqual(md.response_types_supported, ['code']);
  assert.deepEqual(md.subject_types_supported, ['public']);
  assert.deepEqual(md.code_challenge_methods_supported, ['S256']);
  assert.ok(rp.serverMetadata().supportsPKCE(), 'openid-client sees S256 PKCE support');
  for (const alg of ['RS256', 'ES256']) {
    assert.ok(md.id_token_signing_alg_values_supported?.includes(alg), `${alg} not in id_token_signing_alg_values_supported`);
  }
  for (const scope of ['openid', 'profile', 'email', 'base']) {
    assert.ok(md.scopes_supported?.includes(scope), `${scope} not in scopes_supported`);
  }
  for (const m of ['client_secret_basic', 'client_secret_post']) {
    assert.ok(md.token_endpoint_auth_methods_supported?.includes(m), `${m} not in token_endpoint_auth_methods_supported`);
  }

  // RFC 8414 metadata too: openid-client with algorithm 'oauth2' reads
  // /.well-known/oauth-authorization-server and checks its issuer the same way.
  const oauth2 = await client.discovery(new URL(server.origin), RP.id, RP.secret, undefined, {
    execute: [client.allowInsecureRequests],
    algorithm: 'oauth2',
  });
  assert.equal(oauth2.serverMetadata().issuer, server.origin);

  const r = await fetch(new URL('/.well-known/openid-configuration', server.origin));
  await r.arrayBuffer();
  assert.match(r.headers.get('cache-control') ?? '', /public/);
  assert.match(r.headers.get('content-type') ?? '', /^application\/json/);

  const jwks = await getJwks();
  assert.ok(jwks.keys.some((k) => k.alg === 'RS256' && k.kty === 'RSA'), 'no RS256 key in /oauth/jwks');
  assert.ok(jwks.keys.some((k) => k.alg === 'ES256' && k.kty === 'EC' && k.crv === 'P-256'), 'no ES256 key in /oauth/jwks');
});

// State shared by the sequential RP tests below (node:test runs a file's top-level tests in order).
const alice = { browser: undefined, tokens: undefined, claims: undefined };

test('code + PKCE + nonce sign-in; the ID token; userinfo', async () => {
  await discoverAll();
  alice.browser = new Browser(server.origin);
  const user = USERS.alice;
  const { tokens, nonce, loginShown, consentShown } = await signIn(rp, RP, alice.browser, user);
  assert.ok(loginShown && consentShown, 'a fresh browser sees the login and the consent page');
  assert.equal(tokens.token_type, 'bearer'); // openid-client lowercases it
  assert.equal(typeof tokens.access_token, 'string');
  assert.equal(typeof tokens.refresh_token, 'string');
  assert.equal(typeof tokens.id_token, 'string');

  const header = jwtHeader(tokens.id_token);
  assert.equal(header.alg, 'RS256', 'default id_token_signed_response_alg is RS256');
  verifyWithJwks(tokens.id_token, await getJwks());

  const claims = tokens.claims();
  assert.equal(claims.iss, server.origin);
  assert.match(claims.sub, UUID_RE);
  assert.equal(claims.aud, RP.id, 'aud is the client_id (decoded, not the %-encoded Basic form)');
  assert.equal(claims.nonce, nonce);
  assert.equal(claims.name, user.displayName);
  assert.equal(claims.preferred_username, user.username);
  assert.equal(claims.email, user.email);
  assert.equal(claims.email_verified, true);
  assert.deepEqual(claims.amr, ['pwd']);
  const now = Math.floor(Date.now() / 1000);
  assert.equal(typeof claims.auth_time, 'number');
  assert.ok(claims.auth_time <= now + 5 && claims.auth_time > now - 120, `auth_time ${claims.auth_time}`);
  assert.ok(Math.abs(claims.exp - claims.iat - 3600) <= 1, `exp - iat = ${claims.exp - claims.iat}, expected [tokens] id_token = 3600`);
  assert.equal(claims.at_hash, atHash(tokens.access_token), 'at_hash');
  const scopes = (tokens.scope ?? OIDC_SCOPE).split(' ');
  for (const sc of ['openid', 'profile', 'email', 'base']) assert.ok(scopes.includes(sc), `granted scope ${tokens.scope}`);
  alice.tokens = tokens;
  alice.claims = claims;

  const userinfo = await client.fetchUserInfo(rp, tokens.access_token, claims.sub);
  assert.equal(userinfo.sub, claims.sub);
  assert.equal(userinfo.email, user.email);
  assert.equal(userinfo.name, user.displayName);

  // The same browser again: no login, no consent; a new code and a new ID token.
  const again = await signIn(rp, RP, alice.browser, user);
  assert.ok(!again.loginShown && !again.consentShown, 'second authorization goes straight back');
  assert.equal(again.tokens.claims().sub, claims.sub);
  assert.equal(again.tokens.claims().auth_time, claims.auth_time, 'same session, same auth_time');
});

test('refresh: a new token pair and a new ID token', async () => {
  assert.ok(alice.tokens, 'sign-in failed');
  const refreshed = await client.refreshTokenGrant(rp, alice.tokens.refresh_token);
  assert.equal(typeof refreshed.access_token, 'string');
  assert.equal(typeof refreshed.refresh_token, 'string');
  assert.notEqual(refreshed.access_token, alice.tokens.access_token);
  assert.notEqual(refreshed.refresh_token, alice.tokens.refresh_token);
  assert.equal(typeof refreshed.id_token, 'string', 'refresh with openid in scope returns an id_token');
  assert.notEqual(refreshed.id_token, alice.tokens.id_token);
  const claims = refreshed.claims();
  assert.equal(claims.iss, server.origin);
  assert.equal(claims.sub, alice.claims.sub);
  assert.equal(claims.aud, RP.id);
  assert.equal(claims.nonce, undefined, 'no nonce on refresh');
  assert.equal(claims.auth_time, alice.claims.auth_time, 'auth_time stays the original authentication time');
  assert.equal(claims.at_hash, atHash(refreshed.access_token));
  assert.equal(jwtHeader(refreshed.id_token).alg, 'RS256');

  const userinfo = await client.fetchUserInfo(rp, refreshed.access_token, alice.claims.sub);
  assert.equal(userinfo.sub, alice.claims.sub);
  alice.tokens = refreshed;
});

test('introspection, then revocation of the access token', async () => {
  assert.ok(alice.tokens, 'sign-in failed');
  const { access_token: at, refresh_token: rt } = alice.tokens;
  const active = await client.tokenIntrospection(rp, at);
  assert.equal(active.active, true, JSON.stringify(active));
  assert.equal(active.client_id, RP.id);
  assert.equal(active.sub, alice.claims.sub);
  assert.equal(active.iss, server.origin);
  assert.equal(active.token_type, 'Bearer');
  assert.ok(active.scope.split(' ').includes('openid'), `scope ${active.scope}`);
  assert.equal(typeof active.exp, 'number');
  assert.equal(typeof active.iat, 'number');

  const activeRt = await client.tokenIntrospection(rp, rt, { token_type_hint: 'refresh_token' });
  assert.equal(activeRt.active, true, JSON.stringify(activeRt));
  assert.equal(activeRt.token_type, 'refresh_token');
  assert.equal(activeRt.client_id, RP.id);

  // Another client's revocation request for RP's token: 200, and the token stays valid.
  await client.tokenRevocation(es, at);
  assert.equal((await client.tokenIntrospection(rp, at)).active, true, "another client's revocation is ignored");

  await client.tokenRevocation(rp, at, { token_type_hint: 'access_token' });
  const revoked = await client.tokenIntrospection(rp, at);
  assert.deepEqual({ ...revoked }, { active: false });
  await assert.rejects(client.fetchUserInfo(rp, at, alice.claims.sub), (e) => {
    // 401 + WWW-Authenticate: Bearer error="invalid_token" -> openid-client's challenge error
    assert.ok(JSON.stringify(e.cause ?? {}).includes('invalid_token') || String(e).includes('invalid_token') ||
      e.code === 'OAUTH_WWW_AUTHENTICATE_CHALLENGE', `userinfo with a revoked token: ${e}`);
    return true;
  });

  // Unknown tokens: revocation is still 200, introspection exactly {active:false}.
  await client.tokenRevocation(rp, 'dw_not_a_real_token');
  assert.deepEqual({ ...(await client.tokenIntrospection(rp, 'dw_not_a_real_token')) }, { active: false });
});

test('revoking the refresh token revokes its whole family', async () => {
  assert.ok(alice.browser, 'sign-in failed');
  const { tokens } = await signIn(rp, RP, alice.browser, USERS.alice);
  const refreshed = await client.refreshTokenGrant(rp, tokens.refresh_token);
  for (const t of [tokens.access_token, refreshed.access_token, refreshed.refresh_token]) {
    assert.equal((await client.tokenIntrospection(rp, t)).active, true);
  }
  await client.tokenRevocation(rp, refreshed.refresh_token, { token_type_hint: 'refresh_token' });
  for (const [what, t] of [['refresh token', refreshed.refresh_token], ['its access token', refreshed.access_token],
    ['the first access token of the family', tokens.access_token]]) {
    assert.deepEqual({ ...(await client.tokenIntrospection(rp, t)) }, { active: false }, `${what} after revoking the refresh token`);
  }
  await assert.rejects(client.refreshTokenGrant(rp, refreshed.refresh_token), (e) => {
    assert.equal(e.error, 'invalid_grant', `${e}`);
    return true;
  });
});

test('RP-initiated logout: end-session URL from openid-client, confirm, back to post_logout_redirect_uri', async () => {
  await discoverAll();
  const user = USERS.dave;
  const browser = new Browser(server.origin);
  const { tokens } = await signIn(rp, RP, browser, user);
  assert.ok(browser.cookie('dw_session'));

  const state = client.randomState();
  const endSessionUrl = client.buildEndSessionUrl(rp, {
    id_token_hint: tokens.id_token,
    post_logout_redirect_uri: RP.postLogoutRedirectUri,
    state,
  });
  assert.equal(endSessionUrl.origin + endSessionUrl.pathname, `${server.origin}/oauth/end_session`);
  assert.equal(endSessionUrl.searchParams.get('client_id'), RP.id, 'openid-client adds client_id');

  const page = await browser.get(endSessionUrl);
  assert.equal(page.status, 200, `the end-session confirmation page\n${describe(page)}`);
  assert.ok(browser.cookie('dw_session'), 'GET end_session does not sign out by itself');
  const forms = parseForms(page.text).filter((f) => f.method === 'post');
  const form = forms.find((f) => new URL(f.action || page.url, page.url).pathname === '/oauth/end_session') ?? forms[0];
  assert.ok(form, `no POST form on the end-session page\n${describe(page, 4000)}`);
  assert.ok(form.hidden.some(([n]) => n === 'csrf'), `end-session form has no csrf\n${describe(page, 4000)}`);
  // "buttons named like the consent page": decision=approve, else the first named submit button.
  const confirm = form.buttons.find((b) => b.name === 'decision' && b.value === 'approve') ??
    form.buttons.find((b) => b.name) ?? form.buttons[0];
  assert.ok(confirm, `no submit button on the end-session page\n${describe(page, 4000)}`);
  const done = await browser.submit(page, form, {}, confirm);
  assert.equal(done.status, 303, `confirming the sign-out\n${describe(done)}`);
  const back = new URL(done.location);
  assert.equal(back.origin + back.pathname, RP.postLogoutRedirectUri);
  assert.equal(back.searchParams.get('state'), state);
  assert.equal(browser.cookie('dw_session'), undefined, 'the session cookie is gone');

  // Signed out for real: the next authorization asks for the login again.
  const next = await browser.get(client.buildAuthorizationUrl(rp, {
    redirect_uri: RP.redirectUri,
    scope: OIDC_SCOPE,
    code_challenge: await client.calculatePKCECodeChallenge(client.randomPKCECodeVerifier()),
    code_challenge_method: 'S256',
  }));
  assert.ok(next.status === 302 || next.status === 303, describe(next));
  assert.equal(new URL(next.location).pathname, '/login', describe(next));
});

test('a client registered with id_token_signed_response_alg = ES256', async () => {
  await discoverAll();
  assert.equal(es.clientMetadata().id_token_signed_response_alg, 'ES256');
  const user = USERS.bob;
  const browser = new Browser(server.origin);
  // openid-client rejects any other alg for this client (client metadata wins over server metadata).
  const { tokens, nonce } = await signIn(es, ES, browser, user);
  const header = verifyWithJwks(tokens.id_token, await getJwks());
  assert.equal(header.alg, 'ES256');
  const claims = tokens.claims();
  assert.equal(claims.aud, ES.id);
  assert.equal(claims.nonce, nonce);
  assert.equal(claims.email, user.email);
  assert.equal(claims.at_hash, atHash(tokens.access_token));
  const userinfo = await client.fetchUserInfo(es, tokens.access_token, claims.sub);
  assert.equal(userinfo.sub, claims.sub);

  const refreshed = await client.refreshTokenGrant(es, tokens.refresh_token);
  assert.equal(jwtHeader(refreshed.id_token).alg, 'ES256', 'refresh keeps the client alg');

  // openid-client really enforces the client's alg: the same client configured (on the RP side
  // only) to expect RS256 rejects Doorward's ES256 ID token.
  const wrongAlg = await discover(ES, { alg: 'RS256' });
  await assert.rejects(signIn(wrongAlg, ES, browser, user), (e) => {
    // openid-client wraps the check's error: ClientError('invalid response encountered', { cause })
    assert.match(`${e?.message} / ${e?.cause?.message}`, /unexpected JWT "alg" header parameter/, `${e}`);
    return true;
  });

  // The default client, same user and browser: RS256.
  const { tokens: rsTokens } = await signIn(rp, RP, browser, user);
  assert.equal(jwtHeader(rsTokens.id_token).alg, 'RS256', 'the default client still gets RS256');
});

test('a public client: PKCE, no secret, rotated refresh tokens', async () => {
  await discoverAll();
  const pub = await client.discovery(new URL(server.origin), PUB.id, { token_endpoint_auth_method: 'none' },
    client.None(), { execute: [client.allowInsecureRequests] });
  client.enableNonRepudiationChecks(pub);
  assert.ok(pub.serverMetadata().token_endpoint_auth_methods_supported?.includes('none'),
    'the metadata offers token_endpoint_auth_method "none"');
  const browser = new Browser(server.origin);
  const { tokens } = await signIn(pub, PUB, browser, USERS.erin);
  const claims = tokens.claims();
  assert.equal(claims.aud, PUB.id);
  assert.equal(typeof tokens.refresh_token, 'string');
  verifyWithJwks(tokens.id_token, await getJwks());

  // RFC 9700 §4.14.2: a public client's refresh token is rotated. Presented again within the
  // grace window ([tokens] refresh_grace, 10 s) it gets the first answer again (a client racing
  // itself), not a second pair; past the window a replay revokes the family (Rust tests).
  const refreshed = await client.refreshTokenGrant(pub, tokens.refresh_token);
  assert.notEqual(refreshed.refresh_token, tokens.refresh_token);
  assert.notEqual(refreshed.access_token, tokens.access_token);
  assert.equal(refreshed.claims().sub, claims.sub);
  const raced = await client.refreshTokenGrant(pub, tokens.refresh_token);
  assert.equal(raced.refresh_token, refreshed.refresh_token, 'within the grace window: the same pair');
  assert.equal(raced.access_token, refreshed.access_token);
  const next = await client.refreshTokenGrant(pub, refreshed.refresh_token);
  assert.notEqual(next.refresh_token, refreshed.refresh_token);

  // No PKCE: the authorization request is refused with invalid_request, back at the client.
  const state = client.randomState();
  const noPkce = client.buildAuthorizationUrl(pub, { redirect_uri: PUB.redirectUri, scope: OIDC_SCOPE, state, nonce: client.randomNonce() });
  const r = await browser.get(noPkce);
  assert.ok(r.status === 302 || r.status === 303, describe(r));
  const back = new URL(r.location);
  assert.equal(`${back.origin}${back.pathname}`, PUB.redirectUri);
  assert.equal(back.searchParams.get('error'), 'invalid_request', r.location);
  assert.equal(back.searchParams.get('state'), state);
});

test('DPoP: openid-client binds its tokens to its key; userinfo, the API and refresh with proofs', async () => {
  await discoverAll();
  assert.ok(rp.serverMetadata().dpop_signing_alg_values_supported?.includes('ES256'),
    'the metadata lists the DPoP algorithms');
  const keyPair = await client.randomDPoPKeyPair('ES256');
  const DPoP = client.getDPoPHandle(rp, keyPair);
  const jkt = await DPoP.calculateThumbprint();
  const browser = new Browser(server.origin);
  const user = USERS.dave;
  // dpop_jkt binds the code to the key (RFC 9449 §10); the token request proves it, after a
  // use_dpop_nonce round trip that openid-client handles itself.
  const { tokens } = await signIn(rp, RP, browser, user, { DPoP, extra: { dpop_jkt: jkt } });
  assert.equal(tokens.token_type, 'dpop');
  const claims = tokens.claims();

  const userinfo = await client.fetchUserInfo(rp, tokens.access_token, claims.sub, { DPoP });
  assert.equal(userinfo.sub, claims.sub);
  const api = await client.fetchProtectedResource(rp, tokens.access_token,
    new URL('/api/v1/auth/self', server.origin), 'GET', undefined, undefined, { DPoP });
  assert.equal(api.status, 200);
  assert.equal((await api.json()).type, 'AccessToken');

  // Without the key the token is useless: as a bearer token it is refused.
  const bearer = await fetch(new URL('/oauth/userinfo', server.origin), {
    headers: { authorization: `Bearer ${tokens.access_token}` },
  });
  assert.equal(bearer.status, 401);
  assert.match(bearer.headers.get('www-authenticate') ?? '', /invalid_token/);

  // Introspection shows the binding (RFC 9449 §6.2).
  const seen = await client.tokenIntrospection(rp, tokens.access_token);
  assert.equal(seen.active, true);
  assert.equal(seen.cnf?.jkt, jkt);

  // Refresh with a proof of the same key: a new bound token.
  const refreshed = await client.refreshTokenGrant(rp, tokens.refresh_token, undefined, { DPoP });
  assert.equal(refreshed.token_type, 'dpop');
  const again = await client.fetchUserInfo(rp, refreshed.access_token, claims.sub, { DPoP });
  assert.equal(again.sub, claims.sub);

  // A code bound to another key cannot be redeemed with this one.
  const otherJkt = await client.getDPoPHandle(rp, await client.randomDPoPKeyPair('ES256')).calculateThumbprint();
  await assert.rejects(signIn(rp, RP, browser, user, { DPoP, extra: { dpop_jkt: otherJkt } }), (e) => {
    assert.equal(e?.error ?? e?.cause?.error, 'invalid_grant', `${e}`);
    return true;
  });
});

test('key rotation while signing in: every ID token validates; /oauth/jwks grows', { timeout: 180_000 }, async () => {
  await discoverAll();
  const user = USERS.carol;
  const browser = new Browser(server.origin);
  const jwks0 = await getJwks();
  const kids0 = new Set(jwks0.keys.map((k) => k.kid));
  const seen = []; // { i, client, kid, alg, idToken, rotated }
  const failures = [];

  // Each login uses a freshly discovered Configuration (a freshly started RP). openid-client caches
  // a JWKS per Configuration and refetches on an unknown kid only when its copy is >= 60 s old
  // (and at the latest after 300 s), so a long-lived RP would see a key that Doorward started to
  // sign with 2 s (publish_delay) after it was published as "no applicable keys found".
  const once = async (i, rotated) => {
    const c = i % 2 === 0 ? RP : ES;
    try {
      const config = await discover(c);
      const { tokens, nonce } = await signIn(config, c, browser, user);
      assert.equal(tokens.claims().nonce, nonce);
      const header = verifyWithJwks(tokens.id_token, await getJwks());
      assert.equal(header.alg, c.alg);
      seen.push({ i, client: c.name, kid: header.kid, alg: header.alg, idToken: tokens.id_token, rotated });
    } catch (e) {
      failures.push(`login ${i} (${c.name}, ${rotated ? 'after' : 'before'} rotation): ${e?.stack ?? e}` +
        (e?.cause ? `\ncause: ${JSON.stringify(e.cause, null, 1)?.slice(0, 2000)}` : ''));
    }
  };

  let i = 0;
  for (; i < 4; i++) await once(i, false);

  const rotatedAt = Date.now();
  let rotate;
  try {
    rotate = await runDoorward(['keys', 'rotate', '--config', server.configPath]);
  } catch (e) {
    assert.fail(`\`doorward keys rotate --config FILE\` must stage a new key in the server's database:\n${e.message}`);
  }

  // Keep signing in until the new keys are published and have started to sign, with at least 6
  // logins after the rotation; give up after 90 s. The running server hears of the keys that
  // `doorward keys rotate` stored through its change feed (within the read cache's 0.5 s bound
  // and one reload; its periodic reload, every 30 s, is the fallback), then a new key signs
  // after publish_delay = 2 s.
  const newKidFor = (alg) => seen.some((x) => x.rotated && x.alg === alg && !kids0.has(x.kid));
  let jwksGrew = false;
  for (let after = 0; ; after++, i++) {
    await once(i, true);
    if (!jwksGrew) jwksGrew = (await getJwks()).keys.length > jwks0.keys.length;
    const done = after >= 5 && jwksGrew && newKidFor('RS256') && newKidFor('ES256');
    if (done || Date.now() - rotatedAt > 90_000) break;
    await sleep(400);
  }

  assert.deepEqual(failures, [], `ID token validation failed across the rotation:\n${failures.join('\n\n')}`);
  const jwks1 = await getJwks();
  assert.ok(jwks1.keys.length > jwks0.keys.length,
    `/oauth/jwks did not grow after \`keys rotate\` (before: ${[...kids0].join(', ')}; after: ${jwks1.keys.map((k) => k.kid).join(', ')})\n` +
    `keys rotate output:\n${rotate.stdout}\n${rotate.stderr}`);
  for (const kid of kids0) {
    assert.ok(jwks1.keys.some((k) => k.kid === kid), `the old key ${kid} left /oauth/jwks right after the rotation`);
  }
  // Tokens signed before the rotation still verify against the current key set.
  for (const x of seen.filter((x) => !x.rotated)) verifyWithJwks(x.idToken, jwks1);
  const summary = seen.map((x) => `${x.i}:${x.client}:${x.alg}:${x.kid}${x.rotated ? '*' : ''}`).join(' ');
  assert.ok(newKidFor('RS256') && newKidFor('ES256'),
    `the new keys never signed within 90 s of the rotation (reloads every 30 s, publish_delay = 2): ${summary}`);
  // A new key never signs before it was published: every kid seen was in the JWKS fetched at
  // the time (checked by verifyWithJwks in each login).
});
