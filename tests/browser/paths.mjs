// Where things are: the repository, the artifacts folder, the binaries.
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
export const repo = join(here, '..', '..');
export const artifacts = join(repo, 'test-artifacts');
const bin = (name, env) => process.env[env] ?? join(repo, 'target', 'debug', name);
/** The binaries built by the test script (cargo's one dev profile). */
export const HUB_BIN = bin('tuber-hub', 'TUBER_HUB_BIN');
export const PEER_BIN = bin('tuber-peer', 'TUBER_PEER_BIN');
export const PEER_PROCESS_BIN = bin('peer-process', 'TUBER_PEER_PROCESS_BIN');
export const DESKTOP_BIN = bin('tuber-desktop', 'TUBER_DESKTOP_BIN');
