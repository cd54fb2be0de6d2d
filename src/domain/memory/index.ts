/** The pure memory core: what the memory worker calls (see each module for the rules). */
export * from './extraction';
export * from './ids';
export * from './llmExtraction';
export * from './ranking';
export * from './searchTerms';
export * from './statements';
export * from './summary';
export * from './text';
export * from './trigger';
