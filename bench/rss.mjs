// open → read → close cycles in a fresh process (run with --expose-gc); prints RSS growth.
import { Repo } from '../dist/lib/index.js';

const [repoPath, rev, path, cyclesArg] = process.argv.slice(2);
const cycles = Number(cyclesArg);
const mb = () => process.memoryUsage().rss / 1048576;
async function cycle() {
  const repo = await Repo.open(repoPath);
  await repo.readFile(rev, path);
  repo.close();
}
for (let i = 0; i < 500; i++) await cycle();
globalThis.gc?.();
await new Promise((r) => setTimeout(r, 50));
const before = mb();
const t0 = performance.now();
for (let i = 0; i < cycles; i++) await cycle();
const ms = performance.now() - t0;
globalThis.gc?.();
await new Promise((r) => setTimeout(r, 50));
const after = mb();
console.log(JSON.stringify({ before, after, growth: after - before, ms, cycles }));
