import type { Migration } from '@crud-master/common';
import { createOrders } from './20261123000100_create_orders';
import { createOrderConflicts } from './20261204000000_create_order_conflicts';

/** Every migration, oldest first. Append new ones; never edit one that has shipped. */
export const migrations: readonly Migration[] = [createOrders, createOrderConflicts];
