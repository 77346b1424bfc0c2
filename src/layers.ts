// The layer engine alone, for test workers: a Vitest worker is a new process per test file, and
// there loading the whole library (patterns, suite tools, CLI helpers) cost more than the file's
// layers. Same sources as the package index; a process that loads both gets two copies, which
// share their error tags (registered symbols) and their shown notices (kept on globalThis).
export { HelperClient } from './backends/helper-client.ts';
export * from './base/errors.ts';
export { removeLayerDir, removeLayerDirSync } from './base/layer-dir.ts';
export {
  type KeptLayer,
  type LayerChange,
  type LayerChangeKind,
  type LayerCommitOptions,
  type LayerInfo,
  LayerStack,
  type LayerStackOptions,
} from './core/layer.ts';
