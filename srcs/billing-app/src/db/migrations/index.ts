import type { Migration } from '@crud-master/common';
import { createOrders } from './20261123000100_create_orders';

/** Every migration, oldest first. Append new ones; never edit one that has shipped. */
export const migrations: readonly Migration[] = [createOrders];
