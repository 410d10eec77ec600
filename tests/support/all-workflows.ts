// Every workflow the test suite runs, bundled once by global-setup.ts.
export * from '../devserver/workflows';
export * from '../../src/workflows';
