-- sql/meta/001_init.sql — meta-store schema, version 1 (Tier 1 of seed 000).
-- Owned by the schema contributor; embedded in libchameleon and applied by
-- store.c inside one transaction, which then sets PRAGMA user_version = 1.
-- Names are the seed's, exactly; every extension is described as such in
-- Schema_Descriptions. Representation rules are in docs/schema.md.

-- ---------------------------------------------------------------------------
-- Blueprints
-- ---------------------------------------------------------------------------

CREATE TABLE Template_Workflows (
  workflow_id    TEXT PRIMARY KEY NOT NULL CHECK (length(workflow_id) = 36),
  name           TEXT NOT NULL CHECK (name <> ''),
  description    TEXT NOT NULL DEFAULT '',
  ai_context     TEXT CHECK (ai_context IS NULL OR json_valid(ai_context)),
  version        INTEGER NOT NULL CHECK (version >= 1),
  schema_json    TEXT NOT NULL CHECK (json_valid(schema_json)),
  created_at     TEXT NOT NULL CONSTRAINT created_at_iso8601 CHECK (created_at GLOB
    '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]:[0-9][0-9]:[0-9][0-9].[0-9][0-9][0-9]Z'),
  -- extensions
  canonical_hash TEXT CHECK (canonical_hash IS NULL OR (length(canonical_hash) = 64
                   AND canonical_hash NOT GLOB '*[^0-9a-f]*')),
  source_text    TEXT,
  source_name    TEXT,
  UNIQUE (name, version)
);

CREATE TABLE Template_Roles (
  role_id           TEXT PRIMARY KEY NOT NULL CHECK (length(role_id) = 36),
  workflow_id       TEXT NOT NULL
                    REFERENCES Template_Workflows (workflow_id) ON DELETE CASCADE,
  name              TEXT NOT NULL CHECK (name <> ''),
  description       TEXT NOT NULL DEFAULT '',
  ai_context        TEXT CHECK (ai_context IS NULL OR json_valid(ai_context)),
  role_type         TEXT NOT NULL
                    CHECK (role_type IN ('ALPHA', 'BETA', 'OMEGA', 'EPSILON', 'TAU')),
  strategy          TEXT CHECK (strategy IS NULL
                                OR strategy IN ('HOMOGENEOUS', 'HETEROGENEOUS')),
  -- NO ACTION: a blueprint used as a child by another cannot be deleted alone.
  child_workflow_id TEXT REFERENCES Template_Workflows (workflow_id),
  -- extensions
  step_source       TEXT,
  position          INTEGER NOT NULL,
  UNIQUE (workflow_id, name)
);

CREATE TABLE Template_Interactions (
  interaction_id            TEXT PRIMARY KEY NOT NULL
                            CHECK (length(interaction_id) = 36),
  workflow_id               TEXT NOT NULL
                            REFERENCES Template_Workflows (workflow_id) ON DELETE CASCADE,
  name                      TEXT NOT NULL CHECK (name <> ''),
  description               TEXT NOT NULL DEFAULT '',
  ai_context                TEXT CHECK (ai_context IS NULL OR json_valid(ai_context)),
  -- extensions
  stale_token_limit_seconds INTEGER CHECK (stale_token_limit_seconds IS NULL
                                           OR stale_token_limit_seconds > 0),
  position                  INTEGER NOT NULL,
  UNIQUE (workflow_id, name)
);

CREATE TABLE Template_Components (
  component_id   TEXT PRIMARY KEY NOT NULL CHECK (length(component_id) = 36),
  workflow_id    TEXT NOT NULL
                 REFERENCES Template_Workflows (workflow_id) ON DELETE CASCADE,
  interaction_id TEXT NOT NULL
                 REFERENCES Template_Interactions (interaction_id) ON DELETE CASCADE,
  role_id        TEXT NOT NULL
                 REFERENCES Template_Roles (role_id) ON DELETE CASCADE,
  direction      TEXT NOT NULL CHECK (direction IN ('INBOUND', 'OUTBOUND')),
  name           TEXT NOT NULL CHECK (name <> ''),
  description    TEXT NOT NULL DEFAULT '',
  ai_context     TEXT CHECK (ai_context IS NULL OR json_valid(ai_context)),
  -- extensions
  routing        TEXT CHECK (routing IS NULL OR json_valid(routing)),
  position       INTEGER NOT NULL,
  UNIQUE (workflow_id, name)
);

CREATE TABLE Template_Guardians (
  guardian_id  TEXT PRIMARY KEY NOT NULL CHECK (length(guardian_id) = 36),
  workflow_id  TEXT NOT NULL
               REFERENCES Template_Workflows (workflow_id) ON DELETE CASCADE,
  component_id TEXT NOT NULL
               REFERENCES Template_Components (component_id) ON DELETE CASCADE,
  name         TEXT NOT NULL CHECK (name <> ''),
  description  TEXT NOT NULL DEFAULT '',
  ai_context   TEXT CHECK (ai_context IS NULL OR json_valid(ai_context)),
  type         TEXT NOT NULL CHECK (type IN ('CERBERUS', 'PASS_THRU', 'CRITERIA_GATE',
                 'TTL_CHECK', 'COMPOSITE', 'DIRECTIONAL_FILTER',
                 'CONDITIONAL_INJECTOR', 'LUA', 'POLICY', 'APPROVAL')),
  config       TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(config)),
  -- extensions
  position     INTEGER NOT NULL,
  UNIQUE (workflow_id, name)
);

-- Extension tables: the actors and assignments a definition declares, so
-- that instantiation can clone them into Local_Actors and
-- Local_Actor_Role_Assignments.

CREATE TABLE Template_Actors (
  actor_id     TEXT PRIMARY KEY NOT NULL CHECK (length(actor_id) = 36),
  workflow_id  TEXT NOT NULL
               REFERENCES Template_Workflows (workflow_id) ON DELETE CASCADE,
  name         TEXT NOT NULL CHECK (name <> ''),
  identity_key TEXT,
  description  TEXT NOT NULL DEFAULT '',
  ai_context   TEXT CHECK (ai_context IS NULL OR json_valid(ai_context)),
  type         TEXT NOT NULL CHECK (type IN ('HUMAN', 'AI_AGENT', 'SYSTEM')),
  capabilities TEXT CHECK (capabilities IS NULL OR json_valid(capabilities)),
  position     INTEGER NOT NULL,
  UNIQUE (workflow_id, name)
);

CREATE TABLE Template_Actor_Role_Assignments (
  assignment_id TEXT PRIMARY KEY NOT NULL CHECK (length(assignment_id) = 36),
  workflow_id   TEXT NOT NULL
                REFERENCES Template_Workflows (workflow_id) ON DELETE CASCADE,
  actor_id      TEXT NOT NULL
                REFERENCES Template_Actors (actor_id) ON DELETE CASCADE,
  role_id       TEXT NOT NULL
                REFERENCES Template_Roles (role_id) ON DELETE CASCADE,
  status        TEXT NOT NULL DEFAULT 'ACTIVE'
                CHECK (status IN ('ACTIVE', 'REVOKED')),
  position      INTEGER NOT NULL,
  UNIQUE (actor_id, role_id)
);

-- ---------------------------------------------------------------------------
-- Indexes (UNIQUE constraints above already index workflow_id first)
-- ---------------------------------------------------------------------------

CREATE INDEX Template_Roles_child ON Template_Roles (child_workflow_id)
  WHERE child_workflow_id IS NOT NULL;
CREATE INDEX Template_Components_role
  ON Template_Components (role_id, direction, position);
CREATE INDEX Template_Components_interaction
  ON Template_Components (interaction_id, direction);
CREATE INDEX Template_Guardians_component
  ON Template_Guardians (component_id, position);
CREATE INDEX Template_Actor_Role_Assignments_role
  ON Template_Actor_Role_Assignments (role_id);


-- ---------------------------------------------------------------------------
-- Descriptions: one row per table ('') and per column. Seed text where the
-- seed gives one; "Extension:" marks what Chameleon adds to the seed.
-- ---------------------------------------------------------------------------

INSERT INTO Schema_Descriptions (table_name, column_name, description) VALUES
('Template_Workflows', '', 'Defines the high-level container for a workflow blueprint. One row per imported version of a workflow definition.'),
('Template_Workflows', 'workflow_id', 'Unique identifier for the blueprint. UUID (36-char text).'),
('Template_Workflows', 'name', 'Human-readable system name. Must be unique per version (UNIQUE(name, version)).'),
('Template_Workflows', 'description', 'Detailed documentation of what this workflow achieves.'),
('Template_Workflows', 'ai_context', 'Model-specific prompts/descriptions used to prime AI agents about the overall workflow goal. JSON text, NULL when absent.'),
('Template_Workflows', 'version', 'Incremental version number; updated whenever the structure (roles, edges) changes. Starts at 1.'),
('Template_Workflows', 'schema_json', 'A serialized, cached representation of the full graph (Nodes+Edges) to speed up the cloning process. Holds the canonical definition as canonical JSON (docs/definition-format.md).'),
('Template_Workflows', 'created_at', 'UTC timestamp of creation. ISO-8601 text with milliseconds, e.g. 2026-11-22T10:00:00.123Z.'),
('Template_Workflows', 'canonical_hash', 'Extension: SHA-256 (lowercase hex, 64 chars) of schema_json; detects re-import of an identical definition.'),
('Template_Workflows', 'source_text', 'Extension: the Lua or JSON source text that was imported to produce this version.'),
('Template_Workflows', 'source_name', 'Extension: file name of the imported source, used in error messages and exports.'),

('Template_Roles', '', 'Defines the functional agents or steps within a blueprint.'),
('Template_Roles', 'role_id', 'Unique identifier for the role definition. UUID (36-char text).'),
('Template_Roles', 'workflow_id', 'The blueprint this role belongs to.'),
('Template_Roles', 'name', 'Display name of the role. Must be unique within the workflow_id namespace.'),
('Template_Roles', 'description', 'Human-readable description of responsibilities.'),
('Template_Roles', 'ai_context', 'Specific instructions for AI agents assigned to this role. JSON text, NULL when absent.'),
('Template_Roles', 'role_type', 'Functional classification: ALPHA (origin), BETA (processor), OMEGA (terminal), EPSILON (physician), TAU (chronometer).'),
('Template_Roles', 'strategy', 'Decomposition strategy (HOMOGENEOUS/HETEROGENEOUS) for Beta roles; NULL otherwise.'),
('Template_Roles', 'child_workflow_id', 'If set, this Role acts as a Recursive Gateway triggering this referenced blueprint. NULL otherwise.'),
('Template_Roles', 'step_source', 'Extension: Lua source text of the role''s step function (run by the engine as the SYSTEM actor), or NULL.'),
('Template_Roles', 'position', 'Extension: declaration order: 1-based index of the role in its definition''s array.'),

('Template_Interactions', '', 'Defines the passive holding areas (waiting rooms) between roles.'),
('Template_Interactions', 'interaction_id', 'Unique identifier. UUID (36-char text).'),
('Template_Interactions', 'workflow_id', 'Parent blueprint.'),
('Template_Interactions', 'name', 'System name. Must be unique within the workflow_id namespace.'),
('Template_Interactions', 'description', 'Documentation of what UOW state resides here.'),
('Template_Interactions', 'ai_context', 'Context for agents observing this interaction. JSON text, NULL when absent.'),
('Template_Interactions', 'stale_token_limit_seconds', 'Extension: seconds a token may wait here before the stale sweep sends it to Chronos; NULL = no limit. Cloned into Local_Interactions.stale_token_limit_seconds.'),
('Template_Interactions', 'position', 'Extension: declaration order: 1-based index of the interaction in its definition''s array.'),

('Template_Components', '', 'Defines the topology (directional pipes) linking Roles and Interactions.'),
('Template_Components', 'component_id', 'Unique identifier. UUID (36-char text).'),
('Template_Components', 'workflow_id', 'Added for Namespace Scope. The blueprint this component belongs to.'),
('Template_Components', 'interaction_id', 'The interaction endpoint.'),
('Template_Components', 'role_id', 'The role endpoint.'),
('Template_Components', 'direction', 'Flow direction relative to the Role (INBOUND/OUTBOUND): INBOUND = interaction to role, OUTBOUND = role to interaction.'),
('Template_Components', 'name', 'Descriptive name. Must be unique within the workflow_id namespace.'),
('Template_Components', 'description', 'Documentation of the data flow.'),
('Template_Components', 'ai_context', 'Semantic description of this specific data pipe. JSON text, NULL when absent.'),
('Template_Components', 'routing', 'Extension: routing of an OUTBOUND component (interaction policy, next_step_logic, {"lua": ...} or {"when": ...}) as JSON text; NULL = none.'),
('Template_Components', 'position', 'Extension: declaration order (1-based index in the definition''s array); a role''s outbound components are tried in ascending position.'),

('Template_Guardians', '', 'Defines the active logic gates attached to components.'),
('Template_Guardians', 'guardian_id', 'Unique identifier. UUID (36-char text).'),
('Template_Guardians', 'workflow_id', 'Added for Namespace Scope. The blueprint this guardian belongs to.'),
('Template_Guardians', 'component_id', 'The specific pipe this guard protects.'),
('Template_Guardians', 'name', 'Name of the guard logic. Must be unique within the workflow_id namespace.'),
('Template_Guardians', 'description', 'Explanation of the gating criteria.'),
('Template_Guardians', 'ai_context', 'Instructions for AI agents acting as the guard. JSON text, NULL when absent.'),
('Template_Guardians', 'type', 'Logic type: CERBERUS, PASS_THRU, CRITERIA_GATE, TTL_CHECK, COMPOSITE, DIRECTIONAL_FILTER, CONDITIONAL_INJECTOR, LUA, POLICY or APPROVAL.'),
('Template_Guardians', 'config', 'Configuration payload (e.g., {"criteria": "amount > 1000"}). JSON text; shape per type in docs/definition-format.md.'),
('Template_Guardians', 'position', 'Extension: declaration order: 1-based index of the guardian in its definition''s array.'),

('Template_Actors', '', 'Extension: actors a workflow definition declares; instantiation clones them into Local_Actors.'),
('Template_Actors', 'actor_id', 'Unique identifier of the declared actor. UUID (36-char text).'),
('Template_Actors', 'workflow_id', 'The blueprint that declares this actor.'),
('Template_Actors', 'name', 'Display name. Must be unique within the workflow_id namespace.'),
('Template_Actors', 'identity_key', 'External reference ID.'),
('Template_Actors', 'description', 'Description of capabilities.'),
('Template_Actors', 'ai_context', 'System prompts or Persona definitions for this actor. JSON text, NULL when absent.'),
('Template_Actors', 'type', 'Kind of actor: HUMAN, AI_AGENT or SYSTEM.'),
('Template_Actors', 'capabilities', 'Dictionary of tools/skills the actor possesses. JSON text, NULL when absent.'),
('Template_Actors', 'position', 'Declaration order: 1-based index of the actor in its definition''s array.'),

('Template_Actor_Role_Assignments', '', 'Extension: role assignments a workflow definition declares; instantiation clones them into Local_Actor_Role_Assignments.'),
('Template_Actor_Role_Assignments', 'assignment_id', 'Unique identifier. UUID (36-char text).'),
('Template_Actor_Role_Assignments', 'workflow_id', 'The blueprint that declares this assignment.'),
('Template_Actor_Role_Assignments', 'actor_id', 'The Actor.'),
('Template_Actor_Role_Assignments', 'role_id', 'The Role they are allowed to assume. One assignment per (actor_id, role_id).'),
('Template_Actor_Role_Assignments', 'status', 'ACTIVE or REVOKED.'),
('Template_Actor_Role_Assignments', 'position', 'Declaration order: 1-based index of the assignment in its definition''s array.');
