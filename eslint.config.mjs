// ESLint flat config: typescript-eslint with type information, import cycles, and a fence that keeps
// Node built-ins and client libraries out of workflow code (it runs in Temporal's deterministic sandbox).
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import importX from 'eslint-plugin-import-x';
import prettier from 'eslint-config-prettier';

export default tseslint.config(
  {
    ignores: [
      'node_modules/',
      'dist/',
      'coverage/',
      'bench/results/',
      '.labline/',
      'runs/',
      '**/*.js',
      '**/*.mjs',
    ],
  },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    plugins: { 'import-x': importX },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/consistent-type-imports': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'import-x/no-cycle': 'error',
      // Activities and handlers are async by contract (Temporal awaits them) even when their body is not.
      '@typescript-eslint/require-await': 'off',
    },
  },
  {
    // The dev server handles Temporal's wire messages as protobuf JSON-form objects (`Pb`): their schema is
    // the proto, checked when protobufjs decodes them; restating it in TypeScript would duplicate the protos.
    files: ['src/devserver/**/*.ts'],
    rules: {
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-unsafe-enum-comparison': 'off',
    },
  },
  {
    files: ['src/workflows/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            { regex: '^node:', message: 'Workflows run in a deterministic sandbox: no Node built-ins.' },
            {
              regex: '^(fs|path|child_process|http|https|net|os|crypto)$',
              message: 'Workflows run in a deterministic sandbox: no Node built-ins.',
            },
            {
              regex: '^(undici|openai|@slack/.*|@temporalio/client|@temporalio/worker)$',
              message: 'Workflows never call clients; do it in an activity.',
            },
            {
              regex: '\\.\\./activities(/.*)?$',
              message: 'Import activities as types only.',
              allowTypeImports: true,
            },
          ],
        },
      ],
    },
  },
  {
    files: ['tests/**/*.ts', 'bench/**/*.ts'],
    rules: {
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
      '@typescript-eslint/no-non-null-assertion': 'off',
    },
  },
  prettier,
);
