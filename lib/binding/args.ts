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
    throw new ArgumentError(
      `${name} must be one of ${allowed.join(', ')}, got ${describe(v)}`,
      typeof v === 'string' ? 'ERR_INVALID_ARG_VALUE' : 'ERR_INVALID_ARG_TYPE',
    );
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
    throw new ArgumentError(
      `${name} is not a valid ref name (components of letters, digits, '-', '.', '_' separated by '/'): ${describe(s)}`,
      'ERR_INVALID_ARG_VALUE',
    );
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

/** PATH_MAX and NAME_MAX of Linux: no file system can hold a longer path or name. */
export const PATH_MAX = 4096;
export const NAME_MAX = 255;

/**
 * A path already in the form {@link treePath} returns, short enough to need no byte count: a
 * UTF-16 unit is at most 3 UTF-8 bytes, so components of at most 85 units are within NAME_MAX
 * and paths under 1,365 units within PATH_MAX. No empty, `.` or `..` component.
 */
const CANONICAL_SHORT_PATH = /^(?:\/(?!\.\.?(?:\/|$))[^/]{1,85})+$/;
const CANONICAL_SHORT_MAX = Math.floor((PATH_MAX - 1) / 3);

/** A path inside a commit, normalised to `/a/b`; refuses `..` and components or paths longer than Linux allows. */
export function treePath(name: string, v: unknown): string {
  const s = string(name, v);
  // The common case (what callers pass is usually canonical already) without splitting.
  if (s.length <= CANONICAL_SHORT_MAX && CANONICAL_SHORT_PATH.test(s)) return s;
  // Checked before splitting: a 200 KB path overflowed a worker's stack in libostree's
  // (recursive) path resolution.
  if (Buffer.byteLength(s) >= PATH_MAX) throw new ArgumentError(`${name} is longer than ${PATH_MAX - 1} bytes (PATH_MAX)`, 'ERR_INVALID_ARG_VALUE');
  const parts = s.split('/').filter((p) => p !== '' && p !== '.');
  if (parts.some((p) => p === '..')) throw new ArgumentError(`${name} must not contain '..': ${describe(s)}`, 'ERR_INVALID_ARG_VALUE');
  const long = parts.find((p) => Buffer.byteLength(p) > NAME_MAX);
  if (long !== undefined)
    throw new ArgumentError(`${name} has a component longer than ${NAME_MAX} bytes (NAME_MAX): ${describe(long)}`, 'ERR_INVALID_ARG_VALUE');
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

function typedValue(name: string, v: { $variant?: unknown; value?: unknown }, depth: number): unknown {
  // Each property is read once: the snapshot holds what was checked.
  const t = v.$variant;
  const value = v.value;
  const snap = (x: unknown) => Object.freeze({ $variant: t, value: x });
  if (typeof t !== 'string') throw new ArgumentError(`${name}.$variant must be a string, got ${describe(t)}`);
  const range = INT_RANGES[t];
  if (range) {
    if (typeof value !== 'bigint' && (typeof value !== 'number' || !Number.isInteger(value)))
      throw new ArgumentError(`${name} ('${t}') must be an integer, got ${describe(value)}`);
    if (typeof value === 'number' && !Number.isSafeInteger(value)) throw outOfRange(`${name} ('${t}') must be a safe integer or a bigint, got ${value}`);
    const b = BigInt(value);
    if (b < range[0] || b > range[1]) throw outOfRange(`${name} ('${t}') must be between ${range[0]} and ${range[1]}, got ${b}`);
    return snap(value);
  }
  if (t === 's' || t === 'o' || t === 'g') {
    const s = string(name, value);
    if ((t === 'o' && !OBJECT_PATH.test(s)) || (t === 'g' && !SIGNATURE.test(s)))
      throw new ArgumentError(`${name} is not a valid '${t}' value: ${describe(s)}`, 'ERR_INVALID_ARG_VALUE');
  } else if (t === 'b') {
    if (typeof value !== 'boolean') throw new ArgumentError(`${name} ('b') must be a boolean, got ${describe(value)}`);
  } else if (t === 'd') {
    if (typeof value !== 'number') throw new ArgumentError(`${name} ('d') must be a number, got ${describe(value)}`);
  } else if (t === 'v') {
    return snap(metadataValue(name, value, depth + 1));
  } else {
    throw new ArgumentError(`${name}.$variant must be one of s,o,g,b,y,n,q,i,u,x,t,d,v, got ${describe(t)}`, 'ERR_INVALID_ARG_VALUE');
  }
  return snap(value);
}

/**
 * A metadata value native code can convert to GVariant (see lib/native-contract.ts). Anything else
 * (functions, null, Dates, Maps, class instances) would fail there, inside a transaction, or
 * silently become an empty dictionary.
 */
export function metadataValue(name: string, v: unknown, depth = 0): unknown {
  if (depth > 32) throw outOfRange(`${name} is nested more than 32 levels deep`);
  if (typeof v === 'string') {
    return string(name, v);
  } else if (typeof v === 'bigint') {
    if (v < INT_RANGES.x![0] || v > INT_RANGES.x![1]) throw outOfRange(`${name} must fit in 64 bits (use variant('t', …) for unsigned), got ${v}n`);
    return v;
  } else if (typeof v === 'number' || typeof v === 'boolean') {
    return v; // stored as x or d, b
  } else if (v instanceof Uint8Array) {
    return new Uint8Array(v); // ay: a copy, so later writes to the caller's buffer change nothing
  } else if (Array.isArray(v)) {
    const n = v.length;
    const out: unknown[] = [];
    for (let i = 0; i < n; i++) out.push(metadataValue(`${name}[${i}]`, v[i], depth + 1));
    return Object.freeze(out);
  } else if (typeof v === 'object' && v !== null && Object.hasOwn(v, '$variant')) {
    return typedValue(name, v as { $variant?: unknown; value?: unknown }, depth);
  } else if (typeof v === 'object' && v !== null && [Object.prototype, null].includes(Object.getPrototypeOf(v))) {
    return metadata(name, v, depth + 1);
  } else {
    throw new ArgumentError(`${name} must be a string, number, bigint, boolean, Uint8Array, array, plain object or variant(), got ${describe(v)}`);
  }
}

/** A metadata dictionary (a{sv}): a plain object of {@link metadataValue}s; undefined values are left out. */
/**
 * Returns a frozen snapshot (every getter read once): native code converts the snapshot, so
 * a getter that answers differently the second time (a deep or cyclic object) never reaches it.
 */
export function metadata(name: string, v: unknown, depth = 0): Record<string, unknown> {
  if (depth > 32) throw outOfRange(`${name} is nested more than 32 levels deep`);
  const o = options<Record<string, unknown>>(name, v);
  const out = Object.create(null) as Record<string, unknown>;
  for (const [k, x] of Object.entries(o)) {
    string(`${name} key`, k);
    if (x !== undefined) Object.defineProperty(out, k, { value: metadataValue(`${name}.${k}`, x, depth), enumerable: true });
  }
  return Object.freeze(out);
}
