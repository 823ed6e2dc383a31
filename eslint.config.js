// @ts-check
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import { readFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { join } from 'node:path';

// Whatever git ignores (local data, scratch folders, build output) is not linted either.
// Gitignore semantics, simply: a pattern with no inner slash matches at any depth.
const gitignored = readFileSync(join(import.meta.dirname, '.gitignore'), 'utf8')
  .split('\n')
  .map((line) => line.trim())
  .filter((line) => line && !line.startsWith('#') && !line.startsWith('!'))
  .map((p) => (p.replace(/\/$/, '').includes('/') ? p.replace(/^\//, '') : `**/${p}`))
  .map((p) => (p.endsWith('/') ? `${p}**` : p));

// Workflow code is replayed by Temporal and must stay deterministic, so it may not reach
// Node APIs (I/O, clocks, randomness) or activity implementations. The workflow bundler
// catches only some of these, and only when a worker starts; lint names them at once.
const nodeBuiltins = builtinModules.filter((m) => !m.startsWith('_'));

export default tseslint.config(
  { ignores: [...gitignored, 'db/migrations/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      // An un-awaited promise in a workflow, handler or test hides failures.
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
    },
  },
  {
    files: ['workflows/**'],
    rules: {
      '@typescript-eslint/no-restricted-imports': [
        'error',
        {
          paths: nodeBuiltins.map((name) => ({ name, message: 'Workflows must be deterministic: no Node built-ins.' })),
          patterns: [
            { group: ['node:*'], message: 'Workflows must be deterministic: no Node built-ins.' },
            {
              group: ['**/activities', '**/activities/*', '**/activities/**'],
              allowTypeImports: true,
              message: 'Workflows call activities through proxyActivities; import their types only (import type).',
            },
          ],
        },
      ],
    },
  },
  // Data flows one way (DESIGN.md): db/ imports nothing above it; api/, cli/ and services/
  // import nothing from worker/ (process wiring), except that the CLI starts the processes.
  {
    files: ['db/**'],
    rules: {
      '@typescript-eslint/no-restricted-imports': ['error', { patterns: [{ group: ['../services/**', '../activities/**', '../worker/**', '../api/**', '../workflows/**', '../cli/**'], message: 'db/ imports nothing above it.' }] }],
    },
  },
  {
    files: ['api/**', 'services/**', 'activities/**'],
    rules: {
      '@typescript-eslint/no-restricted-imports': ['error', { patterns: [{ group: ['**/worker/**', '**/cli/**'], message: 'Shared use cases live in services/; worker/ is process wiring only.' }] }],
    },
  },
  {
    files: ['cli/**'],
    rules: {
      '@typescript-eslint/no-restricted-imports': [
        'error',
        { patterns: [{ group: ['**/worker/**', '!**/worker/runtime.js'], message: 'The CLI reaches worker/ only to start the processes (worker/runtime.js).' }] },
      ],
    },
  },
  {
    // Config files in plain JS are outside tsconfig, so lint them without type information.
    files: ['**/*.js', '**/*.mjs', '**/*.cjs'],
    ...tseslint.configs.disableTypeChecked,
  },
);
