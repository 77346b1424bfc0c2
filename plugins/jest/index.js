'use strict';
// testEnvironment: 'branching' (or 'jest-environment-branching').
const { BranchingEnvironment } = require('./src/environment.js');

module.exports = BranchingEnvironment;
module.exports.TestEnvironment = BranchingEnvironment;
