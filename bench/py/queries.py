# 1,000 metadata queries with PyGObject in one process: resolve a ref, load its commit,
# read the extension-release file. Prints the in-process time of the loop in ms (JSON).
import json, sys, time
import gi
gi.require_version('OSTree', '1.0')
from gi.repository import Gio, OSTree

repo_path, n, names = sys.argv[1], int(sys.argv[2]), json.loads(sys.argv[3])
repo = OSTree.Repo.new(Gio.File.new_for_path(repo_path))
repo.open(None)
t0 = time.perf_counter()
c0 = time.process_time()
total = 0
for i in range(n):
    name = names[i % len(names)]
    _, csum = repo.resolve_rev('ostree-sysext/ext/' + name, False)
    _, commit, _state = repo.load_commit(csum)
    _, root, _ = repo.read_commit(csum, None)
    f = root.resolve_relative_path('usr/lib/extension-release.d/extension-release.' + name)
    data = f.read(None).read_bytes(65536, None).get_data()
    total += len(data) + len(commit.get_child_value(3).get_string())
ms = (time.perf_counter() - t0) * 1000
cpu = (time.process_time() - c0) * 1000
print(json.dumps({'ms': ms, 'cpu': cpu, 'bytes': total}))
