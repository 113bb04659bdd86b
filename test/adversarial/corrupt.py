#!/usr/bin/python3
# Damages one object of an ostree repository in a chosen way (test/adversarial/corrupt.ts).
#   corrupt.py REPO REF DAMAGE
# The tree under REF must hold usr/share/ext/{a.txt,link}. Damages named *-rehashed rewrite
# the damaged object under its new checksum and rewrite every parent dirtree, the commit and
# the ref, so the repository is self-consistent (what a hostile repository looks like); the
# others damage the object in place (what a disk or an unlucky copy does).
import hashlib
import os
import shutil
import sys

from gi.repository import GLib

TREE_T = '(a(say)a(sayay))'
META_T = '(uuua(ayay))'
COMMIT_T = '(a{sv}aya(say)sstayay)'
SUB = ['usr', 'share', 'ext']

repo, ref, damage = sys.argv[1], sys.argv[2], sys.argv[3]


def opath(csum, ext):
    return os.path.join(repo, 'objects', csum[:2], csum[2:] + '.' + ext)


def mode():
    with open(os.path.join(repo, 'config')) as f:
        for line in f:
            if line.strip().startswith('mode'):
                return line.split('=', 1)[1].strip()
    return 'bare'


ARCHIVE = mode().startswith('archive')
FILE_EXT = 'filez' if ARCHIVE else 'file'


def load(csum, ext, t):
    with open(opath(csum, ext), 'rb') as f:
        data = f.read()
    return GLib.Variant.new_from_bytes(GLib.VariantType(t), GLib.Bytes.new(data), False)


def hexof(v):
    return bytes(v.get_data_as_bytes().get_data()).hex()


def raw(v):
    return bytes(v.get_data_as_bytes().get_data())


def write(data, ext):
    csum = hashlib.sha256(data).hexdigest()
    p = opath(csum, ext)
    os.makedirs(os.path.dirname(p), exist_ok=True)
    if os.path.lexists(p):
        os.chmod(p, 0o644)
        os.unlink(p)
    with open(p, 'wb') as f:
        f.write(data)
    os.chmod(p, 0o644)
    return csum


def replace_in_place(csum, ext, data):
    p = opath(csum, ext)
    os.chmod(p, 0o644)
    os.unlink(p)
    with open(p, 'wb') as f:
        f.write(data)


def ay(b):
    return GLib.Variant('ay', b)


def tree_variant(files, dirs):
    # files: [(name, csum_bytes)], dirs: [(name, tree_bytes, meta_bytes)]; kept in given order
    fv = [GLib.Variant.new_tuple(GLib.Variant('s', n), ay(c)) for n, c in files]
    dv = [GLib.Variant.new_tuple(GLib.Variant('s', n), ay(t), ay(m)) for n, t, m in dirs]
    return GLib.Variant.new_tuple(
        GLib.Variant.new_array(GLib.VariantType('(say)'), fv),
        GLib.Variant.new_array(GLib.VariantType('(sayay)'), dv))


def tree_entries(v):
    files = [(v.get_child_value(0).get_child_value(i).get_child_value(0).get_string(),
              raw(v.get_child_value(0).get_child_value(i).get_child_value(1)))
             for i in range(v.get_child_value(0).n_children())]
    dirs = []
    for i in range(v.get_child_value(1).n_children()):
        e = v.get_child_value(1).get_child_value(i)
        dirs.append((e.get_child_value(0).get_string(), raw(e.get_child_value(1)), raw(e.get_child_value(2))))
    return files, dirs


with open(os.path.join(repo, 'refs', 'heads', ref)) as f:
    commit_csum = f.read().strip()
commit = load(commit_csum, 'commit', COMMIT_T)
root_tree = hexof(commit.get_child_value(6))
root_meta = hexof(commit.get_child_value(7))

# The chain root -> usr -> share -> ext: [(csum, files, dirs)]
chain = []
cur = root_tree
for name in [None] + SUB:
    if name is not None:
        files, dirs = chain[-1][1], chain[-1][2]
        cur = [t.hex() for n, t, m in dirs if n == name][0]
    v = load(cur, 'dirtree', TREE_T)
    fs, ds = tree_entries(v)
    chain.append((cur, fs, ds))
sub_csum, sub_files, sub_dirs = chain[-1]
file_csum = [c.hex() for n, c in sub_files if n == 'a.txt'][0]
sub_meta = [m.hex() for n, t, m in chain[-2][2] if n == 'ext'][0]


def commit_with(parent=None, tree=None, meta=None):
    kids = [commit.get_child_value(i) for i in range(8)]
    if parent is not None:
        kids[1] = ay(parent)
    if tree is not None:
        kids[6] = ay(tree)
    if meta is not None:
        kids[7] = ay(meta)
    return GLib.Variant.new_tuple(*kids)


def set_ref(csum):
    with open(os.path.join(repo, 'refs', 'heads', ref), 'w') as f:
        f.write(csum + '\n')


def write_commit_bytes(data):
    set_ref(write(data, 'commit'))


def rehash_from(level, new_tree_bytes):
    """The dirtree at chain[level] is replaced by new_tree_bytes; every parent dirtree, the
    commit and the ref are rewritten to point at the new checksums."""
    csum = write(new_tree_bytes, 'dirtree')
    for lv in range(level - 1, -1, -1):
        _, fs, ds = chain[lv]
        ds2 = [(n, bytes.fromhex(csum) if n == SUB[lv] else t, m) for n, t, m in ds]
        csum = write(raw(tree_variant(fs, ds2)), 'dirtree')
    write_commit_bytes(raw(commit_with(tree=bytes.fromhex(csum))))


def csum_bytes(c):
    return bytes.fromhex(c)


def sub_tree_rehashed(files, dirs):
    rehash_from(len(chain) - 1, new_tree_bytes=raw(tree_variant(files, dirs)))


def root_tree_rehashed(files, dirs):
    write_commit_bytes(raw(commit_with(tree=bytes.fromhex(write(raw(tree_variant(files, dirs)), 'dirtree')))))


def objbytes(csum, ext):
    with open(opath(csum, ext), 'rb') as f:
        return f.read()


def to_special(path, kind):
    os.chmod(path, 0o644)
    os.unlink(path)
    if kind == 'fifo':
        os.mkfifo(path)
    elif kind == 'dir':
        os.mkdir(path)
    elif kind == 'symlink':
        os.symlink('/etc/passwd', path)
    elif kind == 'empty':
        open(path, 'wb').close()


d = damage
sb = objbytes(sub_csum, 'dirtree')
first_file = sub_files[0]
if d == 'dirtree-file-csum0-rehashed':
    sub_tree_rehashed([(n, b'' if n == 'a.txt' else c) for n, c in sub_files], sub_dirs)
elif d == 'dirtree-file-csum31-rehashed':
    sub_tree_rehashed([(n, c[:31] if n == 'a.txt' else c) for n, c in sub_files], sub_dirs)
elif d == 'dirtree-dir-csum0-rehashed':
    _, fs, ds = chain[0]
    root_tree_rehashed(fs, [(n, b'' if n == 'usr' else t, m) for n, t, m in ds])
elif d == 'dirtree-dir-meta31-rehashed':
    _, fs, ds = chain[0]
    root_tree_rehashed(fs, [(n, t, m[:31] if n == 'usr' else m) for n, t, m in ds])
elif d == 'dirtree-truncate1':
    replace_in_place(sub_csum, 'dirtree', sb[:-1])
elif d == 'dirtree-truncate1-rehashed':
    rehash_from(len(chain) - 1, new_tree_bytes=sb[:-1])
elif d == 'dirtree-framing-flip':
    replace_in_place(sub_csum, 'dirtree', sb[:-1] + bytes([sb[-1] ^ 0xff]))
elif d == 'dirtree-framing-flip-rehashed':
    rehash_from(len(chain) - 1, new_tree_bytes=sb[:-1] + bytes([sb[-1] ^ 0xff]))
elif d == 'dirtree-allzero':
    replace_in_place(sub_csum, 'dirtree', bytes(len(sb)))
elif d == 'dirtree-allzero-rehashed':
    rehash_from(len(chain) - 1, new_tree_bytes=bytes(len(sb)))
elif d == 'dirtree-contains-itself':
    dirs = sorted(sub_dirs + [('loop', bytes.fromhex(sub_csum), bytes.fromhex(sub_meta))])
    replace_in_place(sub_csum, 'dirtree', raw(tree_variant(sub_files, dirs)))
elif d == 'root-contains-itself':
    _, fs, ds = chain[0]
    ds = sorted(ds + [('loop', bytes.fromhex(root_tree), bytes.fromhex(root_meta))])
    replace_in_place(root_tree, 'dirtree', raw(tree_variant(fs, ds)))
elif d == 'dirtree-name-dotdot-rehashed':
    sub_tree_rehashed(sorted([('..' if n == 'a.txt' else n, c) for n, c in sub_files]), sub_dirs)
elif d == 'dirtree-name-slash-rehashed':
    sub_tree_rehashed(sorted([('x/../../a' if n == 'a.txt' else n, c) for n, c in sub_files]), sub_dirs)
elif d == 'dirtree-name-long-rehashed':
    sub_tree_rehashed(sorted([('n' * 300 if n == 'a.txt' else n, c) for n, c in sub_files]), sub_dirs)
elif d == 'dirtree-unsorted-rehashed':
    sub_tree_rehashed(list(reversed(sub_files)), sub_dirs)
elif d == 'dirtree-duplicate-rehashed':
    sub_tree_rehashed(sorted(sub_files + [first_file]), sub_dirs)
elif d == 'dirtree-file-and-dir-rehashed':
    sub_tree_rehashed(sub_files, sorted(sub_dirs + [('a.txt', bytes.fromhex(sub_csum), bytes.fromhex(sub_meta))]))
elif d == 'dirtree-empty':
    to_special(opath(sub_csum, 'dirtree'), 'empty')
elif d == 'dirtree-fifo':
    to_special(opath(sub_csum, 'dirtree'), 'fifo')
elif d == 'dirtree-directory':
    to_special(opath(sub_csum, 'dirtree'), 'dir')
elif d == 'dirtree-missing':
    os.unlink(opath(sub_csum, 'dirtree'))
elif d == 'content-fifo':
    to_special(opath(file_csum, FILE_EXT), 'fifo')
elif d == 'content-directory':
    to_special(opath(file_csum, FILE_EXT), 'dir')
elif d == 'content-symlink':
    to_special(opath(file_csum, FILE_EXT), 'symlink')
elif d == 'content-empty':
    to_special(opath(file_csum, FILE_EXT), 'empty')
elif d == 'content-truncate1':
    b = objbytes(file_csum, FILE_EXT)
    replace_in_place(file_csum, FILE_EXT, b[:-1])
elif d == 'content-header-flip':
    b = bytearray(objbytes(file_csum, FILE_EXT))
    for i in range(min(8, len(b))):
        b[i] ^= 0xff
    replace_in_place(file_csum, FILE_EXT, bytes(b))
elif d == 'commit-own-parent':
    data = raw(commit_with(parent=bytes.fromhex(commit_csum)))
    replace_in_place(commit_csum, 'commit', data)
elif d == 'commit-parent-cycle':
    # B (new) has parent A; A is rewritten in place to have parent B.
    b = write(raw(commit_with(parent=bytes.fromhex(commit_csum))), 'commit')
    replace_in_place(commit_csum, 'commit', raw(commit_with(parent=bytes.fromhex(b))))
    set_ref(b)
elif d == 'commit-parent-csum31-rehashed':
    write_commit_bytes(raw(commit_with(parent=bytes.fromhex(commit_csum)[:31])))
elif d == 'commit-root-csum0-rehashed':
    write_commit_bytes(raw(commit_with(tree=b'')))
elif d == 'commit-truncate1':
    replace_in_place(commit_csum, 'commit', objbytes(commit_csum, 'commit')[:-1])
elif d == 'commit-truncate1-rehashed':
    write_commit_bytes(objbytes(commit_csum, 'commit')[:-1])
elif d == 'commit-allzero':
    replace_in_place(commit_csum, 'commit', bytes(len(objbytes(commit_csum, 'commit'))))
elif d == 'commit-fifo':
    to_special(opath(commit_csum, 'commit'), 'fifo')
elif d == 'commitmeta-fifo':
    os.mkfifo(opath(commit_csum, 'commitmeta'))
elif d == 'commitmeta-garbage':
    with open(opath(commit_csum, 'commitmeta'), 'wb') as f:
        f.write(b'\x01\xff' * 33)
elif d == 'dirmeta-truncate1':
    replace_in_place(sub_meta, 'dirmeta', objbytes(sub_meta, 'dirmeta')[:-1])
elif d == 'dirmeta-regular-mode-rehashed':
    mv = load(sub_meta, 'dirmeta', META_T)
    kids = [mv.get_child_value(i) for i in range(4)]
    # mode is stored big-endian: S_IFREG|0644
    kids[2] = GLib.Variant('u', int.from_bytes((0o100644).to_bytes(4, 'big'), 'little'))
    nm = write(raw(GLib.Variant.new_tuple(*kids)), 'dirmeta')
    _, fs, ds = chain[-2]
    ds2 = [(n, t, bytes.fromhex(nm) if n == 'ext' else m) for n, t, m in ds]
    rehash_from(len(chain) - 2, new_tree_bytes=raw(tree_variant(fs, ds2)))
elif d == 'dirmeta-allzero-rehashed':
    nm = write(bytes(len(objbytes(sub_meta, 'dirmeta'))), 'dirmeta')
    _, fs, ds = chain[-2]
    ds2 = [(n, t, bytes.fromhex(nm) if n == 'ext' else m) for n, t, m in ds]
    rehash_from(len(chain) - 2, new_tree_bytes=raw(tree_variant(fs, ds2)))
elif d == 'dirmeta-fifo':
    to_special(opath(sub_meta, 'dirmeta'), 'fifo')
elif d == 'deep-tree-rehashed':
    # 5000 nested directories under usr/share/ext/deep: valid objects, hostile depth.
    child = write(raw(tree_variant([], [])), 'dirtree')
    for i in range(5000):
        child = write(raw(tree_variant([], [('d', bytes.fromhex(child), bytes.fromhex(sub_meta))])), 'dirtree')
    sub_tree_rehashed(sub_files, sorted(sub_dirs + [('deep', bytes.fromhex(child), bytes.fromhex(sub_meta))]))
elif d == 'none':
    pass
else:
    sys.exit('unknown damage ' + d)
