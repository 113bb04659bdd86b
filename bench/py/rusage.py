# Runs a command and prints its wall time and CPU time (user + sys, from wait4) in ms as JSON;
# the CPU time is far less disturbed by other load on the machine than the wall time.
import json, os, subprocess, sys, time

t0 = time.perf_counter()
p = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
err = p.stderr.read()
_, status, ru = os.wait4(p.pid, 0)
wall = (time.perf_counter() - t0) * 1000
code = os.waitstatus_to_exitcode(status)
if code != 0:
    sys.stderr.write(err.decode(errors='replace'))
    sys.exit(1)
print(json.dumps({'ms': wall, 'cpu': (ru.ru_utime + ru.ru_stime) * 1000}))
