// Jest transform for CommonJS packages that require() ESM-only Nest packages: the require() becomes a
// read of the module jest-esm-bridge.mjs imported. See that file for why.
import { createHash } from 'node:crypto';

const BRIDGED = /require\("(@nestjs\/common|@nestjs\/core)"\)/g;
const VERSION = '1';

export default {
  process(source) {
    return { code: source.replace(BRIDGED, (_match, name) => `globalThis.__jestEsmBridge[${JSON.stringify(name)}]`) };
  },
  getCacheKey(source, filename) {
    return createHash('sha256').update(VERSION).update('\0').update(filename).update('\0').update(source).digest('hex');
  },
};
