// The fallback: a per-file branch made by the portable clone backend (a copy of the project under
// the state directory), with per-test branches nested in it. The test runs with its cwd and TMPDIR
// inside the copy, so relative and temp-dir writes are isolated; the test file itself is still
// loaded from the real tree, so writes to absolute paths (including __dirname) are not.
const { lstatSync, mkdirSync, readdirSync, rmSync } = require('node:fs');
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
    /** A test branch its test left untouched (and its fingerprint), ready for the next test. */
    this.idle = null;
  }

  /** Where the project is visible to the test (its cwd base), and a private temp dir. */
  async enterFile(name) {
    this.workspace = new Workspace(this.options.root, { backend: 'clone', onNotice: (m) => notice(m) });
    this.file = await this.workspace.branch(name, { onSuccess: null, onError: null });
    this.tmpBase = join(this.workspace.stateDir, 'jest-tmp', `${process.pid}-${name}`);
    return { view: this.file.path, tmpdir: this.makeTmp('file') };
  }

  async enterTest(name) {
    if (this.idle) {
      ({ branch: this.test, fingerprint: this.fingerprint, tmpdir: this.testTmp } = this.idle);
      this.idle = null;
    } else {
      this.test = await this.file.branch(name, { onSuccess: null, onError: null });
      this.fingerprint = fingerprintTree(this.test.path);
      this.testTmp = this.makeTmp(name);
    }
    return { view: this.test.path, tmpdir: this.testTmp };
  }

  /** Back to the file's branch; the test's branch is committed, kept or aborted. */
  async leaveTest(passed) {
    const test = this.test;
    this.test = null;
    if (!(this.options.keep === 'on-failure' && !passed) && fingerprintTree(test.path) === this.fingerprint) {
      // The test changed nothing in its copy, which therefore still equals the file's branch: the
      // next test reuses it instead of paying for a new copy.
      rmSync(this.testTmp, { recursive: true, force: true });
      mkdirSync(this.testTmp, { mode: 0o700 });
      this.idle = { branch: test, fingerprint: this.fingerprint, tmpdir: this.testTmp };
      return { view: this.file.path, tmpdir: join(this.tmpBase, 'file') };
    }
    if (this.options.commit && passed) await test.commit();
    else if (this.options.keep === 'on-failure' && !passed) this.kept.push(test.path);
    else await test.abort();
    if (!this.kept.includes(test.path)) rmSync(this.testTmp, { recursive: true, force: true });
    return { view: this.file.path, tmpdir: join(this.tmpBase, 'file') };
  }

  /** Drops the idle test branch once the file's tests are done. */
  async releaseIdle() {
    const idle = this.idle;
    this.idle = null;
    if (idle) await idle.branch.abort();
    return null;
  }

  async leaveFile(passed) {
    await this.releaseIdle();
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

/**
 * What a tree looks like, as a string: every entry's path, inode, mode, size, mtime and ctime. A
 * write changes mtime (copies keep their source's), a chmod or rename changes ctime, and new or
 * deleted entries change the listing.
 */
function fingerprintTree(root) {
  const parts = [];
  const walk = (dir, rel) => {
    for (const name of readdirSync(dir).sort()) {
      const path = join(dir, name);
      const st = lstatSync(path, { bigint: true });
      parts.push(`${rel}${name}\0${st.ino}:${st.mode}:${st.size}:${st.mtimeNs}:${st.ctimeNs}`);
      if (st.isDirectory()) walk(path, `${rel}${name}/`);
    }
  };
  walk(root, '');
  return parts.join('\n');
}

module.exports = { CloneStrategy };
