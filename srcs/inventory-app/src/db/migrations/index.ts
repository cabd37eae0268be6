import type { Migration } from '@crud-master/common';
import { createMovies } from './20261123000000_create_movies';

/** Every migration, oldest first. Append new ones; never edit one that has shipped. */
export const migrations: readonly Migration[] = [createMovies];
