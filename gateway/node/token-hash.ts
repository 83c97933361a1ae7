// Agent-token hashing (SHA-256, hex) through node:crypto, synchronously: Web Crypto's digest costs a
// thread-pool round trip per call (~80 µs of CPU against ~5 µs), paid by every connect of a 10,000-agent
// fleet coming back after a restart. Workers have the same node:crypto with the nodejs_compat flag.
import { createHash } from 'node:crypto';

export const sha256HexSync = (text: string): string => createHash('sha256').update(text).digest('hex');
