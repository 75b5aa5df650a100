import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const frontendDir = join(dirname(fileURLToPath(import.meta.url)), '..');
export const stateFile = join(frontendDir, 'e2e', '.tmp', 'server.json');

export interface ServerState {
  baseURL: string;
  dataDir: string;
  pid: number;
}

/** What global-setup wrote about the chat-api it started. */
export function serverState(): ServerState {
  return JSON.parse(readFileSync(stateFile, 'utf8')) as ServerState;
}
