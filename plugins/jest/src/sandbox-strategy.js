// Inside a worker born through the sandbox launcher (see runner.js): the worker has its own mount
// namespace and a privileged mount helper. Each test file gets an overlay mounted AT the project's
// own path (lower layer: whatever is mounted there now), and each test one more overlay on top, so
// relative, absolute and __dirname writes all land in the branch. Unmounting drops the branch.
const { randomBytes } = require('node:crypto');
const { mkdirSync, opendirSync, rmSync, writeFileSync } = require('node:fs');
const fs = require('node:fs/promises');
const { join } = require('node:path');
const { HelperClient, MountError } = require('branching');
const { applyUpper, applyUpperPath, unlockTree } = require('./upper.js');

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
    this.removals = [];
    this.spare = null;
    /** A test layer left unchanged by its test, still mounted, ready for the next one. */
    this.idle = null;
  }

  async enterFile(name) {
    return this.push(name);
  }

  /** A test gets the idle layer the previous test left untouched, else a fresh one. */
  async enterTest(name) {
    const idle = this.idle;
    if (!idle) return this.push(name);
    this.idle = null;
    idle.name = name;
    return this.current();
  }

  async leaveTest(passed) {
    const top = this.layers[this.layers.length - 1];
    if (isEmptyDir(top.upper) && !(this.options.keep === 'on-failure' && !passed)) {
      // The test changed nothing in the project: its layer still shows exactly the file's branch,
      // so it stays mounted for the next test, and a remount (two helper round trips) is saved.
      clearDir(top.tmpdir);
      this.idle = top;
      return this.current();
    }
    const layer = this.pop();
    if (this.options.commit && passed) applyUpper(layer.upper, this.options.root);
    this.finish(layer, passed);
    return this.current();
  }

  /** Unmounts the file's branch; snapshot files Jest wrote in it still reach the real tree. */
  /**
   * Unmounts the idle test layer: called when the file's tests have finished, before Jest writes
   * the snapshot file, which belongs in the file's branch.
   */
  async releaseIdle() {
    if (!this.idle) return this.current();
    this.idle = null;
    this.finish(this.pop(), true);
    return this.current();
  }

  async leaveFile(passed, { snapshotPaths = [] } = {}) {
    await this.releaseIdle();
    const layer = this.pop();
    if (this.options.commit && passed) applyUpper(layer.upper, this.options.root);
    else {
      for (const rel of snapshotPaths) applyUpperPath(layer.upper, this.options.root, rel);
    }
    this.finish(layer, passed);
    await this.settle();
    return this.kept;
  }

  /**
   * Mounts one more branch over the project path. The layer's directories were made in the
   * background while the previous test ran; the next ones are made now, also in the background.
   */
  async push(name) {
    const layer = await (this.spare ?? prepareLayer(this.runDir));
    this.spare = prepareLayer(this.runDir);
    this.spare.catch(() => {}); // reported when awaited
    layer.name = name;
    const root = this.options.root;
    try {
      // volatile: a branch is thrown away or copied out before it could matter that the kernel
      // skipped syncing it; syncing the whole upper filesystem at every unmount costs milliseconds.
      this.helper.mountOverlay({
        target: root,
        lowers: [root],
        upper: layer.upper,
        work: layer.work,
        options: ['volatile'],
      });
    } catch (err) {
      await removeLayer(layer.dir);
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
    const active = this.layers.filter((l) => l !== this.idle);
    const top = active[active.length - 1];
    return { view: this.options.root, tmpdir: top ? top.tmpdir : null };
  }

  /** Keeps a failed branch if asked to; otherwise removes it in the background. */
  finish(layer, passed) {
    if (this.options.keep === 'on-failure' && !passed) {
      writeFileSync(join(layer.dir, 'KEPT'), `kept by keep: 'on-failure': ${layer.name}\n`);
      // Only the changes are worth keeping; overlayfs's work dir (mode-000 inside) would only get in
      // the way of a plain `rm -rf` later.
      unlockTree(layer.work);
      rmSync(layer.work, { recursive: true, force: true });
      this.kept.push(layer.upper);
    } else this.removals.push(removeLayer(layer.dir));
  }

  /** Waits for background work: removals, and the spare layer nobody will use now. */
  async settle() {
    const spare = this.spare;
    this.spare = null;
    if (spare) this.removals.push(spare.then((layer) => removeLayer(layer.dir)));
    const removals = this.removals.splice(0);
    await Promise.all(removals);
  }
}

function isEmptyDir(dir) {
  const handle = opendirSync(dir);
  try {
    return handle.readSync() === null;
  } finally {
    handle.closeSync();
  }
}

function clearDir(dir) {
  if (isEmptyDir(dir)) return;
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { mode: 0o700 });
}

let layerCounter = 0;

/** A fresh upper, work and TMPDIR under the run dir (on a real filesystem, as overlayfs needs). */
async function prepareLayer(runDir) {
  // Every sandboxed worker is pid 2 of its own PID namespace: the pid alone would collide.
  const dir = join(runDir, `${process.env.JEST_WORKER_ID ?? 0}-${randomBytes(4).toString('hex')}-${++layerCounter}`);
  const layer = { dir, upper: join(dir, 'upper'), work: join(dir, 'work'), tmpdir: join(dir, 'tmp'), name: '' };
  await fs.mkdir(dir, { mode: 0o700 });
  await Promise.all([layer.upper, layer.work, layer.tmpdir].map((d) => fs.mkdir(d, { mode: 0o700 })));
  return layer;
}

/** rm -rf of a layer directory; the (tiny) work dir is unlocked synchronously first. */
async function removeLayer(dir) {
  unlockTree(join(dir, 'work'));
  await fs.rm(dir, { recursive: true, force: true });
}

module.exports = { SandboxStrategy, sandboxContext };
