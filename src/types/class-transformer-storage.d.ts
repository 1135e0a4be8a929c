// class-transformer ships the declaration of its metadata storage apart from the module (types/ vs cjs/).
declare module 'class-transformer/cjs/storage.js' {
  export { defaultMetadataStorage } from 'class-transformer/types/storage.js';
}
