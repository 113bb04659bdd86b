// Setup file of scripts/test-asan.sh: the worker already has libasan loaded (it needs it for
// the instrumented addon); programs the tests spawn (ostree, gpg, nginx, systemd-sysext) must
// not inherit the preload: uninstrumented GLib programs can deadlock under it.
delete process.env.LD_PRELOAD;
