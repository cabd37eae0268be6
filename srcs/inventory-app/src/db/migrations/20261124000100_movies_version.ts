import type { Migration } from '@crud-master/common';

/**
 * A change counter and an exact row count for the movies table, kept by triggers.
 *
 * One row holds `version`, bumped by statement-level triggers on every INSERT, UPDATE, DELETE,
 * TRUNCATE and COPY into `movies`; `row_count`, kept exact from the statements' transition tables;
 * and `epoch`, random per database, so that a recreated database never hands out an old ETag for
 * different rows.
 *
 * Read in the same snapshot as the rows it describes (one statement, or one REPEATABLE READ
 * transaction), `"<epoch>.<version>"` validates every list representation: it changes whenever
 * any list could have changed, and checking it costs one row read instead of re-reading or
 * hashing a million movies. `row_count` answers the unfiltered total (X-Total-Count) without
 * counting a million rows.
 *
 * Writers update the one row, so concurrent writes to `movies` queue on its row lock until they
 * commit; the inventory is read-mostly, and reads never take the lock.
 */
export const moviesVersion: Migration = {
  name: '20261124000100_movies_version',
  async up(db) {
    await db.raw(`
      CREATE TABLE movies_version (
        singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
        epoch text NOT NULL DEFAULT substr(md5(gen_random_uuid()::text), 1, 12),
        version bigint NOT NULL DEFAULT 1,
        row_count bigint NOT NULL DEFAULT 0
      )`);
    // Lock out writers between counting the existing rows and installing the triggers.
    await db.raw('LOCK TABLE movies IN SHARE MODE');
    await db.raw('INSERT INTO movies_version (row_count) SELECT count(*) FROM movies');
    // Statistics now, so the planner knows it is one row before autovacuum ever looks.
    await db.raw('ANALYZE movies_version');
    await db.raw(`
      CREATE FUNCTION movies_count_changes() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        IF TG_OP = 'INSERT' THEN
          UPDATE movies_version SET version = version + 1, row_count = row_count + (SELECT count(*) FROM added_rows);
        ELSIF TG_OP = 'DELETE' THEN
          UPDATE movies_version SET version = version + 1, row_count = row_count - (SELECT count(*) FROM removed_rows);
        ELSIF TG_OP = 'TRUNCATE' THEN
          UPDATE movies_version SET version = version + 1, row_count = 0;
        ELSE
          UPDATE movies_version SET version = version + 1;
        END IF;
        RETURN NULL;
      END
      $$`);
    // A trigger with transition tables handles one event, hence four triggers.
    await db.raw(`
      CREATE TRIGGER movies_count_inserts AFTER INSERT ON movies REFERENCING NEW TABLE AS added_rows
        FOR EACH STATEMENT EXECUTE FUNCTION movies_count_changes()`);
    await db.raw(`
      CREATE TRIGGER movies_count_deletes AFTER DELETE ON movies REFERENCING OLD TABLE AS removed_rows
        FOR EACH STATEMENT EXECUTE FUNCTION movies_count_changes()`);
    await db.raw(`CREATE TRIGGER movies_count_updates AFTER UPDATE ON movies FOR EACH STATEMENT EXECUTE FUNCTION movies_count_changes()`);
    await db.raw(`CREATE TRIGGER movies_count_truncates AFTER TRUNCATE ON movies FOR EACH STATEMENT EXECUTE FUNCTION movies_count_changes()`);
  },
  async down(db) {
    for (const trigger of ['movies_count_inserts', 'movies_count_deletes', 'movies_count_updates', 'movies_count_truncates']) {
      await db.raw('DROP TRIGGER IF EXISTS ?? ON movies', [trigger]);
    }
    await db.raw('DROP FUNCTION IF EXISTS movies_count_changes()');
    await db.raw('DROP TABLE IF EXISTS movies_version');
  },
};
