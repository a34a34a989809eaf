// Shared by the node tests: a free loopback port, and `doorward serve` started on it with a
// given configuration, ready once its stdout says `listening on <origin>`.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = path.dirname(fileURLToPath(import.meta.url));
export const REPO_ROOT = path.resolve(HERE, '..', '..');
export const DOORWARD_BIN = process.env.DOORWARD_BIN || path.join(REPO_ROOT, 'target', 'debug', 'doorward');
const READY_TIMEOUT_MS = 60_000;

export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/**
 * Spawn `doorward serve` with `config` (TOML text) in `workdir`; `ready` resolves once it listens.
 * `host` names the issuer (`localhost` where WebAuthn needs a domain); it listens on 127.0.0.1.
 */
export function startServer(port, workdir, config, host = '127.0.0.1') {
  const origin = `http://${host}:${port}`;
  const configPath = path.join(workdir, 'doorward.toml');
  fs.writeFileSync(configPath, config);
  const args = [
    'serve',
    '--config', configPath,
    '--listen', `127.0.0.1:${port}`,
    '--external-uri', origin,
    '--database', `sqlite:${path.join(workdir, 'doorward.sqlite')}`,
  ];
  const child = spawn(DOORWARD_BIN, args, {
    cwd: workdir,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { RUST_BACKTRACE: '1', ...process.env },
  });
  const output = { stdout: '', stderr: '' };
  child.stdout.setEncoding('utf8');
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (d) => { output.stderr += d; });
  const ready = new Promise((resolve, reject) => {
    const fail = (why) => reject(new Error(
      `${why}\ncommand: ${DOORWARD_BIN} ${args.join(' ')}\n--- stdout ---\n${output.stdout}\n--- stderr ---\n${output.stderr}`));
    const timer = setTimeout(() => fail(`doorward did not print "listening on http://127.0.0.1:${port}" within ${READY_TIMEOUT_MS / 1000} s`),
      READY_TIMEOUT_MS);
    child.stdout.on('data', (d) => {
      output.stdout += d;
      if (output.stdout.includes(`listening on http://127.0.0.1:${port}`)) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.on('error', (e) => { clearTimeout(timer); fail(`cannot start doorward: ${e.message}`); });
    child.on('exit', (code, signal) => { clearTimeout(timer); fail(`doorward exited early (code ${code}, signal ${signal})`); });
  });
  return { child, origin, output, ready, configPath };
}

/** Debian Chromium, headless, as every browser test launches it; `extraArgs` adds flags. */
export async function launchChromium(extraArgs = []) {
  const { chromium } = await import('playwright-core');
  return chromium.launch({
    executablePath: process.env.CHROMIUM_PATH || '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
      ...extraArgs],
  });
}

/** Stops a server from `startServer`: SIGTERM, SIGKILL after 10 s; resolves once it exited. */
export async function stopServer(server) {
  if (!server || server.child.exitCode !== null) return;
  server.child.removeAllListeners('exit');
  const exited = new Promise((resolve) => server.child.once('exit', resolve));
  server.child.kill('SIGTERM');
  const timer = setTimeout(() => server.child.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(timer);
}

/**
 * Stands in for a client's callback (Chromium maps its host to this server with
 * `--host-resolver-rules`): answers a small page, and records each /oauth/callback URL in `hits`.
 */
export function startCallbackServer(hits = []) {
  const srv = http.createServer((req, res) => {
    const callback = req.url.startsWith('/oauth/callback');
    if (callback) hits.push(`http://${req.headers.host}${req.url}`);
    res.writeHead(callback ? 200 : 404, { 'content-type': 'text/html; charset=utf-8' });
    res.end('<!doctype html><title>Client callback</title><p>callback reached</p>');
  });
  return new Promise((resolve, reject) => {
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => resolve(srv));
  });
}
