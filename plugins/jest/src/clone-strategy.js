// The fallback: a per-file branch made by the portable clone backend (a copy of the project under
// the state directory), with per-test branches nested in it. The test runs with its cwd and TMPDIR
// inside the copy, so relative and temp-dir writes are isolated; the test file itself is still
// loaded from the real tree, so writes to absolute paths (including __dirname) are not.
const { mkdirSync, rmSync } = require('node:fs');
const { join } = require('node:path');
const { Workspace } = require('branching');
const { notice } = require('./notice.js');

class CloneStrategy {
  constructor(options) {
    this.options = options;
    this.kind = 'clone';
    this.workspace = null;
    this.file = null;
    this.test = null;
    this.kept = [];
  }

  /** Where the project is visible to the test (its cwd base), and a private temp dir. */
  async enterFile(name) {
    this.workspace = new Workspace(this.options.root, { backend: 'clone', onNotice: (m) => notice(m) });
    this.file = await this.workspace.branch(name, { onSuccess: null, onError: null });
    this.tmpBase = join(this.workspace.stateDir, 'jest-tmp', `${process.pid}-${name}`);
    return { view: this.file.path, tmpdir: this.makeTmp('file') };
  }

  async enterTest(name) {
    this.test = await this.file.branch(name, { onSuccess: null, onError: null });
    this.testTmp = this.makeTmp(name);
    return { view: this.test.path, tmpdir: this.testTmp };
  }

  /** Back to the file's branch; the test's branch is committed, kept or aborted. */
  async leaveTest(passed) {
    const test = this.test;
    this.test = null;
    if (this.options.commit && passed) await test.commit();
    else if (this.options.keep === 'on-failure' && !passed) this.kept.push(test.path);
    else await test.abort();
    if (!this.kept.includes(test.path)) rmSync(this.testTmp, { recursive: true, force: true });
    return { view: this.file.path, tmpdir: join(this.tmpBase, 'file') };
  }

  /** Nothing is left mounted between tests here. */
  async releaseIdle() {
    return null;
  }

  async leaveFile(passed) {
    const file = this.file;
    this.file = null;
    try {
      if (this.options.commit && passed) await file.commit();
      else if (this.options.keep === 'on-failure' && !passed) {
        this.kept.push(file.path);
        return this.kept; // the branches stay open until this worker exits; `branching gc` reclaims them
      } else await file.abort();
      rmSync(this.tmpBase, { recursive: true, force: true });
      await this.workspace.close();
    } catch (err) {
      await file.abort().catch(() => {});
      throw err;
    }
    return this.kept;
  }

  makeTmp(name) {
    const dir = join(this.tmpBase, name);
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    return dir;
  }
}

module.exports = { CloneStrategy };
