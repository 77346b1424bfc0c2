'use strict';
// runner: 'jest-environment-branching/runner'
module.exports = require('./src/runner.js');
