#!/usr/bin/env node
// The `labline` command runs the TypeScript sources through tsx, so it works right after `npm ci`
// without a build step.
'use strict';
require('tsx/cjs');
require('../src/client/cli.ts')
  .main(process.argv)
  .catch((error) => {
    console.error(error instanceof Error ? error.message : error);
    process.exitCode = 2;
  });
