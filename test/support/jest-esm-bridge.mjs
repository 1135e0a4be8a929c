// Jest on Node < 24.9 cannot require() an ES module, and @nestjs/throttler is CommonJS that requires
// the ESM-only @nestjs/common and @nestjs/core. This setup file imports them through jest's own ESM
// loader (the same instances the app gets), and jest-require-esm-transform.mjs rewrites the
// throttler's require() calls to read them from here. Node itself needs none of this (20.19+ has
// require(esm)).
globalThis.__jestEsmBridge = {
  '@nestjs/common': await import('@nestjs/common'),
  '@nestjs/core': await import('@nestjs/core'),
};
