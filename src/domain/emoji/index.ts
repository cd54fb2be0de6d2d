export * from './fallback';
export * from './imageType';
export * from './selection';
export * from './switch';
