// A module plugin: every layer may ship a package database fragment,
// usr/share/pkgdb/<layer>.list, one "name version" per line. Two layers that install the same
// package at different versions would leave the OS with one file set and two claims about it:
// veto. A plugin sees the whole set, which a per-extension check cannot.
/** @type {import('ostree-sysext').Plugin} */
const plugin = {
  name: 'package-db',
  async checkCompatible({ base, extensions }) {
    const owners = new Map(); // package -> [{ layer, version }]
    const read = async (layer, reader) => {
      for (const entry of (await reader.list('usr/share/pkgdb')) ?? []) {
        if (entry.type !== 'file' || !entry.name.endsWith('.list')) continue;
        const text = (await reader.readFile(entry.path, 1 << 20))?.toString('utf8') ?? '';
        for (const line of text.split('\n')) {
          const [pkg, version] = line.trim().split(/\s+/);
          if (!pkg || !version) continue;
          owners.set(pkg, [...(owners.get(pkg) ?? []), { layer, version }]);
        }
      }
    };
    await read('base', base.reader);
    for (const e of extensions) await read(e.name, e.reader);
    const conflicts = [...owners.entries()]
      .filter(([, claims]) => new Set(claims.map((c) => c.version)).size > 1)
      .map(([pkg, claims]) => ({ package: pkg, claims }));
    if (conflicts.length === 0) return { verdict: 'approve', message: `${owners.size} packages, no conflict` };
    const text = conflicts.map((c) => `${c.package} (${c.claims.map((x) => `${x.layer} ${x.version}`).join(' vs ')})`).join('; ');
    return { verdict: 'veto', message: `package database conflict: ${text}`, details: conflicts };
  },
};
export default plugin;
