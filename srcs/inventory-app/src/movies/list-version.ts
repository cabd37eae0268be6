import type { Knex } from '@crud-master/common';

/**
 * The list validator: `<epoch>.<version>` of the movies table, kept by triggers in the one row of
 * `movies_version` (see the movies_version migration).
 */
export const LIST_VERSION_SQL = 'SELECT epoch, version FROM movies_version';

export interface VersionRow {
  epoch: string;
  version: string;
}

/** The validator of a `movies_version` row; a missing row means the migrations did not run. */
export function listVersionOf(row: VersionRow | undefined): string {
  if (!row) throw new Error('movies_version is empty: migrations did not run');
  return `${row.epoch}.${row.version}`;
}

/** The current list validator, from one row. */
export async function readListVersion(db: Knex): Promise<string> {
  const { rows } = await db.raw<{ rows: VersionRow[] }>(LIST_VERSION_SQL);
  return listVersionOf(rows[0]);
}
