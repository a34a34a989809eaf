// The consent page of a client nobody registered (a Client ID Metadata Document served by a
// local HTTP server here; `doorward serve` with the fetch policy's test switches on), in
// Chromium: it says "Unverified application", names the client_id URL and the host the browser
// will be sent to, shows the client's hostile name as text (no script runs, no element is
// injected), and has no `javascript:` link. A document whose client_uri is `javascript:` is
// refused with a page, not rendered. Screenshots in tests/browser/screenshots/.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes, createHash } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { DOORWARD_BIN, freePort, launchChromium, startServer, stopServer } from './doorward-server.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const SCREENSHOTS = path.join(HERE, 'screenshots');
const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const USERNAME = 'ursula';
const PASSWORD = 'ursula-password-1';
const HOSTILE_NAME = 'Evil <img src=x onerror="window.pwned=1"> App';

const CONFIG = `
[client_metadata_documents]
enabled = true

[fetch]
insecure_allow_private_addresses = true
insecure_allow_http = true

[seed.user.ursula]
username = "${USERNAME}"
password = "${PASSWORD}"
display_name = "Ursula"
`;

let server;
let workdir;
let browser;
let docServer;
const documents = new Map();

/** Serves the documents in `documents` (path -> object) as JSON; everything else is a 200 page. */
function startDocServer() {
  const srv = http.createServer((req, res) => {
    const doc = documents.get(req.url);
    if (doc) {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(doc));
    } else {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
      res.end('<!doctype html><title>Client</title><p>callback reached</p>');
    }
  });
  return new Promise((resolve, reject) => {
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => resolve(srv));
  });
}

before(async () => {
  assert.ok(fs.existsSync(DOORWARD_BIN), `doorward binary not found: ${DOORWARD_BIN} (set DOORWARD_BIN)`);
  assert.ok(fs.existsSync(CHROMIUM), `chromium not found at ${CHROMIUM} (apt-get install chromium)`);
  workdir = fs.mkdtempSync(path.join(os.tmpdir(), 'doorward-browser-cimd-'));
  server = startServer(await freePort(), workdir, CONFIG);
  await server.ready;
  docServer = await startDocServer();
  browser = await launchChromium();
  fs.mkdirSync(SCREENSHOTS, { recursive: true });
});

after(async () => {
  if (browser) await browser.close();
  if (docServer) await new Promise((resolve) => docServer.close(resolve));
  await stopServer(server);
  if (workdir) fs.rmSync(workdir, { recursive: true, force: true });
});

function docOrigin() {
  return `http://127.0.0.1:${docServer.address().port}`;
}

function authorizeUrl(clientId, redirectUri) {
  const verifier = randomBytes(32).toString('base64url');
  const challenge = createHash('sha256').update(verifier).digest('base64url');
  const url = new URL('/oauth/authorize', server.origin);
  url.search = new URLSearchParams({
    response_type: 'code',
    client_id: clientId,
    redirect_uri: redirectUri,
    scope: 'base',
    state: `s-${randomBytes(6).toString('hex')}`,
    code_challenge: challenge,
    code_challenge_method: 'S256',
  }).toString();
  return url.href;
}

test('the consent page of a metadata-document client says unverified, escapes its name, links no javascript:', async (t) => {
  const clientId = `${docOrigin()}/app/client.json`;
  documents.set('/app/client.json', {
    client_id: clientId,
    client_name: HOSTILE_NAME,
    client_uri: `${docOrigin()}/home`,
    redirect_uris: ['http://127.0.0.1/cb'],
    token_endpoint_auth_method: 'none',
  });
  const redirectUri = `http://127.0.0.1:${docServer.address().port}/cb`;
  const context = await browser.newContext();
  t.after(() => context.close());
  const page = await context.newPage();
  const dialogs = [];
  page.on('dialog', (d) => { dialogs.push(d.message()); d.dismiss(); });

  await page.goto(authorizeUrl(clientId, redirectUri));
  assert.equal(new URL(page.url()).pathname, '/login');
  await page.locator('input[name="username"]').fill(USERNAME);
  await page.locator('input[name="password"]').fill(PASSWORD);
  await Promise.all([
    page.waitForURL((u) => u.pathname === '/oauth/authorize'),
    page.getByRole('button', { name: 'Sign in' }).click(),
  ]);
  await page.getByRole('button', { name: 'Allow' }).waitFor();

  const warning = page.locator('.warning');
  assert.ok(await warning.isVisible(), 'the unverified warning is shown');
  assert.match(await warning.innerText(), /Unverified application/);
  assert.ok((await warning.innerText()).includes(clientId), 'the warning names the client_id URL');
  const destination = await page.locator('.destination').innerText();
  assert.ok(destination.includes(`127.0.0.1:${docServer.address().port}`), destination);
  const heading = await page.locator('h1').innerText();
  assert.ok(heading.includes(HOSTILE_NAME), `the name is shown as text: ${heading}`);
  assert.equal(await page.locator('main img').count(), 0, 'no element injected by the name');
  assert.equal(await page.evaluate(() => window.pwned), undefined, 'no script ran');
  const hrefs = await page.locator('a').evaluateAll((as) => as.map((a) => a.getAttribute('href')));
  assert.ok(hrefs.every((h) => !/^\s*javascript:/i.test(h)), `links: ${hrefs}`);
  assert.deepEqual(dialogs, []);
  await page.screenshot({ path: path.join(SCREENSHOTS, 'consent-unverified.png'), fullPage: true });

  await Promise.all([
    page.waitForURL((u) => u.href.startsWith(redirectUri)),
    page.getByRole('button', { name: 'Allow' }).click(),
  ]);
  assert.ok(new URL(page.url()).searchParams.get('code'), page.url());
});

test('a document with a javascript: client_uri is refused on a page, with no link', async (t) => {
  const clientId = `${docOrigin()}/js/client.json`;
  documents.set('/js/client.json', {
    client_id: clientId,
    client_name: 'Script App',
    client_uri: 'javascript:alert(document.domain)',
    redirect_uris: ['http://127.0.0.1/cb'],
  });
  const context = await browser.newContext();
  t.after(() => context.close());
  const page = await context.newPage();
  const response = await page.goto(authorizeUrl(clientId, `http://127.0.0.1:${docServer.address().port}/cb`));
  assert.equal(response.status(), 400);
  assert.match(await page.locator('main').innerText(), /metadata document/);
  const hrefs = await page.locator('a').evaluateAll((as) => as.map((a) => a.getAttribute('href')));
  assert.ok(hrefs.every((h) => !/^\s*javascript:/i.test(h)), `links: ${hrefs}`);
  await page.screenshot({ path: path.join(SCREENSHOTS, 'refused-document.png'), fullPage: true });
});
