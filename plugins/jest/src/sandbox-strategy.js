// Inside a worker born through the sandbox launcher (see runner.js): the worker has its own mount
// namespace and a privileged mount helper. Each test file gets an overlay mounted AT the project's
// own path (lower layer: whatever is mounted there now), and each test one more overlay on top, so
// relative, absolute and __dirname writes all land in the branch. Unmounting drops the branch.
const { mkdirSync, mkdtempSync, writeFileSync } = require('node:fs');
const { join } = require('node:path');
const { HelperClient, MountError } = require('branching');
const { applyUpper, applyUpperPath, removeLayerDir } = require('./upper.js');

/** What the runner tells its workers (env BRANCHING_JEST_SANDBOX): the prepared roots and their state dirs. */
function sandboxContext(env = process.env) {
  if (!env.BRANCHING_JEST_SANDBOX || env.BRANCHING_SANDBOX !== '1') return null;
  const helper = HelperClient.fromEnv(env);
  if (!helper) return null;
  const context = JSON.parse(env.BRANCHING_JEST_SANDBOX);
  return { helper, runDirs: context.runDirs, network: context.network };
}

class SandboxStrategy {
  constructor(options, context) {
    this.options = options;
    this.kind = 'sandbox';
    this.helper = context.helper;
    this.runDir = context.runDirs[options.root];
    if (!this.runDir) {
      throw new MountError(
        `jest-environment-branching: the root ${options.root} was not prepared by the runner (it prepared ${Object.keys(context.runDirs).join(', ')}); set testEnvironmentOptions.branching.root in the Jest config rather than in a docblock`,
        { path: options.root },
      );
    }
    this.layers = [];
    this.kept = [];
  }

  async enterFile(name) {
    return this.push(name);
  }

  async enterTest(name) {
    return this.push(name);
  }

  async leaveTest(passed) {
    const layer = this.pop();
    if (this.options.commit && passed) applyUpper(layer.upper, this.options.root);
    this.finish(layer, passed);
    return this.current();
  }

  /** Unmounts the file's branch; snapshot files Jest wrote in it still reach the real tree. */
  async leaveFile(passed, { snapshotPaths = [] } = {}) {
    const layer = this.pop();
    if (this.options.commit && passed) applyUpper(layer.upper, this.options.root);
    else {
      for (const rel of snapshotPaths) applyUpperPath(layer.upper, this.options.root, rel);
    }
    this.finish(layer, passed);
    return this.kept;
  }

  /** Mounts one more branch over the project path. */
  push(name) {
    const dir = mkdtempSync(join(this.runDir, `${name.slice(0, 80)}-`));
    const layer = { dir, upper: join(dir, 'upper'), work: join(dir, 'work'), tmpdir: join(dir, 'tmp') };
    for (const d of [layer.upper, layer.work, layer.tmpdir]) mkdirSync(d, { mode: 0o700 });
    const root = this.options.root;
    try {
      this.helper.mountOverlay({ target: root, lowers: [root], upper: layer.upper, work: layer.work });
    } catch (err) {
      removeLayerDir(dir);
      throw err;
    }
    this.layers.push(layer);
    return this.current();
  }

  pop() {
    const layer = this.layers.pop();
    this.helper.unmount(this.options.root);
    return layer;
  }

  current() {
    const top = this.layers[this.layers.length - 1];
    return { view: this.options.root, tmpdir: top ? top.tmpdir : null };
  }

  finish(layer, passed) {
    if (this.options.keep === 'on-failure' && !passed) {
      writeFileSync(join(layer.dir, 'KEPT'), 'kept by keep: on-failure\n');
      this.kept.push(layer.upper);
    } else removeLayerDir(layer.dir);
  }
}

module.exports = { SandboxStrategy, sandboxContext };
