/** Jest runs the TypeScript sources through ts-jest without type-checking (`npm run typecheck` does that once). */
/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/tests'],
  testMatch: ['**/*.test.ts'],
  transform: {
    '^.+\\.ts$': ['ts-jest', { diagnostics: false }],
    // Octokit ships ES modules only; Jest's module system (before Node 24.9) cannot require them.
    '^.+\\.js$': ['ts-jest', { diagnostics: false, tsconfig: { allowJs: true, module: 'commonjs' } }],
  },
  transformIgnorePatterns: [
    '/node_modules/(?!(@octokit|universal-user-agent|before-after-hook|json-with-bigint|content-type)/)',
  ],
  globalSetup: '<rootDir>/tests/support/global-setup.ts',
  globalTeardown: '<rootDir>/tests/support/global-teardown.ts',
  testTimeout: 60_000,
  // The suite drives real servers and worker processes; two files at a time fits a 2-core machine.
  maxWorkers: 2,
};
