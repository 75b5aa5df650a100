import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { frontendDir, type ServerState, stateFile } from './server-state';

/**
 * Starts `$CHAT_API_BIN` (default ../target/debug/chat-api) on a free port with a fresh data
 * directory (SQLite, mail outbox) and the built SPA, and stops it when the run ends.
 */
export default async function globalSetup(): Promise<() => Promise<void>> {
  const bin = resolve(frontendDir, process.env.CHAT_API_BIN ?? '../target/debug/chat-api');
  const dist = join(frontendDir, 'dist');
  if (!existsSync(bin)) throw new Error(`chat-api not found at ${bin}: build it, or set CHAT_API_BIN`);
  if (!existsSync(join(dist, 'index.html'))) throw new Error(`${dist}/index.html is missing: run \`npm run build\` first`);

  mkdirSync(dirname(stateFile), { recursive: true });
  const dataDir = mkdtempSync(join(dirname(stateFile), 'data-'));
  // PUBLIC_URL must name the real port: it is the allowed WebSocket origin and the base of
  // the links in mails. So pick a free port first.
  const port = process.env.E2E_PORT ? Number(process.env.E2E_PORT) : await freePort();
  const env: NodeJS.ProcessEnv = { ...process.env };
  delete env.SMTP_URL; // unset: mails are written to DATA_DIR/outbox
  const child = spawn(bin, ['serve'], {
    cwd: dataDir,
    env: {
      ...env,
      CHAT_BIND: `127.0.0.1:${port}`,
      PUBLIC_URL: `http://127.0.0.1:${port}`,
      DATA_DIR: dataDir,
      DATABASE_URL: `sqlite://${dataDir}/chat.db`,
      STATIC_DIR: isAbsolute(dist) ? dist : resolve(dist),
      BCRYPT_COST: '4',
      RATE_LIMIT_SCALE: '0',
      JWT_SECRET: 'e2e-secret-that-is-long-enough-for-hmac-0123456789',
      RUST_LOG: process.env.RUST_LOG ?? 'warn',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });

  const address = await new Promise<string>((resolveAddress, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`chat-api did not start in 30 s:\n${out}`)), 30_000);
    const onData = (chunk: Buffer) => {
      out += chunk.toString();
      const match = /chat-api listening on (http:\/\/\S+)/.exec(out);
      if (match) {
        clearTimeout(timer);
        resolveAddress(match[1]);
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      if (process.env.E2E_SERVER_LOG) process.stderr.write(chunk);
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`chat-api exited with ${code}:\n${out}`));
    });
  });

  const state: ServerState = { baseURL: address, dataDir, pid: child.pid ?? 0 };
  writeFileSync(stateFile, JSON.stringify(state, null, 2));
  const health = await fetch(`${address}/healthz`);
  if (!health.ok) throw new Error(`chat-api /healthz answered ${health.status}`);

  return async () => {
    child.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 200));
    if (!process.env.E2E_KEEP_DATA) rmSync(dataDir, { recursive: true, force: true });
  };
}

function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolvePort(port));
    });
  });
}
