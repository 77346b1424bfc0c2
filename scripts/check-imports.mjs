#!/usr/bin/env node
// The import graph of src/ and the plugins' sources: layers point one way and
// nothing forms a cycle. Run by `npm test` before the suites; exits 1 with
// every offending edge.
//
// Layers, highest first (an import may point to its own layer or lower):
//   cli, plugins > suite, patterns > process > sandbox > core > backends > base > addon
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const RANK = {
  cli: 8,
  plugins: 8,
  suite: 7,
  patterns: 7,
  process: 6,
  sandbox: 5,
  core: 4,
  backends: 3,
  base: 2,
  addon: 1,
};

/**
 * Type-only imports that point up, each with its reason. They are erased from the build, so they
 * load nothing; anything else pointing up is an error.
 */
const TYPE_EDGES_UP = new Map([
  ['src/core/branch.ts -> src/process/exec.ts', 'Branch declares exec/spawn, which the process layer installs on it'],
]);

function sourceFiles(dir) {
  const out = [];
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) out.push(...sourceFiles(path));
    else if (/\.(ts|mts)$/.test(name)) out.push(path);
  }
  return out;
}

function layerOf(file) {
  const rel = relative(root, file);
  if (rel.startsWith('plugins/')) return 'plugins';
  const top = relative(join(root, 'src'), file).split('/')[0];
  // binaries.ts finds the files the addon and the launcher are loaded from.
  if (top === 'addon.ts' || top === 'native.d.ts' || top === 'binaries.ts') return 'addon';
  if (top === 'index.ts' || top === 'layers.ts') return 'index';
  return top;
}

/** Relative imports of `file`: { target, typeOnly } (re-exports count as imports). */
function importsOf(file) {
  const text = readFileSync(file, 'utf8');
  const edges = [];
  const pattern = /^(?:import|export)\s+(type\s+)?(?:[^'"]*?\sfrom\s+)?['"](\.[^'"]+)['"]/gms;
  for (const m of text.matchAll(pattern)) edges.push({ target: resolve(dirname(file), m[2]), typeOnly: !!m[1] });
  for (const m of text.matchAll(/import\(\s*['"](\.[^'"]+)['"]\s*\)/g)) {
    edges.push({ target: resolve(dirname(file), m[1]), typeOnly: false });
  }
  return edges;
}

function layerErrors(graph) {
  const errors = [];
  for (const [file, edges] of graph) {
    const from = layerOf(file);
    for (const { target, typeOnly } of edges) {
      const to = layerOf(target);
      const key = `${relative(root, file)} -> ${relative(root, target)}`;
      if (from === 'plugins' && !relative(root, target).startsWith('plugins/')) {
        // Types may come from the sources' index (the package's own entry), so that a fresh build
        // does not depend on dist/; values come through the package name, or the core is bundled twice.
        if (!(typeOnly && to === 'index')) {
          errors.push(`${key}: a plugin imports the library's values through the package name, never a relative path`);
        }
      } else if (to === 'index' && from !== 'index') {
        errors.push(`${key}: only consumers import the package index`);
      } else if (from !== 'index' && RANK[to] > RANK[from] && !(typeOnly && TYPE_EDGES_UP.has(key))) {
        errors.push(`${key}: ${from} must not import the higher layer ${to}`);
      }
    }
  }
  return errors;
}

/** Every cycle of the graph, each reported once (Tarjan's strongly connected components). */
function cycles(graph) {
  let counter = 0;
  const index = new Map();
  const low = new Map();
  const stack = [];
  const onStack = new Set();
  const found = [];
  const visit = (v) => {
    index.set(v, counter);
    low.set(v, counter++);
    stack.push(v);
    onStack.add(v);
    for (const { target: w, typeOnly } of graph.get(v) ?? []) {
      if (!graph.has(w) || (typeOnly && TYPE_EDGES_UP.has(`${relative(root, v)} -> ${relative(root, w)}`))) continue;
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v), low.get(w)));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v), index.get(w)));
    }
    if (low.get(v) !== index.get(v)) return;
    const component = [];
    for (let w = stack.pop(); ; w = stack.pop()) {
      onStack.delete(w);
      component.push(relative(root, w));
      if (w === v) break;
    }
    if (component.length > 1) found.push(`import cycle: ${component.sort().join(', ')}`);
  };
  for (const v of graph.keys()) if (!index.has(v)) visit(v);
  return found;
}

const files = [
  ...sourceFiles(join(root, 'src')),
  ...sourceFiles(join(root, 'plugins', 'vitest', 'src')),
  ...sourceFiles(join(root, 'plugins', 'jest', 'src')),
];
const graph = new Map(files.map((f) => [f, importsOf(f)]));
const problems = [...layerErrors(graph), ...cycles(graph)];
for (const p of problems) console.error(`check-imports: ${p}`);
if (problems.length > 0) process.exit(1);
console.log(`check-imports: ${files.length} files, layers point one way, no cycles`);
