/**
 * Collection names: what LangChain's `PGVector(collection_name=…)` stores (any string), so that a
 * collection of an adopted database, "Luật thuế" say, can be searched and written: 1-500 characters
 * with at least one that is not whitespace. The bound keeps a name within what the unique btree
 * index on `langchain_pg_collection.name` can hold (about 2,700 bytes; 500 characters are at most
 * 2,000 bytes of UTF-8). NUL and unpaired surrogates, which no stored name holds, are refused by
 * StorableText. Kept apart from the DTOs (no imports): the configuration checks DEFAULT_COLLECTION
 * with it too.
 */
export const COLLECTION_NAME = /^(?=[\s\S]*\S)[\s\S]{1,500}$/u;
export const COLLECTION_NAME_MESSAGE = '$property must be 1-500 characters, not all whitespace';
