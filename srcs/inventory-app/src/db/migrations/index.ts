import type { Migration } from '@crud-master/common';
import { createMovies } from './20261123000000_create_movies';
import { moviesTitleTrigram } from './20261124000000_movies_title_trigram';
import { moviesVersion } from './20261124000100_movies_version';
import { moviesCountChangesDefiner } from './20261204120000_movies_count_changes_definer';

/** Every migration, oldest first. Append new ones; never edit one that has shipped. */
export const migrations: readonly Migration[] = [createMovies, moviesTitleTrigram, moviesVersion, moviesCountChangesDefiner];
