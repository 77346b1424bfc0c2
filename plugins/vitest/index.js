// Placeholder until the Vitest plugin issue lands: refuses loudly rather than pretending to isolate.
export default {
  name: 'branching',
  viteEnvironment: 'ssr',
  setup() {
    throw new Error('vitest-environment-branching: not implemented yet');
  },
};
