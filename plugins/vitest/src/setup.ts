// The setup file (first in setupFiles). Vitest always runs setup files through Vite's transform,
// and a DOM environment (jsdom, happy-dom) transforms them for the browser, where Node's built-ins
// and import.meta.url mean something else. So this stays tiny: it hands Vitest's hook functions to
// hooks.js, which the plugin makes Vite load natively (server.deps.external, BRANCHING_VITEST_HOOKS).
import { afterAll, afterEach, beforeEach } from 'vitest';

const hooks = process.env.BRANCHING_VITEST_HOOKS ?? './hooks.js';
const { installHooks } = (await import(/* @vite-ignore */ hooks)) as typeof import('./hooks.ts');
await installHooks({ afterAll, afterEach, beforeEach });
