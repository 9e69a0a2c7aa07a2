-- sql/instance/001_init.sql — instance-store schema, version 1 (Tier 2 of
-- seed 000) plus the columns and tables the token engine needs.
-- Owned by the schema contributor; embedded in libchameleon and applied by
-- store.c inside one transaction, which then sets PRAGMA user_version = 1.
-- Names are the seed's, exactly; every extension is described as such in
-- Schema_Descriptions. Representation rules are in docs/schema.md.

-- ---------------------------------------------------------------------------
-- 1. The root context
-- ---------------------------------------------------------------------------

CREATE TABLE Instance_Context (
  instance_id     TEXT PRIMARY KEY NOT NULL CHECK (length(instance_id) = 36),
  name            TEXT NOT NULL UNIQUE CHECK (name <> ''),
  description     TEXT NOT NULL DEFAULT '',
  status          TEXT NOT NULL DEFAULT 'ACTIVE'
                  CHECK (status IN ('ACTIVE', 'PAUSED', 'ARCHIVED')),
  deployment_date TEXT NOT NULL CONSTRAINT deployment_date_iso8601
                  CHECK (deployment_date GLOB
    '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]:[0-9][0-9]:[0-9][0-9].[0-9][0-9][0-9]Z')
);

-- ---------------------------------------------------------------------------
-- 2. Cloned metadata (the "frozen" physics)
-- ---------------------------------------------------------------------------

CREATE TABLE Local_Workflows (
  local_workflow_id    TEXT PRIMARY KEY NOT NULL
                       CHECK (length(local_workflow_id) = 36),
  instance_id          TEXT NOT NULL
                       REFERENCES Instance_Context (instance_id) ON DELETE CASCADE,
  original_workflow_id TEXT,                  -- Tier 1 id: no FK across stores
  name                 TEXT NOT NULL CHECK (name <> ''),
  description          TEXT NOT NULL DEFAULT '',
  ai_context           TEXT CHECK (ai_context IS NULL OR json_valid(ai_context)),
  version              INTEGER NOT NULL CHECK (version >= 1),
  is_active            INTEGER NOT NULL DEFAULT 1 CHECK (is_active IN (0, 1)),
  is_master            INTEGER NOT NULL DEFAULT 0 CHECK (is_master IN (0, 1)),
  -- extensions
  canonical_json       TEXT CHECK (canonical_json IS NULL OR json_valid(canonical_json)),
  max_interactions     INTEGER CHECK (max_interactions IS NULL OR max_interactions > 0),
  UNIQUE (instance_id, name)
);

-- Only one workflow in the instance can be the master.
CREATE UNIQUE INDEX Local_Workflows_one_master
  ON Local_Workflows (instance_id) WHERE is_master = 1;

CREATE TABLE Local_Roles (
  role_id                  TEXT PRIMARY KEY NOT NULL CHECK (length(role_id) = 36),
  local_workflow_id        TEXT NOT NULL
                           REFERENCES Local_Workflows (local_workflow_id) ON DELETE CASCADE,
  name                     TEXT NOT NULL CHECK (name <> ''),
  description              TEXT NOT NULL DEFAULT '',
  ai_context               TEXT CHECK (ai_context IS NULL OR json_valid(ai_context)),
  role_type                TEXT NOT NULL
                           CHECK (role_type IN ('ALPHA', 'BETA', 'OMEGA', 'EPSILON', 'TAU')),
  decomposition_strategy   TEXT CHECK (decomposition_strategy IS NULL
                             OR decomposition_strategy IN ('HOMOGENEOUS', 'HETEROGENEOUS')),
  is_recursive_gateway     INTEGER NOT NULL DEFAULT 0
                           CHECK (is_recursive_gateway IN (0, 1)),
  -- NO ACTION: a child workflow cannot be deleted while a gateway points at it.
  linked_local_workflow_id TEXT REFERENCES Local_Workflows (local_workflow_id),
  -- extensions
  step_source              TEXT,
  position                 INTEGER NOT NULL,
  original_role_id         TEXT,              -- Template_Roles.role_id
  UNIQUE (local_workflow_id, name)
);

CREATE TABLE Local_Interactions (
  interaction_id            TEXT PRIMARY KEY NOT NULL
                            CHECK (length(interaction_id) = 36),
  local_workflow_id         TEXT NOT NULL
                            REFERENCES Local_Workflows (local_workflow_id) ON DELETE CASCADE,
  name                      TEXT NOT NULL CHECK (name <> ''),
  description               TEXT NOT NULL DEFAULT '',
  ai_context                TEXT CHECK (ai_context IS NULL OR json_valid(ai_context)),
  stale_token_limit_seconds INTEGER CHECK (stale_token_limit_seconds IS NULL
                                           OR stale_token_limit_seconds > 0),
  -- extensions
  position                  INTEGER NOT NULL,
  original_interaction_id   TEXT,             -- Template_Interactions.interaction_id
  UNIQUE (local_workflow_id, name)
);

CREATE TABLE Local_Components (
  component_id          TEXT PRIMARY KEY NOT NULL CHECK (length(component_id) = 36),
  local_workflow_id     TEXT NOT NULL
                        REFERENCES Local_Workflows (local_workflow_id) ON DELETE CASCADE,
  interaction_id        TEXT NOT NULL
                        REFERENCES Local_Interactions (interaction_id) ON DELETE CASCADE,
  role_id               TEXT NOT NULL
                        REFERENCES Local_Roles (role_id) ON DELETE CASCADE,
  direction             TEXT NOT NULL CHECK (direction IN ('INBOUND', 'OUTBOUND')),
  name                  TEXT NOT NULL CHECK (name <> ''),
  description           TEXT NOT NULL DEFAULT '',
  ai_context            TEXT CHECK (ai_context IS NULL OR json_valid(ai_context)),
  -- extensions
  routing               TEXT CHECK (routing IS NULL OR json_valid(routing)),
  position              INTEGER NOT NULL,
  original_component_id TEXT,                 -- Template_Components.component_id
  UNIQUE (local_workflow_id, name)
);

CREATE TABLE Local_Guardians (
  guardian_id          TEXT PRIMARY KEY NOT NULL CHECK (length(guardian_id) = 36),
  local_workflow_id    TEXT NOT NULL
                       REFERENCES Local_Workflows (local_workflow_id) ON DELETE CASCADE,
  component_id         TEXT NOT NULL
                       REFERENCES Local_Components (component_id) ON DELETE CASCADE,
  name                 TEXT NOT NULL CHECK (name <> ''),
  description          TEXT NOT NULL DEFAULT '',
  ai_context           TEXT CHECK (ai_context IS NULL OR json_valid(ai_context)),
  type                 TEXT NOT NULL CHECK (type IN ('CERBERUS', 'PASS_THRU',
                         'CRITERIA_GATE', 'TTL_CHECK', 'COMPOSITE',
                         'DIRECTIONAL_FILTER', 'CONDITIONAL_INJECTOR', 'LUA',
                         'POLICY', 'APPROVAL')),
  attributes           TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(attributes)),
  -- extensions
  position             INTEGER NOT NULL,
  original_guardian_id TEXT,                  -- Template_Guardians.guardian_id
  UNIQUE (local_workflow_id, name)
);

-- ---------------------------------------------------------------------------
-- 3. Local resources (shared identity and long-term memory)
-- ---------------------------------------------------------------------------

CREATE TABLE Local_Actors (
  actor_id     TEXT PRIMARY KEY NOT NULL CHECK (length(actor_id) = 36),
  instance_id  TEXT NOT NULL
               REFERENCES Instance_Context (instance_id) ON DELETE CASCADE,
  identity_key TEXT,
  name         TEXT NOT NULL CHECK (name <> ''),
  description  TEXT NOT NULL DEFAULT '',
  ai_context   TEXT CHECK (ai_context IS NULL OR json_valid(ai_context)),
  type         TEXT NOT NULL CHECK (type IN ('HUMAN', 'AI_AGENT', 'SYSTEM')),
  capabilities TEXT CHECK (capabilities IS NULL OR json_valid(capabilities)),
  UNIQUE (instance_id, name)
);

CREATE TABLE Local_Actor_Role_Assignments (
  assignment_id TEXT PRIMARY KEY NOT NULL CHECK (length(assignment_id) = 36),
  actor_id      TEXT NOT NULL REFERENCES Local_Actors (actor_id) ON DELETE CASCADE,
  role_id       TEXT NOT NULL REFERENCES Local_Roles (role_id) ON DELETE CASCADE,
  status        TEXT NOT NULL DEFAULT 'ACTIVE'
                CHECK (status IN ('ACTIVE', 'REVOKED')),
  UNIQUE (actor_id, role_id)                  -- also the (actor, role) lookup
);

CREATE TABLE Local_Role_Attributes (
  memory_id        TEXT PRIMARY KEY NOT NULL CHECK (length(memory_id) = 36),
  instance_id      TEXT NOT NULL
                   REFERENCES Instance_Context (instance_id) ON DELETE CASCADE,
  role_id          TEXT NOT NULL REFERENCES Local_Roles (role_id) ON DELETE CASCADE,
  actor_id         TEXT REFERENCES Local_Actors (actor_id) ON DELETE CASCADE,
  key              TEXT NOT NULL CHECK (key <> ''),
  value            TEXT CHECK (value IS NULL OR json_valid(value)),
  is_toxic         INTEGER NOT NULL DEFAULT 0 CHECK (is_toxic IN (0, 1)),
  last_accessed_at TEXT CONSTRAINT last_accessed_at_iso8601
                   CHECK (last_accessed_at IS NULL OR last_accessed_at GLOB
    '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]:[0-9][0-9]:[0-9][0-9].[0-9][0-9][0-9]Z'),
  -- extensions
  created_at       TEXT CONSTRAINT created_at_iso8601
                   CHECK (created_at IS NULL OR created_at GLOB
    '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]:[0-9][0-9]:[0-9][0-9].[0-9][0-9][0-9]Z')
);

-- ---------------------------------------------------------------------------
-- 4. Execution state (the flow)
-- ---------------------------------------------------------------------------

CREATE TABLE UnitsOfWork (
  uow_id                 TEXT PRIMARY KEY NOT NULL CHECK (length(uow_id) = 36),
  instance_id            TEXT NOT NULL
                         REFERENCES Instance_Context (instance_id) ON DELETE CASCADE,
  local_workflow_id      TEXT NOT NULL
                         REFERENCES Local_Workflows (local_workflow_id) ON DELETE CASCADE,
  parent_id              TEXT REFERENCES UnitsOfWork (uow_id) ON DELETE CASCADE,
  current_interaction_id TEXT NOT NULL REFERENCES Local_Interactions (interaction_id),
  status                 TEXT NOT NULL DEFAULT 'PENDING' CHECK (status IN (
                           'PENDING', 'ACTIVE', 'COMPLETED', 'FAILED', 'REMEDIATED',
                           'TIMEOUT', 'PENDING_APPROVAL', 'ZOMBIED_SOFT', 'PAUSED',
                           'FINALIZED', 'ARCHIVED')),
  child_count            INTEGER NOT NULL DEFAULT 0 CHECK (child_count >= 0),
  finished_child_count   INTEGER NOT NULL DEFAULT 0 CHECK (finished_child_count >= 0),
  -- extensions
  version                INTEGER NOT NULL DEFAULT 1 CHECK (version >= 1),
  lease_holder_actor_id  TEXT REFERENCES Local_Actors (actor_id) ON DELETE SET NULL,
  lease_expires_at       INTEGER,             -- ms since epoch
  entered_at             INTEGER NOT NULL,    -- ms since epoch
  queue_seq              INTEGER NOT NULL,
  checkout_count         INTEGER NOT NULL DEFAULT 0 CHECK (checkout_count >= 0),
  max_interactions       INTEGER CHECK (max_interactions IS NULL OR max_interactions > 0),
  paused_from_status     TEXT CHECK (paused_from_status IS NULL OR paused_from_status IN (
                           'PENDING', 'ACTIVE', 'COMPLETED', 'FAILED', 'REMEDIATED',
                           'TIMEOUT', 'PENDING_APPROVAL', 'ZOMBIED_SOFT')),
  last_role_id           TEXT REFERENCES Local_Roles (role_id) ON DELETE SET NULL,
  failure_reason         TEXT,
  created_at             INTEGER NOT NULL,    -- ms since epoch
  updated_at             INTEGER NOT NULL,    -- ms since epoch
  return_uow_id          TEXT REFERENCES UnitsOfWork (uow_id) ON DELETE SET NULL,
  context_json           TEXT CHECK (context_json IS NULL OR json_valid(context_json))
);

CREATE TABLE UOW_Attributes (
  attribute_id         TEXT PRIMARY KEY NOT NULL CHECK (length(attribute_id) = 36),
  uow_id               TEXT NOT NULL REFERENCES UnitsOfWork (uow_id) ON DELETE CASCADE,
  instance_id          TEXT NOT NULL
                       REFERENCES Instance_Context (instance_id) ON DELETE CASCADE,
  key                  TEXT NOT NULL CHECK (key <> ''),
  value                TEXT CHECK (value IS NULL OR json_valid(value)),
  version              INTEGER NOT NULL CHECK (version >= 1),
  actor_id             TEXT REFERENCES Local_Actors (actor_id),
  reasoning            TEXT,
  -- extensions
  created_at           INTEGER NOT NULL,      -- ms since epoch
  lineage_attribute_id TEXT REFERENCES UOW_Attributes (attribute_id)
);

-- UNIQUE(uow_id, key, version), ordered so the current value of a key (its
-- highest version) is the first entry: also the attribute lookup index.
CREATE UNIQUE INDEX UOW_Attributes_key_version
  ON UOW_Attributes (uow_id, key, version DESC);

-- The ledger references everything with NO ACTION: nothing a log row
-- points at can be deleted, and the triggers below refuse edits.
CREATE TABLE Interaction_Logs (
  log_id         INTEGER PRIMARY KEY,         -- the sequence (rowid)
  instance_id    TEXT NOT NULL REFERENCES Instance_Context (instance_id),
  uow_id         TEXT REFERENCES UnitsOfWork (uow_id),
  actor_id       TEXT REFERENCES Local_Actors (actor_id),
  role_id        TEXT REFERENCES Local_Roles (role_id),
  interaction_id TEXT REFERENCES Local_Interactions (interaction_id),
  timestamp      TEXT NOT NULL CONSTRAINT timestamp_iso8601 CHECK (timestamp GLOB
    '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]:[0-9][0-9]:[0-9][0-9].[0-9][0-9][0-9]Z'),
  -- extensions
  from_status    TEXT,
  to_status      TEXT,
  event          TEXT NOT NULL CHECK (event <> ''),
  decision       TEXT,
  guardian_id    TEXT REFERENCES Local_Guardians (guardian_id),
  details        TEXT CHECK (details IS NULL OR json_valid(details)),
  prev_hash      TEXT NOT NULL,
  hash           TEXT NOT NULL
);

CREATE TRIGGER Interaction_Logs_no_update BEFORE UPDATE ON Interaction_Logs
BEGIN
  SELECT RAISE(ABORT, 'Interaction_Logs is append-only');
END;

CREATE TRIGGER Interaction_Logs_no_delete BEFORE DELETE ON Interaction_Logs
BEGIN
  SELECT RAISE(ABORT, 'Interaction_Logs is append-only');
END;

-- Extension tables written by the token engine.

CREATE TABLE Token_Rejections (
  rejection_id  TEXT PRIMARY KEY NOT NULL CHECK (length(rejection_id) = 36),
  uow_id        TEXT NOT NULL REFERENCES UnitsOfWork (uow_id) ON DELETE CASCADE,
  guardian_id   TEXT REFERENCES Local_Guardians (guardian_id) ON DELETE SET NULL,
  guardian_name TEXT NOT NULL,
  guardian_type TEXT NOT NULL,
  reason        TEXT NOT NULL,
  created_at    INTEGER NOT NULL              -- ms since epoch
);

CREATE TABLE Context_Injections (
  injection_id TEXT PRIMARY KEY NOT NULL CHECK (length(injection_id) = 36),
  uow_id       TEXT NOT NULL REFERENCES UnitsOfWork (uow_id) ON DELETE CASCADE,
  guardian_id  TEXT REFERENCES Local_Guardians (guardian_id) ON DELETE SET NULL,
  rule_index   INTEGER NOT NULL,
  field        TEXT NOT NULL CHECK (field IN ('model', 'instructions', 'knowledge')),
  value        TEXT CHECK (value IS NULL OR json_valid(value)),
  created_at   INTEGER NOT NULL               -- ms since epoch
);

-- ---------------------------------------------------------------------------
-- Indexes for the engine's queries (UNIQUE constraints above index their
-- leading columns already: namespaces, assignments, attributes)
-- ---------------------------------------------------------------------------

CREATE INDEX UnitsOfWork_queue
  ON UnitsOfWork (current_interaction_id, status, queue_seq);   -- FIFO checkout
CREATE INDEX UnitsOfWork_parent ON UnitsOfWork (parent_id);      -- children
CREATE INDEX UnitsOfWork_lease ON UnitsOfWork (status, lease_expires_at);
CREATE INDEX UnitsOfWork_stale ON UnitsOfWork (status, entered_at);
CREATE INDEX UnitsOfWork_return ON UnitsOfWork (return_uow_id)
  WHERE return_uow_id IS NOT NULL;
CREATE INDEX Interaction_Logs_uow ON Interaction_Logs (uow_id, log_id);
CREATE INDEX Local_Role_Attributes_memory
  ON Local_Role_Attributes (role_id, actor_id, key);
CREATE INDEX Local_Components_role
  ON Local_Components (role_id, direction, position);
CREATE INDEX Local_Components_interaction
  ON Local_Components (interaction_id, direction);
CREATE INDEX Local_Guardians_component ON Local_Guardians (component_id, position);
CREATE INDEX Local_Actor_Role_Assignments_role
  ON Local_Actor_Role_Assignments (role_id);
CREATE INDEX Local_Roles_linked ON Local_Roles (linked_local_workflow_id)
  WHERE linked_local_workflow_id IS NOT NULL;
CREATE INDEX Token_Rejections_uow ON Token_Rejections (uow_id);
CREATE INDEX Context_Injections_uow ON Context_Injections (uow_id);


-- ---------------------------------------------------------------------------
-- Descriptions: one row per table ('') and per column. Seed text where the
-- seed gives one; "Extension:" marks what Chameleon adds to the seed.
-- Times: seed Timestamp columns are ISO-8601 UTC text with milliseconds;
-- engine clock columns (extensions) are INTEGER milliseconds since epoch.
-- ---------------------------------------------------------------------------

INSERT INTO Schema_Descriptions (table_name, column_name, description) VALUES
('Instance_Context', '', 'Represents the "World" or "Tenant" for this deployment. It is the root of the isolation boundary.'),
('Instance_Context', 'instance_id', 'The Global ID for this specific deployment. UUID (36-char text).'),
('Instance_Context', 'name', 'Display name. Must be unique globally.'),
('Instance_Context', 'description', 'Operational notes.'),
('Instance_Context', 'status', 'Deployment health (ACTIVE, PAUSED, ARCHIVED).'),
('Instance_Context', 'deployment_date', 'When this instance was cloned from the meta-store. ISO-8601 UTC text with milliseconds, e.g. 2026-11-22T10:00:00.123Z.'),

('Local_Workflows', '', 'A specific workflow definition active within this instance. Can be a Master or a Child dependency.'),
('Local_Workflows', 'local_workflow_id', 'Unique ID for this workflow within this instance. UUID (36-char text).'),
('Local_Workflows', 'instance_id', 'The parent container.'),
('Local_Workflows', 'original_workflow_id', 'Traceability link to the source blueprint (Template_Workflows.workflow_id in the meta-store; not a foreign key, the stores are air-gapped).'),
('Local_Workflows', 'name', 'Local name of the workflow. Must be unique within the instance_id namespace.'),
('Local_Workflows', 'description', 'Local description.'),
('Local_Workflows', 'ai_context', 'Localized AI prompts. JSON text, NULL when absent.'),
('Local_Workflows', 'version', 'The version of the blueprint used for this snapshot.'),
('Local_Workflows', 'is_active', 'Controls execution eligibility. Boolean: 1 or 0.'),
('Local_Workflows', 'is_master', 'Only one workflow in the instance can be True (1). This is the entry point. Default False (0).'),
('Local_Workflows', 'canonical_json', 'Extension: the canonical definition (canonical JSON, docs/definition-format.md) this workflow was cloned from, so the instance is self-contained.'),
('Local_Workflows', 'max_interactions', 'Extension: default bound on checkouts per token (ambiguity lock); a token reaching it becomes ZOMBIED_SOFT. NULL = no bound.'),

('Local_Roles', '', 'The execution logic nodes. Cloned from Template_Roles.'),
('Local_Roles', 'role_id', 'Local unique identifier. UUID (36-char text).'),
('Local_Roles', 'local_workflow_id', 'Parent local workflow.'),
('Local_Roles', 'name', 'Role Name. Must be unique within the local_workflow_id namespace.'),
('Local_Roles', 'description', 'Description.'),
('Local_Roles', 'ai_context', 'AI Instructions. JSON text, NULL when absent.'),
('Local_Roles', 'role_type', 'Functional classification: ALPHA (origin), BETA (processor), OMEGA (terminal), EPSILON (physician), TAU (chronometer).'),
('Local_Roles', 'decomposition_strategy', 'How this role breaks down tasks: HOMOGENEOUS or HETEROGENEOUS (Beta roles), NULL otherwise. Cloned from Template_Roles.strategy.'),
('Local_Roles', 'is_recursive_gateway', 'Flag if this role spawns a sub-workflow. Boolean: 1 or 0.'),
('Local_Roles', 'linked_local_workflow_id', 'Crucial: Points to the Child Workflow hosted in this same instance if recursive. NULL otherwise.'),
('Local_Roles', 'step_source', 'Extension: Lua source text of the role''s step function, run by the engine as the SYSTEM actor; NULL when the role has none.'),
('Local_Roles', 'position', 'Extension: declaration order: 1-based index of the role in its definition''s array.'),
('Local_Roles', 'original_role_id', 'Extension: traceability link to Template_Roles.role_id in the meta-store (not a foreign key).'),

('Local_Interactions', '', 'The execution holding areas. Cloned from Template_Interactions.'),
('Local_Interactions', 'interaction_id', 'Local unique identifier. UUID (36-char text).'),
('Local_Interactions', 'local_workflow_id', 'Parent local workflow.'),
('Local_Interactions', 'name', 'Interaction Name. Must be unique within the local_workflow_id namespace.'),
('Local_Interactions', 'description', 'Description.'),
('Local_Interactions', 'ai_context', 'AI Context. JSON text, NULL when absent.'),
('Local_Interactions', 'stale_token_limit_seconds', 'Runtime configuration for Timeout (Chronos) logic: seconds a token may wait here before the stale sweep moves it to Chronos. NULL = no limit.'),
('Local_Interactions', 'position', 'Extension: declaration order: 1-based index of the interaction in its definition''s array.'),
('Local_Interactions', 'original_interaction_id', 'Extension: traceability link to Template_Interactions.interaction_id in the meta-store (not a foreign key).'),

('Local_Components', '', 'The execution connections. Cloned from Template_Components.'),
('Local_Components', 'component_id', 'Local unique identifier. UUID (36-char text).'),
('Local_Components', 'local_workflow_id', 'Parent local workflow.'),
('Local_Components', 'interaction_id', 'Connection Endpoint A.'),
('Local_Components', 'role_id', 'Connection Endpoint B.'),
('Local_Components', 'direction', 'Flow direction relative to the role: INBOUND (interaction to role) or OUTBOUND (role to interaction).'),
('Local_Components', 'name', 'Component Name. Must be unique within the local_workflow_id namespace.'),
('Local_Components', 'description', 'Description.'),
('Local_Components', 'ai_context', 'AI Context. JSON text, NULL when absent.'),
('Local_Components', 'routing', 'Extension: routing of an OUTBOUND component (interaction policy, next_step_logic, {"lua": ...} or {"when": ...}) as JSON text; NULL = none.'),
('Local_Components', 'position', 'Extension: declaration order (1-based index in the definition''s array); a role''s outbound components are tried in ascending position.'),
('Local_Components', 'original_component_id', 'Extension: traceability link to Template_Components.component_id in the meta-store (not a foreign key).'),

('Local_Guardians', '', 'The active security gates. Cloned from Template_Guardians.'),
('Local_Guardians', 'guardian_id', 'Local unique identifier. UUID (36-char text).'),
('Local_Guardians', 'local_workflow_id', 'Parent local workflow.'),
('Local_Guardians', 'component_id', 'The pipe being guarded.'),
('Local_Guardians', 'name', 'Guard Name. Must be unique within the local_workflow_id namespace.'),
('Local_Guardians', 'description', 'Description.'),
('Local_Guardians', 'ai_context', 'AI Context. JSON text, NULL when absent.'),
('Local_Guardians', 'type', 'Logic Class: CERBERUS, PASS_THRU, CRITERIA_GATE, TTL_CHECK, COMPOSITE, DIRECTIONAL_FILTER, CONDITIONAL_INJECTOR, LUA, POLICY or APPROVAL.'),
('Local_Guardians', 'attributes', 'The runtime configuration logic (e.g., criteria rules). JSON text, cloned from Template_Guardians.config.'),
('Local_Guardians', 'position', 'Extension: declaration order: 1-based index of the guardian in its definition''s array.'),
('Local_Guardians', 'original_guardian_id', 'Extension: traceability link to Template_Guardians.guardian_id in the meta-store (not a foreign key).'),

('Local_Actors', '', 'Identities authorized to operate within this specific Instance Context.'),
('Local_Actors', 'actor_id', 'Unique ID for the actor in this instance. UUID (36-char text).'),
('Local_Actors', 'instance_id', 'The container.'),
('Local_Actors', 'identity_key', 'External reference ID.'),
('Local_Actors', 'name', 'Display name. Must be unique within the instance_id namespace.'),
('Local_Actors', 'description', 'Description of capabilities.'),
('Local_Actors', 'ai_context', 'System prompts or Persona definitions specific to this instance. JSON text, NULL when absent.'),
('Local_Actors', 'type', 'Kind of actor: HUMAN, AI_AGENT or SYSTEM.'),
('Local_Actors', 'capabilities', 'Dictionary of tools/skills the actor possesses. JSON text, NULL when absent.'),

('Local_Actor_Role_Assignments', '', 'Mapping table defining which Actors can perform which Roles.'),
('Local_Actor_Role_Assignments', 'assignment_id', 'Unique identifier. UUID (36-char text).'),
('Local_Actor_Role_Assignments', 'actor_id', 'The Actor.'),
('Local_Actor_Role_Assignments', 'role_id', 'The Role they are allowed to assume. One assignment per (actor_id, role_id).'),
('Local_Actor_Role_Assignments', 'status', 'ACTIVE or REVOKED; only ACTIVE assignments allow the actor to act in the role.'),

('Local_Role_Attributes', '', 'The Memory Store: the persistent knowledge base (Article III). Stores both shared Blueprints and private Playbooks.'),
('Local_Role_Attributes', 'memory_id', 'Unique identifier. UUID (36-char text).'),
('Local_Role_Attributes', 'instance_id', 'The container.'),
('Local_Role_Attributes', 'role_id', 'The Role context this memory applies to.'),
('Local_Role_Attributes', 'actor_id', 'If NULL: this is a Global Blueprint (shared knowledge for all actors in this role). If SET: this is a Personal Playbook (private knowledge for this specific actor).'),
('Local_Role_Attributes', 'key', 'Retrieval key.'),
('Local_Role_Attributes', 'value', 'The stored knowledge/configuration. JSON text.'),
('Local_Role_Attributes', 'is_toxic', 'Flagged by Omega/Epsilon if this memory led to failure (Article XX). Boolean: 1 or 0, default 0.'),
('Local_Role_Attributes', 'last_accessed_at', 'Used for pruning decay. ISO-8601 UTC text with milliseconds; NULL = never read.'),
('Local_Role_Attributes', 'created_at', 'Extension: when this memory was written. ISO-8601 UTC text with milliseconds.'),

('UnitsOfWork', '', 'The atomic token representing a task or data packet moving through the graph.'),
('UnitsOfWork', 'uow_id', 'Unique identifier. UUID (36-char text).'),
('UnitsOfWork', 'instance_id', 'The container.'),
('UnitsOfWork', 'local_workflow_id', 'Identifies which specific process this token is traversing.'),
('UnitsOfWork', 'parent_id', 'Link to the Base UOW if this is a Child. NULL for a base token.'),
('UnitsOfWork', 'current_interaction_id', 'Physical location of the token.'),
('UnitsOfWork', 'status', 'Current state: PENDING, ACTIVE, COMPLETED, FAILED, REMEDIATED, TIMEOUT, PENDING_APPROVAL, ZOMBIED_SOFT, PAUSED, FINALIZED or ARCHIVED (the seed lists the first four; the rest are extensions, DESIGN.md §4).'),
('UnitsOfWork', 'child_count', 'Total children generated (Optimization for Cerberus).'),
('UnitsOfWork', 'finished_child_count', 'Total children completed (Optimization for Cerberus): children that reached COMPLETED, REMEDIATED or FINALIZED.'),
('UnitsOfWork', 'version', 'Extension: optimistic-concurrency version; incremented by every change of the token. A submit carrying an older version is refused.'),
('UnitsOfWork', 'lease_holder_actor_id', 'Extension: the actor holding the checkout lease (only it may heartbeat, submit or fail); NULL when not checked out.'),
('UnitsOfWork', 'lease_expires_at', 'Extension: lease expiry, milliseconds since the Unix epoch (engine clock); NULL when not leased.'),
('UnitsOfWork', 'entered_at', 'Extension: when the token entered its current interaction, milliseconds since the Unix epoch; the stale sweep compares it with stale_token_limit_seconds.'),
('UnitsOfWork', 'queue_seq', 'Extension: FIFO order of tokens within an interaction (lower is checked out first).'),
('UnitsOfWork', 'checkout_count', 'Extension: number of checkouts so far; compared with max_interactions.'),
('UnitsOfWork', 'max_interactions', 'Extension: bound on checkout_count (ambiguity lock); reaching it makes the token ZOMBIED_SOFT. NULL = no bound.'),
('UnitsOfWork', 'paused_from_status', 'Extension: status the token had when it was PAUSED, restored on resume; NULL otherwise.'),
('UnitsOfWork', 'last_role_id', 'Extension: the role that last acted on the token.'),
('UnitsOfWork', 'failure_reason', 'Extension: why the token last went FAILED or TIMEOUT (error text, rejection, sweep); NULL otherwise.'),
('UnitsOfWork', 'created_at', 'Extension: creation time, milliseconds since the Unix epoch (engine clock).'),
('UnitsOfWork', 'updated_at', 'Extension: time of the last change, milliseconds since the Unix epoch (engine clock).'),
('UnitsOfWork', 'return_uow_id', 'Extension: recursive gateway link. Set on a base token of a child workflow: the parent-workflow token that waits for it and resumes when it finishes. NULL otherwise.'),
('UnitsOfWork', 'context_json', 'Extension: context injected into the token (model, instructions, knowledge) by CONDITIONAL_INJECTOR guardians, as a JSON object; NULL = none.'),

('UOW_Attributes', '', 'The specific data payload of a Unit of Work (ephemeral transactional data). Immutable/Versioned: the current value of a key is its highest version.'),
('UOW_Attributes', 'attribute_id', 'Unique identifier. UUID (36-char text).'),
('UOW_Attributes', 'uow_id', 'The parent token.'),
('UOW_Attributes', 'instance_id', 'The container.'),
('UOW_Attributes', 'key', 'Data label.'),
('UOW_Attributes', 'value', 'Data payload. JSON text.'),
('UOW_Attributes', 'version', 'Version number (increments on updates). Unique per (uow_id, key); starts at 1.'),
('UOW_Attributes', 'actor_id', 'Who made this change.'),
('UOW_Attributes', 'reasoning', 'The "Why" or "Intent" behind this data change (traceability).'),
('UOW_Attributes', 'created_at', 'Extension: when this version was written, milliseconds since the Unix epoch (engine clock).'),
('UOW_Attributes', 'lineage_attribute_id', 'Extension: for a child token''s version-1 row, the parent''s attribute row (version) it was copied from; NULL otherwise.'),

('Interaction_Logs', '', 'The immutable ledger of every movement in the system (Audit). Append-only: triggers refuse UPDATE and DELETE; rows are hash-chained.'),
('Interaction_Logs', 'log_id', 'Sequence number (INTEGER PRIMARY KEY, increasing).'),
('Interaction_Logs', 'instance_id', 'The container.'),
('Interaction_Logs', 'uow_id', 'The token moved; NULL for events that concern no token.'),
('Interaction_Logs', 'actor_id', 'The actor responsible.'),
('Interaction_Logs', 'role_id', 'The active role context.'),
('Interaction_Logs', 'interaction_id', 'The location involved.'),
('Interaction_Logs', 'timestamp', 'When the event occurred. ISO-8601 UTC text with milliseconds, e.g. 2026-11-22T10:00:00.123Z.'),
('Interaction_Logs', 'from_status', 'Extension: token status before the event; NULL when the token is new or unchanged.'),
('Interaction_Logs', 'to_status', 'Extension: token status after the event; NULL when unchanged.'),
('Interaction_Logs', 'event', 'Extension: what happened: GENESIS, CHECKOUT, SUBMIT, ROUTE, FAIL, GUARDIAN, ... (open list, upper case).'),
('Interaction_Logs', 'decision', 'Extension: outcome of a decision event (e.g. a guardian PASS or REJECT, a routing target); NULL otherwise.'),
('Interaction_Logs', 'guardian_id', 'Extension: the guardian whose decision this row records; NULL otherwise.'),
('Interaction_Logs', 'details', 'Extension: event details as a JSON object (reason, error, target...); NULL = none.'),
('Interaction_Logs', 'prev_hash', 'Extension: hash of the previous row of the chain (hex SHA-256), a fixed genesis value for the first row.'),
('Interaction_Logs', 'hash', 'Extension: hash of this row''s content and prev_hash (hex SHA-256); verifying the chain detects tampering.'),

('Token_Rejections', '', 'Extension: one row per guardian rejection of a token (the token then goes to the Ate).'),
('Token_Rejections', 'rejection_id', 'Unique identifier. UUID (36-char text).'),
('Token_Rejections', 'uow_id', 'The rejected token.'),
('Token_Rejections', 'guardian_id', 'The rejecting guardian (NULL if it no longer exists).'),
('Token_Rejections', 'guardian_name', 'Name of the rejecting guardian, copied so the record stays readable.'),
('Token_Rejections', 'guardian_type', 'Type of the rejecting guardian (CRITERIA_GATE, ...).'),
('Token_Rejections', 'reason', 'Why the guardian rejected the token (criterion, missing field, script error...).'),
('Token_Rejections', 'created_at', 'When the rejection happened, milliseconds since the Unix epoch (engine clock).'),

('Context_Injections', '', 'Extension: one row per context change a CONDITIONAL_INJECTOR guardian made to a token at checkout (dynamic context injection).'),
('Context_Injections', 'injection_id', 'Unique identifier. UUID (36-char text).'),
('Context_Injections', 'uow_id', 'The token whose context changed.'),
('Context_Injections', 'guardian_id', 'The injecting guardian (NULL if it no longer exists).'),
('Context_Injections', 'rule_index', '1-based index of the rule in the guardian''s "rules" list whose condition was true.'),
('Context_Injections', 'field', 'The injected field: model, instructions or knowledge.'),
('Context_Injections', 'value', 'The injected value, JSON text.'),
('Context_Injections', 'created_at', 'When the injection happened, milliseconds since the Unix epoch (engine clock).');
