// The node:crypto functions the Workers adapter uses (nodejs_compat); workers-types does not declare them.
declare module 'node:crypto' {
  export function scrypt(password: string, salt: Uint8Array, keylen: number, options: { N: number; r: number; p: number; maxmem: number }, cb: (err: Error | null, key: Uint8Array & { buffer: ArrayBuffer; byteOffset: number; byteLength: number }) => void): void;
  export function createHash(algorithm: 'sha256'): { update(data: string): { digest(encoding: 'hex'): string } };
}
