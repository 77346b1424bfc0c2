// preset: 'jest-environment-branching' sets both halves: the environment, and the runner whose
// workers are born in the sandbox. A project's own testEnvironment wins over the preset's, and the
// runner then extends that environment instead.
import { join } from 'node:path';

export default {
  testEnvironment: join(__dirname, 'index.cjs'),
  runner: join(__dirname, 'runner.cjs'),
};
