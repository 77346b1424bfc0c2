// Jest's own packages must come from the Jest installation that is running us (a project may have
// Jest 29 while this plugin sits next to Jest 30), so they are resolved from the entry script first:
// jest-cli's bin in the CLI process, jest-worker's processChild.js in a worker.
const { dirname } = require('node:path');

function searchPaths() {
  const paths = [];
  if (require.main?.filename) paths.push(dirname(require.main.filename));
  if (process.argv[1]) paths.push(dirname(process.argv[1]));
  paths.push(process.cwd(), __dirname);
  return paths;
}

/** Resolves `name` as the running Jest would; `via` names a package to resolve it from (its own dependency). */
function resolveJestModule(name, via) {
  const paths = searchPaths();
  if (via) {
    for (const p of paths) {
      try {
        const viaPath = require.resolve(`${via}/package.json`, { paths: [p] });
        return require.resolve(name, { paths: [dirname(viaPath)] });
      } catch {
        // not installed along this path: try the next
      }
    }
  }
  return require.resolve(name, { paths });
}

function requireJestModule(name, via) {
  return require(resolveJestModule(name, via));
}

module.exports = { requireJestModule, resolveJestModule };
