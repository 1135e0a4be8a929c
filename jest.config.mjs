/**
 * Jest runs the TypeScript sources as native ES modules (NestJS 12 is ESM-only): ts-jest transpiles,
 * `tsc --noEmit` in `npm run lint` type-checks. Run through scripts/jest.mjs, which picks the database.
 */
export default {
  testEnvironment: 'node',
  rootDir: '.',
  testMatch: ['<rootDir>/src/**/*.spec.ts', '<rootDir>/test/**/*.e2e-spec.ts'],
  extensionsToTreatAsEsm: ['.ts'],
  moduleNameMapper: { '^(\\.{1,2}/.*)\\.js$': '$1' },
  transform: {
    '^.+\\.ts$': ['ts-jest', { useESM: true, tsconfig: 'tsconfig.jest.json', diagnostics: false }],
    // @fastify/static (Swagger UI's assets) require()s the ESM-only content-disposition 3. Node
    // 20.19 can require ESM, jest's module runtime cannot (before Node 24.9): compile it to CJS.
    'node_modules/content-disposition/.+\\.js$': [
      'ts-jest',
      {
        useESM: false,
        tsconfig: {
          allowJs: true,
          module: 'commonjs',
          moduleResolution: 'node10',
          ignoreDeprecations: '6.0',
          isolatedModules: true,
        },
        diagnostics: false,
      },
    ],
    // @nestjs/throttler is CommonJS requiring the ESM-only @nestjs/common: see test/support/jest-esm-bridge.mjs.
    'node_modules/@nestjs/throttler/.+\\.js$': '<rootDir>/test/support/jest-require-esm-transform.mjs',
  },
  transformIgnorePatterns: ['/node_modules/(?!content-disposition/|@nestjs/throttler/)'],
  setupFilesAfterEnv: ['<rootDir>/test/support/jest-esm-bridge.mjs'],
  globalSetup: '<rootDir>/test/global-setup.mjs',
  testTimeout: 120_000,
  maxWorkers: 2,
};
