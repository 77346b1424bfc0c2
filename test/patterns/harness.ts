import * as fs from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect } from 'vitest';
import { Workspace } from '../../src/index.ts';
import { backendCases, skipUnless } from '../helpers/backends.ts';
import { snapshot, type TreeSpec, tempDir, writeTree } from '../helpers/tree.ts';

/** The project every pattern test branches. */
export const BASE: TreeSpec = {
  'README.md': '# project\n',
  'src/index.js': 'export const x = 1;\n',
  'bin/run.sh': { content: '#!/bin/sh\necho run\n', mode: 0o755 },
};

export interface Env {
  ws: Workspace;
  root: string;
  /** Asserts the workspace is byte-identical to BASE plus `changes`. */
  expectWorkspace(changes?: TreeSpec): Promise<void>;
}

/**
 * Runs `body` once per available backend, on real branches of a fresh
 * project. After each test, no branch directory may remain in the state dir.
 */
export function describeOnBackends(title: string, body: (env: Env) => void): void {
  for (const backend of backendCases()) {
    const skip = skipUnless(backend.available, `the ${backend.kind} backend`, backend.reason, backend.kind === 'clone');
    describe.skipIf(skip)(`${title} on ${backend.kind}`, () => {
      let tmp: ReturnType<typeof tempDir>;
      const env = {} as Env;
      beforeEach(async () => {
        tmp = tempDir('branching-patterns-');
        env.root = join(tmp.path, 'project');
        await fs.mkdir(env.root);
        await writeTree(env.root, BASE);
        env.ws = new Workspace(env.root, {
          backend: backend.kind,
          stateDir: join(tmp.path, 'state'),
          onNotice: () => {},
        });
        env.expectWorkspace = async (changes = {}) => {
          const expected = join(tmp.path, `expected-${Math.random().toString(36).slice(2)}`);
          await fs.mkdir(expected);
          await writeTree(expected, { ...BASE, ...changes });
          expect(await snapshot(env.root)).toEqual(await snapshot(expected));
          await fs.rm(expected, { recursive: true });
        };
      });
      afterEach(async () => {
        const left = await fs.readdir(join(env.ws.stateDir, 'branches')).catch(() => []);
        await env.ws.close();
        await tmp.cleanup();
        expect(left, 'branch directories left behind').toEqual([]);
      });
      body(env);
    });
  }
}

export interface Deferred<T = void> {
  promise: Promise<T>;
  resolve(value: T): void;
  reject(error: unknown): void;
}

export function deferred<T = void>(): Deferred<T> {
  let resolve!: (value: T) => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** Resolves once `count` parties have arrived. */
export function barrier(count: number): { arrive(): Promise<void>; reached: Promise<void> } {
  const done = deferred();
  let arrived = 0;
  return {
    arrive() {
      arrived++;
      if (arrived >= count) done.resolve();
      return done.promise;
    },
    reached: done.promise,
  };
}

/** Resolves when the signal aborts (a candidate that behaves: it stops when told). */
export function aborted(signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
}

/** Writes `files` into a branch directory. */
export async function put(dir: string, files: Record<string, string>): Promise<void> {
  for (const [rel, content] of Object.entries(files)) {
    await fs.mkdir(join(dir, rel, '..'), { recursive: true });
    await fs.writeFile(join(dir, rel), content);
  }
}
