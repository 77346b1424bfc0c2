'use strict';
// preset: 'jest-environment-branching' sets both halves: the environment, and the runner whose
// workers are born in the sandbox.
module.exports = {
  testEnvironment: require.resolve('./index.js'),
  runner: require.resolve('./runner.js'),
};
