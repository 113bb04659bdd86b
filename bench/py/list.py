# List installed extensions with PyGObject as ExtensionStore.list does: refs, commit
# metadata, extension-release file (sysext or confext path), origin from the config, and
# systemd's compatibility rule against the base's os-release. Prints the loop time (JSON).
import json, sys, time
import gi
gi.require_version('OSTree', '1.0')
from gi.repository import Gio, GLib, OSTree

repo_path, base_rev = sys.argv[1], sys.argv[2]
PREFIX = 'ostree-sysext/ext'

def parse(data):
    out = {}
    for line in bytes(data).decode('utf-8', 'replace').splitlines():
        line = line.strip()
        if not line or line.startswith('#') or '=' not in line:
            continue
        k, v = line.split('=', 1)
        v = v.strip()
        if len(v) >= 2 and v[0] == v[-1] and v[0] in '"\'':
            v = v[1:-1]
        out[k.strip()] = v
    return out

def read(root, path):
    try:
        # read + read_bytes: load_contents warns (the stream is not a GFileInputStream).
        return root.resolve_relative_path(path).read(None).read_bytes(65536, None).get_data()
    except GLib.Error:
        return None

def compatible(rel, os_rel):
    if rel.get('ID') == '_any':
        return True
    if rel.get('ID') != os_rel.get('ID'):
        return False
    if 'SYSEXT_LEVEL' in rel:
        return rel['SYSEXT_LEVEL'] == os_rel.get('SYSEXT_LEVEL')
    return rel.get('VERSION_ID') == os_rel.get('VERSION_ID')

repo = OSTree.Repo.new(Gio.File.new_for_path(repo_path))
repo.open(None)
t0 = time.perf_counter()
c0 = time.process_time()
_, base_csum = repo.resolve_rev(base_rev, False)
_, base_root, _ = repo.read_commit(base_csum, None)
os_rel = parse(read(base_root, 'etc/os-release') or read(base_root, 'usr/lib/os-release'))
_, refs = repo.list_refs(PREFIX, None)
config = repo.get_config()
out = []
for short, csum in refs.items():
    name = short.split('/')[-1]
    _, commit, _state = repo.load_commit(csum)
    meta = commit.get_child_value(0).unpack()
    _, root, _ = repo.read_commit(csum, None)
    data = read(root, 'usr/lib/extension-release.d/extension-release.' + name)
    kind = 'sysext'
    if data is None:
        data = read(root, 'etc/extension-release.d/extension-release.' + name)
        kind = 'confext'
    rel = parse(data) if data is not None else {}
    section = 'ostree-sysext-origin "%s"' % name
    try:
        origin = {'builder': config.get_string(section, 'builder'), 'context': json.loads(config.get_string(section, 'context'))}
    except GLib.Error:
        origin = None
    out.append({'name': name, 'kind': kind, 'commit': csum, 'release': rel, 'origin': origin,
                'timestamp': commit.get_child_value(5).get_uint64(), 'size': meta.get('ostree-sysext.size'),
                'version': rel.get('SYSEXT_VERSION_ID') or rel.get('VERSION_ID') or meta.get('version'),
                'compatible': compatible(rel, os_rel)})
out.sort(key=lambda e: e['name'])
ms = (time.perf_counter() - t0) * 1000
cpu = (time.process_time() - c0) * 1000
print(json.dumps({'ms': ms, 'cpu': cpu, 'count': len(out)}))
