// The Jest environment: every test file in its own branch of the project, every test in a branch
// nested in the file's. Strategy: the sandbox (overlay at the project path, in a worker started by
// this package's runner) when available, else the portable clone fallback, which says what it
// does not isolate.
const { isAbsolute, relative, sep } = require('node:path');
const { requireJestModule } = require('./jest-modules.js');
const { parseOptions } = require('./options.js');
const { CloneStrategy } = require('./clone-strategy.js');
const { SandboxStrategy, sandboxContext } = require('./sandbox-strategy.js');
const { notice } = require('./notice.js');
const { snapshotPathsFor } = require('./snapshots.js');

const { TestEnvironment: NodeEnvironment } = requireJestModule('jest-environment-node', 'jest-config');

let branchCounter = 0;

/** A branch name from a label: no '/', no '..', short, unique in this process. */
function branchName(label) {
  const slug = label
    .replace(/[^A-Za-z0-9_.-]+/g, '_')
    .replace(/\.\.+/g, '_')
    .slice(0, 60);
  return `${process.pid}-${++branchCounter}-${slug || 'x'}`;
}

function fallbackNotice(root, reason) {
  return (
    `jest-environment-branching: fallback mode for ${root} (${reason}). Each test file runs in a ` +
    'copy of the project (and each test in a copy nested in it) with its cwd and TMPDIR pointed ' +
    'there, so writes to relative paths and to os.tmpdir() are isolated and rolled back. NOT isolated: ' +
    'writes to absolute paths inside the project, including paths built from __dirname (the test ' +
    'file is loaded from the real tree). For full isolation use `preset: "jest-environment-branching"` ' +
    '(its runner starts Jest workers in a Linux sandbox).'
  );
}

function sandboxUnavailableReason() {
  if (process.env.BRANCHING_JEST_SANDBOX) return 'the sandbox worker has no mount helper';
  if (process.env.BRANCHING_JEST_FALLBACK_REASON) return process.env.BRANCHING_JEST_FALLBACK_REASON;
  return 'Jest is not using the runner jest-environment-branching/runner, so this process has no sandbox';
}

class BranchingEnvironment extends NodeEnvironment {
  constructor(config, context) {
    super(config, context);
    const projectConfig = config.projectConfig ?? config;
    this.branchingConfig = projectConfig;
    this.updateSnapshot = config.globalConfig?.updateSnapshot ?? 'new';
    this.testPath = context.testPath;
    this.options = parseOptions(projectConfig.testEnvironmentOptions?.branching, projectConfig.rootDir);
    const sandbox = sandboxContext();
    if (sandbox) {
      if (!this.options.network && sandbox.network !== false) {
        throw new Error(
          'jest-environment-branching: network: false was asked for in a docblock, but this worker has a network; set testEnvironmentOptions.branching.network = false in the Jest config so that the runner starts workers without one',
        );
      }
      this.strategy = new SandboxStrategy(this.options, sandbox);
    } else {
      if (!this.options.network) {
        throw new Error(
          `jest-environment-branching: network: false needs the sandbox runner (runner: "jest-environment-branching/runner"), which is unavailable here: ${sandboxUnavailableReason()}`,
        );
      }
      this.strategy = new CloneStrategy(this.options);
      notice(fallbackNotice(this.options.root, sandboxUnavailableReason()));
    }
    this.failures = 0;
    this.testOpen = false;
  }

  async setup() {
    await super.setup();
    this.saved = { cwd: process.cwd(), tmpdir: process.env.TMPDIR };
    const label = relative(this.options.root, this.testPath) || this.testPath;
    this.enter(await this.strategy.enterFile(branchName(label)));
  }

  async handleTestEvent(event, state) {
    if (event.name === 'test_started' && this.options.perTest && !event.test.concurrent) {
      if (this.testOpen) await this.leaveTest(false);
      this.enter(await this.strategy.enterTest(branchName(event.test.name)));
      this.testOpen = true;
    } else if (event.name === 'test_done') {
      const passed = event.test.errors.length === 0;
      if (!passed) this.failures++;
      if (this.testOpen) await this.leaveTest(passed);
    } else if (event.name === 'run_finish') {
      this.failures += state.unhandledErrors?.length ?? 0;
      // Jest writes the snapshot file after this event: it must land in the file's branch.
      const view = await this.strategy.releaseIdle();
      if (view) this.enter(view);
    }
  }

  async leaveTest(passed) {
    this.testOpen = false;
    this.enter(await this.strategy.leaveTest(passed));
  }

  async teardown() {
    try {
      if (this.testOpen) await this.leaveTest(false);
      const passed = this.failures === 0;
      const snapshotPaths =
        this.strategy.kind === 'sandbox'
          ? await snapshotPathsFor(this.branchingConfig, this.testPath, this.options.root, {
              updateSnapshot: this.updateSnapshot,
            })
          : [];
      const kept = await this.strategy.leaveFile(passed, { snapshotPaths });
      if (kept.length > 0) {
        notice(`jest-environment-branching: kept for inspection (keep: 'on-failure'): ${kept.join(', ')}`, {
          everyWorker: true,
        });
      }
    } finally {
      this.restore();
      await super.teardown();
    }
  }

  /** Points cwd and TMPDIR of this process and of the test's `process` at the branch. */
  enter({ view, tmpdir }) {
    const cwd = this.cwdIn(view);
    // The same path may now name another mount: chdir re-resolves it. The test's own `process`
    // object has a cached cwd (jest#9923), hence the second call.
    process.chdir(cwd);
    this.global.process.chdir?.(cwd);
    if (tmpdir) this.setEnv('TMPDIR', tmpdir);
  }

  cwdIn(view) {
    const rel = relative(this.options.root, this.saved.cwd);
    if (rel === '') return view;
    if (rel.startsWith(`..${sep}`) || rel === '..' || isAbsolute(rel)) {
      if (this.strategy.kind === 'clone') {
        notice(
          `jest-environment-branching: the cwd ${this.saved.cwd} is outside the branched root ${this.options.root}, so in fallback mode writes to relative paths are NOT isolated either; run Jest from inside the root or set testEnvironmentOptions.branching.root`,
        );
      }
      return this.saved.cwd;
    }
    return `${view}${sep}${rel}`;
  }

  setEnv(name, value) {
    if (value === undefined) {
      delete process.env[name];
      if (this.global.process?.env) delete this.global.process.env[name];
    } else {
      process.env[name] = value;
      if (this.global.process?.env) this.global.process.env[name] = value;
    }
  }

  restore() {
    if (!this.saved) return;
    process.chdir(this.saved.cwd);
    this.global.process?.chdir?.(this.saved.cwd);
    this.setEnv('TMPDIR', this.saved.tmpdir);
  }
}

module.exports = { BranchingEnvironment, branchName };
