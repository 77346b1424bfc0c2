'use strict';
// Placeholder until the Jest plugin issue lands: refuses loudly rather than pretending to isolate.
throw new Error('jest-environment-branching: not implemented yet');
