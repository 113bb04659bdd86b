#!/usr/bin/env python3
"""An executable plugin in Python, speaking ostree-sysext's JSON protocol.

  manifest.py check          JSON on stdin -> {"verdict", "message"} on stdout
  manifest.py deploy-finish  JSON on stdin -> writes files into the set's state directory (cwd)

It warns about sets of more than MAX extensions, and generates state/manifest.json: what is in
the set, for tools that run on the booted system (found at /run/ostree/extensions/state).
"""
import json
import os
import sys

MAX = 3

def main() -> int:
    action = sys.argv[1] if len(sys.argv) > 1 else ""
    ctx = json.load(sys.stdin)
    if ctx.get("protocol") != 1:
        print(f"unsupported protocol {ctx.get('protocol')}", file=sys.stderr)
        return 2
    exts = ctx["extensions"]
    if action == "check":
        if len(exts) > MAX:
            answer = {"verdict": "warn", "message": f"{len(exts)} extensions (more than {MAX}) slow the boot"}
        else:
            answer = {"verdict": "approve", "message": f"{len(exts)} extension(s) for {ctx['base']['osRelease'].get('ID')}"}
        json.dump(answer, sys.stdout)
        return 0
    if action == "deploy-finish":
        manifest = {
            "os": ctx["base"]["osRelease"].get("ID"),
            "osVersion": ctx["base"]["osRelease"].get("VERSION_ID"),
            "extensions": [
                {"name": e["name"], "commit": e["commit"], "version": e["release"].get("SYSEXT_VERSION_ID")}
                for e in exts
            ],
        }
        with open(os.path.join(ctx["stateDir"], "manifest.json"), "w") as f:
            json.dump(manifest, f, indent=2, sort_keys=True)
        return 0
    print(f"unknown action {action!r}", file=sys.stderr)
    return 2

if __name__ == "__main__":
    sys.exit(main())
