/**
 * Secrets at rest: passwords and client secrets as scrypt hashes (salted, compared in constant
 * time); authorization codes and refresh tokens as SHA-256 (they are 256-bit random already, so a
 * fast hash is enough and lets them be looked up by hash).
 */
import { createHash, randomBytes, scrypt as scryptCb, timingSafeEqual, type ScryptOptions } from 'node:crypto';
import { badRequest } from '../fhir/outcome.js';

const scrypt = (password: string, salt: Buffer, keylen: number, options: ScryptOptions) =>
  new Promise<Buffer>((resolve, reject) => scryptCb(password, salt, keylen, options, (e, key) => (e ? reject(e) : resolve(key))));

const PARAMS = { N: 16384, r: 8, p: 1 };
const KEY_LENGTH = 32;

export async function hashSecret(secret: string): Promise<string> {
  const salt = randomBytes(16);
  const key = await scrypt(secret, salt, KEY_LENGTH, PARAMS);
  return `scrypt$${PARAMS.N}$${PARAMS.r}$${PARAMS.p}$${salt.toString('base64url')}$${key.toString('base64url')}`;
}

export async function verifySecret(secret: string, stored: string | null | undefined): Promise<boolean> {
  const parts = stored?.split('$');
  if (!parts || parts.length !== 6 || parts[0] !== 'scrypt') return false;
  const [, n, r, p, salt, hash] = parts;
  const expected = Buffer.from(hash!, 'base64url');
  const key = await scrypt(secret, Buffer.from(salt!, 'base64url'), expected.length, { N: Number(n), r: Number(r), p: Number(p) });
  return timingSafeEqual(key, expected);
}

/** A new opaque token (authorization code, refresh token, client secret): 256 random bits. */
export function newToken(): string {
  return randomBytes(32).toString('base64url');
}

export function tokenHash(token: string): string {
  return createHash('sha256').update(token).digest('base64url');
}

/**
 * Password rules: at least 12 characters, at least two character classes (lower, upper, digit,
 * other), and not the username (in any case, nor merely containing it).
 */
export function checkPasswordStrength(password: string, username: string): void {
  if (password.length < 12) throw badRequest('The password must have at least 12 characters', ['password']);
  const classes = [/[a-z]/, /[A-Z]/, /[0-9]/, /[^a-zA-Z0-9]/].filter((re) => re.test(password)).length;
  if (classes < 2) throw badRequest('The password must mix character classes (lower case, upper case, digits, symbols)', ['password']);
  if (username && password.toLowerCase().includes(username.toLowerCase())) throw badRequest('The password must not contain the username', ['password']);
}
