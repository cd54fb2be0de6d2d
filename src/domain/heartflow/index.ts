/** The pure heartflow core: what the heartflow worker calls (see each module for the rules). */
export * from './actions';
export * from './coalesce';
export * from './config';
export * from './emotion';
export * from './interest';
export * from './mention';
export * from './planner';
export * from './prompt';
export * from './willingness';
