/**
 * Argument checks run before anything reaches native code (as sharp's `is` module does):
 * a wrong type is a TypeError, a bad value says which argument and why.
 * @module
 * @internal
 */
import { ArgumentError } from './errors.js';

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'bigint') return `bigint ${v}n`; // JSON.stringify throws on bigints
  return typeof v === 'object' ? 'an object' : `${typeof v} ${JSON.stringify(v)?.slice(0, 40) ?? ''}`.trim();
}

export function string(name: string, v: unknown): string {
  if (typeof v !== 'string') throw new ArgumentError(`${name} must be a string, got ${describe(v)}`);
  if (v.includes('\0')) throw new ArgumentError(`${name} must not contain NUL bytes`, 'ERR_INVALID_ARG_VALUE');
  return v;
}

export function nonEmpty(name: string, v: unknown): string {
  const s = string(name, v);
  if (s.length === 0) throw new ArgumentError(`${name} must not be empty`, 'ERR_INVALID_ARG_VALUE');
  return s;
}

export function optString(name: string, v: unknown): string | undefined {
  return v === undefined ? undefined : string(name, v);
}

export function bool(name: string, v: unknown, fallback: boolean): boolean {
  if (v === undefined) return fallback;
  if (typeof v !== 'boolean') throw new ArgumentError(`${name} must be a boolean, got ${describe(v)}`);
  return v;
}

export function integer(name: string, v: unknown, min: number, max: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v)) throw new ArgumentError(`${name} must be an integer, got ${describe(v)}`);
  if (v < min || v > max) {
    const e = new RangeError(`${name} must be between ${min} and ${max}, got ${v}`);
    (e as RangeError & { code: string }).code = 'ERR_OUT_OF_RANGE';
    throw e;
  }
  return v;
}

export function optInteger(name: string, v: unknown, min: number, max: number): number | undefined {
  return v === undefined ? undefined : integer(name, v, min, max);
}

export function oneOf<T extends string>(name: string, v: unknown, allowed: readonly T[], fallback?: T): T {
  if (v === undefined && fallback !== undefined) return fallback;
  if (typeof v !== 'string' || !(allowed as readonly string[]).includes(v)) {
    throw new ArgumentError(`${name} must be one of ${allowed.join(', ')}, got ${describe(v)}`, typeof v === 'string' ? 'ERR_INVALID_ARG_VALUE' : 'ERR_INVALID_ARG_TYPE');
  }
  return v as T;
}

export function options<T extends object>(name: string, v: unknown): Partial<T> {
  if (v === undefined || v === null) return {};
  if (typeof v !== 'object' || Array.isArray(v)) throw new ArgumentError(`${name} must be an object, got ${describe(v)}`);
  return v as Partial<T>;
}

export function stringArray(name: string, v: unknown): string[] {
  if (!Array.isArray(v)) throw new ArgumentError(`${name} must be an array of strings, got ${describe(v)}`);
  return v.map((s, i) => string(`${name}[${i}]`, s));
}

export function signal(v: unknown): AbortSignal | undefined {
  if (v === undefined) return undefined;
  if (!(v instanceof AbortSignal)) throw new ArgumentError(`signal must be an AbortSignal, got ${describe(v)}`);
  return v;
}

const CHECKSUM = /^[0-9a-f]{64}$/;
/** A full SHA-256 object checksum (64 lowercase hex digits). */
export function checksum(name: string, v: unknown): string {
  const s = string(name, v);
  if (!CHECKSUM.test(s)) throw new ArgumentError(`${name} must be a 64-character lowercase hex checksum, got ${describe(s)}`, 'ERR_INVALID_ARG_VALUE');
  return s;
}

/** True for a full object checksum. */
export function isChecksum(s: string): boolean {
  return CHECKSUM.test(s);
}

// libostree's ostree_validate_rev: '/'-separated components of [\w\d][-._\w\d]*.
const REF = /^[\w\d][-._\w\d]*(?:\/[\w\d][-._\w\d]*)*$/;
const REMOTE = /^[\w\d][-._\w\d]*$/;

/** A ref name as libostree accepts it (`os/x86_64/stable`). */
export function refName(name: string, v: unknown): string {
  const s = string(name, v);
  if (!REF.test(s) || s.length > 1024) {
    throw new ArgumentError(`${name} is not a valid ref name (components of letters, digits, '-', '.', '_' separated by '/'): ${describe(s)}`, 'ERR_INVALID_ARG_VALUE');
  }
  return s;
}

/** A remote name as libostree accepts it. */
export function remoteName(name: string, v: unknown): string {
  const s = string(name, v);
  if (!REMOTE.test(s) || s.length > 255) throw new ArgumentError(`${name} is not a valid remote name: ${describe(s)}`, 'ERR_INVALID_ARG_VALUE');
  return s;
}

/**
 * A revision: a checksum, a ref, `remote:ref`, or any of those followed by `^` ancestry
 * suffixes, as ostree_repo_resolve_rev accepts.
 */
export function rev(name: string, v: unknown): string {
  const s = string(name, v);
  const base = s.replace(/\^+$/, '');
  const colon = base.indexOf(':');
  const ok = colon >= 0 ? REMOTE.test(base.slice(0, colon)) && REF.test(base.slice(colon + 1)) : REF.test(base);
  if (!ok || s.length > 1024) throw new ArgumentError(`${name} is not a valid ref or checksum: ${describe(s)}`, 'ERR_INVALID_ARG_VALUE');
  return s;
}

/** A path inside a commit, normalised to `/a/b`; refuses `..` and empty components. */
export function treePath(name: string, v: unknown): string {
  const s = string(name, v);
  const parts = s.split('/').filter((p) => p !== '' && p !== '.');
  if (parts.some((p) => p === '..')) throw new ArgumentError(`${name} must not contain '..': ${describe(s)}`, 'ERR_INVALID_ARG_VALUE');
  return '/' + parts.join('/');
}

function outOfRange(message: string): RangeError {
  const e = new RangeError(message);
  (e as RangeError & { code: string }).code = 'ERR_OUT_OF_RANGE';
  return e;
}

const INT_RANGES: Record<string, [bigint, bigint]> = {
  y: [0n, 255n],
  n: [-(2n ** 15n), 2n ** 15n - 1n],
  q: [0n, 2n ** 16n - 1n],
  i: [-(2n ** 31n), 2n ** 31n - 1n],
  u: [0n, 2n ** 32n - 1n],
  x: [-(2n ** 63n), 2n ** 63n - 1n],
  t: [0n, 2n ** 64n - 1n],
};
const OBJECT_PATH = /^\/$|^(\/[A-Za-z0-9_]+)+$/;
const SIGNATURE = /^[bynqiuxtdhsogvam(){}]*$/;

function typedValue(name: string, v: { $variant?: unknown; value?: unknown }, depth: number): void {
  const t = v.$variant;
  const value = v.value;
  if (typeof t !== 'string') throw new ArgumentError(`${name}.$variant must be a string, got ${describe(t)}`);
  const range = INT_RANGES[t];
  if (range) {
    if (typeof value !== 'bigint' && (typeof value !== 'number' || !Number.isInteger(value))) throw new ArgumentError(`${name} ('${t}') must be an integer, got ${describe(value)}`);
    if (typeof value === 'number' && !Number.isSafeInteger(value)) throw outOfRange(`${name} ('${t}') must be a safe integer or a bigint, got ${value}`);
    const b = BigInt(value);
    if (b < range[0] || b > range[1]) throw outOfRange(`${name} ('${t}') must be between ${range[0]} and ${range[1]}, got ${b}`);
    return;
  }
  if (t === 's' || t === 'o' || t === 'g') {
    const s = string(name, value);
    if ((t === 'o' && !OBJECT_PATH.test(s)) || (t === 'g' && !SIGNATURE.test(s))) throw new ArgumentError(`${name} is not a valid '${t}' value: ${describe(s)}`, 'ERR_INVALID_ARG_VALUE');
  } else if (t === 'b') {
    if (typeof value !== 'boolean') throw new ArgumentError(`${name} ('b') must be a boolean, got ${describe(value)}`);
  } else if (t === 'd') {
    if (typeof value !== 'number') throw new ArgumentError(`${name} ('d') must be a number, got ${describe(value)}`);
  } else if (t === 'v') {
    metadataValue(name, value, depth + 1);
  } else {
    throw new ArgumentError(`${name}.$variant must be one of s,o,g,b,y,n,q,i,u,x,t,d,v, got ${describe(t)}`, 'ERR_INVALID_ARG_VALUE');
  }
}

/**
 * A metadata value native code can convert to GVariant (see lib/native-contract.ts). Anything else
 * (functions, null, Dates, Maps, class instances) would fail there, inside a transaction, or
 * silently become an empty dictionary.
 */
export function metadataValue(name: string, v: unknown, depth = 0): void {
  if (depth > 32) throw outOfRange(`${name} is nested more than 32 levels deep`);
  if (typeof v === 'string') {
    string(name, v);
  } else if (typeof v === 'bigint') {
    if (v < INT_RANGES.x![0] || v > INT_RANGES.x![1]) throw outOfRange(`${name} must fit in 64 bits (use variant('t', …) for unsigned), got ${v}n`);
  } else if (typeof v === 'number' || typeof v === 'boolean' || v instanceof Uint8Array) {
    // stored as x or d, b, ay
  } else if (Array.isArray(v)) {
    v.forEach((x, i) => metadataValue(`${name}[${i}]`, x, depth + 1));
  } else if (typeof v === 'object' && v !== null && Object.hasOwn(v, '$variant')) {
    typedValue(name, v as { $variant?: unknown; value?: unknown }, depth);
  } else if (typeof v === 'object' && v !== null && [Object.prototype, null].includes(Object.getPrototypeOf(v))) {
    metadata(name, v, depth + 1);
  } else {
    throw new ArgumentError(`${name} must be a string, number, bigint, boolean, Uint8Array, array, plain object or variant(), got ${describe(v)}`);
  }
}

/** A metadata dictionary (a{sv}): a plain object of {@link metadataValue}s; undefined values are left out. */
export function metadata(name: string, v: unknown, depth = 0): Record<string, unknown> {
  const o = options<Record<string, unknown>>(name, v);
  for (const [k, x] of Object.entries(o)) {
    string(`${name} key`, k);
    if (x !== undefined) metadataValue(`${name}.${k}`, x, depth);
  }
  return o;
}
