// A custom builder: extensions described by a recipe file (JSON: version, files). The store
// records the builder's name and context with the extension, so `upgrade()` asks this builder
// again later: `available` when the recipe's version changed, `none` when not, and `veto`
// when the vendor withdrew the new version.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { ExtensionStore, Repo } from 'ostree-sysext';

const work = mkdtempSync(join(tmpdir(), 'example-builder-custom-'));

/** @type {import('ostree-sysext').Builder} */
const recipeBuilder = {
  name: 'recipe',
  async checkUpdate(req) {
    const recipe = JSON.parse(readFileSync(req.context.recipe, 'utf8'));
    if (recipe.withdrawn) return { status: 'veto', message: `version ${recipe.version} was withdrawn: ${recipe.withdrawn}` };
    return recipe.version === req.context.version
      ? { status: 'none', message: `recipe still at ${recipe.version}` }
      : { status: 'available', message: `recipe moved from ${req.context.version} to ${recipe.version}` };
  },
  async build(req) {
    const recipe = JSON.parse(readFileSync(req.context.recipe, 'utf8'));
    const name = req.name || recipe.name;
    const out = mkdtempSync(join(work, 'build-'));
    const files = {
      [`usr/lib/extension-release.d/extension-release.${name}`]: `ID=_any\nSYSEXT_VERSION_ID=${recipe.version}\n`,
      ...recipe.files,
    };
    for (const [rel, content] of Object.entries(files)) {
      mkdirSync(dirname(join(out, rel)), { recursive: true });
      writeFileSync(join(out, rel), content);
    }
    // The new context is recorded with the extension for the next checkUpdate().
    return { tree: out, context: { recipe: req.context.recipe, version: recipe.version }, subject: `${name} ${recipe.version} from recipe` };
  },
};

try {
  const repo = await Repo.create(join(work, 'repo'), { mode: 'bare-user-only', disableFsync: true });
  const store = new ExtensionStore(repo);
  store.registerBuilder(recipeBuilder);

  const recipe = join(work, 'greeter.json');
  const write = (r) => writeFileSync(recipe, JSON.stringify(r));
  write({ name: 'greeter', version: '1.0', files: { 'usr/share/greeter/hello': 'hello 1.0\n' } });
  const first = await store.build('recipe', { recipe });
  console.log(`built ${first.name} ${first.version} (origin: ${first.origin.builder})`);

  const show = (outcomes) => outcomes.forEach((o) => console.log(`upgrade ${o.name}: ${o.result} (${o.check.status}: ${o.check.message})`));
  show(await store.upgrade());
  write({ name: 'greeter', version: '1.1', files: { 'usr/share/greeter/hello': 'hello 1.1\n' } });
  show(await store.upgrade());
  write({ name: 'greeter', version: '1.2', withdrawn: 'breaks the greeting', files: {} });
  show(await store.upgrade());

  const now = await store.get('greeter');
  console.log(`installed: ${now.version}, ${(await repo.readFile(now.commit, '/usr/share/greeter/hello')).toString().trim()}`);
  console.log(`history: ${(await store.history('greeter')).map((c) => c.subject).join(' <- ')}`);
  repo.close();
} finally {
  rmSync(work, { recursive: true, force: true });
}
