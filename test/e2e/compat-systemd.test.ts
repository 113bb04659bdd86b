// Differential test: checkCompatibility() and parseRelease() against the installed systemd-sysext.
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, expect, it } from 'vitest';
import { checkCompatibility, sortExtensionNames, systemdArchitecture, type CompatibilityCode, type SystemdInfo } from '../../lib/extension/compat.js';
import { detectSystemd } from '../../lib/extension/systemd-detect.js';
import { parseRelease } from '../../lib/extension/release.js';
import { findOsRelease, validateExtension } from '../../lib/extension/validate.js';
import { directoryReader } from '../../lib/tree/directory.js';
import { describeAsRoot } from '../helpers/root.js';
import { sysextMergeProbe, type MergeProbeResult } from '../helpers/sysext.js';
import { tempDir } from '../helpers/tmp.js';

type Bytes = string | Buffer;
type Outcome = 'merged' | 'refused' | 'failed';

interface HostSpec {
  /** usr/lib/os-release contents, if any. */
  usrLib?: Bytes;
  /** etc/os-release: contents, or a symlink target. */
  etc?: Bytes | { symlink: string };
}

interface Case {
  id: string;
  host: HostSpec;
  /** Release file bytes of the extension `ext`. */
  release: Bytes;
}

const EXT = 'ext';
const PROBE = `usr/share/probe/${EXT}`;

// Deterministic PRNG so the generated cases are the same on every run.
function mulberry32(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Writes `KEY=value` in one of several quoting styles that all mean `value` to systemd. */
function assign(key: string, value: string, style: number): string {
  switch (style % 7) {
    case 0:
      return value === '' ? `${key}=` : /^[A-Za-z0-9._-]+$/.test(value) ? `${key}=${value}` : `${key}="${value}"`;
    case 1:
      return `${key}="${value.replace(/["\\`$]/g, (c) => `\\${c}`)}"`;
    case 2:
      return value.includes("'") ? `${key}="${value}"` : `${key}='${value}'`;
    case 3: // every character backslash-escaped, unquoted
      return `${key}=${[...value].map((c) => `\\${c}`).join('')}`;
    case 4: // whitespace around the key and before the value
      return `  ${key} =\t ${value === '' ? '""' : `"${value}"`}   `;
    case 5: // quoted and unquoted pieces concatenated
      return value.length < 2 ? `${key}="${value}"` : `${key}="${value.slice(0, 1)}"'${value.slice(1)}'`;
    default: // a wrong value first, overridden by the right one
      return `${key}=overridden\n${key}='${value}'`;
  }
}

function generatedCases(arch: string): Case[] {
  const hosts: Record<string, string> = {
    debian12: 'ID=debian\nVERSION_ID=12\n',
    debian12level: 'ID=debian\nVERSION_ID="12"\nSYSEXT_LEVEL=1.0\n',
    rolling: 'NAME="Arch Linux"\nID=arch\n',
    levelOnly: "ID=debian\nSYSEXT_LEVEL='1.0'\n",
    ubuntuLikeDebian: 'ID=ubuntu\nID_LIKE="debian"\nVERSION_ID="24.04"\n',
  };
  const ids = ['debian', 'DEBIAN', '_any', 'fedora', 'ubuntu', 'arch', null, ''];
  const versions = ['12', '11', '24.04', null, ''];
  const levels = ['1.0', '2.0', null];
  const arches = [null, arch, 'arm64', '_any', arch.toUpperCase(), ''];
  const scopes = [null, 'system', 'portable', 'initrd', '', 'initrd portable', 'portable\tsystem', '  '];
  const rand = mulberry32(252);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)] as T;

  const cases: Case[] = [];
  for (const [hostName, hostText] of Object.entries(hosts)) {
    for (let n = 0; n < 26; n++) {
      const fields: [string, string | null][] = [
        ['ID', pick(ids)],
        ['VERSION_ID', pick(versions)],
        ['SYSEXT_LEVEL', pick(levels)],
        ['ARCHITECTURE', pick(arches)],
        ['SYSEXT_SCOPE', pick(scopes)],
      ];
      // Bias towards matching IDs so the version rules are reached often.
      if (rand() < 0.4) fields[0] = ['ID', hostName === 'rolling' ? 'arch' : hostName === 'ubuntuLikeDebian' ? 'ubuntu' : 'debian'];
      if (rand() < 0.5) fields[4] = ['SYSEXT_SCOPE', null];
      if (rand() < 0.5) fields[3] = ['ARCHITECTURE', pick([null, arch])];
      const body = fields
        .filter((f): f is [string, string] => f[1] !== null)
        .sort(() => rand() - 0.5)
        .map(([k, v]) => assign(k, v, Math.floor(rand() * 7)));
      if (rand() < 0.3) body.splice(Math.floor(rand() * body.length), 0, '# a comment', '', '; another');
      const eol = rand() < 0.15 ? '\r\n' : '\n';
      cases.push({ id: `${hostName}#${n}`, host: { usrLib: hostText }, release: body.join(eol) + eol });
    }
  }
  return cases;
}

function curatedCases(arch: string): Case[] {
  const debian = { usrLib: 'ID=debian\nVERSION_ID=12\n' };
  const levelled = { usrLib: 'ID=debian\nVERSION_ID=12\nSYSEXT_LEVEL=1.0\n' };
  const c = (id: string, release: Bytes, host: HostSpec = debian): Case => ({ id, host, release });
  return [
    // Parsing quirks of systemd's env-file reader.
    c('comment-continuation-swallows-next-line', '# comment \\\nID=debian\nVERSION_ID=12\n'),
    c('comment-continuation-crlf', '# comment \\\r\nID=debian\r\nVERSION_ID=12\r\n'),
    c('export-prefix-is-not-ID', 'export ID=debian\nVERSION_ID=12\n'),
    c('hash-after-value-is-not-comment', 'ID=debian # the OS\nVERSION_ID=12\n'),
    c('quote-then-text', 'ID="debian"x\nVERSION_ID=12\n'),
    c('quoted-pieces-skip-whitespace', 'ID="deb" "ian"\nVERSION_ID=12\n'),
    c('unquoted-then-quote-is-literal', 'ID=deb "ian"\nVERSION_ID=12\n'),
    c('unquoted-continuation', 'ID=deb\\\nian\nVERSION_ID=12\n'),
    c('double-quote-continuation', 'ID="deb\\\nian"\nVERSION_ID=12\n'),
    c('single-quote-keeps-backslash-newline', "ID='deb\\\nian'\nVERSION_ID=12\n"),
    c('single-quote-spans-lines', "ID='debian\n'\nVERSION_ID=12\n"),
    c('utf8-bom-breaks-first-key', '\ufeffID=debian\nVERSION_ID=12\n'),
    c('unterminated-quote-at-eof', 'VERSION_ID=12\nID="debian'),
    c('unterminated-quote-swallows-newline', 'VERSION_ID=12\nID="debian\n'),
    c('invalid-utf8-elsewhere', Buffer.concat([Buffer.from('ID=debian\nVERSION_ID=12\nNAME='), Buffer.from([0xff, 0xfe]), Buffer.from('\n')])),
    c('invalid-utf8-in-comment-is-fine', Buffer.concat([Buffer.from('# '), Buffer.from([0xff]), Buffer.from('\nID=debian\nVERSION_ID=12\n')])),
    c('non-character-u+fffe', 'ID=debian\nVERSION_ID=12\nNAME=x\ufffey\n'),
    c('non-character-u+fdd0', 'ID=debian\nVERSION_ID=12\nNAME=\ufdd0\n'),
    c('duplicate-later-wins-mismatch', 'ID=debian\nVERSION_ID=12\nID=fedora\n'),
    c('duplicate-later-wins-match', 'ID=fedora\nVERSION_ID=12\nID=debian\n'),
    c('later-empty-clears', 'ID=debian\nVERSION_ID=12\nID=\n'),
    c('spaces-around-equals', '  ID \t= \t debian  \nVERSION_ID = 12\n'),
    c('unquoted-escape', 'ID=debi\\an\nVERSION_ID=1\\2\n'),
    c('double-quote-keeps-other-backslash', 'ID="debi\\an"\nVERSION_ID=12\n'),
    c('double-quote-escapes', 'ID="\\d\\ebian"\nVERSION_ID="\\1\\2"\n'),
    c('semicolon-comment', ';ID=fedora\nID=debian\nVERSION_ID=12\n'),
    c('scope-with-newline-in-quotes', 'ID=debian\nVERSION_ID=12\nSYSEXT_SCOPE="portable\nsystem"\n'),
    c('scope-only-portable', 'ID=debian\nVERSION_ID=12\nSYSEXT_SCOPE=portable\n'),
    c('scope-empty-quoted', 'ID=debian\nVERSION_ID=12\nSYSEXT_SCOPE=""\n'),
    c('scope-case', 'ID=debian\nVERSION_ID=12\nSYSEXT_SCOPE=System\n'),
    c('arch-trailing-space-unquoted', `ID=debian\nVERSION_ID=12\nARCHITECTURE=${arch}   \n`),
    c('arch-trailing-space-quoted', `ID=debian\nVERSION_ID=12\nARCHITECTURE="${arch} "\n`),
    c('arch-uname-spelling', 'ID=debian\nVERSION_ID=12\nARCHITECTURE=x86_64\n'),
    c('any-id-ignores-versions', 'ID=_any\nVERSION_ID=99\nSYSEXT_LEVEL=9\n', levelled),
    c('any-id-upper-case', 'ID=_ANY\n'),
    c('any-id-still-checks-scope', 'ID=_any\nSYSEXT_SCOPE=initrd\n'),
    c('any-id-still-checks-arch', 'ID=_any\nARCHITECTURE=s390x\n'),
    c('lone-cr-line-ends', 'ID=debian\rVERSION_ID=12\r'),
    c('escape-at-eof', 'VERSION_ID=12\nID=debian\\'),
    c('tab-before-equals', 'ID\t=debian\nVERSION_ID=12\n'),
    c('key-with-space', 'I D=debian\nVERSION_ID=12\n'),
    c('empty-file', ''),
    c('only-comments', '# nothing\n; here\n\n'),
    c('only-invalid-keys', 'FOO BAR=1\n'),
    c('version-id-quoted-space', 'ID=debian\nVERSION_ID=" 12"\n'),
    c('lowercase-key-ignored', 'id=debian\nversion_id=12\n'),
    // Version rules.
    c('level-wins-over-version', 'ID=debian\nVERSION_ID=11\nSYSEXT_LEVEL=1.0\n', levelled),
    c('level-mismatch-even-if-version-matches', 'ID=debian\nVERSION_ID=12\nSYSEXT_LEVEL=2.0\n', levelled),
    c('no-level-falls-back-to-version', 'ID=debian\nVERSION_ID=12\n', levelled),
    c('no-level-version-mismatch', 'ID=debian\nVERSION_ID=13\n', levelled),
    c('host-level-only-ext-without-level', 'ID=debian\nVERSION_ID=13\n', { usrLib: 'ID=debian\nSYSEXT_LEVEL=1.0\n' }),
    c('host-level-only-ext-level-mismatch', 'ID=debian\nSYSEXT_LEVEL=2\n', { usrLib: 'ID=debian\nSYSEXT_LEVEL=1.0\n' }),
    c('host-version-empty-is-rolling', 'ID=debian\nVERSION_ID=5\n', { usrLib: 'ID=debian\nVERSION_ID=""\n' }),
    // ID_LIKE: matched by 258 and by distributions' 257 with the backport (Debian 257.13), not by 252.
    c('id-like-word-as-id', 'ID=debian\nVERSION_ID=24.04\n', { usrLib: 'ID=ubuntu\nID_LIKE=debian\nVERSION_ID=24.04\n' }),
    c('id-like-second-word', 'ID=rhel\nVERSION_ID=9\n', { usrLib: 'ID=rocky\nID_LIKE="centos  rhel fedora"\nVERSION_ID=9\n' }),
    c('id-like-version-still-checked', 'ID=debian\nVERSION_ID=12\n', { usrLib: 'ID=ubuntu\nID_LIKE=debian\nVERSION_ID=24.04\n' }),
    c('id-like-partial-word', 'ID=deb\nVERSION_ID=24.04\n', { usrLib: 'ID=ubuntu\nID_LIKE=debian\nVERSION_ID=24.04\n' }),
    c('id-like-rolling-host', 'ID=arch\n', { usrLib: 'ID=steamos\nID_LIKE=arch\n' }),
    c('id-case-sensitive', 'ID=Debian\nVERSION_ID=12\n'),
    // Host os-release lookup and failures.
    c('etc-os-release-wins', 'ID=fedora\nVERSION_ID=40\n', { usrLib: 'ID=debian\nVERSION_ID=12\n', etc: 'ID=fedora\nVERSION_ID=40\n' }),
    c('etc-os-release-wins-mismatch', 'ID=debian\nVERSION_ID=12\n', { usrLib: 'ID=debian\nVERSION_ID=12\n', etc: 'ID=fedora\nVERSION_ID=40\n' }),
    c('etc-symlink-relative', 'ID=debian\nVERSION_ID=12\n', { usrLib: 'ID=debian\nVERSION_ID=12\n', etc: { symlink: '../usr/lib/os-release' } }),
    c('etc-symlink-absolute-in-root', 'ID=debian\nVERSION_ID=12\n', { usrLib: 'ID=debian\nVERSION_ID=12\n', etc: { symlink: '/usr/lib/os-release' } }),
    c('etc-symlink-dangling-falls-back', 'ID=debian\nVERSION_ID=12\n', { usrLib: 'ID=debian\nVERSION_ID=12\n', etc: { symlink: '../nowhere' } }),
    c('etc-only', 'ID=debian\nVERSION_ID=12\n', { etc: 'ID=debian\nVERSION_ID=12\n' }),
    c('host-no-os-release', 'ID=debian\nVERSION_ID=12\n', {}),
    c('host-id-missing', 'ID=debian\nVERSION_ID=12\n', { usrLib: 'VERSION_ID=12\n' }),
    c('host-id-empty', 'ID=_any\n', { usrLib: 'ID=""\nVERSION_ID=12\n' }),
    c('host-comment-swallows-version', 'ID=debian\nVERSION_ID=99\n', { usrLib: '# x\\\nVERSION_ID=12\nID=debian\n' }),
    c('host-invalid-utf8', 'ID=debian\nVERSION_ID=12\n', {
      usrLib: Buffer.concat([Buffer.from('ID=debian\nVERSION_ID=12\nNAME='), Buffer.from([0xc3, 0x28]), Buffer.from('\n')]),
    }),
    c('host-quoted', 'ID=\'debian\'\nVERSION_ID="12"\n', { usrLib: 'ID="debian"\nVERSION_ID=\'12\'\n' }),
  ];
}

function writeRoot(dir: string, k: Case): void {
  mkdirSync(join(dir, 'usr/lib'), { recursive: true });
  mkdirSync(join(dir, 'etc'), { recursive: true });
  writeFileSync(join(dir, 'usr/lib/host-marker'), 'host\n');
  if (k.host.usrLib !== undefined) writeFileSync(join(dir, 'usr/lib/os-release'), k.host.usrLib);
  if (k.host.etc !== undefined) {
    if (typeof k.host.etc === 'object' && 'symlink' in k.host.etc) symlinkSync(k.host.etc.symlink, join(dir, 'etc/os-release'));
    else writeFileSync(join(dir, 'etc/os-release'), k.host.etc);
  }
  const ext = join(dir, 'var/lib/extensions', EXT);
  mkdirSync(join(ext, 'usr/lib/extension-release.d'), { recursive: true });
  mkdirSync(join(ext, 'usr/share/probe'), { recursive: true });
  writeFileSync(join(ext, 'usr/lib/extension-release.d', `extension-release.${EXT}`), k.release);
  writeFileSync(join(ext, PROBE), `${k.id}\n`);
}

/** What systemd-sysext did, from its exit code and what appeared under /usr. */
function observed(r: MergeProbeResult, name = EXT, probe = PROBE): Outcome | 'inconsistent' {
  if (r.failed) return 'failed';
  const listed = r.merged.usr?.includes(name) ?? false;
  const visible = r.present.includes(probe);
  if (listed && visible) return 'merged';
  if (!listed && !visible) return 'refused';
  return 'inconsistent';
}

// systemd-sysext's debug messages (252 wording, later variants allowed) → our reason codes.
const LOG_REASONS: [RegExp, CompatibilityCode[]][] = [
  [/carries no (extension-)?release data/, ['RELEASE_EMPTY']],
  [/is not suitable for scope/, ['SCOPE_MISMATCH']],
  [/is for architecture/, ['ARCHITECTURE_MISMATCH']],
  [/does not contain ID in/, ['ID_MISSING']],
  [/matches '_any' OS/, ['ID_ANY']],
  [/is for (sysext |confext )?API level/, ['SYSEXT_LEVEL_MISMATCH', 'CONFEXT_LEVEL_MISMATCH']],
  [/does not contain VERSION_ID in/, ['VERSION_ID_MISSING']],
  [/is for OS '[^]*', but deployed on top of/, ['ID_MISMATCH', 'VERSION_ID_MISMATCH']],
  [/No version info on the host \(rolling release\?\)/, ['ROLLING_HOST']],
  [/Version info of extension '[^]*' matches host/, ['MATCH', 'VERSION_UNCHECKED']],
  [/'ID' field not found or empty/, ['HOST_ID_MISSING']],
];

function reasonsFromLog(stderr: string): CompatibilityCode[] | null {
  for (const [re, codes] of LOG_REASONS) if (re.test(stderr)) return codes;
  return null;
}

describeAsRoot('checkCompatibility agrees with the installed systemd-sysext', () => {
  let systemdVersion: number;
  let systemd: SystemdInfo;
  const arch = systemdArchitecture();
  const base = tempDir('compat-systemd-');
  const cases = [...curatedCases(arch), ...generatedCases(arch)];
  let results: MergeProbeResult[];

  beforeAll(async () => {
    // The installed systemd as the library sees it: its version and the capability probe's answer.
    const detected = await detectSystemd();
    if (detected === undefined) throw new Error('systemd-sysext is not installed');
    systemd = detected;
    systemdVersion = detected.version;
    cases.forEach((k, i) => writeRoot(join(base, `case-${i}`), k));
    results = await sysextMergeProbe(cases.map((_, i) => ({ root: join(base, `case-${i}`), probePaths: [PROBE] })));
  }, 300_000);

  it(`runs at least 120 cases, with every outcome represented`, () => {
    expect(cases.length).toBeGreaterThanOrEqual(120);
    const outcomes = results.map((r) => observed(r));
    // A probe that merged nothing (or everything) would agree with a broken model by accident.
    expect(outcomes.filter((o) => o === 'merged').length).toBeGreaterThanOrEqual(20);
    expect(outcomes.filter((o) => o === 'refused').length).toBeGreaterThanOrEqual(20);
    expect(outcomes.filter((o) => o === 'failed').length).toBeGreaterThanOrEqual(3);
    expect(results.every((r) => r.unmerged)).toBe(true);
  });

  it("says what the installed systemd does with ID_LIKE: the capability probe agrees with systemd's own merge", () => {
    const i = cases.findIndex((k) => k.id === 'id-like-word-as-id');
    expect(i).toBeGreaterThanOrEqual(0);
    const outcome = observed(results[i] as MergeProbeResult);
    expect(outcome === 'merged' ? 'matches ID_LIKE' : outcome).toBe(systemd.idLike ? 'matches ID_LIKE' : 'refused');
  });

  it('predicts every verdict and its reason', async () => {
    const disagreements: string[] = [];
    for (const [i, k] of cases.entries()) {
      const r = results[i] as MergeProbeResult;
      const actual = observed(r);
      const host = await findOsRelease(directoryReader(r.root), { systemdVersion });
      const ext = parseRelease(typeof k.release === 'string' ? Buffer.from(k.release) : k.release, { systemdVersion });

      let expected: Outcome;
      let codes: CompatibilityCode[] | null = null;
      let code: CompatibilityCode | null = null;
      if (host === null || !host.release.loadable) expected = 'failed';
      else {
        const verdict = checkCompatibility(ext.loadable ? ext.fields : {}, host.release.fields, {
          systemd,
          architecture: arch,
          name: EXT,
        });
        code = verdict.reason.code;
        expected = code === 'HOST_ID_MISSING' ? 'failed' : verdict.compatible ? 'merged' : 'refused';
        codes = reasonsFromLog(r.stderr);
        // systemd keeps assignments with invalid names, so such a file is "not empty" there.
        if (code === 'RELEASE_EMPTY' && ext.problems.some((p) => p.code === 'INVALID_KEY')) code = 'ID_MISSING';
      }
      const reasonOk = code === null || (codes !== null && codes.includes(code));
      if (actual !== expected || !reasonOk) {
        const log = r.stderr
          .split('\n')
          .filter((l) => /xtension|ID|os-release|Failed/.test(l))
          .slice(-4)
          .join(' | ');
        disagreements.push(`${k.id}: systemd ${actual} (${codes?.join('/') ?? 'no reason logged'}), model ${expected} (${code ?? '-'}) :: ${log}`);
      }
    }
    expect(disagreements).toEqual([]);
  });
});

// Confexts: the same generated cases with the CONFEXT_ keys (host and extension), plus cases
// where only SYSEXT_ keys are present (confexts ignore them), merged by systemd-confext (254+).
const CONF_PROBE = `etc/probe/${EXT}`;

function confextCases(arch: string): Case[] {
  const swap = (b: Bytes): Bytes => (typeof b === 'string' ? b.replace(/SYSEXT_/g, 'CONFEXT_') : b);
  const generated = generatedCases(arch)
    .filter((_, i) => i % 2 === 0)
    .map((k) => ({
      id: `confext:${k.id}`,
      release: swap(k.release),
      host: { ...k.host, ...(k.host.usrLib === undefined ? {} : { usrLib: swap(k.host.usrLib) }) },
    }));
  const debian = { usrLib: 'ID=debian\nVERSION_ID=12\n' };
  const c = (id: string, release: string, host: HostSpec = debian): Case => ({ id: `confext:${id}`, host, release });
  return [
    ...generated,
    c('sysext-scope-ignored', 'ID=debian\nVERSION_ID=12\nSYSEXT_SCOPE=initrd\n'),
    c('confext-scope-initrd', 'ID=debian\nVERSION_ID=12\nCONFEXT_SCOPE=initrd\n'),
    c('sysext-level-ignored', 'ID=debian\nVERSION_ID=12\nSYSEXT_LEVEL=9\n', { usrLib: 'ID=debian\nVERSION_ID=12\nSYSEXT_LEVEL=1\n' }),
    c('host-sysext-level-ignored', 'ID=debian\nVERSION_ID=11\nCONFEXT_LEVEL=1\n', { usrLib: 'ID=debian\nVERSION_ID=12\nSYSEXT_LEVEL=1\n' }),
    c('confext-level-match', 'ID=debian\nVERSION_ID=11\nCONFEXT_LEVEL=1\n', { usrLib: 'ID=debian\nVERSION_ID=12\nCONFEXT_LEVEL=1\n' }),
    c('id-like-word-as-id', 'ID=debian\nVERSION_ID=24.04\n', { usrLib: 'ID=ubuntu\nID_LIKE=debian\nVERSION_ID=24.04\n' }),
    c('any-id', 'ID=_any\n'),
  ];
}

function writeConfextRoot(dir: string, k: Case): void {
  writeRoot(dir, k);
  const ext = join(dir, 'var/lib/confexts', EXT);
  mkdirSync(join(ext, 'etc/extension-release.d'), { recursive: true });
  mkdirSync(join(ext, 'etc/probe'), { recursive: true });
  writeFileSync(join(ext, 'etc/extension-release.d', `extension-release.${EXT}`), k.release);
  writeFileSync(join(ext, CONF_PROBE), `${k.id}\n`);
}

describeAsRoot('checkCompatibility agrees with the installed systemd-confext (254 and later; before, none exists)', () => {
  const arch = systemdArchitecture();
  const base = tempDir('compat-confext-');
  const cases = confextCases(arch);
  let systemd: SystemdInfo;
  let results: MergeProbeResult[] = [];

  beforeAll(async () => {
    systemd = (await detectSystemd())!;
    cases.forEach((k, i) => writeConfextRoot(join(base, `case-${i}`), k));
    if (systemd.version >= 254) {
      results = await sysextMergeProbe(
        cases.map((_, i) => ({ root: join(base, `case-${i}`), probePaths: [CONF_PROBE] })),
        { tool: 'systemd-confext' },
      );
    }
  }, 300_000);

  it('predicts every verdict and its reason', async () => {
    expect(cases.length).toBeGreaterThanOrEqual(70);
    const disagreements: string[] = [];
    const outcomes: string[] = [];
    for (const [i, k] of cases.entries()) {
      const root = join(base, `case-${i}`);
      const host = await findOsRelease(directoryReader(root), { systemdVersion: systemd.version });
      const ext = parseRelease(typeof k.release === 'string' ? Buffer.from(k.release) : k.release, { systemdVersion: systemd.version });
      if (systemd.version < 254) {
        // No systemd-confext here: the library must say so for every confext.
        const v = checkCompatibility(ext.loadable ? ext.fields : {}, host?.release.fields ?? {}, { systemd, architecture: arch, name: EXT, kind: 'confext' });
        if (v.compatible || v.reason.code !== 'CONFEXT_UNSUPPORTED') disagreements.push(`${k.id}: ${v.reason.code} on systemd ${systemd.version}`);
        continue;
      }
      const r = results[i]!;
      const actual = observed({ ...r, merged: { ...r.merged, usr: r.merged.etc } }, EXT, CONF_PROBE);
      outcomes.push(actual);
      let expected: Outcome;
      let code: CompatibilityCode | null = null;
      let codes: CompatibilityCode[] | null = null;
      if (host === null || !host.release.loadable) expected = 'failed';
      else {
        const v = checkCompatibility(ext.loadable ? ext.fields : {}, host.release.fields, { systemd, architecture: arch, name: EXT, kind: 'confext' });
        code = v.reason.code;
        expected = code === 'HOST_ID_MISSING' ? 'failed' : v.compatible ? 'merged' : 'refused';
        codes = reasonsFromLog(r.stderr);
        if (code === 'RELEASE_EMPTY' && ext.problems.some((p) => p.code === 'INVALID_KEY')) code = 'ID_MISSING';
      }
      if (actual !== expected || !(code === null || (codes !== null && codes.includes(code)))) {
        const log = r.stderr
          .split('\n')
          .filter((l) => /xtension|ID|os-release|Failed|level/.test(l))
          .slice(-4)
          .join(' | ');
        disagreements.push(`${k.id}: systemd-confext ${actual} (${codes?.join('/') ?? 'no reason logged'}), model ${expected} (${code ?? '-'}) :: ${log}`);
      }
    }
    expect(disagreements).toEqual([]);
    if (systemd.version >= 254) {
      expect(outcomes.filter((o) => o === 'merged').length).toBeGreaterThanOrEqual(10);
      expect(outcomes.filter((o) => o === 'refused').length).toBeGreaterThanOrEqual(10);
      expect(results.every((r) => r.unmerged)).toBe(true);
    }
  });
});

describeAsRoot('overlay order and validation agree with systemd-sysext', () => {
  const base = tempDir('compat-order-');

  it('stacks extensions in sortExtensionNames order', async () => {
    const names = [
      'foo-1.10',
      'foo-1.9',
      'foo-1.9~rc1',
      'foo-1.9-1',
      'foo-1.9^post',
      'foo-1.9.a',
      'foo-1.9a',
      'foo-2',
      'foo-010',
      'foo',
      'bar',
      'Bar',
      'foo-1.9.0',
      'zzz~beta',
      'zzz',
      'foo-1_9x',
    ];
    const root = join(base, 'order');
    mkdirSync(join(root, 'usr/lib'), { recursive: true });
    writeFileSync(join(root, 'usr/lib/os-release'), 'ID=debian\nVERSION_ID=12\n');
    for (const name of names) {
      const ext = join(root, 'var/lib/extensions', name);
      mkdirSync(join(ext, 'usr/lib/extension-release.d'), { recursive: true });
      mkdirSync(join(ext, 'usr/share/probe'), { recursive: true });
      writeFileSync(join(ext, 'usr/lib/extension-release.d', `extension-release.${name}`), 'ID=_any\n');
      writeFileSync(join(ext, 'usr/share/probe/top'), name);
    }
    const [r] = await sysextMergeProbe([{ root, probePaths: ['usr/share/probe/top'] }]);
    expect(r?.exitCode).toBe(0);
    expect(r?.merged.usr).toEqual(sortExtensionNames(names));
  });

  it('never sees systemd merge an extension that validateExtension rejects as unusable', async () => {
    const variants: { id: string; build: (ext: string) => void; code: string; outcome: Outcome }[] = [
      {
        id: 'os-release-in-extension',
        build: (ext) => writeFileSync(join(ext, 'usr/lib/os-release'), 'ID=debian\n'),
        code: 'OS_RELEASE_PRESENT',
        outcome: 'failed',
      },
      {
        id: 'renamed-release-file',
        build: (ext) => {
          const dir = join(ext, 'usr/lib/extension-release.d');
          writeFileSync(join(dir, 'extension-release.other'), 'ID=_any\n');
        },
        code: 'NAME_MISMATCH',
        outcome: 'refused',
      },
      {
        id: 'release-missing',
        build: () => {},
        code: 'RELEASE_MISSING',
        outcome: 'refused',
      },
      {
        id: 'release-without-id',
        build: (ext) => writeFileSync(join(ext, 'usr/lib/extension-release.d', `extension-release.${EXT}`), 'VERSION_ID=12\n'),
        code: 'RELEASE_ID_MISSING',
        outcome: 'refused',
      },
    ];
    const roots = variants.map((v) => {
      const root = join(base, v.id);
      mkdirSync(join(root, 'usr/lib'), { recursive: true });
      writeFileSync(join(root, 'usr/lib/os-release'), 'ID=debian\nVERSION_ID=12\n');
      const ext = join(root, 'var/lib/extensions', EXT);
      mkdirSync(join(ext, 'usr/lib/extension-release.d'), { recursive: true });
      mkdirSync(join(ext, 'usr/share/probe'), { recursive: true });
      writeFileSync(join(ext, PROBE), v.id);
      if (v.id !== 'renamed-release-file' && v.id !== 'release-missing') {
        writeFileSync(join(ext, 'usr/lib/extension-release.d', `extension-release.${EXT}`), 'ID=_any\n');
      }
      v.build(ext);
      return { root, probePaths: [PROBE] };
    });
    const results = await sysextMergeProbe(roots);
    for (const [i, v] of variants.entries()) {
      const validation = await validateExtension(directoryReader(join(roots[i]!.root, 'var/lib/extensions', EXT)), { name: EXT });
      expect(validation.ok, v.id).toBe(false);
      expect(
        validation.problems.map((p) => p.code),
        v.id,
      ).toContain(v.code);
      expect(observed(results[i]!), v.id).toBe(v.outcome);
    }
  });
});
