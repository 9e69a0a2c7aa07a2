-- sql/common/001_schema_guide.sql — what both stores share at schema
-- version 1: the table of descriptions (seed 000 §6.1: SQLite has no
-- COMMENT) and the view v_ai_schema_guide (seed 000 §6.2). store.c applies
-- sql/common/NNN_*.sql before the store's own NNN file, in the same
-- transaction; each store's file describes its own tables.

CREATE TABLE Schema_Descriptions (
  table_name  TEXT NOT NULL,
  column_name TEXT NOT NULL DEFAULT '',        -- '' describes the table itself
  description TEXT NOT NULL CHECK (description <> ''),
  PRIMARY KEY (table_name, column_name)
);

-- ---------------------------------------------------------------------------
-- v_ai_schema_guide (seed 000 §6.2): one row per table (column_name '',
-- data_type 'TABLE') then one per column, in declaration order. Uses the
-- pragma table-valued functions, so it needs trusted_schema=ON (the default).
-- ---------------------------------------------------------------------------

CREATE VIEW v_ai_schema_guide AS
SELECT table_name, column_name, data_type, is_primary_key, foreign_key_target,
       description
FROM (
  SELECT m.name AS table_name, '' AS column_name, 'TABLE' AS data_type,
         0 AS is_primary_key, NULL AS foreign_key_target,
         d.description AS description, -1 AS cid
  FROM sqlite_schema AS m
  LEFT JOIN Schema_Descriptions AS d
         ON d.table_name = m.name AND d.column_name = ''
  WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite\_%' ESCAPE '\'
  UNION ALL
  SELECT m.name, c.name, c.type, c.pk > 0,
         (SELECT group_concat(f."table" || '.' || f."to", ', ')
            FROM pragma_foreign_key_list(m.name) AS f
           WHERE f."from" = c.name),
         d.description, c.cid
  FROM sqlite_schema AS m
  JOIN pragma_table_info(m.name) AS c
  LEFT JOIN Schema_Descriptions AS d
         ON d.table_name = m.name AND d.column_name = c.name
  WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite\_%' ESCAPE '\'
)
ORDER BY table_name, cid;

INSERT INTO Schema_Descriptions (table_name, column_name, description) VALUES
('Schema_Descriptions', '', 'Extension: the description of every table and column of this store (SQLite has no COMMENT; seed 000 §6.1). Read it through the view v_ai_schema_guide.'),
('Schema_Descriptions', 'table_name', 'Name of the described table, exactly as in sqlite_schema.'),
('Schema_Descriptions', 'column_name', 'Name of the described column, or the empty string for the table itself.'),
('Schema_Descriptions', 'description', 'Human- and AI-readable explanation of the table or column. Never empty.');
