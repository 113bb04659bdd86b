/**
 * A pre-scan of tar archives before libostree imports them. libostree 2022.7's libarchive
 * import asserts (aborting the whole process) on a hard link whose target leaves the tree
 * (`../x`, `a/../../x`) or names the root (`.`); this reads the member headers (plain tar,
 * gzip-compressed tar; ustar, GNU long names and pax headers) and refuses such archives with
 * a typed error before any of it reaches native code.
 * @module
 * @internal
 */
import { createReadStream } from 'node:fs';
import { open } from 'node:fs/promises';
import { createGunzip } from 'node:zlib';
import { OstreeError } from './errors.js';

const BLOCK = 512;

function refuse(path: string, message: string, gerrorCode = 35): OstreeError {
  // G_IO_ERROR_INVALID_DATA (35) for a hostile archive, NOT_SUPPORTED (15) for a format we cannot check.
  return new OstreeError(`archive ${path}: ${message}`, { domain: 'g-io-error-quark', gerrorCode, operation: 'scan archive' });
}

function cstr(b: Buffer, off: number, len: number): string {
  const end = b.indexOf(0, off);
  return b.subarray(off, end < 0 || end > off + len ? off + len : end).toString('utf8');
}

function octal(b: Buffer, off: number, len: number): number {
  // GNU base-256 for large values: the first byte has its high bit set.
  if (b[off]! & 0x80) {
    let v = b[off]! & 0x7f;
    for (let i = 1; i < len; i++) v = v * 256 + b[off + i]!;
    return v;
  }
  const s = cstr(b, off, len).trim();
  return s === '' ? 0 : parseInt(s, 8);
}

function checksumOk(h: Buffer): boolean {
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 32 : h[i]!;
  return sum === octal(h, 148, 8);
}

function paxRecords(data: Buffer): Map<string, string> {
  const out = new Map<string, string>();
  let i = 0;
  while (i < data.length) {
    const sp = data.indexOf(0x20, i);
    if (sp < 0) break;
    const len = parseInt(data.subarray(i, sp).toString('ascii'), 10);
    if (!Number.isFinite(len) || len <= 0 || i + len > data.length) break;
    const rec = data.subarray(sp + 1, i + len - 1).toString('utf8');
    const eq = rec.indexOf('=');
    if (eq > 0) out.set(rec.slice(0, eq), rec.slice(eq + 1));
    i += len;
  }
  return out;
}

/** The path libostree would use for a member: leading `/` and `./` removed, `.` components dropped. */
export function normalizeMemberPath(p: string): { parts: string[]; uplink: boolean; absolute: boolean } {
  const absolute = p.startsWith('/');
  const parts = p.split('/').filter((c) => c !== '' && c !== '.');
  return { parts, uplink: parts.includes('..'), absolute };
}

/** Reads `size` bytes from a byte source into one buffer (small members only: pax/GNU names). */
class Reader {
  #chunks: Buffer[] = [];
  #have = 0;
  #done = false;
  #it: AsyncIterator<Buffer>;
  constructor(source: AsyncIterable<Buffer>) {
    this.#it = source[Symbol.asyncIterator]();
  }
  async #fill(n: number): Promise<boolean> {
    while (this.#have < n && !this.#done) {
      const r = await this.#it.next();
      if (r.done) this.#done = true;
      else {
        this.#chunks.push(r.value);
        this.#have += r.value.length;
      }
    }
    return this.#have >= n;
  }
  /** Exactly n bytes, or null at the end of the stream. */
  async read(n: number): Promise<Buffer | null> {
    if (!(await this.#fill(n))) return null;
    const all = this.#chunks.length === 1 ? this.#chunks[0]! : Buffer.concat(this.#chunks);
    const out = all.subarray(0, n);
    const rest = all.subarray(n);
    this.#chunks = rest.length ? [rest] : [];
    this.#have = rest.length;
    return out;
  }
  async skip(n: number): Promise<boolean> {
    while (n > 0) {
      if (!(await this.#fill(Math.min(n, 1 << 20)))) return false;
      const take = Math.min(n, this.#have);
      await this.read(take);
      n -= take;
    }
    return true;
  }
  async close(): Promise<void> {
    await this.#it.return?.();
  }
}

const MAX_META_MEMBER = 1 << 20; // a pax header or GNU long name over 1 MiB is not a real archive

/**
 * Refuses (OstreeError, `INVALID_DATA`) a tar archive with a hard link that libostree's import
 * cannot handle safely: a target with `..`, an absolute or empty target, or one that names no
 * earlier non-directory member; and member names with `..`. Archives that are not tar or
 * gzip-compressed tar are refused with `NOT_SUPPORTED`: they cannot be checked.
 */
export async function scanArchive(path: string, signal?: AbortSignal): Promise<void> {
  let magic = Buffer.alloc(BLOCK);
  try {
    const fh = await open(path, 'r');
    try {
      const { bytesRead } = await fh.read(magic, 0, BLOCK, 0);
      magic = magic.subarray(0, bytesRead);
    } finally {
      await fh.close();
    }
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const gerrorCode = code === 'ENOENT' ? 1 : code === 'EACCES' || code === 'EPERM' ? 14 : code === 'EISDIR' ? 3 : 0;
    throw refuse(path, `cannot read: ${(e as Error).message}`, gerrorCode);
  }
  let source: AsyncIterable<Buffer>;
  const raw = createReadStream(path, { highWaterMark: 1 << 20, signal });
  if (magic.length >= 2 && magic[0] === 0x1f && magic[1] === 0x8b) {
    source = raw.pipe(createGunzip());
    raw.on('error', (e) => (source as ReturnType<typeof createGunzip>).destroy(e));
  } else if (magic.length === BLOCK && (magic.subarray(257, 262).toString('latin1') === 'ustar' || checksumOk(magic))) {
    source = raw;
  } else if (magic.length === 0) {
    raw.destroy();
    return; // an empty file: libostree reports it
  } else {
    raw.destroy();
    throw refuse(path, 'not a tar or gzip-compressed tar archive: only those are accepted (decompress it first)', 15);
  }
  const r = new Reader(source);
  const seen = new Map<string, 'dir' | 'other'>();
  try {
    let longName: string | undefined;
    let longLink: string | undefined;
    let pax = new Map<string, string>();
    let zeros = 0;
    for (;;) {
      signal?.throwIfAborted();
      const h = await r.read(BLOCK);
      if (h === null) return; // truncated: libostree reports it
      if (h.every((x) => x === 0)) {
        if (++zeros === 2) return;
        continue;
      }
      zeros = 0;
      if (!checksumOk(h)) throw refuse(path, 'a member header has a bad checksum');
      const type = String.fromCharCode(h[156]!);
      const size = octal(h, 124, 12);
      if (!Number.isSafeInteger(size) || size < 0) throw refuse(path, 'a member has an invalid size');
      const padded = Math.ceil(size / BLOCK) * BLOCK;
      if (type === 'L' || type === 'K' || type === 'x') {
        if (size > MAX_META_MEMBER) throw refuse(path, 'an oversized pax or long-name header');
        const data = await r.read(padded);
        if (data === null) return;
        const body = data.subarray(0, size);
        if (type === 'L') longName = cstr(body, 0, body.length);
        else if (type === 'K') longLink = cstr(body, 0, body.length);
        else pax = paxRecords(body);
        continue;
      }
      if (type === 'g') {
        if (!(await r.skip(padded))) return;
        continue;
      }
      const prefix = h.subarray(257, 262).toString('latin1') === 'ustar' ? cstr(h, 345, 155) : '';
      const name = pax.get('path') ?? longName ?? (prefix ? `${prefix}/${cstr(h, 0, 100)}` : cstr(h, 0, 100));
      const link = pax.get('linkpath') ?? longLink ?? cstr(h, 157, 100);
      const dataSize = pax.has('size') ? Number(pax.get('size')) : size;
      pax = new Map();
      longName = longLink = undefined;
      const member = normalizeMemberPath(name);
      if (member.uplink) throw refuse(path, `member ${JSON.stringify(name)} has a '..' component`);
      const key = member.parts.join('/');
      if (type === '1') {
        const target = normalizeMemberPath(link);
        if (target.absolute) throw refuse(path, `hard link ${JSON.stringify(name)} has an absolute target ${JSON.stringify(link)}`);
        if (target.uplink) throw refuse(path, `hard link ${JSON.stringify(name)} has a target with '..': ${JSON.stringify(link)}`);
        const t = target.parts.join('/');
        if (t === '' || seen.get(t) !== 'other') {
          throw refuse(path, `hard link ${JSON.stringify(name)} points at ${JSON.stringify(link)}, which is not an earlier file in the archive`);
        }
        if (t === key) throw refuse(path, `hard link ${JSON.stringify(name)} points at itself`);
      }
      seen.set(key, type === '5' ? 'dir' : 'other');
      const skip = type === '1' || type === '2' || type === '3' || type === '4' || type === '5' || type === '6' ? 0 : dataSize;
      const skipPadded = type === 'S' ? padded : Math.ceil(skip / BLOCK) * BLOCK;
      if (!Number.isSafeInteger(skipPadded)) throw refuse(path, 'a member has an invalid size');
      if (!(await r.skip(skipPadded))) return;
    }
  } catch (e) {
    if (e instanceof OstreeError || signal?.aborted) throw e;
    // A damaged gzip stream or a read error: what libostree would have failed on too, typed.
    const code = (e as NodeJS.ErrnoException).code;
    throw refuse(path, `cannot read: ${(e as Error).message}`, code === 'EACCES' ? 14 : code === 'EISDIR' ? 3 : 35);
  } finally {
    await r.close().catch(() => undefined);
    raw.destroy();
  }
}
