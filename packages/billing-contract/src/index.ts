export * from './amqp';
export * from './order-schema';
export * from './topology';
export * from './amqp-env';
export * from './amqp-session';
export * from './broker-nodes';
export * from './queue-type';
