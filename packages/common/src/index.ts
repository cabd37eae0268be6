export * from './errors';
export * from './error-middleware';
export * from './json-body';
export * from './logger';
export * from './config';
export * from './database';
export * from './health';
export * from './http-server';
