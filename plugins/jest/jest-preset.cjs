'use strict';
// For resolvers that ignore package.json "exports" (Jest 27 and older, which the runner then refuses
// by name): the built preset.
module.exports = require('./dist/preset.cjs').default;
