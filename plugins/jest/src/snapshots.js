// Which files Jest's snapshot machinery may write for a test file: its snapshot file (wherever the
// project's snapshotResolver puts it) and, for inline snapshots, the test file itself. In sandbox
// mode those writes happen inside the file's branch; the environment copies them to the real tree.
const { basename, dirname, isAbsolute, join, relative } = require('node:path');
const { requireJestModule } = require('./jest-modules.js');

async function snapshotPath(projectConfig, testPath) {
  if (!projectConfig.snapshotResolver) return join(dirname(testPath), '__snapshots__', `${basename(testPath)}.snap`);
  const { buildSnapshotResolver } = requireJestModule('jest-snapshot', 'jest-circus');
  const resolver = await buildSnapshotResolver(projectConfig);
  return resolver.resolveSnapshotPath(testPath);
}

/** Paths relative to `root` (only those inside it). */
async function snapshotPathsFor(projectConfig, testPath, root, { updateSnapshot = 'new' } = {}) {
  const paths = [await snapshotPath(projectConfig, testPath)];
  if (updateSnapshot !== 'none') paths.push(testPath);
  return paths.map((p) => relative(root, p)).filter((rel) => rel !== '' && !rel.startsWith('..') && !isAbsolute(rel));
}

module.exports = { snapshotPathsFor };
