// typedoc plugin: puts each exported symbol in the API reference's category for the file that
// declares it (typedoc.json `categoryByFile`, so no file needs a @category tag; an explicit tag
// still wins), and warns — an error under treatWarningsAsErrors — when an exported function has
// no @example or a file has no category.
import { Comment, CommentTag, Converter, ParameterType, ReflectionKind } from 'typedoc';

/** @param {import('typedoc').Application} app */
export function load(app) {
  app.options.addDeclaration({
    name: 'categoryByFile',
    help: 'Map of source file or folder (relative to the package, folders ending in /) to the API reference category of what it exports.',
    type: ParameterType.Mixed,
    defaultValue: {},
  });
  app.options.addDeclaration({
    name: 'requireFunctionExamples',
    help: 'Warn about exported functions without an @example.',
    type: ParameterType.Boolean,
    defaultValue: false,
  });
  app.converter.on(Converter.EVENT_RESOLVE_BEGIN, (context) => {
    const map = /** @type {Record<string, string>} */ (app.options.getValue('categoryByFile'));
    const examples = app.options.getValue('requireFunctionExamples');
    for (const child of context.project.children ?? []) {
      const file = context.project.getSymbolIdFromReflection(child)?.packagePath;
      // A file's own entry wins over its folder's (`lib/sets/`).
      const category = file === undefined ? undefined : (map[file] ?? map[file.slice(0, file.lastIndexOf('/') + 1)]);
      if (category === undefined) {
        app.logger.warn(`${child.name} (${file ?? 'unknown file'}) has no category: add its file to categoryByFile in typedoc.json`);
      } else {
        child.comment ??= new Comment();
        if (!child.comment.getTag('@category')) child.comment.blockTags.push(new CommentTag('@category', [{ kind: 'text', text: category }]));
      }
      if (examples && child.kindOf(ReflectionKind.Function)) {
        const documented = (child.signatures ?? []).some((s) => s.comment?.getTag('@example')) || child.comment?.getTag('@example');
        if (!documented) app.logger.warn(`function ${child.name} (${file}) has no @example`);
      }
    }
  });
}
